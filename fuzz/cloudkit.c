/*
 * fuzz/cloudkit.c - what the cloudkit: store makes of a reply
 * (lib/store_cloudkit.h), without the network.
 *
 * Input: a reply body.  When it parses to an object, its "records" array is
 * walked as records/query and records/changes replies are (an entry with a
 * serverErrorCode is skipped, a tombstone has nothing to map) and each
 * entry becomes a record line; each entry is also taken as the
 * records/modify result of a create, an update and a delete.  Properties,
 * each an abort() when broken:
 * - a record line the store makes reads back as a record of the entry's
 *   recordType and recordName, and with its recordChangeTag as rev;
 * - every outcome is set, and its rev, code and message are terminated
 *   strings; an update's or create's success carries the reply's tag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/record.h"
#include "../lib/store_cloudkit.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void
check_line(const struct json *r, struct sb *line, struct sb *scratch)
{
	const struct json *name = json_get(r, "recordName");
	const struct json *type = json_get(r, "recordType");
	const struct json *tag = json_get(r, "recordChangeTag");
	unsigned char h[RD_HASH_LEN];
	struct ruleview rv = { 0 };
	struct arena a;
	struct json obj;
	struct record rec;
	const char *kind;
	size_t kindlen;

	arena_init(&a);
	CHECK(stream_parse_line(&a, line->buf, line->len, &obj, &rec, &kind,
	    &kindlen) == 1);
	CHECK(rec.typelen == type->len && memcmp(rec.type, type->u.s, type->len) == 0);
	CHECK(rec.keylen == name->len && memcmp(rec.key, name->u.s, name->len) == 0);
	if (tag && tag->type == JSON_STRING)
		CHECK(rec.revlen == tag->len && memcmp(rec.rev, tag->u.s, tag->len) == 0);
	else
		CHECK(!rec.rev);
	CHECK(!rec.deleted && rec.fields);
	/* What diff then does with it; a refusal is a message, not a crash. */
	(void)record_hash(&rv, rec.fields, h, scratch);
	arena_release(&a);
}

static void
check_outcome(const struct json *e, enum rd_op op)
{
	const struct json *tag = e ? json_get(e, "recordChangeTag") : NULL;
	struct change c;

	memset(&c, 0, sizeof c);
	c.op = op;
	c.type = "T";
	c.typelen = 1;
	c.key = "k";
	c.keylen = 1;
	cloudkit_outcome(&c, e);
	CHECK(c.status != RD_ST_NONE);
	if (c.status == RD_ST_FAILED || c.status == RD_ST_DEFERRED)
		CHECK(c.errcode && c.errmsg);
	if (c.status == RD_ST_OK && op != RD_OP_DELETE)
		CHECK(tag && tag->type == JSON_STRING && c.newrev &&
		    strlen(c.newrev) == tag->len &&
		    memcmp(c.newrev, tag->u.s, tag->len) == 0);
	change_release(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct json *recs, *r, *del;
	struct sb line, scratch;
	struct arena a;
	struct json reply;
	size_t i;

	arena_init(&a);
	sb_init(&line, 1024);
	sb_init(&scratch, 256);
	check_outcome(NULL, RD_OP_UPDATE);
	if (json_parse(&a, (const char *)data, size, &reply, NULL) < 0 ||
	    reply.type != JSON_OBJECT || !(recs = json_get(&reply, "records")) ||
	    recs->type != JSON_ARRAY)
		goto out;
	for (i = 0; i < recs->len; i++) {
		r = &recs->u.items[i];
		check_outcome(r, RD_OP_CREATE);
		check_outcome(r, RD_OP_UPDATE);
		check_outcome(r, RD_OP_DELETE);
		if (json_get(r, "serverErrorCode") ||
		    ((del = json_get(r, "deleted")) && del->type == JSON_TRUE))
			continue;
		if (cloudkit_record_line(i % 2 ? "_defaultZone" : "Z", r, &line) == 0)
			check_line(r, &line, &scratch);
	}
out:
	sb_release(&line);
	sb_release(&scratch);
	arena_release(&a);
	return 0;
}
