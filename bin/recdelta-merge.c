/*
 * recdelta-merge - a per-record, per-field three-way merge of two stores.
 *
 * Reads the records of three stores: base (both sides as they were when last
 * in step, a checkpoint's base snapshot; none on a first run), local and
 * remote.  For each (type, key) it computes the merged record: what each
 * side changed since the base is kept, a field both changed differently is a
 * conflict decided by --prefer, a delete on one side of a record the other
 * did not change is a delete, and an edit wins over a delete unless --prefer
 * names the deleting side.  It writes a conflict line for each conflict and
 * then, for each side in turn (local, then remote), the change that brings
 * that side to the merged record, its "target" the side and guarded by that
 * side's rev and "seen" hash (with --before, an update or a delete also
 * carries that side's record as it was read, for recdelta-checkpoint to keep
 * so that the run can be undone).  Lines of other kinds in local and remote pass
 * through: the remote's first, then the local's in order among the changes.
 * With --summary it writes a report instead (or as well, with --output).
 *
 * As in recdelta-diff, every input is read whole, each in its own thread,
 * into an index (lib/index.h) of keys, hashes of the fields under the rules
 * and where the lines are, before the first line is written: bad input
 * anywhere means no output, memory grows with the number of keys, and a key
 * whose records hash alike on both sides is never parsed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/index.h"
#include "../lib/log.h"
#include "../lib/record.h"
#include "../lib/side.h"
#include "../lib/store.h"

enum prefer { PREFER_NEWER, PREFER_LOCAL, PREFER_REMOTE };

enum { L, R, B };	/* the sides, in the order they are walked */

struct merge {
	struct side *sides[3];	/* sides[B] NULL without --base */
	const struct rules *rules;
	enum prefer prefer;
	const char *mtime_field;	/* NULL: the record line's "mtime" */
	FILE *fp;		/* the stream, or NULL when not wanted */
	int all;
	int before;	/* --before: updates and deletes carry the side's record */
	struct tally counts;
	unsigned long nchange;

	struct sb buf[3], line, scratch, chl, chr, chx;
	struct arena a;
};

/* One side's record of the key at hand, parsed, or absent. */
struct ver {
	const struct index_ent *e;	/* NULL: absent */
	struct json obj;
	struct record rec;
	int parsed;
};

static const struct json empty_object = { JSON_OBJECT, 0, { NULL } };

static int
ver_parse(struct merge *m, int s, struct ver *v)
{
	if (!v->e || v->parsed)
		return 0;
	if (index_parse(&m->sides[s]->ix, v->e, &m->buf[s], &m->a, &v->obj,
	    &v->rec) < 0)
		return -1;
	v->parsed = 1;
	return 0;
}

static void
put_line(struct merge *m)
{
	sb_addc(&m->line, '\n');
	fwrite(m->line.buf, 1, m->line.len, m->fp);
}

/* The names record_compare() wrote into sb, as a JSON array in the arena. */
static int
names_parse(struct merge *m, const struct sb *sb, struct json *out)
{
	return json_parse(&m->a, arena_memdup(&m->a, sb->buf, sb->len),
	    sb->len, out, NULL);
}

static int
has_name(const struct json *names, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < names->len; i++)
		if (names->u.items[i].len == n &&
		    memcmp(names->u.items[i].u.s, s, n) == 0)
			return 1;
	return 0;
}

/* Whether two values of field name (NULL: absent) are equal under rv. */
static int
field_equal(const struct ruleview *rv, const char *name, size_t n,
    const struct json *a, const struct json *b)
{
	struct json_member ma = { name, n, { JSON_NULL, 0, { NULL } } }, mb = ma;
	struct json oa = empty_object, ob = empty_object;

	if (a) {
		ma.value = *a;
		oa.len = 1;
		oa.u.members = &ma;
	}
	if (b) {
		mb.value = *b;
		ob.len = 1;
		ob.u.members = &mb;
	}
	return record_compare(rv, &oa, &ob, NULL) == 0;
}

/*
 * A record's time for --prefer newer: the line's "mtime", or the field
 * --mtime-field names, an ISO-8601 string, {"$ts":ISO} or a number of
 * seconds.  0 with *sec and *nsec set, -1 when it has none that parses.
 */
