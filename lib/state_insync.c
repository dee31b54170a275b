/*
 * state_insync.c - the in-step digest in the state (lib/insync.h): read by
 * recdelta-diff --from-state in one snapshot with the base rows it looks
 * up; settled and stored by a sparse prune in the prune's transaction.
 */
#include "state.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "insync.h"
#include "json.h"
#include "record.h"
#include "state_int.h"

int
state_insync_begin(struct state *s)
{
	return db_exec(s, "BEGIN");
}

void
state_insync_end(struct state *s)
{
	db_finalize(s->baseget);
	s->baseget = NULL;
	db_rollback(s);
}

/* The digest of row which, opened: 1, 0 when there is none, -1. */
static int
blob_open(struct state *s, int which, sqlite3_blob **b)
{
	int rc;

	rc = sqlite3_blob_open(s->db, "main", "insync", "digest", which, 0, b);
	if (rc == SQLITE_OK)
		return 1;
	/* No such row: SQLITE_ERROR, and the message says so. */
	if (rc == SQLITE_ERROR && sqlite3_errmsg(s->db) &&
	    strstr(sqlite3_errmsg(s->db), "no such rowid"))
		return 0;
	return db_err(s);
}

static int
blobrd(void *ctx, void *dst, size_t len, size_t off)
{
	sqlite3_blob *b = ctx;

	if (len > INT_MAX || off > INT_MAX ||
	    sqlite3_blob_read(b, dst, (int)len, (int)off) != SQLITE_OK) {
		rd_seterr(RD_EXIT_RUNTIME, "in-step digest: cannot be read");
		return -1;
	}
	return 0;
}

int
state_insync_load(struct state *s, int which, struct insync *d, size_t room,
    size_t poolroom)
{
	sqlite3_blob *b;
	int r;

	if ((r = blob_open(s, which, &b)) <= 0)
		return r;
	r = insync_load(d, (size_t)sqlite3_blob_bytes(b), blobrd, b,
	    "in-step digest", room, poolroom);
	(void)sqlite3_blob_close(b);
	return r < 0 ? -1 : 1;
}

int
state_insync_dirty(struct state *s, int (*fn)(void *ctx, const char *type,
    size_t typelen, const char *key, size_t keylen), void *ctx)
{
	sqlite3_stmt *st;
	const char *t, *k;
	size_t tn, kn;
	int r, ret = 0;

	if (db_prep(s, &st, "SELECT type, key FROM insync_dirty", 0) < 0)
		return -1;
	while ((r = db_step_row(s, st)) == 1) {
		t = db_col(st, 0, &tn);
		k = db_col(st, 1, &kn);
		if (!t || !k) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: insync_dirty: a column "
			    "is NULL", s->path);
			r = -1;
			break;
		}
		if ((ret = fn(ctx, t, tn, k, kn)) < 0)
			break;
	}
	db_finalize(st);
	return r < 0 || ret < 0 ? -1 : 0;
}

/*
 * The triggers that keep insync_dirty and base_count, while a digest
 * exists: made with the whole digest, dropped with the digest.
 */
