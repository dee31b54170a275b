/*
 * recdelta-push - apply change lines to a store, guarded by their revs.
 *
 * Reads change lines (recdelta-diff's output) on standard input and writes
 * one result line per change on standard output; lines of other kinds pass
 * through in order.  The whole input is read and checked before the first
 * write: bad input, or more deletes than --max-delete allows, writes nothing.
 * Changes are then applied in batches.  Every update and delete carries the
 * rev it was computed against (or, on a store with a content guard, the
 * hash of the fields it saw, "seen"), so a record someone else changed
 * meanwhile is refused by the store as a conflict; it is then looked up alone, the change
 * recomputed under the same rules (now equal: skipped; else retried with the
 * new rev, at most --retries times).  Deletes are applied only with
 * --delete-orphans.  A summary goes to standard error.
 *
 * An update that overwrites a remote edit, one whose line names in "edited"
 * the fields changed on the remote since the base (recdelta-diff --base), or
 * one refused as a conflict and recomputed against what the remote now
 * holds, is logged by name and counted; with --keep-remote-edits it is not
 * written but skipped, so that the remote edit stays.
 *
 * With --no-retry (recdelta undo), a change refused as a conflict is looked
 * up once and never recomputed: found already as it wants it (equal, or gone
 * for a delete) it is skipped, else it is reported a conflict and nothing is
 * written; a dry run then looks each record up and checks the guard, so
 * that its planned lines are the writes a real run makes.  A change's
 * "before" (its before-image) goes into its result line, replaced by the
 * record looked up when a conflict was retried.
 *
 * With --side, push is one side's push of a two-way sync: a change whose
 * "target" names the other side is passed through like a line of another
 * kind, neither applied nor counted, for the other side's push further
 * down the pipe.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../lib/log.h"
#include "../lib/record.h"
#include "../lib/store.h"

/* A line of the plan: a change (its op) or a line of another kind. */
#define PASS RD_OP_N

struct line {
	off_t off;
	size_t len;
	unsigned long lineno;
	int op;			/* enum rd_op, or PASS */
	int edited;		/* an update that names remote edits */
};

struct opts {
	int dry_run, delete_orphans, quiet, progress, force, keep_edits;
	int no_retry;
	enum rd_side side;	/* --side; RD_SIDE_NONE: every change */
	size_t batch;
	int retries;
	long long max_delete;	/* -1: no budget */
	int max_delete_pct;
	struct shard shard;	/* --shard; n 0: none */
	const struct rules *rules;
};

struct counts {
	unsigned long created, updated, deleted, skipped, conflicts, failed,
	    deferred, orphans, planned[RD_OP_N], overwrote, kept;
	unsigned long same;	/* of skipped: the plan's same lines */
};

static struct counts cnt;
/*
 * The records in step by the plan's diff summary lines (a sparse plan,
 * recdelta-diff --sparse, has one and same lines only for some of them),
 * and whether it had one.
 */
static unsigned long plan_same;
static int plan_summary;

static FILE *spool;
static struct line *lines;
static size_t nlines, caplines;
static struct rules *rules;
static struct store st;
static int created_said;	/* the target's creation was said */
static char **ptypes;		/* the record types the changes name */
static size_t nptypes;

/* Release what main holds and return status: every exit of main goes here. */
static int
finish(int status)
{
	if (st.ops)
		store_close(&st);
	if (spool)
		fclose(spool);
	spool = NULL;
	free(lines);
	lines = NULL;
	while (nptypes)
		free(ptypes[--nptypes]);
	free(ptypes);
	ptypes = NULL;
	rules_free(rules);
	rules = NULL;
	rd_log_close();
	return status;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-push [-n] [-b N] [--delete-orphans] [--max-delete N[%%]]\n"
	    "                     [--force] [--retries N] [-i FIELD]...\n"
	    "                     [--tolerance FIELD=EPS]... [--rules FILE] [-q]\n"
	    "                     [--keep-remote-edits] [--no-retry]\n"
	    "                     [--side local|remote]\n"
	    "                     [--log FILE] [--check-args] [--jobs N]\n"
	    "                     [--shard I/N] [--insecure-http] TARGET\n"
	    "       recdelta-push --sweep [--grace SECONDS] [-q] TARGET\n"
	    "\n"
	    "  -n, --dry-run            plan only: results \"planned\", nothing written\n"
	    "  -b, --batch N            changes per write (default: the store's)\n"
	    "      --delete-orphans     apply deletes (without it they are skipped)\n"
	    "      --max-delete N[%%]    refuse to run if more deletes than N (or N%%)\n"
	    "      --force              write without the rev guard (cloudkit:\n"
	    "                           forceReplace and forceDelete)\n"
	    "      --retries N          conflict retries per change (default 3)\n"
	    "  -i, --ignore FIELD       never compare FIELD (when recomputing)\n"
	    "      --tolerance FIELD=EPS  numbers in FIELD equal within EPS\n"
	    "      --rules FILE         per-type rules (TYPE ignore|tolerance ARG)\n"
	    "      --keep-remote-edits  skip an update that would overwrite a remote edit\n"
	    "      --no-retry           a conflict is never recomputed: skipped when\n"
	    "                           the record is as wanted already, else reported\n"
	    "      --side SIDE          apply only the changes whose target is SIDE\n"
	    "                           (or that have none); pass the others on\n"
	    "  -q, --quiet              no progress and no summary\n"
	    "      --log FILE           append NDJSON log lines to FILE\n"
	    "      --check-args         check the options and TARGET's word, then\n"
	    "                           exit: read nothing, write nothing\n"
	    "      --jobs N             webdav: requests at once (default 4)\n"
	    "      --shard I/N          refuse a change outside shard I of N\n"
	    "      --insecure-http      allow plain http to a host that is not this\n"
	    "                           machine (couchdb:, webdav:)\n"
	    "      --sweep              remove debris (dir:, webdav:): version files\n"
	    "                           no index names, older than the grace period\n"
	    "      --grace SECONDS      the grace period (default 600)\n"
	    "  -h, --help               print this help and exit\n"
	    "  -V, --version            print the version and exit\n"
	    "\n"
	    "TARGET: ndjson:PATH | sqlite:DB?table=T&key=COL[&rev=COL][&type=T]\n"
	    "        | dir:PATH | cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]\n"
	    "        | couchdb:http(s)://HOST[:PORT]/DB | webdav:URL\n");
}