static int
ver_time(const struct merge *m, const struct record *r, long long *sec,
    long *nsec)
{
	const struct json *v;
	double d;

	if (!m->mtime_field)
		return r->mtime ? rd_parse_iso8601(r->mtime, r->mtimelen, sec,
		    nsec) : -1;
	if (!(v = json_get(r->fields, m->mtime_field)))
		return -1;
	if (v->type == JSON_OBJECT && v->len == 1 &&
	    v->u.members[0].namelen == 3 &&
	    memcmp(v->u.members[0].name, "$ts", 3) == 0)
		v = &v->u.members[0].value;
	if (v->type == JSON_STRING)
		return rd_parse_iso8601(v->u.s, v->len, sec, nsec);
	if (v->type != JSON_NUMBER)
		return -1;
	d = json_number_double(v);
	if (!isfinite(d) || d < -9.2e18 || d > 9.2e18)
		return -1;
	*sec = (long long)floor(d);
	*nsec = (long)((d - floor(d)) * 1e9);
	return 0;
}

/* Who wins a field both sides changed differently, and why. */
static enum rd_side
decide(const struct merge *m, const struct record *l, const struct record *r,
    const char **reason)
{
	long long ls, rs;
	long ln, rn;

	if (m->prefer == PREFER_LOCAL) {
		*reason = "prefer local";
		return RD_SIDE_LOCAL;
	}
	if (m->prefer == PREFER_REMOTE) {
		*reason = "prefer remote";
		return RD_SIDE_REMOTE;
	}
	if (ver_time(m, l, &ls, &ln) < 0 || ver_time(m, r, &rs, &rn) < 0) {
		*reason = "no mtime: local wins";
		return RD_SIDE_LOCAL;
	}
	if (ls == rs && ln == rn) {
		*reason = "tie: local wins";
		return RD_SIDE_LOCAL;
	}
	*reason = "newer";
	return ls > rs || (ls == rs && ln > rn) ? RD_SIDE_LOCAL :
	    RD_SIDE_REMOTE;
}

static void
emit_conflict(struct merge *m, const struct index *ix,
    const struct index_ent *e, const char *field, size_t fieldlen,
    const struct json *b, const struct json *l, const struct json *r,
    enum rd_side winner, const char *reason, struct summary_count *cnt)
{
	struct conflict cf;

	cnt->n[RD_MC_CONFLICTS]++;
	if (!m->fp)
		return;
	memset(&cf, 0, sizeof cf);
	cf.type = index_type(ix, e);
	cf.typelen = index_typelen(ix, e);
	cf.key = index_key(ix, e);
	cf.keylen = e->keylen;
	cf.field = field;
	cf.fieldlen = fieldlen;
	cf.base = b;
	cf.local = l;
	cf.remote = r;
	cf.winner = winner;
	cf.reason = reason;
	cf.reasonlen = strlen(reason);
	sb_reset(&m->line);
	stream_write_conflict(&m->line, &cf);
	put_line(m);
}

/*
 * The merged fields of a key both sides hold, into out (in the arena):
 * each field from the side that changed it since bf, conflicts written as
 * they are met.  The members: the local's in its order, then the remote's
 * new ones in its.
 */
static int
merge_fields(struct merge *m, const struct ruleview *rv, struct ver *v,
    const struct json *bf, const struct index *ix, const struct index_ent *e,
    struct summary_count *cnt, struct json *out)
{
	const struct json *lf = v[L].rec.fields, *rf = v[R].rec.fields;
	struct json cl, cr;
	struct json_member *mem;
	enum rd_side winner = RD_SIDE_NONE;
	const char *reason = NULL;
	size_t i, n = 0;