static const char *const arm_sql =
	/*
	 * ON CONFLICT DO NOTHING, not OR IGNORE: a trigger fired by an
	 * upsert (record's) takes the upsert's conflict handling for its
	 * own OR clauses, and would fail on a key marked already.
	 */
	"CREATE TRIGGER IF NOT EXISTS insync_insert AFTER INSERT ON base BEGIN\n"
	"  INSERT INTO base_count(type, n) VALUES (NEW.type, 1)\n"
	"    ON CONFLICT (type) DO UPDATE SET n = n + 1;\n"
	"  INSERT INTO insync_dirty(type, key) VALUES (NEW.type, NEW.key)\n"
	"    ON CONFLICT DO NOTHING;\n"
	"END;\n"
	"CREATE TRIGGER IF NOT EXISTS insync_delete AFTER DELETE ON base BEGIN\n"
	"  UPDATE base_count SET n = n - 1 WHERE type = OLD.type;\n"
	"  INSERT INTO insync_dirty(type, key) VALUES (OLD.type, OLD.key)\n"
	"    ON CONFLICT DO NOTHING;\n"
	"END;\n"
	"CREATE TRIGGER IF NOT EXISTS insync_update AFTER UPDATE ON base BEGIN\n"
	"  UPDATE base_count SET n = n - 1 WHERE type = OLD.type;\n"
	"  INSERT INTO base_count(type, n) VALUES (NEW.type, 1)\n"
	"    ON CONFLICT (type) DO UPDATE SET n = n + 1;\n"
	"  INSERT INTO insync_dirty(type, key) VALUES (OLD.type, OLD.key)\n"
	"    ON CONFLICT DO NOTHING;\n"
	"  INSERT INTO insync_dirty(type, key) SELECT NEW.type, NEW.key\n"
	"    WHERE NEW.type IS NOT OLD.type OR NEW.key IS NOT OLD.key\n"
	"    ON CONFLICT DO NOTHING;\n"
	"END;\n";

static const char *const disarm_sql =
	"DROP TRIGGER IF EXISTS insync_insert;\n"
	"DROP TRIGGER IF EXISTS insync_delete;\n"
	"DROP TRIGGER IF EXISTS insync_update;\n"
	"DELETE FROM base_count;\n"
	"DELETE FROM insync_dirty;\n";

/* Whether the triggers are there (all three): 1, 0, or -1. */
static int
armed(struct state *s)
{
	int n;

	if (db_int(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
	    " AND tbl_name = 'base' AND name IN ('insync_insert',"
	    " 'insync_delete', 'insync_update')", &n) < 0)
		return -1;
	return n == 3;
}

int
state_insync_armed(struct state *s)
{
	return armed(s);
}

int
state_base_count(struct state *s, char *const *types, size_t ntypes,
    long long *n)
{
	sqlite3_stmt *st;
	size_t i;
	int r = 0, kept;

	*n = 0;
	/* Kept by the triggers while they are there; else counted. */
	if ((kept = armed(s)) < 0)
		return -1;
	if (!ntypes) {
		if (db_prep(s, &st, kept ? "SELECT coalesce(sum(n), 0) FROM"
		    " base_count" : "SELECT count(*) FROM base", 0) < 0)
			return -1;
		if ((r = db_step_row(s, st)) == 1)
			*n = sqlite3_column_int64(st, 0);
		db_finalize(st);
		return r == 1 ? 0 : -1;
	}
	/* A type named twice is counted once: -t A -t A. */
	if (db_prep(s, &st, kept ? "SELECT n FROM base_count WHERE type = ?1" :
	    "SELECT count(*) FROM base WHERE type = ?1", 0) < 0)
		return -1;
	for (i = 0; i < ntypes && r >= 0; i++) {
		size_t j;

		for (j = 0; j < i && strcmp(types[j], types[i]) != 0; j++)
			;
		if (j < i)
			continue;
		if (db_binds(s, st, 1, types[i]) < 0 ||
		    (r = db_step_row(s, st)) < 0)
			break;
		if (r == 1)
			*n += sqlite3_column_int64(st, 0);
		(void)sqlite3_reset(st);
	}
	db_finalize(st);
	return r < 0 ? -1 : 0;
}