/*
 * Parse a line into c (strings borrow from the line's value), and a change's
 * "edited" member into *edited when edited is not NULL (NULL when absent or
 * empty).  Returns the change's op, PASS for a line of another kind, or -1
 * with a message.
 */
static int
parse_change(struct arena *a, const char *text, size_t len, struct change *c,
    const struct json **edited)
{
	struct json obj;
	int k;

	memset(c, 0, sizeof *c);
	if (edited)
		*edited = NULL;
	if ((k = stream_parse_kind(a, text, len, &obj)) < 0)
		return -1;
	if (k != RD_KIND_CHANGE)
		return PASS;
	if (stream_get_change(&obj, c) < 0)
		return -1;
	if (edited)
		*edited = c->edited && c->edited->len ? c->edited : NULL;
	return (int)c->op;
}

/*
 * The fields of a change must be storable: a malformed tagged value would
 * leave a record no later diff could read.
 */
static int
check_fields(const struct change *c, struct sb *canon)
{
	struct ruleview none = { 0 };

	sb_reset(canon);
	return record_canon(&none, c->fields, canon);
}

static void
note_type(const char *type, size_t n)
{
	size_t i;

	for (i = 0; i < nptypes; i++)
		if (strlen(ptypes[i]) == n && memcmp(ptypes[i], type, n) == 0)
			return;
	ptypes = xreallocarray(ptypes, nptypes + 1, sizeof *ptypes);
	ptypes[nptypes++] = xmemdup(type, n);
}

/*
 * A line of another kind: when it is a diff's summary, add its "same"
 * counts to plan_same.  -1 with a message when it is one and malformed.
 */
static int
note_summary(struct arena *a, const char *text, size_t len)
{
	struct json obj;
	struct summary sum;
	const char *stage;
	size_t i, n;

	if (stream_parse_kind(a, text, len, &obj) != RD_KIND_SUMMARY ||
	    stream_get_str(&obj, "stage", STREAM_OPTIONAL, &stage, &n) < 0 ||
	    n != 4 || memcmp(stage, "diff", 4) != 0)
		return 0;
	if (stream_get_summary(a, &obj, &sum) < 0)
		return -1;
	for (i = 0; i < sum.ncounts; i++)
		plan_same += sum.counts[i].n[RD_OP_SAME];
	plan_summary = 1;
	return 0;
}

/* Phase one: read and check everything, keep the lines in a spool file. */
static int
read_plan(const struct opts *o)
{
	struct lreader r;
	struct arena a;
	struct change c;
	const struct json *edited;
	struct sb canon;
	const char *text;
	size_t len;
	off_t off = 0;
	int n, k, ret = -1;

	if (lreader_open(&r, "-") < 0)
		return -1;
	arena_init(&a);
	sb_init(&canon, 1024);
	if (!(spool = tmpfile())) {
		rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
		goto out;
	}
	while ((n = lreader_next(&r, &text, &len)) > 0) {
		arena_reset(&a);
		if ((k = parse_change(&a, text, len, &c, &edited)) < 0 ||
		    (c.fields && check_fields(&c, &canon) < 0) ||
		    (k == PASS && note_summary(&a, text, len) < 0)) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			goto out;
		}
		/*
		 * A sharded run's changes are its shard's: one outside it
		 * means the stages were given different shards.
		 */
		if (k != PASS && !shard_keeps(&o->shard, c.type, c.typelen,
		    c.key, c.keylen)) {
			char sh[48];

			shard_format(&o->shard, sh, sizeof sh);
			rd_seterr(RD_EXIT_DATA, "%s:%lu: type \"%s\" key \"%s\": "
			    "outside shard %s (--shard)", r.name, r.lineno,
			    rd_quote(c.type, c.typelen), rd_quote(c.key, c.keylen),
			    sh);
			goto out;
		}
		/* The other side's change, checked all the same: passed on. */
		if (k != PASS && o->side != RD_SIDE_NONE &&
		    c.target != RD_SIDE_NONE && c.target != o->side)
			k = PASS;
		/* A store whose content cannot guard a write needs the rev. */
		if ((k == RD_OP_UPDATE || k == RD_OP_DELETE) &&
		    (!c.rev || !c.revlen) && !st.ops->content_guard) {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: no \"rev\" to guard the "
			    "write: the %s: store needs one", r.name, r.lineno,
			    st.ops->scheme);
			goto out;
		}
		if (k != PASS)
			note_type(c.type, c.typelen);
		if (nlines == caplines) {
			caplines = caplines ? caplines * 2 : 1024;
			lines = xreallocarray(lines, caplines, sizeof *lines);
		}
		lines[nlines].off = off;
		lines[nlines].len = len;
		lines[nlines].lineno = r.lineno;
		lines[nlines].op = k;
		lines[nlines].edited = edited != NULL;
		nlines++;
		if (fwrite(text, 1, len, spool) != len) {
			rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
			goto out;
		}
		off += (off_t)len;
	}
	if (n < 0)
		goto out;
	if (fflush(spool) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "spool file: %s", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	sb_release(&canon);
	arena_release(&a);
	lreader_close(&r);
	return ret;
}

