/*
 * recdelta-diff - classify every (type, key) of two record streams.
 *
 * Reads the records of two stores, local (the data as it should be) and
 * remote (as it is), and writes one change line for each record that differs:
 * create (only local), update (both, fields differ under the rules, with the
 * remote rev and the names of the changed fields) and delete (only remote);
 * same too with --all (with --sparse, only where the base does not hold
 * the remote's record as it is, the plan then ending with the summary
 * line).  Lines of other kinds in the inputs pass through:
 * the remote's first, then the local's in order among the changes.  With
 * --summary it writes a report instead (or as well, with --output).
 * With --base, the records as they were when last in step (a checkpoint's
 * base snapshot), an update that would overwrite a field changed on the
 * remote since the base names that field in "edited".
 *
 * --where FILTER (a jq program, lib/filter.h) narrows the comparison to the
 * keys whose record it holds for on either side: a key is compared, as
 * without it, when its local or its remote record is selected, and left out
 * (no line, not counted) when neither is.  So a record that stops matching
 * on one side is an update, never a delete and a create, and a record that
 * matches nowhere is never deleted because the filter did not see it.
 *
 * Both inputs are read whole before the first line is written, each in its
 * own thread, into an index (lib/index.h) holding per record its key, a hash
 * of its canonical fields and where its line is (the input file itself when
 * its store can read it again, or a spool file).  So bad input anywhere
 * means no output at all, memory grows with the number of keys and not with
 * record bodies, and records are compared field by field only where their
 * hashes differ.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/filter.h"
#include "../lib/index.h"
#include "../lib/insync.h"
#include "../lib/log.h"
#include "../lib/record.h"
#include "../lib/scan.h"
#include "../lib/shard.h"
#include "../lib/side.h"
#include "../lib/state.h"
#include "../lib/store.h"
#include "../lib/digest.h"

/* Per-type counts for the summary, indexed by op. */
static struct tally counts;

static void
count(const char *type, size_t len, enum rd_op op)
{
	tally_get(&counts, type, len)->n[op]++;
}

static void
write_summary(FILE *fp, int json)
{
	struct sb out;
	size_t i;

	tally_sort(&counts);
	sb_init(&out, 256);
	if (json) {
		struct summary sum = { "diff", 4, counts.v, counts.n };

		stream_write_summary(&out, &sum);
		sb_addc(&out, '\n');
	} else {
		for (i = 0; i < counts.n; i++) {
			const struct summary_count *c = &counts.v[i];

			type_plural(&out, c->type, c->typelen);
			sb_addf(&out, ": %lu unchanged, %lu new, %lu updated, "
			    "%lu deleted\n", c->n[RD_OP_SAME], c->n[RD_OP_CREATE],
			    c->n[RD_OP_UPDATE], c->n[RD_OP_DELETE]);
		}
	}
	fwrite(out.buf, 1, out.len, fp);
	sb_release(&out);
}

/*
 * Two inputs that both had records of which no type is on both sides (a
 * "games" table against "Game" records) are most likely a misnamed type:
 * everything is new on one side and deleted on the other.  Say so, once.
 * A type is on the local side when it counted a record as same, create or
 * update, on the remote side as same, update or delete.
 */
static void
warn_no_shared_type(void)
{
	struct sb side[2];
	size_t i, n[2] = { 0, 0 };
	int s;

	for (i = 0; i < counts.n; i++) {
		const unsigned long *c = counts.v[i].n;

		if (c[RD_OP_SAME] || c[RD_OP_UPDATE] ||
		    (c[RD_OP_CREATE] && c[RD_OP_DELETE]))
			return;
	}
	for (s = 0; s < 2; s++)
		sb_init(&side[s], 64);
	for (i = 0; i < counts.n; i++) {
		s = counts.v[i].n[RD_OP_CREATE] ? 0 : 1;
		if (n[s]++ == 3) {
			sb_adds(&side[s], ", ...");
			continue;
		}
		if (n[s] > 4)
			continue;
		if (n[s] > 1)
			sb_adds(&side[s], ", ");
		sb_addf(&side[s], "\"%s\"", rd_quote(counts.v[i].type,
		    counts.v[i].typelen));
	}
	if (n[0] && n[1])
		rd_warn("warning: the two sides share no type (%s vs %s)",
		    side[0].buf, side[1].buf);
	for (s = 0; s < 2; s++)
		sb_release(&side[s]);
}

struct out {
	FILE *fp;		/* change lines, or NULL when not wanted */
	struct sb line;
	int all;
	int sparse;	/* --sparse: a same line only where it tells the base */
	int before;	/* --before: updates and deletes carry the remote's */
	int where;		/* --where: only keys selected on a side */
	struct fromstate *fs;	/* --from-state with --digest-out, or NULL */
};

/*
 * --from-state: the remote (and base) is the base snapshot of a state.
 * With a digest to trust (lib/insync.h), a local line whose hash is an
 * entry's is counted same unread (a hit); the other lines are parsed, and
 * the base is read only for their keys, the entries no line met and the
 * keys written since the digest was.  Without one, or when what it finds
 * does not add up to the base's count, the base is read whole.  Either
 * way, with --digest-out, the digest's next version is made as the plan
 * is: the hits and, of the parsed lines in order, those that are or will
 * be in step (checked by prune), then the keys the base holds that no
 * line names.
 */
struct lhash {
	unsigned long lineno;
	unsigned char h[INSYNC_HASH];
};

struct hit {
	unsigned long lineno;
	uint32_t ent;
};

struct fromstate {
	struct state *st;
	const struct fetch_opts *fo;	/* the run's types and shard */
	struct insync old;		/* the digest read, when trusted */
	size_t nb;			/* of old's entries, the whole one's */
	uint64_t gen;			/* the whole one's generation */
	int trust;			/* old is trusted: hits are counted */
	unsigned char *gone;		/* per old entry: dead, or key written */
	unsigned char *hit;		/* per old entry: its line met */
	unsigned char *carry;		/* per old entry: kept as it is */
	unsigned long *tcount;		/* hits per type of old */
	size_t hint;			/* the entry after the last hit */
	size_t misses;			/* lines not found near the hint */
	int whole;			/* old's table is of every entry */
	struct hit *hits;
	size_t nhits;			/* at most old.n: each hit once */
	int dup;			/* an entry's line met twice */
	struct lhash *lines;		/* of the lines parsed, in order */
	size_t nlines, linecap, at;
	int out;			/* --digest-out: make cands */
	struct insync cands;		/* of the parsed lines and the base's */
	unsigned long *candline;	/* per cand: its line, or 0: none */
	size_t candcap;
	struct keyset dk;		/* the keys written since */
	long long count;		/* of the base's rows of the run's types */
};