	if (record_compare(rv, lf, rf, NULL) == 0) {
		*out = *lf;
		return 0;
	}
	sb_reset(&m->chl);
	sb_reset(&m->chr);
	record_compare(rv, bf, lf, &m->chl);
	record_compare(rv, bf, rf, &m->chr);
	if (names_parse(m, &m->chl, &cl) < 0 || names_parse(m, &m->chr, &cr) < 0)
		return -1;
	mem = arena_alloc(&m->a, (lf->len + rf->len + 1) * sizeof *mem);
	for (i = 0; i < lf->len + rf->len; i++) {
		const struct json_member *f = i < lf->len ? &lf->u.members[i] :
		    &rf->u.members[i - lf->len];
		const struct json *lv, *rv_, *pick;
		int byl, byr;

		lv = json_getn(lf, f->name, f->namelen);
		if (i >= lf->len && lv)
			continue;	/* met among the local's */
		rv_ = json_getn(rf, f->name, f->namelen);
		byl = has_name(&cl, f->name, f->namelen);
		byr = has_name(&cr, f->name, f->namelen);
		if (byr && !byl)
			pick = rv_;
		else if (!byr || field_equal(rv, f->name, f->namelen, lv, rv_))
			pick = lv;
		else {
			if (winner == RD_SIDE_NONE)
				winner = decide(m, &v[L].rec, &v[R].rec, &reason);
			emit_conflict(m, ix, e, f->name, f->namelen,
			    json_getn(bf, f->name, f->namelen), lv, rv_, winner,
			    reason, cnt);
			pick = winner == RD_SIDE_LOCAL ? lv : rv_;
		}
		if (!pick)
			continue;
		mem[n].name = f->name;
		mem[n].namelen = f->namelen;
		mem[n].value = *pick;
		n++;
	}
	out->type = JSON_OBJECT;
	out->len = n;
	out->u.members = mem;
	return 0;
}

/*
 * The change that brings side s (its record x, or absent) to the merged
 * fields mf (NULL: absent): nothing when they are equal under the rules, or
 * with --all a same line.  Returns 1 when a change was written, 0 when not,
 * -1 on error.
 */
static int
emit_side(struct merge *m, int s, const struct ruleview *rv, struct ver *x,
    const struct json *mf, const struct index *ix, const struct index_ent *e)
{
	static const struct ruleview none = { 0 };
	struct change c;
	struct json changed;
	unsigned char h[RD_HASH_LEN];
	char seen[2 * RD_HASH_LEN + 1];
	int ret = 1;

	if (!mf && !x->e)
		return 0;
	memset(&c, 0, sizeof c);
	c.type = index_type(ix, e);
	c.typelen = index_typelen(ix, e);
	c.key = index_key(ix, e);
	c.keylen = e->keylen;
	c.target = s == L ? RD_SIDE_LOCAL : RD_SIDE_REMOTE;
	c.fields = mf;
	if (!x->e) {
		c.op = RD_OP_CREATE;
	} else {
		if (ver_parse(m, s, x) < 0)
			return -1;
		if (x->e->revlen) {
			c.rev = index_rev(&m->sides[s]->ix, x->e);
			c.revlen = x->e->revlen;
		}
		sb_reset(&m->chx);
		if (!mf) {
			c.op = RD_OP_DELETE;
		} else if (record_compare(rv, x->rec.fields, mf, &m->chx) > 0) {
			c.op = RD_OP_UPDATE;
			if (names_parse(m, &m->chx, &changed) < 0)
				return -1;
			c.changed = &changed;
		} else {
			if (!m->all)
				return 0;
			c.op = RD_OP_SAME;
			ret = 0;
		}
		if (c.op != RD_OP_SAME) {
			if (record_hash(&none, x->rec.fields, h, &m->scratch) < 0)
				return -1;
			hex_encode(seen, h, RD_HASH_LEN);
			c.seen = seen;
			c.seenlen = 2 * RD_HASH_LEN;
			if (m->before)
				c.before = stream_before(&m->a, c.rev,
				    c.revlen, x->rec.fields);
		}
	}
	if (ret)
		m->nchange++;
	if (m->fp) {
		sb_reset(&m->line);
		stream_write_change(&m->line, &c);
		put_line(m);
	}
	return ret;
}