static int
count_put(void *ctx, const struct rline *l)
{
	if (l->rec && !l->rec->deleted)
		(*(long long *)ctx)++;
	return 0;
}

/*
 * The records of --shard's shard in the target, of the types the changes
 * name: what a percentage of --max-delete is of in a sharded run.  The
 * store has no count of a shard, so this reads it.
 */
static long long
count_shard(const struct opts *o)
{
	struct fetch_opts fo = { 0 };
	long long n = 0;
	struct store_sink sink = { count_put, &n };

	fo.types = ptypes;
	fo.ntypes = nptypes;
	fo.allow_empty = 1;
	fo.missing_ok = 1;
	fo.shard = o->shard;
	if (store_fetch(&st, &fo, &sink) < 0)
		return -1;
	return n;
}

/* A change this run writes: a kept remote edit and an orphan are not. */
static int
writes(const struct line *l, const struct opts *o)
{
	return l->op == RD_OP_CREATE || (l->op == RD_OP_UPDATE &&
	    !(l->edited && o->keep_edits)) ||
	    (l->op == RD_OP_DELETE && o->delete_orphans);
}

static int
reread(const struct line *l, struct sb *buf)
{
	sb_reset(buf);
	sb_grow(buf, l->len);
	if (rd_pread_full(fileno(spool), buf->buf, l->len, l->off) < 0) {
		rd_prefixerr("spool file: ");
		return -1;
	}
	buf->len = l->len;
	buf->buf[buf->len] = '\0';
	return 0;
}

/* An error code or message a store set, "" for one it did not. */
static const char *
said(const char *s)
{
	return s ? s : "";
}

/*
 * Write the result of change c: op and status, the new rev (none when NULL
 * or empty), the fields, and an error when code is not NULL.
 */
static void
result(enum rd_op op, const struct change *c, enum rd_status status,
    const char *rev, size_t revlen, const struct json *fields,
    const char *code, const char *msg)
{
	struct result res = {
		.op = op, .status = status, .type = c->type,
		.typelen = c->typelen, .key = c->key, .keylen = c->keylen,
		.fields = fields, .target = c->target, .before = c->before,
	};
	struct sb out;

	if (rev && revlen) {
		res.rev = rev;
		res.revlen = revlen;
	}
	if (code) {
		res.code = code;
		res.codelen = strlen(code);
		res.message = msg;
		res.messagelen = strlen(msg);
	}
	sb_init(&out, 256);
	stream_write_result(&out, &res);
	stream_out_line(out.buf, out.len);
	sb_release(&out);
}

/* A log line naming a change, and the fields of a remote edit if any. */
static void
log_edit(const char *level, const char *msg, const struct change *c,
    const struct json *fields)
{
	struct sb ctx;

	sb_init(&ctx, 128);
	sb_adds(&ctx, "\"type\":");
	json_write_string(&ctx, c->type, c->typelen);
	sb_adds(&ctx, ",\"key\":");
	json_write_string(&ctx, c->key, c->keylen);
	if (fields) {
		sb_adds(&ctx, ",\"fields\":");
		json_write(&ctx, fields, 0);
	}
	rd_log(level, msg, ctx.buf);
	sb_release(&ctx);
}

static void
log_change(const char *msg, const struct change *c)
{
	log_edit("info", msg, c, NULL);
}

/* The skipped result of an update kept for its remote edit. */
static void
keep_edit(const struct change *c, const struct json *fields)
{
	result(RD_OP_UPDATE, c, RD_ST_SKIPPED, c->rev, c->revlen, NULL,
	    "remote_edit", "kept a remote edit (--keep-remote-edits)");
	log_edit("info", "kept a remote edit", c, fields);
	cnt.kept++;
}

/*
 * A change not to be recomputed (--no-retry): look its record up once.
 * Found as the change wants it (equal under the rules; a delete's gone), it
 * is skipped; else, refused by the store (dry 0), it is a conflict, and in
 * a dry run (dry 1) it is planned when the guard holds, the rev and, on a
 * store with a content guard, the hash of what the change saw.  Writes the
 * result line.
 */