static int
selected(const struct fetch_opts *fo, const char *t, size_t tn, const char *k,
    size_t kn)
{
	return fetch_wants_type(fo, t, tn) &&
	    shard_keeps(&fo->shard, t, tn, k, kn);
}

/* Whether old entry i may be a hit: it has a line and stands. */
static int
fs_usable(const struct fromstate *f, size_t i)
{
	return i < f->old.n && !f->gone[i] && insync_has_line(&f->old.ents[i]);
}

static int
fs_gone(void *ctx, size_t i)
{
	return ((struct fromstate *)ctx)->gone[i];
}

/*
 * The entry of line hash h: first among the few after the last hit (the
 * file in the order the digest was made in; a changed line in between),
 * then, once lines have missed there often (a file in another order), by
 * a table of every entry.  A line not found is read, whatever the reason.
 */
static long
fs_find(struct fromstate *f, const unsigned char *h)
{
	size_t i;
	long k;

	for (i = f->hint; i < f->hint + 4 && i < f->nb; i++)
		if (fs_usable(f, i) &&
		    memcmp(f->old.ents[i].lh, h, INSYNC_HASH) == 0) {
			f->hint = i + 1;
			return (long)i;
		}
	if (!f->whole && ++f->misses > 4096) {
		insync_index(&f->old, fs_gone, f);
		f->whole = 1;
	}
	if ((k = insync_find(&f->old, h)) >= 0 && (size_t)k < f->nb)
		f->hint = (size_t)k + 1;
	return k;
}

/* Until the table is of every entry, it is of the delta's: few. */
static int
fs_notadded(void *ctx, size_t i)
{
	struct fromstate *f = ctx;

	return i < f->nb || f->gone[i];
}

/* fetch_opts.skip of the local side: a hit is skipped, counted same. */
static int
fs_skip(void *ctx, const char *line, size_t len, unsigned long lineno)
{
	struct fromstate *f = ctx;
	unsigned char h[INSYNC_HASH];
	const struct insync_ent *e;
	const char *t, *k;
	size_t tn, kn;
	long i;

	rd_xxh128(line, len, h);
	if (f->trust && (i = fs_find(f, h)) >= 0) {
		e = &f->old.ents[i];
		t = insync_type(&f->old, e, &tn);
		k = insync_key(&f->old, e, &kn);
		/* Not the run's: the fetch would leave it out unread. */
		if (!selected(f->fo, t, tn, k, kn))
			return 1;
		if (!f->hit[i]) {
			f->hit[i] = 1;
			f->hits[f->nhits].lineno = lineno;
			f->hits[f->nhits++].ent = (uint32_t)i;
			f->tcount[e->type]++;	/* counted same when read */
			return 1;
		}
		/* The same line twice: read as usual, which says so. */
		f->dup = 1;
	}
	if (f->nlines == f->linecap) {
		f->linecap = f->linecap ? 2 * f->linecap : 4096;
		f->lines = xreallocarray(f->lines, f->linecap, sizeof *f->lines);
	}
	f->lines[f->nlines].lineno = lineno;
	memcpy(f->lines[f->nlines++].h, h, INSYNC_HASH);
	return 0;
}

/* The hash of the parsed line lineno (lines are met in order), or NULL. */
static const unsigned char *
fs_linehash(struct fromstate *f, unsigned long lineno)
{
	while (f->at < f->nlines && f->lines[f->at].lineno < lineno)
		f->at++;
	if (f->at < f->nlines && f->lines[f->at].lineno == lineno)
		return f->lines[f->at].h;
	return NULL;
}

/*
 * A cand for the record at e of ix: with its line's hash when it is or
 * will be in step (lh), checked against content digest ch when the push
 * must make it so (check; ch NULL: the key must only exist).
 */
static void
fs_cand(struct fromstate *f, const struct index *ix, const struct index_ent *e,
    unsigned long lineno, const unsigned char *lh, int check,
    const unsigned char *ch)
{
	size_t i;

	if (!f || !f->out)
		return;
	i = insync_add(&f->cands, lh, index_type(ix, e), index_typelen(ix, e),
	    index_key(ix, e), e->keylen);
	if (check)
		insync_check(&f->cands, i, ch);
	if (i >= f->candcap) {
		f->candcap = f->candcap ? 2 * f->candcap : 4096;
		f->candline = xreallocarray(f->candline, f->candcap,
		    sizeof *f->candline);
	}
	f->candline[i] = lineno;
}

/*
 * The cand of a local record at le, whose base row is at re (NULL: none),
 * classified op.  Exact: the local record is the base row's to the byte
 * of its canonical form, under no rules (so a type that ignores fields
 * never vouches for a line).
 */
static void
fs_local(struct fromstate *f, const struct index *lix,
    const struct index_ent *le, const struct index_ent *re, enum rd_op op,
    const struct ruleview *rv)
{
	const unsigned char *lh;
	int exact = !rules_view_ignores(rv);

	if (!f || !f->out)
		return;
	lh = exact ? fs_linehash(f, le->lineno) : NULL;
	switch (op) {
	case RD_OP_SAME:
		/*
		 * The base row as the line: in step.  Of a key written since
		 * the digest was, checked by prune, which would otherwise
		 * keep the key without its line (it cannot tell who wrote).
		 */
		if (lh && re && index_same_hash(re, le))
			fs_cand(f, lix, le, le->lineno, lh,
			    keyset_find(&f->dk, index_type(lix, le),
			    index_typelen(lix, le), index_key(lix, le),
			    le->keylen) >= 0, le->hash);
		else if (re)
			fs_cand(f, lix, le, le->lineno, NULL, 0, NULL);
		break;
	case RD_OP_CREATE:
	case RD_OP_UPDATE:
		fs_cand(f, lix, le, le->lineno, lh, 1, lh ? le->hash : NULL);
		break;
	default:
		break;
	}
}

/* The base row as a record line into the remote side. */
static int
fs_put(struct side *remote, const struct state_baserow *row, struct sb *line,
    struct scan_out *so, struct arena *a)
{
	struct record rec = {
		.type = row->type, .typelen = row->typelen,
		.key = row->key, .keylen = row->keylen,
		.rev = row->rev, .revlen = row->revlen,
	};
	struct rline l = { .src = remote->spec, .offset = -1 };
	struct json obj;
	const char *kind;
	size_t kindlen;

	sb_reset(line);
	stream_write_record_text(line, &rec, row->fields, row->fieldslen);
	l.text = line->buf;
	l.len = line->len;
	if (scan_record(line->buf, line->len, &rec, so)) {
		l.fields = so->fields;
		l.fieldslen = so->fieldslen;
		l.canon = so->canon.buf;
		l.canonlen = so->canon.len;
	} else {
		arena_reset(a);
		if (stream_parse_line(a, line->buf, line->len, &obj, &rec, &kind,
		    &kindlen) != 1) {
			rd_prefixerr("%s: base: ", remote->spec);
			return -1;
		}
	}
	l.rec = &rec;
	return side_add(remote, &l);
}