int
state_base_get(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, struct state_baserow *row)
{
	sqlite3_stmt *st;
	int k;

	if (!s->baseget && db_prep(s, &s->baseget, "SELECT type, key, rev,"
	    " hash, fields FROM base WHERE type = ?1 AND key = ?2", 1) < 0)
		return -1;
	st = s->baseget;
	(void)sqlite3_reset(st);
	if (db_bindt(s, st, 1, type, typelen) < 0 ||
	    db_bindt(s, st, 2, key, keylen) < 0 ||
	    (k = db_step_row(s, st)) < 0)
		return -1;
	if (k == 0)
		return 0;
	row->type = db_col(st, 0, &row->typelen);
	row->key = db_col(st, 1, &row->keylen);
	row->rev = db_col(st, 2, &row->revlen);
	row->hash = db_col(st, 3, NULL);
	row->fields = db_col(st, 4, &row->fieldslen);
	if (!row->type || !row->key || !row->fields) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: base: a column is NULL", s->path);
		return -1;
	}
	return 1;
}

static int
dirty_add(void *ctx, const char *t, size_t tn, const char *k, size_t kn)
{
	keyset_add(ctx, t, tn, k, kn);
	return 0;
}

/*
 * Whether the base row's fields have content digest ch: 1, 0, or -1 with
 * a message.
 */
static int
same_content(const struct state_baserow *row, const unsigned char *ch,
    struct arena *a, struct sb *scratch)
{
	struct ruleview none = { 0 };
	unsigned char h[RD_DIGEST_LEN];
	struct json fields;

	arena_reset(a);
	if (json_parse(a, row->fields, row->fieldslen, &fields, NULL) < 0 ||
	    record_digest(&none, &fields, h, scratch) < 0)
		return -1;
	return memcmp(h, ch, INSYNC_HASH) == 0;
}

/* The digest gone, whole, and its triggers: the next run makes it again. */
static int
insync_drop(struct state *s)
{
	return db_exec(s, "DELETE FROM insync") < 0 ||
	    db_exec(s, disarm_sql) < 0 ? -1 : 0;
}

/*
 * Whether the whole digest in the state is generation gen, of at least
 * n entries: 1, 0, or -1 with a message.
 */
static int
whole_is(struct state *s, uint64_t gen, size_t n)
{
	sqlite3_blob *b;
	char h[INSYNC_HEADER];
	uint64_t g, m;
	int k, delta;

	if ((k = blob_open(s, 1, &b)) <= 0)
		return k;
	k = sqlite3_blob_bytes(b) >= (int)sizeof h &&
	    blobrd(b, h, sizeof h, 0) == 0 &&
	    insync_header(h, sizeof h, &delta, &g, &m) == 0 &&
	    !delta && g == gen && m >= n;
	(void)sqlite3_blob_close(b);
	return k;
}

/*
 * The next digest as the base now stands: an entry neither checked nor of
 * a key written since stays as it is; any other stays only when the base
 * holds its key, with its line when the check's content is the row's, else
 * as a key alone; a key written since that no entry names, and that the
 * base holds, is added as a key alone (of a whole digest; of a delta, such
 * a key may be one an entry of the whole one stands for: the digest goes,
 * and the next run makes it again).  A delta is kept only against the
 * whole digest it was made from.  Then stored, and the dirty keys
 * forgotten: the digest now speaks for them.
 */
