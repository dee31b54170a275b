/*
 * filter.h - the user's jq filters (libjq): --map, --where.
 *
 * libjq evaluates what the user wrote, never the data path: a value reaches a
 * filter as text the project's own parser (lib/json.h) accepted, and what a
 * filter writes is text that parser reads again.  jq 1.6 holds every number
 * as a double, so a filter sees 9007199254740993 as ...992 and compares
 * integers beyond 2^53 approximately; filter_exact() says, before a value is
 * handed to a filter whose outputs are kept, whether jq would change it.
 *
 * A filter is one compiled program (one jq_state) for one thread at a time;
 * two threads need two.  Every jv made here is freed here: the caller only
 * sees bytes.
 */
#ifndef RD_FILTER_H
#define RD_FILTER_H

#include "json.h"

struct filter;

/*
 * Compile program for the option opt ("--map"): the filter, or NULL with a
 * message (status 2) that quotes jq's own, "--map: jq: error: syntax error,
 * ...".
 */
struct filter *filter_new(const char *opt, const char *program);
void filter_free(struct filter *f);

/*
 * Run f on the JSON value text[0..len): 0, or -1 with a message (status 3)
 * when jq cannot read it.  The outputs come from filter_next.
 */
int filter_start(struct filter *f, const char *text, size_t len);
/*
 * The next output of the run, as compact JSON text, into out (reset first):
 * 1; 0 when there are no more; -1 with a message (status 3) quoting jq's
 * error ("--map: jq: error: ...").  After 0 or -1, start again.
 */
int filter_next(struct filter *f, struct sb *out);

/*
 * Whether the filter holds for the value text[0..len): 1 when one of its
 * outputs is neither false nor null (the first such ends the run), 0 when
 * none is, -1 with a message (status 3) on jq's error.
 */
int filter_test(struct filter *f, const char *text, size_t len);

/*
 * 0 when every number in v reads back from a double as the same value or is
 * not an integer; -1 with a message (status 3) naming the first that is an
 * integer jq would change (beyond 2^53 either way, or beyond a double's
 * range) by its path in jq's syntax, ".items[3].id: 9007199254740993 ...".
 * A number with a fraction becomes the nearest double, as in every jq
 * program, and is let through.
 */
int filter_exact(const struct json *v);

#endif