static int
settle(struct store *st, struct change *c, const struct opts *o,
    struct arena *a, int dry)
{
	struct ruleview rv;
	struct record cur;
	struct sb tmp;
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];
	int found, guard = 0, same = 0;

	if ((found = store_get(st, c->type, c->typelen, c->key, c->keylen, a,
	    &cur)) < 0)
		return -1;
	sb_init(&tmp, 256);
	if (found && c->op != RD_OP_DELETE) {
		rv = rules_view(o->rules, c->type, c->typelen);
		same = record_compare(&rv, c->fields, cur.fields, &tmp) == 0;
	}
	if (found && c->op != RD_OP_CREATE) {
		guard = !c->rev || !c->revlen || (cur.rev &&
		    cur.revlen == c->revlen &&
		    memcmp(cur.rev, c->rev, c->revlen) == 0);
		if (guard && c->seen && st->ops->content_guard) {
			struct ruleview none = { 0 };

			sb_reset(&tmp);
			if (record_hash(&none, cur.fields, h, &tmp) < 0) {
				sb_release(&tmp);
				return -1;
			}
			hex_encode(hex, h, RD_HASH_LEN);
			guard = c->seenlen == 2 * RD_HASH_LEN &&
			    memcmp(hex, c->seen, c->seenlen) == 0;
		}
	} else if (!found && c->op == RD_OP_CREATE) {
		guard = 1;
	}
	sb_release(&tmp);
	if (dry && guard) {
		result(c->op, c, RD_ST_PLANNED, c->rev, c->revlen, c->fields,
		    NULL, NULL);
		cnt.planned[c->op]++;
	} else if (c->op == RD_OP_DELETE && !found) {
		result(RD_OP_DELETE, c, RD_ST_SKIPPED, NULL, 0, NULL, "gone",
		    "already deleted");
		cnt.skipped++;
	} else if (same) {
		result(RD_OP_SAME, c, RD_ST_SKIPPED, cur.rev, cur.revlen,
		    cur.fields, NULL, NULL);
		cnt.skipped++;
		log_change("conflict resolved: as wanted already", c);
	} else {
		result(c->op, c, RD_ST_CONFLICT, NULL, 0, NULL, "changed",
		    "changed since the change was computed; not retried "
		    "(--no-retry)");
		log_change("conflict: not retried", c);
		cnt.conflicts++;
	}
	return 0;
}

/*
 * A change the store refused as a conflict: look the record up, recompute,
 * retry.  Writes the final result line.  An update retried overwrites what
 * the remote changed since its rev; with --keep-remote-edits it is skipped.
 */
static int
resolve(struct store *st, struct change *c, const struct opts *o)
{
	struct arena a;
	struct record cur;
	struct change retry;
	struct ruleview rv;
	struct sb diffs;
	int attempt, found, ret = -1;

	arena_init(&a);
	sb_init(&diffs, 64);
	memset(&retry, 0, sizeof retry);
	log_change("conflict", c);
	if (o->no_retry) {
		ret = settle(st, c, o, &a, 0);
		goto out;
	}
	for (attempt = 0; attempt < o->retries; attempt++) {
		arena_reset(&a);
		if ((found = store_get(st, c->type, c->typelen, c->key, c->keylen,
		    &a, &cur)) < 0)
			goto out;
		change_release(&retry);
		retry = *c;
		/* The retry's outcome is its own. */
		retry.newrev = retry.errcode = retry.errmsg = NULL;
		retry.status = RD_ST_NONE;
		if (c->op == RD_OP_DELETE) {
			if (!found) {
				/* Someone else deleted it: what we wanted. */
				result(RD_OP_DELETE, c, RD_ST_SKIPPED, NULL, 0,
				    NULL, "gone", "already deleted");
				cnt.skipped++;
				ret = 0;
				goto out;
			}
		} else if (!found) {
			retry.op = RD_OP_CREATE;
		} else {
			rv = rules_view(o->rules, c->type, c->typelen);
			sb_reset(&diffs);
			if (record_compare(&rv, c->fields, cur.fields, &diffs) == 0) {
				result(RD_OP_SAME, c, RD_ST_SKIPPED, cur.rev,
				    cur.revlen, cur.fields, NULL, NULL);
				cnt.skipped++;
				log_change("conflict resolved: now equal", c);
				ret = 0;
				goto out;
			}
			if (c->op == RD_OP_UPDATE && o->keep_edits) {
				keep_edit(c, NULL);
				ret = 0;
				goto out;
			}
			retry.op = RD_OP_UPDATE;
			/* What differs now, as diff would have said. */
			{
				struct json *ch = arena_alloc(&a, sizeof *ch);

				retry.changed = json_parse(&a, arena_memdup(&a,
				    diffs.buf, diffs.len), diffs.len, ch, NULL) == 0 ?
				    ch : NULL;
			}
		}
		if (found) {
			retry.rev = cur.rev;
			retry.revlen = cur.revlen;
		} else {
			retry.rev = NULL;
			retry.revlen = 0;
		}
		if (store_apply(st, &retry, 1) < 0)
			goto out;
		if (retry.status == RD_ST_DEFERRED) {
			rd_seterr(RD_EXIT_RUNTIME, "%s", said(retry.errmsg));
			goto out;
		}
		if (retry.status == RD_ST_OK) {
			struct change cb = *c;

			/* What was overwritten is what was looked up. */
			if (c->before)
				cb.before = found ? stream_before(&a, cur.rev,
				    cur.revlen, cur.fields) : NULL;
			result(retry.op, &cb, RD_ST_OK, retry.newrev,
			    retry.newrev ? strlen(retry.newrev) : 0,
			    retry.op == RD_OP_DELETE ? NULL :
			    c->fields, NULL, NULL);
			if (retry.op == RD_OP_CREATE)
				cnt.created++;
			else if (retry.op == RD_OP_UPDATE)
				cnt.updated++;
			else
				cnt.deleted++;
			log_change("conflict resolved: retried", c);
			if (c->op == RD_OP_UPDATE && retry.op == RD_OP_UPDATE) {
				log_edit("warning", "overwrote a remote edit", c,
				    retry.changed);
				cnt.overwrote++;
			}
			ret = 0;
			goto out;
		}
		if (retry.status == RD_ST_FAILED) {
			result(retry.op, c, RD_ST_FAILED, NULL, 0, NULL,
			    said(retry.errcode), said(retry.errmsg));
			cnt.failed++;
			ret = 0;
			goto out;
		}
	}
	result(c->op, c, RD_ST_CONFLICT, NULL, 0, NULL, "conflict",
	    "the record kept changing; retries exhausted");
	cnt.conflicts++;
	ret = 0;
out:
	change_release(&retry);
	sb_release(&diffs);
	arena_release(&a);
	return ret;
}

