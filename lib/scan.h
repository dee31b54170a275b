/*
 * scan.h - a record line checked where it lies, without building its tree.
 *
 * recdelta-diff spends most of its time making trees of lines it then only
 * hashes: a record in step is never looked at again.  scan_record() reads
 * the common line, {"kind":"record","type":T,"key":K,"rev":R,"fields":{..}}
 * with its members in any order, in one pass over the bytes: it validates
 * what the exact parser (lib/json.h) and the canonical form (lib/record.h)
 * would, hands out the record's strings and the fields' text as slices of
 * the line, and writes the fields' canonical form as it goes, with no tree:
 * the form record_digest() would hash.
 *
 * It accepts a line only when that reading would accept it too and find
 * the same record; it leaves to that reading, and to the message it gives,
 * every line it is not sure of: a string with an escape, a number with an
 * exponent, a tagged value other than a plain {"$ref":"..."} or
 * {"$loc":{"lat":N,"lng":N,...}}, a member the line kinds do not name
 * ("deleted" among them), an object of more than SCAN_MEMBERS members or
 * nesting deeper than SCAN_DEPTH, and every line that is not valid at all.
 * So a caller tries scan_record() first and, on 0, reads the line as
 * before; the line's meaning never depends on which of the two read it.
 */
#ifndef RD_SCAN_H
#define RD_SCAN_H

#include <stddef.h>

#include "stream.h"

#define SCAN_DEPTH 32
#define SCAN_MEMBERS 32

/*
 * What scan_record finds of a line: the text of its "fields" object, as
 * written (a slice of the line), and their canonical form, the bytes
 * record_canon() makes of them under no rules (a null member left out).
 * One scan_out serves line after line; scan_release frees it.
 */
struct scan_out {
	const char *fields;
	size_t fieldslen;
	struct sb canon;
	struct sb tmp;		/* scratch */
};

void scan_init(struct scan_out *o);
void scan_release(struct scan_out *o);

/*
 * 1 when line is a record line scan_record is sure of: rec gets its type,
 * key, rev and mtime (slices of line; rev and mtime NULL when absent),
 * deleted 0 and fields NULL, and o the fields' text and canonical form.  0
 * otherwise, rec and o unset: read the line with stream_parse_line().  Never
 * fails, sets no message.
 */
int scan_record(const char *line, size_t len, struct record *rec,
    struct scan_out *o);

#endif