struct fs_each {
	struct fromstate *f;
	struct side *remote;
	struct sb line;
	struct scan_out so;
	struct arena a;
};

static int
fs_row(void *ctx, const struct state_baserow *row)
{
	struct fs_each *x = ctx;

	if (!shard_keeps(&x->f->fo->shard, row->type, row->typelen, row->key,
	    row->keylen))
		return 0;
	return fs_put(x->remote, row, &x->line, &x->so, &x->a);
}

/* Look (type, key) up; 1 and into the remote side, 0: none, -1. */
static int
fs_get(struct fs_each *x, const char *t, size_t tn, const char *k, size_t kn)
{
	struct state_baserow row;
	int r = state_base_get(x->f->st, t, tn, k, kn, &row);

	if (r == 1 && fs_put(x->remote, &row, &x->line, &x->so, &x->a) < 0)
		return -1;
	return r;
}

static int
fs_dirty(void *ctx, const char *t, size_t tn, const char *k, size_t kn)
{
	keyset_add(ctx, t, tn, k, kn);
	return 0;
}

/*
 * Read the state's digest (the whole one and its delta), the keys written
 * since and the base's count; trust the digest when there is one, this
 * build's, its delta against it, and the keys written since are few.  0,
 * or -1 with a message.
 */
static int
fs_load(struct fromstate *f, int fast)
{
	struct insync d;
	size_t i, tn, kn;
	const char *t, *k;
	int kb = 0, kd = 0, ok;

	insync_init(&d);
	if (state_insync_begin(f->st) < 0 ||
	    state_insync_dirty(f->st, fs_dirty, &f->dk) < 0)
		return -1;
	keyset_index(&f->dk);
	/*
	 * The delta first, so that the whole one is read with room for it.
	 * A digest this build cannot read is no digest: the base is read.
	 */
	if (fast && ((kd = state_insync_load(f->st, 2, &d, 0, 0)) < 0 ||
	    (kb = state_insync_load(f->st, 1, &f->old, d.n, d.poollen)) < 0)) {
		if (rd_errstatus() != RD_EXIT_DATA)
			goto fail;
		kb = 0;
	}
	ok = kb == 1 && !f->old.delta &&
	    (kd == 0 || (d.delta && d.basegen == f->old.gen));
	if (ok && ((ok = state_insync_armed(f->st)) < 0 || (ok &&
	    state_base_count(f->st, f->fo->types, f->fo->ntypes,
	    &f->count) < 0)))
		goto fail;
	if (ok && f->dk.n <= f->old.n / 4 + 64) {
		f->nb = f->old.n;
		f->gen = f->old.gen;
		f->gone = xcalloc(f->nb + d.n + 1, 1);
		for (i = 0; i < d.ndead && ok; i++) {
			if (d.dead[i] >= f->nb)
				ok = 0;
			else
				f->gone[d.dead[i]] = 1;
		}
		for (i = 0; i < d.n; i++) {
			t = insync_type(&d, &d.ents[i], &tn);
			k = insync_key(&d, &d.ents[i], &kn);
			insync_add(&f->old, insync_has_line(&d.ents[i]) ?
			    d.ents[i].lh : NULL, t, tn, k, kn);
		}
		/* An entry of a key written since stands no more. */
		for (i = 0; f->dk.n && i < f->old.n; i++) {
			t = insync_type(&f->old, &f->old.ents[i], &tn);
			k = insync_key(&f->old, &f->old.ents[i], &kn);
			if (keyset_find(&f->dk, t, tn, k, kn) >= 0)
				f->gone[i] = 1;
		}
		f->hit = xcalloc(f->old.n + 1, 1);
		f->tcount = xcalloc(f->old.ntypes + 1, sizeof *f->tcount);
		f->hits = xreallocarray(NULL, f->old.n + 1, sizeof *f->hits);
		f->trust = ok;
		if (ok)
			insync_index(&f->old, fs_notadded, f);
	}
	if (!f->trust) {
		insync_release(&f->old);
		free(f->gone);
		f->gone = NULL;
		free(f->hit);
		f->hit = NULL;
		free(f->tcount);
		f->tcount = NULL;
		free(f->hits);
		f->hits = NULL;
		f->nb = 0;
	}
	insync_release(&d);
	return 0;
fail:
	insync_release(&d);
	return -1;
}

static void
fs_release(struct fromstate *f)
{
	insync_release(&f->old);
	insync_release(&f->cands);
	keyset_release(&f->dk);
	free(f->gone);
	free(f->hit);
	free(f->carry);
	free(f->tcount);
	free(f->hits);
	free(f->lines);
	free(f->candline);
}

/*
 * The remote side from the state: with a trusted digest, the rows of the
 * local's keys, of the entries no line met and of the keys written since;
 * 1 when they and the hits are every row of the run's types, 0 when not
 * (nothing kept: the caller reads again, whole).  Without one, every row
 * of the run's types; 1.  -1 with a message.
 */
static int
fs_remote(struct fromstate *f, struct side *local, struct side *remote)
{
	struct fs_each x = { .f = f, .remote = remote };
	long long found = 0;
	size_t i, tn, kn;
	const char *t, *k;
	int r = -1, g;

	sb_init(&x.line, 4096);
	scan_init(&x.so);
	arena_init(&x.a);
	side_begin(remote);
	if (!f->trust) {
		if (!f->fo->ntypes) {
			if (state_base_each(f->st, NULL, fs_row, &x) < 0)
				goto out;
		} else {
			char **ty = f->fo->types;

			for (i = 0; i < f->fo->ntypes; i++) {
				size_t j;

				for (j = 0; j < i && strcmp(ty[j], ty[i]); j++)
					;
				if (j == i && state_base_each(f->st, ty[i],
				    fs_row, &x) < 0)
					goto out;
			}
		}
		r = 1;
		goto out;
	}
	for (i = 0; i < index_len(&local->ix); i++) {
		const struct index_ent *e = index_at(&local->ix, i);

		if (index_is_pass(e))
			continue;
		if ((g = fs_get(&x, index_type(&local->ix, e),
		    index_typelen(&local->ix, e), index_key(&local->ix, e),
		    e->keylen)) < 0)
			goto out;
		found += g;
	}
	/* The entries no line met, then the keys written since. */
	for (i = 0; i < f->old.n + f->dk.n; i++) {
		if (i < f->old.n) {
			if (f->hit[i] || f->gone[i])
				continue;
			t = insync_type(&f->old, &f->old.ents[i], &tn);
			k = insync_key(&f->old, &f->old.ents[i], &kn);
		} else {
			t = keyset_type(&f->dk, i - f->old.n, &tn);
			k = keyset_key(&f->dk, i - f->old.n, &kn);
		}
		if (!selected(f->fo, t, tn, k, kn) ||
		    index_find(&local->ix, t, tn, k, kn))
			continue;
		if ((g = fs_get(&x, t, tn, k, kn)) < 0)
			goto out;
		found += g;
	}
	r = found + (long long)f->nhits == f->count;
out:
	if (side_end(remote) < 0)
		r = -1;
	sb_release(&x.line);
	scan_release(&x.so);
	arena_release(&x.a);
	return r;
}

