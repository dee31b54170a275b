/*
 * stream.h - the NDJSON stream: reading lines, every line kind, writing.
 *
 * A stream is one JSON object per line, each with a string "kind".  Lines of
 * kind "record" are validated here (non-empty string "type" and "key", an
 * object "fields" unless it is a tombstone, string "rev" and "mtime" when
 * present); every other kind is passed through by the stages unchanged, so
 * it is only checked to be an object with a kind.  Each line is parsed once:
 * the reader hands out the raw bytes, stream_parse_line() the value, and a
 * stage that passes a line through writes the raw bytes back.
 *
 * A line longer than rd_max_line() bytes (RECDELTA_MAX_LINE, default 4 MiB)
 * is refused as bad input rather than read into unbounded memory.  Blank
 * lines are skipped.  Messages name the input and the line: "file:12: ...".
 *
 * This module owns the line kinds: every record, change, result, cursor,
 * summary and conflict line is written by a writer here and read by a
 * parser here, with one enum of ops and one of statuses, so that no program
 * or store builds or parses a line by hand and a kind's form is said once
 * (recdelta-stream(5) documents it).
 */
#ifndef RD_STREAM_H
#define RD_STREAM_H

#include <stdio.h>
#include <sys/types.h>

#include "json.h"

size_t rd_max_line(void);

/* Reads lines from a file descriptor with one growable buffer. */
struct lreader {
	int fd, owned;
	const char *name;	/* for messages: the path, or "<stdin>" */
	char *buf;
	size_t cap, start, end, maxline;
	unsigned long lineno;	/* of the line last returned */
	off_t offset;		/* byte offset of the line last returned */
	off_t next;		/* byte offset of the line to come */
	int eof;
};

/* Open path ("-" is standard input).  -1 with a message on failure. */
int lreader_open(struct lreader *r, const char *path);
void lreader_close(struct lreader *r);
/*
 * Next non-blank line, without its newline: 1, 0 at end of input, -1 on a
 * read error or an over-long line (message names the position).  The line is
 * valid until the next call.
 */
int lreader_next(struct lreader *r, const char **line, size_t *len);

/*
 * The line kinds.  Each has a struct of its parts, whose strings and values
 * borrow from the parsed line (parsers) or from the caller (writers); a
 * writer appends one line, without its newline, to the caller's buffer and
 * allocates nothing of its own.  A parser takes a line parsed by
 * stream_parse_kind() and checks the members it names; members it does not
 * know are allowed and ignored.  Messages name the member, not the line.
 */
enum rd_kind {
	RD_KIND_OTHER,		/* a kind of no stage of this version */
	RD_KIND_RECORD, RD_KIND_CHANGE, RD_KIND_RESULT, RD_KIND_CURSOR,
	RD_KIND_SUMMARY, RD_KIND_CONFLICT
};

/* The op of a change or result line. */
enum rd_op { RD_OP_CREATE, RD_OP_UPDATE, RD_OP_DELETE, RD_OP_SAME, RD_OP_N };

/*
 * The status of a result line.  RD_ST_NONE is a change not applied yet; it
 * is never written.  The others are in the order checkpoint counts them.
 */
enum rd_status {
	RD_ST_NONE, RD_ST_OK, RD_ST_SKIPPED, RD_ST_CONFLICT, RD_ST_DEFERRED,
	RD_ST_FAILED, RD_ST_PLANNED, RD_ST_N
};

/* The side of a merge: a change's target, a conflict's winner. */
enum rd_side { RD_SIDE_NONE, RD_SIDE_LOCAL, RD_SIDE_REMOTE };

/*
 * Names and back: "create", "ok", "local"...; the parsers return -1 for a
 * name that is none of them (RD_ST_NONE and RD_SIDE_NONE have no name).
 */
const char *rd_op_name(enum rd_op op);
int rd_op_parse(const char *s, size_t n);
const char *rd_status_name(enum rd_status st);
int rd_status_parse(const char *s, size_t n);
const char *rd_side_name(enum rd_side side);
int rd_side_parse(const char *s, size_t n);

/*
 * The string member name of obj: 0 with *s and *n set (NULL and 0 when it is
 * absent and not STREAM_REQUIRED), or -1 with a message (status 3): missing
 * "name", "name" is not a string, and for STREAM_REQUIRED empty "name".
 */
enum { STREAM_OPTIONAL = 0, STREAM_REQUIRED = 1 };
int stream_get_str(const struct json *obj, const char *name, int flags,
    const char **s, size_t *n);

/*
 * Parse one line into obj: its kind, or -1 with a message (no position) when
 * it is not a JSON object with a non-empty string "kind".
 */
int stream_parse_kind(struct arena *a, const char *line, size_t len,
    struct json *obj);

/* A record line's parts. */
struct record {
	const char *type, *key, *rev, *mtime;	/* rev, mtime: NULL if absent */
	size_t typelen, keylen, revlen, mtimelen;
	const struct json *fields;	/* NULL for a tombstone without fields */
	int deleted;
};

int stream_get_record(const struct json *obj, struct record *rec);

/*
 * Parse one line: stream_parse_kind() and, for a record, stream_get_record().
 * Returns 1 for a record (rec filled), 0 for a line of another kind (kind
 * and kindlen set), -1 with a message (no position) when the line is not
 * valid.
 */
int stream_parse_line(struct arena *a, const char *line, size_t len,
    struct json *obj, struct record *rec, const char **kind, size_t *kindlen);

void stream_write_record(struct sb *out, const struct record *rec);
/* The same with the fields as compact JSON text, rec->fields unused. */
void stream_write_record_text(struct sb *out, const struct record *rec,
    const char *fields, size_t len);

