/*
 * plain.h - plain JSON objects as records: the parameters type= and key=.
 *
 * Data exported by other tools holds plain objects ({"id":7,"name":"x"}),
 * not record lines.  A word's parameters say how one becomes a record:
 * "type=T" gives every record the type T, "type=@FIELD" takes it from the
 * member FIELD (a non-empty string); "key=FIELD" takes the key from the
 * member FIELD, a non-empty string or an integer literal, whose key is its
 * digits exactly as written (7 is "7", -3 is "-3", 9007199254740993 stays
 * that; 7.0 and 7e0 are refused).  The key member, and the type member of
 * type=@FIELD, are removed from the fields; every other member is a field as
 * it is, "kind" included (under the parameters no member is special), so
 * that writing {KEYNAME: key, "type": type, ...fields} and reading it back
 * with key=KEYNAME&type=@type gives the same record.  A literal type that
 * begins with '@' is written %40.
 *
 * Parameter values are %XX-decoded (so a name may hold '&', '=' or '?') and
 * must be non-empty UTF-8 without NUL.  type= and key= go together.
 */
#ifndef RD_PLAIN_H
#define RD_PLAIN_H

#include "stream.h"

struct plain {
	char *type;		/* type=T, or NULL */
	char *typefield;	/* type=@FIELD, or NULL */
	char *keyfield;		/* key=FIELD; NULL: no parameters given */
};

/*
 * Set p from the raw (still %-encoded) values of type= and key=, as a word
 * holds them.  0, or -1 with a message (status 2) naming spec.
 */
int plain_init(struct plain *p, const char *spec, const char *type,
    size_t typelen, const char *key, size_t keylen);
void plain_release(struct plain *p);

/* True when p holds parameters (plain_init succeeded). */
#define plain_active(p) ((p)->keyfield != NULL)

/*
 * A word's parameters: query, the text after its '?', as NAME=VALUE joined
 * by '&'; type= and key= into p (zeroed first), and path= into *path (owned,
 * %-decoded) when path is not NULL; any other name is refused.  0, or -1
 * with a message (status 2) naming spec and listing the names taken.
 */
int plain_params(struct plain *p, const char *spec, const char *query,
    char **path);

/*
 * The record a plain object makes under p: rec filled, its key, type and
 * fields borrowing from obj or allocated in a (no rev, no mtime).  0, or -1
 * with a message (status 3, no position: the caller adds it) naming the
 * member: not a JSON object; missing "id" (key=id); "id" is not a string or
 * an integer; "id" is empty; missing "t" (type=@t); "t" is not a string;
 * "t" is empty.
 */
int plain_record(const struct plain *p, struct arena *a,
    const struct json *obj, struct record *rec);

/*
 * The same, then the record line appended to out (stream_write_record):
 * what a store hands on for a plain object.
 */
int plain_record_line(const struct plain *p, struct arena *a,
    const struct json *obj, struct record *rec, struct sb *out);

#endif