/*
 * A key written since that no line nor base row named, added to d to be
 * looked up by prune.
 */
static void
fs_add_dirty(struct fromstate *f, struct side *local, struct side *remote,
    struct insync *d)
{
	size_t i, tn, kn;
	const char *t, *k;

	for (i = 0; i < f->dk.n; i++) {
		t = keyset_type(&f->dk, i, &tn);
		k = keyset_key(&f->dk, i, &kn);
		if (index_find(&local->ix, t, tn, k, kn) ||
		    index_find(&remote->ix, t, tn, k, kn))
			continue;
		insync_check(d, insync_add(d, NULL, t, tn, k, kn), NULL);
	}
}

/*
 * Of no digest trusted: the cands alone, in the order made (the local
 * lines', then the base's keys no line names), are the next whole one.
 */
static int
fs_write_whole(struct fromstate *f, struct side *local, struct side *remote,
    const char *path)
{
	fs_add_dirty(f, local, remote, &f->cands);
	f->cands.gen = insync_newgen();
	return insync_write_file(&f->cands, path);
}

/*
 * The digest's next version: the hits and the cands of lines, in line
 * order; the other cands; the entries of a trusted digest neither met nor
 * named again (of other types or shards), kept as they are; then the keys
 * written since that nothing above names, each to be found in the base by
 * prune.  Of a trusted digest, when what stands of the whole one is most
 * of it, only a delta against it: its entries that no longer stand, and
 * the rest.
 */
static int
fs_write(struct fromstate *f, struct side *local, struct side *remote,
    const char *path)
{
	struct insync next;
	size_t h = 0, c = 0, i, tn, kn, *pos, stay = 0, adds = 0;
	const char *t, *k;
	int r, delta;

	if (!f->trust)
		return fs_write_whole(f, local, remote, path);
	insync_init(&next);
	pos = xcalloc(f->cands.n + 1, sizeof *pos);
	f->carry = xcalloc(f->old.n + 1, 1);
	for (i = 0; f->trust && i < f->old.n; i++) {
		const struct insync_ent *e = &f->old.ents[i];

		if (f->gone[i])
			continue;
		if (!f->hit[i]) {
			t = insync_type(&f->old, e, &tn);
			k = insync_key(&f->old, e, &kn);
			if (index_find(&local->ix, t, tn, k, kn) ||
			    index_find(&remote->ix, t, tn, k, kn))
				continue;
			f->carry[i] = 1;
		}
		if (i < f->nb)
			stay++;
		else
			adds++;
	}
	adds += f->cands.n + f->dk.n;
	delta = f->trust && (f->nb - stay) + adds <= f->nb / 8;
	if (delta) {
		next.delta = 1;
		next.basegen = f->gen;
		for (i = 0; i < f->nb; i++)
			if (f->gone[i] || (!f->hit[i] && !f->carry[i]))
				insync_dead(&next, i);
	} else {
		next.gen = insync_newgen();
	}
	for (;;) {
		const struct insync_ent *e;
		const struct insync *from;

		if (h < f->nhits && (c >= f->cands.n || !f->candline[c] ||
		    f->hits[h].lineno < f->candline[c])) {
			from = &f->old;
			i = f->hits[h++].ent;
			/* A delta leaves out what stands of the whole one. */
			if (delta && i < f->nb)
				continue;
			e = &f->old.ents[i];
		} else if (c < f->cands.n && f->candline[c]) {
			from = &f->cands;
			pos[c] = next.n;
			e = &f->cands.ents[c++];
		} else {
			break;
		}
		t = insync_type(from, e, &tn);
		k = insync_key(from, e, &kn);
		insync_add(&next, insync_has_line(e) ? e->lh : NULL, t, tn, k,
		    kn);
	}
	/* The cands of no line (the base's keys no line names). */
	for (i = c; i < f->cands.n; i++) {
		const struct insync_ent *e = &f->cands.ents[i];

		t = insync_type(&f->cands, e, &tn);
		k = insync_key(&f->cands, e, &kn);
		pos[i] = insync_add(&next, insync_has_line(e) ? e->lh : NULL,
		    t, tn, k, kn);
	}
	for (i = 0; i < f->cands.nchk; i++)
		insync_check(&next, pos[f->cands.chk[i].ent],
		    f->cands.chk[i].ch);
	for (i = 0; f->trust && i < f->old.n; i++) {
		const struct insync_ent *e = &f->old.ents[i];

		if (!f->carry[i] || (delta && i < f->nb))
			continue;
		t = insync_type(&f->old, e, &tn);
		k = insync_key(&f->old, e, &kn);
		insync_add(&next, insync_has_line(e) ? e->lh : NULL, t, tn, k,
		    kn);
	}
	/* A key written since, found nowhere above: prune looks it up. */
	fs_add_dirty(f, local, remote, &next);
	free(pos);
	r = insync_write_file(&next, path);
	insync_release(&next);
	return r;
}

/* --where on one side's record line (struct side's select, its thread). */
static int
where_select(void *ctx, const struct rline *l)
{
	int k = filter_test(ctx, l->text, l->len);

	if (k < 0) {
		if (l->lineno)
			rd_prefixerr("%s:%lu: ", l->src, l->lineno);
		else
			rd_prefixerr("%s: ", l->src);
	}
	return k;
}

/*
 * Change op of the record at e in ix, guarded by the rev of the remote
 * record at re (none when re is NULL or its rev is empty).
 */
static void
change_init(struct change *c, enum rd_op op, const struct index *ix,
    const struct index_ent *e, const struct index *rix,
    const struct index_ent *re)
{
	memset(c, 0, sizeof *c);
	c->op = op;
	c->type = index_type(ix, e);
	c->typelen = index_typelen(ix, e);
	c->key = index_key(ix, e);
	c->keylen = e->keylen;
	if (re && re->revlen) {
		c->rev = index_rev(rix, re);
		c->revlen = re->revlen;
	}
}

static void
emit(struct out *o, const struct change *c)
{
	if (!o->fp)
		return;
	sb_reset(&o->line);
	stream_write_change(&o->line, c);
	sb_addc(&o->line, '\n');
	fwrite(o->line.buf, 1, o->line.len, o->fp);
}

/*
 * A same line carries the remote's rev and the fields as the remote holds
 * them (equal to local under the rules), so that it can stand for the record
 * in a checkpoint's base snapshot.
 */
