/*
 * side.h - one input of a comparison read whole into an index, and the
 * per-type counts of the reports that comparisons write.
 *
 * recdelta-diff (local, remote, base) and recdelta-merge (base, local,
 * remote) read each input into an index of its own (lib/index.h) before
 * they write anything, each in its own thread.  A side is that input: its
 * store, its fetch options, the rules its records are hashed under, and the
 * index.  side_open() opens the store and fails there, before anything is
 * read, when a store that must exist does not; side_read() fetches it and
 * keeps its error (status and message) for the caller, so that a thread
 * never prints.  Tombstones are left out: a deleted record is an absent one.
 *
 * A tally is the per-type counts of a report: one struct summary_count
 * (lib/stream.h) per record type met, in the order met until tally_sort()
 * orders them by the type's bytes.  It owns the copies of the type names.
 */
#ifndef RD_SIDE_H
#define RD_SIDE_H

#include "index.h"
#include "record.h"
#include "store.h"

struct side {
	const char *label, *spec;	/* borrowed */
	struct store store;
	const struct fetch_opts *fo;	/* borrowed */
	const struct rules *rules;	/* borrowed: what the hashes apply */
	/*
	 * A selection (recdelta-diff --where), or NULL: called in the side's
	 * thread for each record read, 1 marks its entry selected
	 * (index_select_last), 0 leaves it unmarked, -1 with a message fails
	 * the read.
	 */
	int (*select)(void *ctx, const struct rline *l);
	void *selctx;
	struct index ix;

	struct sb scratch;
	struct arena arena;	/* for a scanned line's fields (side_read) */
	int fed;		/* filled by side_add, its store never opened */
	int status;		/* of err */
	char *err;		/* what failed while reading, or NULL */
};

/*
 * Open s->spec (label, spec, fo and rules set, the rest zero): -1 with a
 * message when it is not a store, or must exist and does not.
 */
int side_open(struct side *s);
/* Fetch the side into its index: a thread's start routine (arg a side). */
void *side_read(void *arg);
/* Release what side_open and side_read made; a side never opened is zero. */
void side_release(struct side *s);
/*
 * A side filled by the caller rather than from its store (recdelta-diff
 * --from-state: the base rows it looks up): side_begin (label, spec, fo
 * and rules set, the rest zero; the store is not opened, spec names the
 * source in messages), side_add each line as side_read's sink takes it
 * (offset -1: the index keeps the line), side_end.  -1 with a message.
 */
void side_begin(struct side *s);
int side_add(struct side *s, const struct rline *l);
int side_end(struct side *s);

struct tally {
	struct summary_count *v;
	size_t n, cap;
	uint32_t *slots;	/* entry + 1 by the type's hash, or 0 */
	size_t nslots;		/* 0: none built (a new or sorted tally) */
	size_t last;		/* the entry tally_get returned last */
};

/*
 * The counts of type (n[] zero when it is new), valid until the next call:
 * O(1) expected, by the last type asked for, else by a table of the types'
 * hashes.  tally_sort orders v by type name for a report.
 */
struct summary_count *tally_get(struct tally *t, const char *type, size_t len);
void tally_sort(struct tally *t);
void tally_release(struct tally *t);

/*
 * A type's name in the plural for a report: "Stadium" -> "Stadiums",
 * "Match" -> "Matches", "City" -> "Cities", "Bus" -> "Buses"; a name that
 * ends in another "s" ("games") is taken to be plural already.
 */
void type_plural(struct sb *out, const char *t, size_t n);

#endif