/* One key: at[] the entries of local, remote and base (any may be NULL). */
static int
merge_key(struct merge *m, const struct index_ent *const *at)
{
	struct ver v[3];
	const struct index *ix;
	const struct index_ent *e;
	const struct json *bf, *mf = NULL;
	struct json merged;
	struct summary_count *cnt;
	struct ruleview rv;
	int s, one, nl, nr;

	memset(v, 0, sizeof v);
	for (s = 0; s < 3; s++)
		v[s].e = at[s];
	if (!v[L].e && !v[R].e)
		return 0;	/* deleted on both: the base forgets it */
	s = v[L].e ? L : R;
	ix = &m->sides[s]->ix;
	e = v[s].e;
	cnt = tally_get(&m->counts, index_type(ix, e), index_typelen(ix, e));
	rv = rules_view(m->rules, index_type(ix, e), index_typelen(ix, e));
	arena_reset(&m->a);

	if (v[L].e && v[R].e && index_same_hash(v[L].e, v[R].e)) {
		/* Equal: the merged record is the local one, never parsed
		   unless --all wants it on both sides' same lines. */
		cnt->n[RD_MC_UNCHANGED]++;
		if (!m->all)
			return 0;
		if (ver_parse(m, L, &v[L]) < 0 ||
		    emit_side(m, L, &rv, &v[L], v[L].rec.fields, ix, e) < 0 ||
		    emit_side(m, R, &rv, &v[R], v[L].rec.fields, ix, e) < 0)
			return -1;
		return 0;
	}
	if (ver_parse(m, L, &v[L]) < 0 || ver_parse(m, R, &v[R]) < 0)
		return -1;
	if (v[L].e && v[R].e) {
		if (ver_parse(m, B, &v[B]) < 0)
			return -1;
		bf = v[B].e ? v[B].rec.fields : &empty_object;
		if (merge_fields(m, &rv, v, bf, ix, e, cnt, &merged) < 0)
			return -1;
		mf = &merged;
	} else {
		/* On one side only. */
		one = v[L].e ? L : R;
		if (!v[B].e) {
			mf = v[one].rec.fields;		/* created there */
		} else if (index_same_hash(v[B].e, v[one].e)) {
			mf = NULL;	/* deleted on the other, unchanged here */
		} else {
			if (ver_parse(m, B, &v[B]) < 0)
				return -1;
			if (record_compare(&rv, v[B].rec.fields,
			    v[one].rec.fields, NULL) == 0) {
				mf = NULL;
			} else {
				/* Deleted on one side, edited on the other. */
				enum rd_side editor = one == L ? RD_SIDE_LOCAL :
				    RD_SIDE_REMOTE, winner = editor;
				const char *reason = "edit wins over delete";

				if (m->prefer == PREFER_LOCAL ||
				    m->prefer == PREFER_REMOTE) {
					winner = m->prefer == PREFER_LOCAL ?
					    RD_SIDE_LOCAL : RD_SIDE_REMOTE;
					reason = winner == RD_SIDE_LOCAL ?
					    "prefer local" : "prefer remote";
				}
				emit_conflict(m, ix, e, NULL, 0,
				    v[B].rec.fields,
				    one == L ? v[L].rec.fields : NULL,
				    one == R ? v[R].rec.fields : NULL,
				    winner, reason, cnt);
				mf = winner == editor ? v[one].rec.fields :
				    NULL;
			}
		}
	}
	if ((nl = emit_side(m, L, &rv, &v[L], mf, ix, e)) < 0 ||
	    (nr = emit_side(m, R, &rv, &v[R], mf, ix, e)) < 0)
		return -1;
	cnt->n[RD_MC_LOCAL] += (unsigned long)nl;
	cnt->n[RD_MC_REMOTE] += (unsigned long)nr;
	if (nl && nr)
		cnt->n[RD_MC_MERGED]++;
	else if (!nl && !nr)
		cnt->n[RD_MC_UNCHANGED]++;
	return 0;
}

/* The remote's pass-through lines, then every key in the local's order. */
static int
merge_all(struct merge *m)
{
	struct index *ixs[3];
	struct index *lix = &m->sides[L]->ix, *rix = &m->sides[R]->ix;
	const struct index_ent *at[3] = { NULL, NULL, NULL };
	struct index_walk w;
	size_t i, n = m->sides[B] ? 3 : 2;

	for (i = 0; i < n; i++)
		ixs[i] = &m->sides[i]->ix;
	for (i = 0; i < index_len(rix); i++) {
		if (!index_is_pass(index_at(rix, i)))
			continue;
		if (index_read(rix, index_at(rix, i), &m->buf[R]) < 0)
			return -1;
		if (m->fp) {
			fwrite(m->buf[R].buf, 1, m->buf[R].len, m->fp);
			putc('\n', m->fp);
		}
	}
	index_walk_init(&w, ixs, n);
	while (index_walk_next(&w, at)) {
		if (at[L] && index_is_pass(at[L])) {
			if (index_read(lix, at[L], &m->buf[L]) < 0)
				return -1;
			if (m->fp) {
				fwrite(m->buf[L].buf, 1, m->buf[L].len, m->fp);
				putc('\n', m->fp);
			}
			continue;
		}
		if (merge_key(m, at) < 0)
			return -1;
	}
	return 0;
}