static void
emit_same(struct out *o, const struct index *lix, const struct index_ent *le,
    const struct index *rix, const struct index_ent *re,
    const struct json *fields)
{
	struct change c;

	change_init(&c, RD_OP_SAME, lix, le, rix, re);
	c.fields = fields;
	emit(o, &c);
}

/*
 * Whether the base holds the remote's record at re as it is: the key, the
 * rev, and the content under no rules.  The index's digests are under the
 * rules, which are no rules for a type that ignores no field; else both
 * records are read again.  1, 0, or -1 with a message.
 */
static int
base_holds(struct side *base, const struct ruleview *rv, struct index *rix,
    const struct index_ent *re, const char *t, size_t tn, const char *k,
    size_t kn, struct arena *a, struct sb *bbuf, struct sb *rbuf,
    struct sb *scratch)
{
	struct ruleview none = { 0 };
	const struct index_ent *be;
	unsigned char bh[RD_DIGEST_LEN], rh[RD_DIGEST_LEN];
	struct json bobj, robj;
	struct record brec, rrec;

	if (!(be = index_find(&base->ix, t, tn, k, kn)))
		return 0;
	if (be->revlen != re->revlen || memcmp(index_rev(&base->ix, be),
	    index_rev(rix, re), re->revlen) != 0)
		return 0;
	if (!rules_view_ignores(rv))
		return index_same_hash(be, re);
	if (index_parse(&base->ix, be, bbuf, a, &bobj, &brec) < 0 ||
	    index_parse(rix, re, rbuf, a, &robj, &rrec) < 0 ||
	    record_digest(&none, brec.fields, bh, scratch) < 0 ||
	    record_digest(&none, rrec.fields, rh, scratch) < 0)
		return -1;
	return memcmp(bh, rh, RD_DIGEST_LEN) == 0;
}

/*
 * Whether --sparse leaves out the same line of the record at le and re: 1
 * when it tells the base nothing (no --base, or the base holds the remote's
 * record as it is), 0 when it is written, -1 with a message.
 */
static int
left_out(const struct out *o, struct side *base, const struct ruleview *rv,
    const struct index *lix, const struct index_ent *le, struct index *rix,
    const struct index_ent *re, struct arena *a, struct sb *bbuf,
    struct sb *rbuf, struct sb *scratch)
{
	if (!o->sparse)
		return 0;
	if (!base)
		return 1;
	return base_holds(base, rv, rix, re, index_type(lix, le),
	    index_typelen(lix, le), index_key(lix, le), le->keylen, a, bbuf,
	    rbuf, scratch);
}

/*
 * The fields an update overwrites that were changed on the remote since the
 * base: those of names (the update's "changed", local against remote) that
 * also differ between the base and the remote, as a JSON array into edited,
 * empty when none or when the base does not hold the record.  Equal hashes
 * need no parse.
 */
static int
remote_edits(struct side *base, const struct ruleview *rv,
    const struct json *rfields, const struct index_ent *re, const char *t,
    size_t tn, const char *k, size_t kn, const struct json *names,
    struct arena *a, struct sb *bbuf, struct sb *edited)
{
	const struct index_ent *be;
	struct json bobj, since;
	struct record brec;
	struct sb tmp;
	size_t i, j;
	int any = 0;

	sb_reset(edited);
	if (!base || !(be = index_find(&base->ix, t, tn, k, kn)) ||
	    index_same_hash(be, re))
		return 0;
	if (index_parse(&base->ix, be, bbuf, a, &bobj, &brec) < 0)
		return -1;
	sb_init(&tmp, 64);
	if (record_compare(rv, brec.fields, rfields, &tmp) == 0 ||
	    json_parse(a, arena_memdup(a, tmp.buf, tmp.len), tmp.len, &since,
	    NULL) < 0) {
		sb_release(&tmp);
		return 0;
	}
	sb_release(&tmp);
	for (i = 0; i < names->len; i++) {
		const struct json *n = &names->u.items[i];

		for (j = 0; j < since.len; j++) {
			const struct json *m = &since.u.items[j];

			if (n->len != m->len || memcmp(n->u.s, m->u.s, n->len))
				continue;
			sb_addc(edited, any++ ? ',' : '[');
			json_write_string(edited, n->u.s, n->len);
			break;
		}
	}
	if (any)
		sb_addc(edited, ']');
	return 0;
}

/* Walk the local side in order, then the remote's unmatched records. */
static int
classify(struct side *local, struct side *remote, struct side *base,
    struct out *o, unsigned long *ndiff)
{
	struct index *const ixs[2] = { &local->ix, &remote->ix };
	struct index *lix = &local->ix, *rix = &remote->ix;
	struct index_walk w;
	const struct index_ent *at[2];
	struct sb lbuf, rbuf, bbuf, xbuf, scratch, changed, edited;
	struct arena a;
	struct json lobj, robj, chobj, edobj;
	struct record lrec, rrec;
	struct change c;
	size_t i;
	int k = 0, ret = -1;

