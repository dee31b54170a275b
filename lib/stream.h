/*
 * stream.h - the NDJSON stream: reading lines, parsing record lines, writing.
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

/* A record line's parts; the strings borrow from the parsed value. */
struct record {
	const char *type, *key, *rev, *mtime;
	size_t typelen, keylen, revlen, mtimelen;
	const struct json *fields;	/* NULL for a tombstone without fields */
	int deleted;
};

/*
 * Parse one line.  Returns 1 for a record (rec filled), 0 for a line of
 * another kind (kind and kindlen set), -1 with a message (no position) when
 * the line is not valid.
 */
int stream_parse_line(struct arena *a, const char *line, size_t len,
    struct json *obj, struct record *rec, const char **kind, size_t *kindlen);

/* Append a record line (without newline) built from its parts. */
void stream_write_record(struct sb *out, const struct record *rec);

/* Standard output: buffered writes; stream_out_close() reports failure. */
void stream_out_init(void);
void stream_out_line(const char *line, size_t len);	/* adds the newline */
int stream_out_close(void);	/* 0, or -1 with a message */

#endif
