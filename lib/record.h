/*
 * record.h - the record model: tagged values and comparison rules.
 *
 * Two records are the same when their fields are equal under the rules of
 * their type.  The rules: ignored fields are left out; a field with a
 * tolerance compares every number in it within that epsilon; {"$loc":...}
 * compares lat and lng within 0.0001 (or the field's tolerance); {"$ref":K}
 * compares by K alone; {"$int":"D"} equals the number D; {"$ts":"ISO"}
 * compares as an instant; numbers compare as json_number_same() says (an
 * integer exactly, 1 = 1.0, a fraction by its double: 25.1 =
 * 25.10000000000000142); member
 * order never matters; a field whose value is null equals an absent field
 * (a table cannot tell them apart, nor can CloudKit).  "rev" and "mtime" are
 * not fields and never compared.
 *
 * record_hash() digests the canonical form of the fields (sorted members,
 * canonical numbers and timestamps, references reduced to their key), so equal
 * hashes imply equal records under any rules; only records whose hashes
 * differ need record_compare(), which applies tolerances.  The hash doubles
 * as the checkpoint's content hash and a change line's "seen";
 * record_digest() is a cheaper one of the same form for an index.
 *
 * A rule set is built once (rules_add_*, rules_load) and then only read, so
 * several threads may share it.
 */
#ifndef RD_RECORD_H
#define RD_RECORD_H

#include "json.h"

#define RD_LOC_EPS 0.0001

struct rules;

struct rules *rules_new(void);
void rules_free(struct rules *r);
/* type NULL means every type.  Return 0, or -1 with a message. */
int rules_add_ignore(struct rules *r, const char *type, const char *field);
int rules_add_tolerance(struct rules *r, const char *type, const char *spec);
/*
 * A rules file: one rule a line, "TYPE ignore FIELD" or
 * "TYPE tolerance FIELD=EPS" (TYPE "*" for every type); '#' starts a comment.
 * Errors name the file and line (exit status 3).
 */
int rules_load(struct rules *r, const char *path);

/* The rules that apply to one type; cheap, no allocation. */
struct ruleview {
	const struct rules *r;
	const struct ruleset *all, *type;
};
struct ruleview rules_view(const struct rules *r, const char *type, size_t n);
int rules_ignored(const struct ruleview *v, const char *field, size_t n);
/*
 * Whether any field is ignored under v: only then does a hash under v
 * differ from one under no rules (tolerances leave the canonical form as
 * it is).
 */
int rules_view_ignores(const struct ruleview *v);

#define RD_HASH_LEN 32

/*
 * SHA-256 of the canonical fields.  scratch is a caller-owned buffer reused
 * between calls.  -1 with a message when a tagged value is malformed.
 */
int record_hash(const struct ruleview *v, const struct json *fields,
    unsigned char out[RD_HASH_LEN], struct sb *scratch);

#define RD_DIGEST_LEN 16

/*
 * XXH3-128 of the same canonical fields: the content hash of an index
 * (recdelta-diff, recdelta-merge), where no format fixes the hash and no
 * cryptographic property is needed.  Equal digests stand for equal canonical
 * forms, so, like record_hash, they never hide a difference the rules see.
 * Not the "seen" of a change line nor a checkpoint's hash: those stay
 * record_hash.
 */
int record_digest(const struct ruleview *v, const struct json *fields,
    unsigned char out[RD_DIGEST_LEN], struct sb *scratch);


/* Canonical text of the fields (what record_hash digests). */
int record_canon(const struct ruleview *v, const struct json *fields,
    struct sb *out);

/*
 * Compare two field objects under the rules.  Appends the names of the fields
 * that differ, sorted, as a JSON array to changed (if not NULL) and returns
 * how many differ.
 */
size_t record_compare(const struct ruleview *v, const struct json *a,
    const struct json *b, struct sb *changed);

/*
 * The value codec of a store that holds every number as a double (CouchDB,
 * PouchDB: JavaScript numbers): v, any value (a record's fields), appended
 * to out as JSON with every integer beyond 2^53 either way
 * (9007199254740992), at any depth, written {"$int":"D"}, D the literal's
 * digits, so that the store keeps it exactly; every other value as it is,
 * tagged values included.  A number that is not an integer comes back from
 * such a store as the shortest decimal that reads as the same double, of the
 * same value only when the literal is one: -1 with a message (status 3)
 * quoting a number that is not (0.1 and 1e300 are; 0.30000000000000001 and
 * 1e400 are not), and out as it was.  So what is written reads back equal
 * under the comparison rules, and a tagged value byte for byte.
 */
int record_encode_doubles(struct sb *out, const struct json *v);

/* Parse an ISO-8601 instant into seconds and nanoseconds; -1 if malformed. */
int rd_parse_iso8601(const char *s, size_t n, long long *sec, long *nsec);

#endif