static void
write_summary(FILE *fp, const struct tally *t, int json)
{
	struct sb out;
	size_t i;

	sb_init(&out, 256);
	if (json) {
		struct summary sum = { "merge", 5, t->v, t->n };

		stream_write_summary(&out, &sum);
		sb_addc(&out, '\n');
	} else {
		for (i = 0; i < t->n; i++) {
			const unsigned long *n = t->v[i].n;

			type_plural(&out, t->v[i].type, t->v[i].typelen);
			sb_addf(&out, ": %lu to local, %lu to remote, "
			    "%lu merged, %lu conflict%s, %lu unchanged\n",
			    n[RD_MC_LOCAL], n[RD_MC_REMOTE], n[RD_MC_MERGED],
			    n[RD_MC_CONFLICTS], n[RD_MC_CONFLICTS] == 1 ? "" : "s",
			    n[RD_MC_UNCHANGED]);
		}
	}
	fwrite(out.buf, 1, out.len, fp);
	sb_release(&out);
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-merge [--base SRC] --local SRC --remote SRC\n"
	    "                      [--prefer newer|local|remote] [--mtime-field FIELD]\n"
	    "                      [-a] [-i FIELD]... [--tolerance FIELD=EPS]...\n"
	    "                      [--rules FILE] [-t TYPE]... [--summary[=text|json]]\n"
	    "                      [-o FILE] [--exit-code] [--allow-empty]\n"
	    "                      [--allow-missing-remote] [--shard I/N] [--before]\n"
	    "                      [--check-args]\n"
	    "\n"
	    "  -b, --base SRC           the records when both sides were last in step\n"
	    "  -l, --local SRC          one side\n"
	    "  -r, --remote SRC         the other side\n"
	    "      --prefer POLICY      who wins a field both sides changed: the newer\n"
	    "                           record (the default), local or remote\n"
	    "      --mtime-field FIELD  the time --prefer newer compares, instead of\n"
	    "                           the record's \"mtime\"\n"
	    "  -a, --all                also write a same line for each side in step\n"
	    "  -i, --ignore FIELD       never compare FIELD\n"
	    "      --tolerance FIELD=EPS  numbers in FIELD equal within EPS\n"
	    "      --rules FILE         per-type rules (TYPE ignore|tolerance ARG)\n"
	    "  -t, --type TYPE          only records of TYPE\n"
	    "      --summary[=FORMAT]   write a per-type report (text or json)\n"
	    "  -o, --output FILE        write the conflict and change lines to FILE\n"
	    "      --exit-code          exit 1 when a change was written\n"
	    "      --allow-empty        accept an ndjson input with no lines\n"
	    "      --allow-missing-remote  a remote store that does not exist yet\n"
	    "                           reads as empty\n"
	    "      --shard I/N          only the records of shard I of N, on every side\n"
	    "      --before             an update or a delete carries the target\n"
	    "                           side's rev and fields in \"before\"\n"
	    "      --check-args         check the options and the stores' words, then\n"
	    "                           exit: read nothing, write nothing\n"
	    "  -h, --help               print this help and exit\n"
	    "  -V, --version            print the version and exit\n"
	    "\n"
	    "SRC: ndjson:PATH[?type=T&key=FIELD] | - | json:PATH[?type=T&key=FIELD&path=.A.B]\n"
	    "     | sqlite:DB?table=T&key=COL[&rev=COL][&type=T]\n"
	    "     | PATH (an existing file: ndjson:, folder: dir:)\n"
	    "     | dir:PATH | cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]\n");
}