/*
 * A change line's parts: what to do to one record.  The members after
 * target are no part of the line: what recdelta-push asks of a store beside
 * it, and what became of it, set by the store (lib/store.h) and reported in
 * a result line.  A parsed change has them zero.
 */
struct change {
	enum rd_op op;
	const char *type, *key, *rev;	/* rev NULL if absent */
	size_t typelen, keylen, revlen;
	const struct json *fields;	/* desired fields; NULL if absent */
	const struct json *changed;	/* the fields that differ, or NULL */
	const struct json *edited;	/* of those, changed on the remote since
					   the base (an update only), or NULL */
	enum rd_side target;		/* RD_SIDE_NONE: absent */
	/*
	 * The hex SHA-256 of the target record's fields as the plan read them
	 * (record_hash() without rules), or NULL: a store whose revs do not
	 * move when others edit it (sqlite:, ndjson:) refuses an update or
	 * delete as a conflict when the record no longer hashes to it.
	 */
	const char *seen;
	size_t seenlen;
	/*
	 * The target record as the plan read it, {"rev":R,"fields":F} (rev
	 * absent when it had none), or NULL: the before-image that
	 * recdelta-checkpoint keeps so that the run can be undone.  Written
	 * by recdelta-diff --before, by recdelta-checkpoint undo, and passed
	 * into the result line by recdelta-push.
	 */
	const struct json *before;
	/* The run this change takes back (recdelta-checkpoint undo), or 0. */
	long long undoes;

	int force;		/* write without the guard (--force) */
	enum rd_status status;
	char *newrev;
	char *errcode;
	char *errmsg;
};

/*
 * Checks what a store needs to apply the change: a guard for an update or a
 * delete ("rev", or "seen" alone for a record the store keeps no rev of),
 * "fields" for a create or an update.
 */
int stream_get_change(const struct json *obj, struct change *c);
/*
 * A before-image {"rev":R,"fields":F} built in a (no "rev" when rev is
 * NULL or empty), borrowing rev and fields.
 */
const struct json *stream_before(struct arena *a, const char *rev,
    size_t revlen, const struct json *fields);
void stream_write_change(struct sb *out, const struct change *c);

/* A result line's parts: what became of one change. */
struct result {
	enum rd_op op;
	enum rd_status status;		/* never RD_ST_NONE */
	const char *type, *key, *rev;	/* rev NULL if absent */
	size_t typelen, keylen, revlen;
	const struct json *fields, *changed;	/* NULL if absent */
	enum rd_side target;		/* the change's; RD_SIDE_NONE: absent */
	const struct json *before;	/* the change's before-image, or NULL */
	/* The error: written when code or message is not NULL. */
	const char *code, *message;
	size_t codelen, messagelen;
};

int stream_get_result(const struct json *obj, struct result *res);
void stream_write_result(struct sb *out, const struct result *res);

/* A cursor line's parts: a position to resume from. */
struct cursor {
	const char *source, *name;	/* source NULL if absent */
	size_t sourcelen, namelen;
	const struct json *value;	/* any JSON value; written as it is */
};

int stream_get_cursor(const struct json *obj, struct cursor *cur);
void stream_write_cursor(struct sb *out, const struct cursor *cur);

/*
 * A summary line: counts per record type, in the order given (a writer sorts
 * them first if it wants them sorted).  A diff's (and any stage's but
 * merge's) are by op, n[] indexed by enum rd_op; a merge's (stage "merge")
 * by enum rd_mcount: the change lines to each side, the keys merged (changes
 * to both sides), the conflict lines, the keys with no change.
 */
enum rd_mcount {
	RD_MC_LOCAL, RD_MC_REMOTE, RD_MC_MERGED, RD_MC_CONFLICTS,
	RD_MC_UNCHANGED, RD_MC_N
};
_Static_assert((int)RD_MC_N >= (int)RD_OP_N, "a summary count holds either set");

struct summary_count {
	const char *type;
	size_t typelen;
	unsigned long n[RD_MC_N];
};
struct summary {
	const char *stage;
	size_t stagelen;
	const struct summary_count *counts;
	size_t ncounts;
};

/*
 * The counts are allocated in a; each count of the stage's set (the four
 * ops, or the five of a merge) must be there.
 */
int stream_get_summary(struct arena *a, const struct json *obj,
    struct summary *sum);
void stream_write_summary(struct sb *out, const struct summary *sum);

/*
 * A conflict line: both sides of a merge changed one field of a record
 * differently, or one deleted the record the other changed (field NULL:
 * the values are the records' fields objects).  A value is NULL where that
 * version does not hold it (absent field, deleted record); the winner is
 * the side whose value was kept, reason a short text saying why.
 */
struct conflict {
	const char *type, *key, *field;	/* field NULL if absent */
	size_t typelen, keylen, fieldlen;
	const struct json *base, *local, *remote;
	enum rd_side winner;	/* RD_SIDE_LOCAL or RD_SIDE_REMOTE */
	const char *reason;
	size_t reasonlen;
	/*
	 * Where recdelta-checkpoint keeps it, no part of merge's line: written
	 * after the others when id is not 0, run 0 and reviewed NULL as null.
	 * A parsed conflict has them zero.
	 */
	long long id, run;
	const char *recorded, *reviewed;
};

int stream_get_conflict(const struct json *obj, struct conflict *cf);
void stream_write_conflict(struct sb *out, const struct conflict *cf);

/* Standard output: buffered writes; stream_out_close() reports failure. */
void stream_out_init(void);
void stream_out_line(const char *line, size_t len);	/* adds the newline */
int stream_out_close(void);	/* 0, or -1 with a message */

#endif