int
state_insync_store(struct state *s, const struct insync *next)
{
	static const unsigned char zero[INSYNC_HASH];
	struct keyset dk;
	struct insync out;
	unsigned char *met = NULL;
	struct state_baserow row;
	struct arena a;
	struct sb scratch, blob;
	uint32_t *chk = NULL, maxdead = 0;
	sqlite3_stmt *st = NULL;
	size_t i, tn, kn;
	int k, ret = -1;

	memset(&dk, 0, sizeof dk);
	insync_init(&out);
	arena_init(&a);
	sb_init(&scratch, 1024);
	sb_init(&blob, 0);
	if (next->delta) {
		for (i = 0; i < next->ndead; i++)
			if (next->dead[i] >= maxdead)
				maxdead = next->dead[i] + 1;
		/* Of another whole digest, or of one no trigger kept. */
		if ((k = whole_is(s, next->basegen, maxdead)) < 0 ||
		    (k == 1 && (k = armed(s)) < 0))
			goto out;
		if (k == 0) {
			ret = insync_drop(s);
			goto out;
		}
	}
	if (state_insync_dirty(s, dirty_add, &dk) < 0)
		goto out;
	keyset_index(&dk);
	met = xcalloc(dk.n + 1, 1);
	chk = xcalloc(next->n ? next->n : 1, sizeof *chk);
	for (i = 0; i < next->nchk; i++)
		chk[next->chk[i].ent] = (uint32_t)(i + 1);
	for (i = 0; i < next->n; i++) {
		const struct insync_ent *e = &next->ents[i];
		const char *t = insync_type(next, e, &tn);
		const char *key = insync_key(next, e, &kn);
		long dd = keyset_find(&dk, t, tn, key, kn);
		const unsigned char *lh = NULL;

		if (dd >= 0)
			met[dd] = 1;
		if (dd < 0 && !chk[i]) {
			insync_add(&out, insync_has_line(e) ? e->lh : NULL, t,
			    tn, key, kn);
			continue;
		}
		if ((k = state_base_get(s, t, tn, key, kn, &row)) < 0)
			goto out;
		if (k == 0)
			continue;
		if (chk[i] && insync_has_line(e)) {
			const unsigned char *ch = next->chk[chk[i] - 1].ch;

			if (memcmp(ch, zero, INSYNC_HASH) != 0 &&
			    (k = same_content(&row, ch, &a, &scratch)) != 0) {
				if (k < 0)
					goto out;
				lh = e->lh;
			}
		}
		insync_add(&out, lh, t, tn, key, kn);
	}
	for (i = 0; i < dk.n; i++) {
		const char *t = keyset_type(&dk, i, &tn);
		const char *key = keyset_key(&dk, i, &kn);

		if (met[i])
			continue;
		if (next->delta) {
			ret = insync_drop(s);
			goto out;
		}
		if ((k = state_base_get(s, t, tn, key, kn, &row)) < 0)
			goto out;
		if (k)
			insync_add(&out, NULL, t, tn, key, kn);
	}
	out.delta = next->delta;
	out.gen = next->gen;
	out.basegen = next->basegen;
	for (i = 0; i < next->ndead; i++)
		insync_dead(&out, next->dead[i]);
	insync_encode(&out, &blob);
	if (blob.len > INT_MAX) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: the in-step digest is too large",
		    s->path);
		goto out;
	}
	/*
	 * A whole digest ends the delta against the one before it, and from
	 * now on the triggers keep the base's counts (taken afresh) and the
	 * keys written; the keys written so far are settled above.
	 */
	if (!next->delta && (db_exec(s, "DELETE FROM insync WHERE id = 2") < 0 ||
	    db_exec(s, "DELETE FROM base_count") < 0 ||
	    db_exec(s, "INSERT INTO base_count(type, n) SELECT type, count(*)"
	    " FROM base GROUP BY type") < 0 || db_exec(s, arm_sql) < 0))
		goto out;
	if (db_prep(s, &st, "INSERT INTO insync(id, digest) VALUES (?1, ?2)"
	    " ON CONFLICT (id) DO UPDATE SET digest = excluded.digest", 0) < 0)
		goto out;
	if (db_bindi(s, st, 1, next->delta ? 2 : 1) < 0)
		goto out;
	if (sqlite3_bind_blob(st, 2, blob.buf, (int)blob.len,
	    SQLITE_STATIC) != SQLITE_OK) {
		db_err(s);
		goto out;
	}
	if (db_step_done(s, st) < 0 ||
	    db_exec(s, "DELETE FROM insync_dirty") < 0)
		goto out;
	ret = 0;
out:
	db_finalize(st);
	db_finalize(s->baseget);
	s->baseget = NULL;
	free(chk);
	free(met);
	keyset_release(&dk);
	insync_release(&out);
	arena_release(&a);
	sb_release(&scratch);
	sb_release(&blob);
	return ret;
}