static void
progress(size_t done, size_t total, time_t start, int last)
{
	double el = difftime(time(NULL), start);
	double rate = el > 0 ? done / el : 0;

	fprintf(stderr, "\r%s: %zu/%zu changes", rd_progname, done, total);
	if (rate > 0)
		fprintf(stderr, " (%.0f/s, ETA %.0fs)   ", rate,
		    (total - done) / rate);
	if (last)
		fputc('\n', stderr);
}

/* Apply one batch: lines[from..to) with n writable changes among them. */
static int
apply_batch(struct store *st, size_t from, size_t to, const struct opts *o,
    struct arena *a, struct sb **bufs, size_t *nbufs)
{
	struct change *v = xcalloc(to - from, sizeof *v);
	size_t *which = xcalloc(to - from, sizeof *which);
	size_t i, n = 0;
	char failmsg[256] = "";
	int failed = 0, warned = 0, r, ret = -1;

	/* Parse each line into its own buffer: the changes borrow from them. */
	if (to - from > *nbufs) {
		*bufs = xreallocarray(*bufs, to - from, sizeof **bufs);
		for (i = *nbufs; i < to - from; i++)
			sb_init(&(*bufs)[i], 256);
		*nbufs = to - from;
	}
	for (i = from; i < to; i++) {
		struct change c;
		int k;

		if (!writes(&lines[i], o))
			continue;
		if (reread(&lines[i], &(*bufs)[i - from]) < 0)
			goto out;
		k = parse_change(a, (*bufs)[i - from].buf, (*bufs)[i - from].len, &c,
		    NULL);
		if (k < 0)
			goto out;
		c.force = o->force;
		v[n] = c;
		which[n] = i;
		n++;
	}
	if (n && !o->dry_run && (r = store_apply(st, v, n)) < 0) {
		/*
		 * Refused for good (credentials, say), or a local store that
		 * cannot be written (full, read-only, damaged): stop, nothing of
		 * the batch applied.  Only an unreachable remote is deferred.
		 */
		if (r == -2 || !st->ops->remote)
			goto out;
		snprintf(failmsg, sizeof failmsg, "%s", rd_errmsg());
		rd_warn("%s", failmsg);
		failed = 1;
	}
	/* A target made by this write is said once, even with --quiet. */
	if (st->created && !created_said) {
		rd_warn("created \"%s\" (it did not exist)",
		    rd_quote(st->spec, strlen(st->spec)));
		created_said = 1;
	}
	/* Results in input order, pass-through lines in place. */
	{
		size_t j = 0;
		struct sb tmp;
		struct arena ta;
		const struct json *edited;

		sb_init(&tmp, 256);
		arena_init(&ta);
		for (i = from; i < to; i++) {
			struct change c;

			if (j < n && which[j] == i) {
				struct change *x = &v[j++];

				if (failed) {
					result(x->op, x, RD_ST_DEFERRED, x->rev,
					    x->revlen, x->fields, "unreachable", failmsg);
					cnt.deferred++;
				} else if (o->dry_run && o->no_retry) {
					if (settle(st, x, o, a, 1) < 0)
						goto out2;
				} else if (o->dry_run) {
					result(x->op, x, RD_ST_PLANNED, x->rev,
					    x->revlen, x->fields, NULL, NULL);
					cnt.planned[x->op]++;
					cnt.overwrote += lines[i].edited;
				} else if (x->status == RD_ST_OK) {
					if (lines[i].edited && reread(&lines[i],
					    &tmp) == 0 && (arena_reset(&ta),
					    parse_change(&ta, tmp.buf, tmp.len, &c,
					    &edited) >= 0)) {
						log_edit("warning", "overwrote a remote "
						    "edit", x, edited);
						cnt.overwrote++;
					}
					result(x->op, x, RD_ST_OK, x->newrev,
					    x->newrev ? strlen(x->newrev) : 0,
					    x->op == RD_OP_DELETE ?
					    NULL : x->fields, NULL, NULL);
					if (x->op == RD_OP_CREATE)
						cnt.created++;
					else if (x->op == RD_OP_UPDATE)
						cnt.updated++;
					else
						cnt.deleted++;
				} else if (x->status == RD_ST_DEFERRED) {
					if (!warned++)
						rd_warn("%s \"%s\" deferred: %s: %s",
						    rd_quote(x->type, x->typelen),
						    rd_quote(x->key, x->keylen),
						    said(x->errcode), said(x->errmsg));
					result(x->op, x, RD_ST_DEFERRED, x->rev,
					    x->revlen, x->fields, said(x->errcode),
					    said(x->errmsg));
					cnt.deferred++;
				} else if (x->status == RD_ST_CONFLICT) {
					if (resolve(st, x, o) < 0) {
						char msg[256];

						if (!st->ops->remote)
							goto out2;
						/* Unresolved for now: kept for replay. */
						snprintf(msg, sizeof msg, "%s", rd_errmsg());
						rd_warn("%s", msg);
						result(x->op, x, RD_ST_DEFERRED,
						    x->rev, x->revlen, x->fields,
						    "unreachable", msg);
						cnt.deferred++;
					}
				} else {
					result(x->op, x, RD_ST_FAILED, NULL, 0,
					    NULL, said(x->errcode), said(x->errmsg));
					cnt.failed++;
				}
				continue;
			}
			if (reread(&lines[i], &tmp) < 0)
				goto out2;
			if (lines[i].op == PASS) {
				stream_out_line(tmp.buf, tmp.len);
				continue;
			}
			arena_reset(&ta);
			if (parse_change(&ta, tmp.buf, tmp.len, &c, &edited) < 0)
				goto out2;
			if (lines[i].op == RD_OP_UPDATE) {
				keep_edit(&c, edited);
			} else if (lines[i].op == RD_OP_SAME) {
				/* In step already: said so, for the checkpoint. */
				result(RD_OP_SAME, &c, RD_ST_SKIPPED, c.rev,
				    c.revlen, c.fields, NULL, NULL);
				cnt.skipped++;
				cnt.same++;
			} else {
				result(RD_OP_DELETE, &c, RD_ST_SKIPPED, c.rev,
				    c.revlen, NULL, "orphan",
				    "not deleted without --delete-orphans");
				cnt.orphans++;
			}
		}
		ret = 0;
out2:
		arena_release(&ta);
		sb_release(&tmp);
	}
out:
	for (i = 0; i < n; i++)
		change_release(&v[i]);
	free(v);
	free(which);
	return ret;
}