	sb_init(&lbuf, 4096);
	sb_init(&rbuf, 4096);
	sb_init(&bbuf, 4096);
	sb_init(&xbuf, 4096);
	sb_init(&scratch, 4096);
	sb_init(&changed, 256);
	sb_init(&edited, 64);
	arena_init(&a);
	for (i = 0; i < index_len(rix); i++) {
		if (!index_is_pass(index_at(rix, i)))
			continue;
		if (index_read(rix, index_at(rix, i), &rbuf) < 0)
			goto out;
		if (o->fp) {
			fwrite(rbuf.buf, 1, rbuf.len, o->fp);
			putc('\n', o->fp);
		}
	}
	index_walk_init(&w, ixs, 2);
	if (base && o->sparse)
		index_walk_also(&w, &base->ix);
	while (index_walk_next(&w, at)) {
		const struct index_ent *le = at[0], *re = at[1];
		const char *t;
		struct ruleview rv;

		/* --where: a key selected on neither side is not compared. */
		if (o->where && (!le || !index_is_pass(le)) &&
		    !index_is_selected(le) && !index_is_selected(re))
			continue;
		if (!le) {
			count(index_type(rix, re), index_typelen(rix, re), RD_OP_DELETE);
			(*ndiff)++;
			fs_cand(o->fs, rix, re, 0, NULL, 0, NULL);
			change_init(&c, RD_OP_DELETE, rix, re, rix, re);
			if (o->before && o->fp) {
				arena_reset(&a);
				if (index_parse(rix, re, &rbuf, &a, &robj, &rrec) < 0)
					goto out;
				if (rrec.fields)
					c.before = stream_before(&a, rrec.rev,
					    rrec.revlen, rrec.fields);
			}
			emit(o, &c);
			continue;
		}
		if (index_is_pass(le)) {
			if (index_read(lix, le, &lbuf) < 0)
				goto out;
			if (o->fp) {
				fwrite(lbuf.buf, 1, lbuf.len, o->fp);
				putc('\n', o->fp);
			}
			continue;
		}
		t = index_type(lix, le);
		rv = rules_view(local->rules, t, index_typelen(lix, le));
		if (re && index_same_hash(re, le)) {
			count(t, index_typelen(lix, le), RD_OP_SAME);
			fs_local(o->fs, lix, le, re, RD_OP_SAME, &rv);
			if (!o->all || !o->fp)
				continue;
			arena_reset(&a);
			if ((k = left_out(o, base, &rv, lix, le, rix, re, &a,
			    &bbuf, &xbuf, &scratch)) != 0) {
				if (k < 0)
					goto out;
				continue;
			}
			if (index_parse(rix, re, &rbuf, &a, &robj, &rrec) < 0)
				goto out;
			emit_same(o, lix, le, rix, re, rrec.fields);
			continue;
		}
		arena_reset(&a);
		if (index_parse(lix, le, &lbuf, &a, &lobj, &lrec) < 0)
			goto out;
		if (!re) {
			count(t, index_typelen(lix, le), RD_OP_CREATE);
			(*ndiff)++;
			fs_local(o->fs, lix, le, NULL, RD_OP_CREATE, &rv);
			change_init(&c, RD_OP_CREATE, lix, le, rix, NULL);
			c.fields = lrec.fields;
			emit(o, &c);
			continue;
		}
		if (index_parse(rix, re, &rbuf, &a, &robj, &rrec) < 0)
			goto out;
		sb_reset(&changed);
		if (record_compare(&rv, lrec.fields, rrec.fields, &changed) == 0) {
			count(t, index_typelen(lix, le), RD_OP_SAME);
			fs_local(o->fs, lix, le, re, RD_OP_SAME, &rv);
			if (!o->all)
				continue;
			if ((k = left_out(o, base, &rv, lix, le, rix, re, &a,
			    &bbuf, &xbuf, &scratch)) != 0) {
				if (k < 0)
					goto out;
				continue;
			}
			emit_same(o, lix, le, rix, re, rrec.fields);
			continue;
		}
		count(t, index_typelen(lix, le), RD_OP_UPDATE);
		(*ndiff)++;
		fs_local(o->fs, lix, le, re, RD_OP_UPDATE, &rv);
		if (!o->fp)
			continue;
		/* The names record_compare() wrote, as the line's "changed". */
		if (json_parse(&a, changed.buf, changed.len, &chobj, NULL) < 0 ||
		    remote_edits(base, &rv, rrec.fields, re, t, index_typelen(lix, le),
		    index_key(lix, le), le->keylen, &chobj, &a, &bbuf,
		    &edited) < 0 ||
		    (edited.len && json_parse(&a, edited.buf, edited.len, &edobj,
		    NULL) < 0))
			goto out;
		change_init(&c, RD_OP_UPDATE, lix, le, rix, re);
		c.fields = lrec.fields;
		c.changed = &chobj;
		c.edited = edited.len ? &edobj : NULL;
		if (o->before)
			c.before = stream_before(&a, rrec.rev, rrec.revlen,
			    rrec.fields);
		emit(o, &c);
	}
	ret = 0;
out:
	arena_release(&a);
	sb_release(&lbuf);
	sb_release(&rbuf);
	sb_release(&bbuf);
	sb_release(&xbuf);
	sb_release(&scratch);
	sb_release(&changed);
	sb_release(&edited);
	return ret;
}

/* fs_remote of the whole base, as a thread: its result and message. */
struct fs_job {
	struct fromstate *f;
	struct side *local, *remote;
	int r, status;
	char *err;
};

static void *
fs_remote_job(void *arg)
{
	struct fs_job *j = arg;

	if ((j->r = fs_remote(j->f, j->local, j->remote)) < 0) {
		j->status = rd_errstatus();
		j->err = xstrdup(rd_errmsg());
	}
	return NULL;
}

/*
 * --from-state: read local, and the remote from the state (fs_remote),
 * through the digest when there is one to trust; read again whole when
 * what it found does not add up.  0, or -1 with a message.
 */
static int
from_state(struct fromstate *f, const char *path, struct out *o,
    struct side *local, struct side *remote, struct fetch_opts *fo)
{
	struct fetch_opts *lfo = (struct fetch_opts *)local->fo;
	char ctx[160];
	int k, fast;