int
main(int argc, char *argv[])
{
	enum { OPT_TOL = 256, OPT_RULES, OPT_EXIT, OPT_EMPTY, OPT_SUMMARY,
	    OPT_MISSING, OPT_PREFER, OPT_MTIME, OPT_CHECK, OPT_SHARD,
	    OPT_BEFORE };
	static const struct option longopts[] = {
		{ "base", required_argument, NULL, 'b' },
		{ "local", required_argument, NULL, 'l' },
		{ "remote", required_argument, NULL, 'r' },
		{ "prefer", required_argument, NULL, OPT_PREFER },
		{ "mtime-field", required_argument, NULL, OPT_MTIME },
		{ "all", no_argument, NULL, 'a' },
		{ "ignore", required_argument, NULL, 'i' },
		{ "tolerance", required_argument, NULL, OPT_TOL },
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "type", required_argument, NULL, 't' },
		{ "summary", optional_argument, NULL, OPT_SUMMARY },
		{ "output", required_argument, NULL, 'o' },
		{ "exit-code", no_argument, NULL, OPT_EXIT },
		{ "allow-empty", no_argument, NULL, OPT_EMPTY },
		{ "allow-missing-remote", no_argument, NULL, OPT_MISSING },
		{ "check-args", no_argument, NULL, OPT_CHECK },
		{ "shard", required_argument, NULL, OPT_SHARD },
		{ "before", no_argument, NULL, OPT_BEFORE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *const labels[3] = { "local", "remote", "base" };
	struct side sides[3];
	struct fetch_opts fo = { 0 }, sfo[3];
	struct rules *rules = rules_new();
	struct merge m;
	const char *spec[3] = { NULL, NULL, NULL }, *outpath = NULL;
	const char *rulesfile = NULL;
	int c, i, nside, nstdin, summary = 0, exitcode = 0, missing_remote = 0;
	int checkargs = 0, status = RD_EXIT_OK;
	pthread_t th[2];

	rd_setprogname(argv[0]);
	argv[0] = (char *)rd_progname;	/* getopt's messages use it */
	memset(&m, 0, sizeof m);
	memset(sides, 0, sizeof sides);
	while ((c = getopt_long(argc, argv, "b:l:r:ai:t:o:hV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'b':
			spec[B] = optarg;
			break;
		case 'l':
			spec[L] = optarg;
			break;
		case 'r':
			spec[R] = optarg;
			break;
		case OPT_PREFER:
			if (strcmp(optarg, "newer") == 0)
				m.prefer = PREFER_NEWER;
			else if (strcmp(optarg, "local") == 0)
				m.prefer = PREFER_LOCAL;
			else if (strcmp(optarg, "remote") == 0)
				m.prefer = PREFER_REMOTE;
			else {
				rd_warn("--prefer: \"%s\": expected newer, local "
				    "or remote", rd_quote(optarg, strlen(optarg)));
				status = RD_EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_MTIME:
			if (!*optarg) {
				rd_warn("--mtime-field: empty field name");
				status = RD_EXIT_USAGE;
				goto out;
			}
			m.mtime_field = optarg;
			break;
		case 'a':
			m.all = 1;
			break;
		case 'i':
			if (rules_add_ignore(rules, NULL, optarg) < 0)
				goto badrule;
			break;
		case OPT_TOL:
			if (rules_add_tolerance(rules, NULL, optarg) < 0)
				goto badrule;
			break;
		case OPT_RULES:
			rulesfile = optarg;
			break;
		case 't':
			fo.types = xreallocarray(fo.types, fo.ntypes + 1,
			    sizeof *fo.types);
			fo.types[fo.ntypes++] = optarg;
			break;
		case OPT_SUMMARY:
			if (!optarg || strcmp(optarg, "text") == 0)
				summary = 1;
			else if (strcmp(optarg, "json") == 0)
				summary = 2;
			else {
				rd_warn("--summary: \"%s\": expected text or json",
				    rd_quote(optarg, strlen(optarg)));
				status = RD_EXIT_USAGE;
				goto out;
			}
			break;
		case 'o':
			outpath = optarg;
			break;
		case OPT_EXIT:
			exitcode = 1;
			break;
		case OPT_EMPTY:
			fo.allow_empty = 1;
			break;
		case OPT_MISSING:
			missing_remote = 1;
			break;
		case OPT_CHECK:
			checkargs = 1;
			break;
		case OPT_BEFORE:
			m.before = 1;
			break;
		case OPT_SHARD:
			if (shard_parse(&fo.shard, optarg) < 0) {
				rd_warn("%s", rd_errmsg());
				status = RD_EXIT_USAGE;
				goto out;
			}
			break;
		case 'h':
			usage(stdout);
			status = RD_EXIT_OK;
			goto out;
		case 'V':
			printf("recdelta-merge %s\n", RD_VERSION);
			status = RD_EXIT_OK;
			goto out;
		default:
			usage(stderr);
			status = RD_EXIT_USAGE;
			goto out;
		}
	}
	if (optind != argc) {
		rd_warn("unexpected argument \"%s\"", argv[optind]);
		usage(stderr);
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (!spec[L] || !spec[R]) {
		rd_warn("both --local and --remote are required");
		usage(stderr);
		status = RD_EXIT_USAGE;
		goto out;
	}
	nside = spec[B] ? 3 : 2;
	for (i = nstdin = 0; i < nside; i++)
		nstdin += store_is_stdin(spec[i]);
	if (nstdin > 1) {
		rd_warn("at most one of --base, --local and --remote can be "
		    "standard input");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (rulesfile && rules_load(rules, rulesfile) < 0)
		rd_die_pending();
	if (rd_log_open(NULL) < 0)
		rd_die_pending();

	for (i = 0; i < nside; i++) {
		sfo[i] = fo;
		/* --check-args checks words, not whether the stores exist. */
		sfo[i].missing_ok = checkargs || (i == R && missing_remote);
		/* The base is empty before the first sync, but must exist. */
		if (i == B)
			sfo[i].allow_empty = 1;
		sides[i].label = labels[i];
		sides[i].spec = spec[i];
		sides[i].fo = &sfo[i];
		sides[i].rules = rules;
		if (side_open(&sides[i]) < 0)
			rd_die_pending();
		m.sides[i] = &sides[i];
	}
	if (checkargs)
		goto out;

	/* The other inputs in threads of their own while this one reads local. */
	for (i = 1; i < nside; i++)
		if ((errno = pthread_create(&th[i - 1], NULL, side_read,
		    &sides[i])) != 0)
			rd_die(RD_EXIT_RUNTIME, "cannot start a thread: %s",
			    strerror(errno));
	side_read(&sides[L]);
	for (i = 1; i < nside; i++)
		pthread_join(th[i - 1], NULL);
	for (i = 0; i < nside; i++)
		if (sides[i].err) {
			rd_warn("%s", sides[i].err);
			if (status == RD_EXIT_OK)
				status = sides[i].status;
		}
	if (status != RD_EXIT_OK)
		goto out;

	if (outpath)
		for (i = 0; i < nside; i++)
			if (store_rereads_file(&sides[i].store, outpath)) {
				rd_warn("-o %s: would overwrite an input",
				    outpath);
				status = RD_EXIT_USAGE;
				goto out;
			}
	if (outpath) {
		if (!(m.fp = fopen(outpath, "w")))
			rd_die(RD_EXIT_RUNTIME, "%s: %s", outpath, strerror(errno));
	} else if (!summary) {
		stream_out_init();
		m.fp = stdout;
	}
	m.rules = rules;
	for (i = 0; i < 3; i++)
		sb_init(&m.buf[i], 4096);
	sb_init(&m.line, 4096);
	sb_init(&m.scratch, 4096);
	sb_init(&m.chl, 256);
	sb_init(&m.chr, 256);
	sb_init(&m.chx, 256);
	arena_init(&m.a);
	if (merge_all(&m) < 0)
		rd_die_pending();
	tally_sort(&m.counts);
	if (outpath && (fflush(m.fp) != 0 || ferror(m.fp) || fclose(m.fp) != 0))
		rd_die(RD_EXIT_RUNTIME, "%s: %s", outpath, strerror(errno));
	if (summary)
		write_summary(stdout, &m.counts, summary == 2);
	if (stream_out_close() < 0)
		rd_die_pending();
	status = exitcode && m.nchange ? RD_EXIT_FOUND : RD_EXIT_OK;
	{
		char ctx[200];

		snprintf(ctx, sizeof ctx, "\"base\":%zu,\"local\":%zu,"
		    "\"remote\":%zu,\"changes\":%lu",
		    spec[B] ? index_nrec(&sides[B].ix) : 0,
		    index_nrec(&sides[L].ix), index_nrec(&sides[R].ix),
		    m.nchange);
		rd_log("info", "merge done", ctx);
	}
	for (i = 0; i < 3; i++)
		sb_release(&m.buf[i]);
	sb_release(&m.line);
	sb_release(&m.scratch);
	sb_release(&m.chl);
	sb_release(&m.chr);
	sb_release(&m.chx);
	arena_release(&m.a);
out:
	for (i = 0; i < 3; i++)
		side_release(&sides[i]);
	tally_release(&m.counts);
	free(fo.types);
	rules_free(rules);
	rd_log_close();
	return status;
badrule:
	rd_warn("%s", rd_errmsg());
	status = RD_EXIT_USAGE;
	goto out;
}