static long long
parse_budget(const char *s, int *pct)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	*pct = 0;
	if (end != s && *end == '%' && end[1] == '\0') {
		*pct = 1;
		end++;
	}
	if (errno || end == s || *end || v < 0 || (*pct && v > 100))
		return -1;
	return v;
}

int
main(int argc, char *argv[])
{
	enum { OPT_DELETE = 256, OPT_MAXDEL, OPT_RETRIES, OPT_TOL, OPT_RULES,
	    OPT_LOG, OPT_FORCE, OPT_KEEP, OPT_CHECK, OPT_SIDE, OPT_JOBS,
	    OPT_INSECURE, OPT_SWEEP, OPT_GRACE, OPT_SHARD, OPT_NORETRY };
	static const struct option longopts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "delete-orphans", no_argument, NULL, OPT_DELETE },
		{ "max-delete", required_argument, NULL, OPT_MAXDEL },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "ignore", required_argument, NULL, 'i' },
		{ "tolerance", required_argument, NULL, OPT_TOL },
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "quiet", no_argument, NULL, 'q' },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "keep-remote-edits", no_argument, NULL, OPT_KEEP },
		{ "no-retry", no_argument, NULL, OPT_NORETRY },
		{ "check-args", no_argument, NULL, OPT_CHECK },
		{ "side", required_argument, NULL, OPT_SIDE },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		{ "insecure-http", no_argument, NULL, OPT_INSECURE },
		{ "sweep", no_argument, NULL, OPT_SWEEP },
		{ "grace", required_argument, NULL, OPT_GRACE },
		{ "shard", required_argument, NULL, OPT_SHARD },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o;
	struct arena a;
	struct sb *bufs = NULL;
	size_t nbufs = 0;
	const char *rulesfile = NULL, *logpath = NULL;
	char *end;
	size_t i, from, nwrite = 0, ndelete = 0, done = 0;
	long long total;
	time_t start = time(NULL);
	int c, side, status, checkargs = 0, sweep = 0;

	rd_setprogname(argv[0]);
	argv[0] = (char *)rd_progname;
	rules = rules_new();
	memset(&o, 0, sizeof o);
	o.retries = 3;
	o.max_delete = -1;
	while ((c = getopt_long(argc, argv, "nb:i:qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.dry_run = 1;
			break;
		case 'b':
			errno = 0;
			o.batch = strtoul(optarg, &end, 10);
			if (errno || *end || o.batch == 0 ||
			    o.batch > STORE_MAX_BATCH)
				rd_die(RD_EXIT_USAGE, "--batch: \"%s\": expected 1 to "
				    "%d", optarg, STORE_MAX_BATCH);
			break;
		case OPT_DELETE:
			o.delete_orphans = 1;
			break;
		case OPT_FORCE:
			o.force = 1;
			break;
		case OPT_MAXDEL:
			if ((o.max_delete = parse_budget(optarg,
			    &o.max_delete_pct)) < 0)
				rd_die(RD_EXIT_USAGE, "--max-delete: \"%s\": expected "
				    "N or N%%", optarg);
			break;
		case OPT_SHARD:
			if (shard_parse(&o.shard, optarg) < 0)
				rd_die_pending();
			break;
		case OPT_RETRIES:
			errno = 0;
			o.retries = (int)strtol(optarg, &end, 10);
			if (errno || *end || o.retries < 0 || o.retries > 100)
				rd_die(RD_EXIT_USAGE, "--retries: \"%s\": expected 0 "
				    "to 100", optarg);
			break;
		case 'i':
			if (rules_add_ignore(rules, NULL, optarg) < 0)
				rd_die(RD_EXIT_USAGE, "%s", rd_errmsg());
			break;
		case OPT_TOL:
			if (rules_add_tolerance(rules, NULL, optarg) < 0)
				rd_die(RD_EXIT_USAGE, "%s", rd_errmsg());
			break;
		case OPT_RULES:
			rulesfile = optarg;
			break;
		case 'q':
			o.quiet = 1;
			break;
		case OPT_KEEP:
			o.keep_edits = 1;
			break;
		case OPT_NORETRY:
			o.no_retry = 1;
			break;
		case OPT_CHECK:
			checkargs = 1;
			break;
		case OPT_SIDE:
			if ((side = rd_side_parse(optarg, strlen(optarg))) < 0)
				rd_die(RD_EXIT_USAGE, "--side: \"%s\": expected "
				    "local or remote", optarg);
			o.side = (enum rd_side)side;
			break;
		case OPT_INSECURE:
			store_insecure_http = 1;
			break;
		case OPT_LOG:
			logpath = optarg;
			break;
		case OPT_JOBS:
			if (store_parse_jobs(optarg) < 0)
				rd_die_pending();
			break;
		case OPT_SWEEP:
			sweep = 1;
			break;
		case OPT_GRACE:
			errno = 0;
			store_grace = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(store_grace >= 0) ||
			    store_grace > 1e9)
				rd_die(RD_EXIT_USAGE, "--grace: \"%s\": expected "
				    "seconds, 0 or more", optarg);
			break;
		case 'h':
			usage(stdout);
			return finish(RD_EXIT_OK);
		case 'V':
			printf("recdelta-push %s\n", RD_VERSION);
			return finish(RD_EXIT_OK);
		default:
			usage(stderr);
			return finish(RD_EXIT_USAGE);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1) {
		rd_warn(argc ? "too many arguments" : "missing TARGET");
		usage(stderr);
		return finish(RD_EXIT_USAGE);
	}
	if (rulesfile && rules_load(rules, rulesfile) < 0)
		rd_die_pending();
	o.rules = rules;
	o.progress = !o.quiet && isatty(STDERR_FILENO);
	if (rd_log_open(logpath) < 0)
		rd_die_pending();
	if (store_open(&st, argv[0]) < 0)
		rd_die_pending();
	if (o.force && !st.ops->forced_writes)
		rd_die(RD_EXIT_USAGE, "--force: %s: the %s: store has no forced "
		    "writes", argv[0], st.ops->scheme);
	if (!st.ops->writable && st.ops->readonly)
		rd_die(RD_EXIT_USAGE, "%s: %s cannot be written", argv[0],
		    st.ops->readonly);
	if (!st.ops->writable)
		rd_die(RD_EXIT_USAGE, "%s: the %s: store cannot be written",
		    argv[0], st.ops->scheme);
	if (sweep) {
		unsigned long removed = 0;

		if (!st.ops->sweep)
			rd_die(RD_EXIT_USAGE, "--sweep: %s: the %s: store leaves "
			    "no debris to sweep", argv[0], st.ops->scheme);
		if (checkargs)
			return finish(RD_EXIT_OK);
		if (st.ops->sweep(&st, store_grace, &removed) < 0)
			rd_die_pending();
		if (!o.quiet)
			fprintf(stderr, "Swept %lu file%s\n", removed,
			    removed == 1 ? "" : "s");
		return finish(RD_EXIT_OK);
	}
	if (o.batch > st.ops->max_batch)
		rd_die(RD_EXIT_USAGE, "--batch: %zu: the %s: store takes at most "
		    "%zu changes at once", o.batch, st.ops->scheme,
		    st.ops->max_batch);
	if (!o.batch)
		o.batch = st.ops->batch;
	if (checkargs)
		return finish(RD_EXIT_OK);
	if (o.max_delete >= 0 && !o.delete_orphans)
		rd_warn("warning: --max-delete has no effect without "
		    "--delete-orphans");

	if (read_plan(&o) < 0)
		rd_die_pending();
	for (i = 0; i < nlines; i++) {
		if (lines[i].op == RD_OP_DELETE)
			ndelete++;
		else if (writes(&lines[i], &o))
			nwrite++;
	}
	if (o.delete_orphans) {
		nwrite += ndelete;
		if (o.max_delete >= 0) {
			long long budget = o.max_delete;

			if (o.max_delete_pct) {
				if ((total = o.shard.n > 1 ? count_shard(&o) :
				    store_count(&st, ptypes, nptypes)) < 0)
					rd_die_pending();
				budget = total * o.max_delete / 100;
			}
			if ((long long)ndelete > budget) {
				rd_warn("refused: %zu delete%s exceed%s the budget of "
				    "%lld (--max-delete %lld%s)", ndelete,
				    ndelete == 1 ? "" : "s", ndelete == 1 ? "s" : "", budget,
				    o.max_delete, o.max_delete_pct ? "%" : "");
				rd_warn("nothing was written; to allow them, raise "
				    "--max-delete or check the local data");
				return finish(RD_EXIT_REFUSED);
			}
		}
	}
	/* What the first write would make; creating nothing to tell. */
	for (i = 0; o.dry_run && i < nlines; i++)
		if (lines[i].op == RD_OP_CREATE) {
			if (store_exists(&st) == 0)
				rd_warn("\"%s\" does not exist: a push would "
				    "create it", rd_quote(argv[0], strlen(argv[0])));
			break;
		}
	{
		struct sb ctx;

		sb_init(&ctx, 128);
		sb_adds(&ctx, "\"target\":");
		json_write_string(&ctx, argv[0], strlen(argv[0]));
		sb_addf(&ctx, ",\"changes\":%zu,\"deletes\":%zu,\"dry_run\":%s",
		    nwrite, ndelete, o.dry_run ? "true" : "false");
		rd_log("info", "push start", ctx.buf);
		sb_release(&ctx);
	}

	stream_out_init();
	arena_init(&a);
	/* Batches of o.batch writable changes, pass-through lines between. */
	for (from = 0; from < nlines; ) {
		size_t to = from, k = 0;

		/* A batch is o.batch writes; other lines ride along. */
		while (to < nlines) {
			int w = writes(&lines[to], &o);

			if (w && k == o.batch)
				break;
			k += w;
			to++;
		}
		arena_reset(&a);
		if (apply_batch(&st, from, to, &o, &a, &bufs, &nbufs) < 0)
			rd_die_pending();
		/* What is written is said at once: a checkpoint may record it. */
		if (fflush(stdout) != 0)
			rd_die(RD_EXIT_RUNTIME, "write error: %s", strerror(errno));
		done += k;
		if (o.progress && nwrite)
			progress(done, nwrite, start, 0);
		from = to;
	}
	if (o.progress && nwrite)
		progress(done, nwrite, start, 1);
	for (i = 0; i < nbufs; i++)
		sb_release(&bufs[i]);
	free(bufs);
	arena_release(&a);
	if (stream_out_close() < 0)
		rd_die_pending();

	/*
	 * The records in step are the summary's, when the plan has one: a
	 * sparse plan leaves most of them out.  Those of the same lines it
	 * has are among them; the other skips (a conflict now equal, a
	 * delete found done) are not.
	 */
	if (plan_summary)
		cnt.skipped = cnt.skipped - cnt.same + plan_same;
	if (!o.quiet) {
		if (o.dry_run)
			fprintf(stderr, "Dry run: would create %lu, update %lu, "
			    "delete %lu; %lu unchanged; nothing written\n",
			    cnt.planned[RD_OP_CREATE], cnt.planned[RD_OP_UPDATE],
			    cnt.planned[RD_OP_DELETE], cnt.skipped);
		else
			fprintf(stderr, "Created %lu, Updated %lu, Skipped %lu "
			    "unchanged, Deleted %lu, Conflicts %lu\n", cnt.created,
			    cnt.updated, cnt.skipped, cnt.deleted, cnt.conflicts);
		if (cnt.failed || cnt.deferred)
			fprintf(stderr, "Failed %lu, Deferred %lu (kept for "
			    "replay)\n", cnt.failed, cnt.deferred);
		if (cnt.orphans)
			fprintf(stderr, "Would delete %lu orphan records (use "
			    "--delete-orphans to confirm)\n", cnt.orphans);
	}
	/* Even with -q: someone's edit was lost, or is left unsynced. */
	if (cnt.overwrote)
		rd_warn("%s %lu remote edit%s (see --log)", o.dry_run ?
		    "would overwrite" : "overwrote", cnt.overwrote,
		    cnt.overwrote == 1 ? "" : "s");
	if (cnt.kept)
		rd_warn("kept %lu remote edit%s: not pushed (--keep-remote-edits)",
		    cnt.kept, cnt.kept == 1 ? "" : "s");
	{
		char ctx[512];

		snprintf(ctx, sizeof ctx, "\"created\":%lu,\"updated\":%lu,"
		    "\"skipped\":%lu,\"deleted\":%lu,\"conflicts\":%lu,"
		    "\"failed\":%lu,\"deferred\":%lu,\"orphans\":%lu,"
		    "\"overwrote\":%lu,\"kept\":%lu",
		    cnt.created, cnt.updated, cnt.skipped, cnt.deleted,
		    cnt.conflicts, cnt.failed, cnt.deferred, cnt.orphans,
		    cnt.overwrote, cnt.kept);
		rd_log("info", "push done", ctx);
	}
	status = cnt.conflicts || cnt.failed || cnt.deferred ? RD_EXIT_PARTIAL :
	    RD_EXIT_OK;
	return finish(status);
}