	if (state_open(&f->st, path, 0) < 0)
		return -1;
	f->fo = fo;
	f->out = o->fs != NULL;
	/* Lines read again after a miss: a file, read as records. */
	fast = o->sparse && store_lines_are_records(&local->store) &&
	    !store_is_stdin(local->spec);
	if (fs_load(f, fast) < 0)
		goto fail;
	for (;;) {
		lfo->skip = f->trust || f->out ? fs_skip : NULL;
		lfo->skipctx = f;
		if (!f->trust) {
			/* The whole base, in a thread while this one reads local. */
			struct fs_job job = { f, local, remote, 0, 0, NULL };
			pthread_t th;

			if ((errno = pthread_create(&th, NULL, fs_remote_job,
			    &job)) != 0)
				rd_die(RD_EXIT_RUNTIME, "cannot start a thread: %s",
				    strerror(errno));
			side_read(local);
			pthread_join(th, NULL);
			if (job.r < 0 && !local->err) {
				rd_seterr(job.status, "%s", job.err);
				free(job.err);
				goto fail;
			}
			free(job.err);
			k = 1;
		} else {
			side_read(local);
			k = 0;
		}
		if (local->err) {
			rd_seterr(local->status, "%s", local->err);
			goto fail;
		}
		if (!k && (k = f->dup ? 0 : fs_remote(f, local, remote)) < 0)
			goto fail;
		if (k == 1)
			break;
		memset(f->tcount, 0, f->old.ntypes * sizeof *f->tcount);
		/* Read both again, whole: nothing of the first read is kept. */
		snprintf(ctx, sizeof ctx, "\"fallback\":\"%s\"",
		    f->dup ? "a line twice" : "not every base row found");
		rd_log("info", "in-step digest", ctx);
		side_release(local);
		side_release(remote);
		tally_release(&counts);
		insync_release(&f->cands);
		f->trust = 0;
		f->nhits = f->nlines = f->at = f->hint = 0;
		f->dup = 0;
		if (side_open(local) < 0)
			goto fail;
	}
	if (f->trust) {
		size_t i, tn;
		const char *t;

		for (i = 0; i < f->old.ntypes; i++) {
			t = f->old.pool + f->old.types[i].off;
			tn = f->old.types[i].len;
			if (f->tcount[i])
				tally_get(&counts, t, tn)->n[RD_OP_SAME] +=
				    f->tcount[i];
		}
		snprintf(ctx, sizeof ctx, "\"hits\":%zu,\"parsed\":%zu,"
		    "\"looked_up\":%zu", f->nhits, index_nrec(&local->ix),
		    index_nrec(&remote->ix));
		rd_log("info", "in-step digest", ctx);
	}
	state_insync_end(f->st);
	return 0;
fail:
	state_insync_end(f->st);
	return -1;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-diff --local SRC --remote SRC [-a] [-i FIELD]...\n"
	    "                     [--tolerance FIELD=EPS]... [--rules FILE]\n"
	    "                     [-t TYPE]... [--summary[=text|json]] [-o FILE]\n"
	    "                     [--window FIELD=FROM..TO] [--exit-code] [--allow-empty]\n"
	    "                     [--allow-missing-remote] [--base SRC] [--shard I/N]\n"
	    "                     [--check-args] [--before] [--where FILTER]\n"
	    "                     [--sparse] [--insecure-http]\n"
	    "       recdelta-diff --local SRC --from-state DB [--digest-out FILE] ...\n"
	    "\n"
	    "  -l, --local SRC          the data as it should be\n"
	    "  -r, --remote SRC         the data as it is\n"
	    "  -a, --all                also write a line for each unchanged record\n"
	    "      --sparse             as --all, but a same line only where the base\n"
	    "                           does not hold the remote's record as it is;\n"
	    "                           the summary line last\n"
	    "  -i, --ignore FIELD       never compare FIELD\n"
	    "      --tolerance FIELD=EPS  numbers in FIELD equal within EPS\n"
	    "      --rules FILE         per-type rules (TYPE ignore|tolerance ARG)\n"
	    "  -t, --type TYPE          only records of TYPE\n"
	    "      --summary[=FORMAT]   write a per-type report (text or json)\n"
	    "  -o, --output FILE        write the change lines to FILE\n"
	    "      --window FIELD=FROM..TO  only records whose FIELD is an instant\n"
	    "                           from FROM up to, not including, TO\n"
	    "      --exit-code          exit 1 when anything differs\n"
	    "      --allow-empty        accept an ndjson input with no lines\n"
	    "      --allow-missing-remote  a remote store that does not exist yet\n"
	    "                           reads as empty\n"
	    "      --base SRC           the records when last in step: an update\n"
	    "                           names in \"edited\" the remote edits it overwrites\n"
	    "      --shard I/N          only the records of shard I of N, on every side\n"
	    "      --before             an update or a delete carries the remote\n"
	    "                           record's rev and fields in \"before\"\n"
	    "      --check-args         check the options and the stores' words, then\n"
	    "                           exit: read nothing, write nothing\n"
	    "      --where FILTER       only keys whose local or remote record a jq\n"
	    "                           filter is true for\n"
	    "      --from-state DB      the remote is the base snapshot of state DB;\n"
	    "                           with --sparse, local lines the in-step digest\n"
	    "                           vouches for are counted same unread\n"
	    "      --digest-out FILE    write the digest's next version to FILE, for\n"
	    "                           recdelta-checkpoint prune --digest\n"
	    "      --insecure-http      allow plain http to a host that is not this\n"
	    "                           machine (couchdb:)\n"
	    "  -h, --help               print this help and exit\n"
	    "  -V, --version            print the version and exit\n"
	    "\n"
	    "SRC: ndjson:PATH[?type=T&key=FIELD] | - | json:PATH[?type=T&key=FIELD&path=.A.B]\n"
	    "     | sqlite:DB?table=T&key=COL[&rev=COL][&type=T]\n"
	    "     | PATH (an existing file: ndjson:, folder: dir:)\n"
	    "     | dir:PATH | cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]\n"
	    "     | couchdb:http(s)://HOST[:PORT]/DB | webdav:URL\n");
}

int
main(int argc, char *argv[])
{
	enum { OPT_TOL = 256, OPT_RULES, OPT_EXIT, OPT_EMPTY, OPT_SUMMARY,
	    OPT_WINDOW, OPT_MISSING, OPT_BASE, OPT_CHECK, OPT_INSECURE, OPT_SHARD,
	    OPT_BEFORE, OPT_WHERE, OPT_SPARSE, OPT_FROMSTATE, OPT_DIGESTOUT };
	static const struct option longopts[] = {
		{ "local", required_argument, NULL, 'l' },
		{ "remote", required_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'a' },
		{ "sparse", no_argument, NULL, OPT_SPARSE },
		{ "ignore", required_argument, NULL, 'i' },
		{ "tolerance", required_argument, NULL, OPT_TOL },
		{ "rules", required_argument, NULL, OPT_RULES },
		{ "type", required_argument, NULL, 't' },
		{ "summary", optional_argument, NULL, OPT_SUMMARY },
		{ "output", required_argument, NULL, 'o' },
		{ "exit-code", no_argument, NULL, OPT_EXIT },
		{ "allow-empty", no_argument, NULL, OPT_EMPTY },
		{ "allow-missing-remote", no_argument, NULL, OPT_MISSING },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "check-args", no_argument, NULL, OPT_CHECK },
		{ "before", no_argument, NULL, OPT_BEFORE },
		{ "insecure-http", no_argument, NULL, OPT_INSECURE },
		{ "shard", required_argument, NULL, OPT_SHARD },
		{ "where", required_argument, NULL, OPT_WHERE },
		{ "from-state", required_argument, NULL, OPT_FROMSTATE },
		{ "digest-out", required_argument, NULL, OPT_DIGESTOUT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct side local, remote, base, *sides[2] = { &local, &remote };
	struct fetch_opts fo = { 0 }, sfo[2], bfo;
	struct window_tally tally[2] = { { 0 }, { 0 } };
	struct rules *rules = rules_new();
	const char *lspec = NULL, *rspec = NULL, *bspec = NULL, *outpath = NULL;
	const char *rulesfile = NULL, *whereprog = NULL;
	const char *statepath = NULL, *digestout = NULL;
	struct fromstate fs;
	struct filter *where[2] = { NULL, NULL };
	int c, i, summary = 0, exitcode = 0, missing_remote = 0, checkargs = 0;
	int status = RD_EXIT_OK;
	struct out o;
	pthread_t th[2];
	unsigned long ndiff = 0;

	rd_setprogname(argv[0]);
	argv[0] = (char *)rd_progname;	/* getopt's messages use it */
	memset(&o, 0, sizeof o);
	memset(&local, 0, sizeof local);
	memset(&remote, 0, sizeof remote);
	memset(&base, 0, sizeof base);
	memset(&fs, 0, sizeof fs);
	while ((c = getopt_long(argc, argv, "l:r:ai:t:o:hV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'l':
			lspec = optarg;
			break;
		case 'r':
			rspec = optarg;
			break;
		case 'a':
			o.all = 1;
			break;
		case OPT_SPARSE:
			o.all = o.sparse = 1;
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
		case OPT_BASE:
			bspec = optarg;
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
		case OPT_BEFORE:
			o.before = 1;
			break;
		case OPT_CHECK:
			checkargs = 1;
			break;
		case OPT_INSECURE:
			store_insecure_http = 1;
			break;
		case OPT_SHARD:
			if (shard_parse(&fo.shard, optarg) < 0) {
				rd_warn("%s", rd_errmsg());
				status = RD_EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_WHERE:
			whereprog = optarg;
			break;
		case OPT_FROMSTATE:
			statepath = optarg;
			break;
		case OPT_DIGESTOUT:
			digestout = optarg;
			break;
		case OPT_WINDOW:
			if (fetch_window(&fo, optarg) < 0) {
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
			printf("recdelta-diff %s\n", RD_VERSION);
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
	if (statepath && (rspec || bspec || whereprog || fo.wfield)) {
		rd_warn("--from-state and %s: one or the other", rspec ?
		    "--remote" : bspec ? "--base" : whereprog ? "--where" :
		    "--window");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (digestout && !statepath) {
		rd_warn("--digest-out needs --from-state");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (statepath && !*statepath) {
		rd_warn("--from-state: an empty path");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (!lspec || (!rspec && !statepath)) {
		rd_warn("both --local and --remote are required");
		usage(stderr);
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (rspec && store_is_stdin(lspec) && store_is_stdin(rspec)) {
		rd_warn("--local and --remote cannot both be standard input");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (bspec && store_is_stdin(bspec)) {
		rd_warn("--base cannot be standard input");
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (rulesfile && rules_load(rules, rulesfile) < 0)
		rd_die_pending();
	/* One compiled filter a side: each side is read in its own thread. */
	for (i = 0; whereprog && i < 2; i++)
		if (!(where[i] = filter_new("--where", whereprog)))
			rd_die_pending();
	o.where = whereprog != NULL;
	if (rd_log_open(NULL) < 0)
		rd_die_pending();

	local.label = "local";
	local.spec = lspec;
	remote.label = "remote";
	remote.spec = statepath ? statepath : rspec;
	for (i = 0; i < 2; i++) {
		/* Each side its own tally of the window field. */
		sfo[i] = fo;
		sfo[i].tally = &tally[i];
		/* The remote may be a target that the first push creates. */
		/* --check-args checks words, not whether the stores exist. */
		sfo[i].missing_ok = checkargs ||
		    (sides[i] == &remote && missing_remote);
		/* A line a --where filter reads must be a tree. */
		sfo[i].scan = !where[i];
		sides[i]->fo = &sfo[i];
		sides[i]->rules = rules;
		if (where[i]) {
			sides[i]->select = where_select;
			sides[i]->selctx = where[i];
		}
		/* --from-state: the remote is read from the state, later. */
		if (sides[i] == &remote && statepath)
			continue;
		if (side_open(sides[i]) < 0)
			rd_die_pending();
	}
	if (bspec) {
		/* Empty before the first sync; no window tally to check. */
		bfo = fo;
		bfo.tally = NULL;
		bfo.allow_empty = 1;
		bfo.scan = 1;
		bfo.missing_ok = checkargs;
		base.label = "base";
		base.spec = bspec;
		base.fo = &bfo;
		base.rules = rules;
		if (side_open(&base) < 0)
			rd_die_pending();
	}
	if (checkargs)
		goto out;

	if (statepath) {
		o.fs = digestout ? &fs : NULL;
		if (from_state(&fs, statepath, &o, &local, &remote, &fo) < 0)
			rd_die_pending();
		goto compare;
	}
	/*
	 * Index the remote, and the base, each in a thread of its own while
	 * this one reads local.
	 */
	if ((errno = pthread_create(&th[0], NULL, side_read, &remote)) != 0 ||
	    (bspec && (errno = pthread_create(&th[1], NULL, side_read,
	    &base)) != 0))
		rd_die(RD_EXIT_RUNTIME, "cannot start a thread: %s", strerror(errno));
	side_read(&local);
	pthread_join(th[0], NULL);
	if (bspec)
		pthread_join(th[1], NULL);
	if (base.err) {
		rd_warn("%s", base.err);
		status = base.status;
	}
	for (i = 0; i < 2; i++) {
		if (!sides[i]->err && window_tally_check(&sfo[i],
		    sides[i]->spec) < 0) {
			sides[i]->status = rd_errstatus();
			sides[i]->err = xstrdup(rd_errmsg());
		}
		free(tally[i].example);
		if (sides[i]->err) {
			rd_warn("%s", sides[i]->err);
			if (status == RD_EXIT_OK)
				status = sides[i]->status;
		}
	}
	if (status != RD_EXIT_OK)
		goto out;
compare:
	if (outpath && (store_rereads_file(&local.store, outpath) ||
	    (remote.store.ops && store_rereads_file(&remote.store, outpath)))) {
		rd_warn("-o %s: would overwrite an input", outpath);
		status = RD_EXIT_USAGE;
		goto out;
	}
	if (outpath) {
		if (!(o.fp = fopen(outpath, "w")))
			rd_die(RD_EXIT_RUNTIME, "%s: %s", outpath, strerror(errno));
	} else if (!summary) {
		stream_out_init();
		o.fp = stdout;
	}
	sb_init(&o.line, 4096);
	if (classify(&local, &remote, bspec ? &base : NULL, &o, &ndiff) < 0 ||
	    (digestout && fs_write(&fs, &local, &remote, digestout) < 0))
		rd_die_pending();
	tally_sort(&counts);
	warn_no_shared_type();
	/* A sparse plan says how many records were in step, last. */
	if (o.sparse && o.fp)
		write_summary(o.fp, 1);
	if (outpath && (fflush(o.fp) != 0 || ferror(o.fp) || fclose(o.fp) != 0))
		rd_die(RD_EXIT_RUNTIME, "%s: %s", outpath, strerror(errno));
	if (summary)
		write_summary(stdout, summary == 2);
	if (stream_out_close() < 0)
		rd_die_pending();
	status = exitcode && ndiff ? RD_EXIT_FOUND : RD_EXIT_OK;
	{
		char ctx[160];

		snprintf(ctx, sizeof ctx, "\"local\":%zu,\"remote\":%zu,"
		    "\"differ\":%lu", index_nrec(&local.ix) + fs.nhits,
		    index_nrec(&remote.ix), ndiff);
		rd_log("info", "diff done", ctx);
	}
	sb_release(&o.line);
out:
	for (i = 0; i < 2; i++) {
		side_release(sides[i]);
		filter_free(where[i]);
	}
	side_release(&base);
	fs_release(&fs);
	state_close(fs.st);
	tally_release(&counts);
	free(fo.types);
	free(fo.wfield);
	rules_free(rules);
	rd_log_close();
	return status;
badrule:
	rd_warn("%s", rd_errmsg());
	status = RD_EXIT_USAGE;
	goto out;
}
