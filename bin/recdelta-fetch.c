/*
 * recdelta-fetch - read a store and write its records as a stream.
 *
 * Reads the store SOURCE names and writes one record line per record on
 * standard output (tombstones with "deleted":true); an ndjson: source's lines
 * of other kinds pass through unchanged and in order.  Nothing else is
 * written to standard output; messages go to standard error.  A store read
 * page by page (cloudkit:, couchdb:) also writes a cursor line after each page, from
 * which --resume goes on, and so does a change feed (dir:, webdav: after
 * it).  --changes --cursor-only writes only the cursor line of where the
 * feed stands now, reading no record: taken before a whole read, a cursor
 * from which the feed says everything changed during it.  --check-args
 * checks the options and SOURCE's word (with --changes: that the store has
 * a change feed; with --cursor-only: that it can say where the feed stands
 * without reading it), reading nothing.
 *
 * Three options reshape the records on the way (lib/filter.h runs the
 * user's jq programs; the values themselves are never read by jq's parser):
 * --map FILTER makes records of each input value (an ndjson: source's lines
 * as they are, any JSON; a record line from other stores), every output a
 * record line or, under the word's type= and key=, a plain object; --where
 * FILTER keeps the records it holds for, each written byte for byte as it
 * came; --flat writes each record as a plain object instead of a record
 * line.  Bad input stops the fetch where it is found, status 3, after the
 * lines before it were written, as a bad line of an ndjson: source does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/filter.h"
#include "../lib/log.h"
#include "../lib/plain.h"
#include "../lib/store.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-fetch [-t TYPE]... [--window FIELD=FROM..TO] [--allow-empty]\n"
	    "                      [--allow-missing] [--changes [--cursor-only]]\n"
	    "                      [--resume CURSOR]\n"
	    "                      [--jobs N] [--map FILTER] [--where FILTER]\n"
	    "                      [--flat[=KEYNAME]] [--shard I/N] [--insecure-http]\n"
	    "                      [--check-args] SOURCE\n"
	    "\n"
	    "  -t, --type TYPE   only records of TYPE (cloudkit: the types to\n"
	    "                    read, in this order)\n"
	    "      --window FIELD=FROM..TO  only records whose FIELD is an instant\n"
	    "                    from FROM up to, not including, TO\n"
	    "      --allow-empty accept an ndjson input with no lines\n"
	    "      --allow-missing  a store that does not exist reads as empty\n"
	    "      --changes     read the change feed (couchdb:, cloudkit: custom\n"
	    "                    zones, dir:, webdav:)\n"
	    "      --cursor-only only the cursor of where the feed stands now\n"
	    "                    (with --changes; no record read)\n"
	    "      --resume CURSOR  go on from the value of a cursor line\n"
	    "      --jobs N      webdav: requests at once (default 4)\n"
	    "      --shard I/N   only the records of shard I of N (1 <= I <= N)\n"
	    "      --map FILTER  make records of each input value with a jq filter\n"
	    "      --where FILTER  only records for which a jq filter is true\n"
	    "      --flat[=KEYNAME]  write plain objects, the key under KEYNAME\n"
	    "                    (default key), \"type\" unless -t names one type\n"
	    "      --insecure-http  allow plain http to a host that is not this\n"
	    "                    machine (couchdb:, webdav:)\n"
	    "      --check-args  check the options and SOURCE's word (with\n"
	    "                    --changes: that it has a change feed), then exit\n"
	    "  -h, --help        print this help and exit\n"
	    "  -V, --version     print the version and exit\n"
	    "\n"
	    "SOURCE: ndjson:PATH[?type=T&key=FIELD] | - | json:PATH[?type=T&key=FIELD&path=.A.B]\n"
	    "        | sqlite:DB?table=T&key=COL[&rev=COL][&type=T]\n"
	    "        | PATH (an existing file: ndjson:, folder: dir:)\n"
	    "        | dir:PATH | cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]\n"
	    "        | couchdb:http(s)://HOST[:PORT]/DB | webdav:URL\n");
}

/* What the sink does with each line: the options and their buffers. */
struct fetch {
	int paged;		/* a store that hands cursor lines */
	const struct fetch_opts *fo;
	struct filter *map, *where;
	const char *flat;	/* --flat's KEYNAME, or NULL */
	int flat_type;		/* --flat writes "type" */
	struct arena ain, aout;
	struct sb mapped, line;
};

/* "src:12: " or "src: " before the pending message. */
static void
where_from(const struct rline *l)
{
	if (l->lineno)
		rd_prefixerr("%s:%lu: ", l->src, l->lineno);
	else
		rd_prefixerr("%s: ", l->src);
}

/*
 * A key written as a JSON number by --flat: the digits of an integer as
 * JSON writes one, short enough that every reader holds it exactly.  Read
 * back under key=, its digits are the key again.
 */
static int
key_is_number(const char *k, size_t n)
{
	size_t i = n && k[0] == '-';

	if (i == n || n - i > 15 || (k[i] == '0' && n - i > 1) ||
	    (k[i] == '0' && i))
		return 0;
	for (; i < n; i++)
		if (k[i] < '0' || k[i] > '9')
			return 0;
	return 1;
}

/*
 * The record as a plain object into f->line: the key under KEYNAME, the
 * type under "type" when written, then the fields in their order.  -1 with
 * a message (status 3) for a tombstone, which has no plain form, and for a
 * field of either name.
 */
static int
flat_line(struct fetch *f, const struct record *r)
{
	size_t i, kn = strlen(f->flat);

	if (r->deleted) {
		rd_seterr(RD_EXIT_DATA, "--flat: record \"%s\" \"%s\" is deleted: "
		    "a plain object cannot say so", rd_quote(r->type, r->typelen),
		    rd_quote(r->key, r->keylen));
		return -1;
	}
	sb_reset(&f->line);
	sb_addc(&f->line, '{');
	json_write_string(&f->line, f->flat, kn);
	sb_addc(&f->line, ':');
	if (key_is_number(r->key, r->keylen))
		sb_add(&f->line, r->key, r->keylen);
	else
		json_write_string(&f->line, r->key, r->keylen);
	if (f->flat_type) {
		sb_adds(&f->line, ",\"type\":");
		json_write_string(&f->line, r->type, r->typelen);
	}
	for (i = 0; r->fields && i < r->fields->len; i++) {
		const struct json_member *m = &r->fields->u.members[i];

		if ((m->namelen == kn && memcmp(m->name, f->flat, kn) == 0) ||
		    (f->flat_type && m->namelen == 4 &&
		    memcmp(m->name, "type", 4) == 0)) {
			rd_seterr(RD_EXIT_DATA, "--flat: record \"%s\" \"%s\" has "
			    "a field \"%s\", the name of its %s in a plain "
			    "object (--flat=KEYNAME names another)",
			    rd_quote(r->type, r->typelen), rd_quote(r->key,
			    r->keylen), rd_quote(m->name, m->namelen),
			    m->namelen == kn && memcmp(m->name, f->flat, kn) == 0 ?
			    "key" : "type");
			return -1;
		}
		sb_addc(&f->line, ',');
		json_write_string(&f->line, m->name, m->namelen);
		sb_addc(&f->line, ':');
		json_write(&f->line, &m->value, 0);
	}
	sb_addc(&f->line, '}');
	return 0;
}

/* A record to write: --where, then --flat; text its record line. */
static int
emit(struct fetch *f, const struct rline *l, const char *text, size_t len,
    const struct record *r)
{
	if (f->where) {
		int k = filter_test(f->where, text, len);

		if (k < 0) {
			where_from(l);
			return -1;
		}
		if (k == 0)
			return 0;
	}
	if (f->flat) {
		if (flat_line(f, r) < 0) {
			where_from(l);
			return -1;
		}
		text = f->line.buf;
		len = f->line.len;
	}
	stream_out_line(text, len);
	return 0;
}

/*
 * --map on one value: its numbers checked, then each output made a record
 * (a record line, or a plain object under l->plain) and written.  From an
 * input of values (l->raw) the records pass -t and --window here.
 */
static int
map(struct fetch *f, const struct rline *l)
{
	struct json v, obj;
	struct record rec;
	const char *kind;
	size_t kindlen, nout = 0;
	int k;

	arena_reset(&f->ain);
	if (json_parse(&f->ain, l->text, l->len, &v, NULL) < 0)
		goto fail;
	if (filter_exact(&v) < 0) {
		rd_prefixerr("--map: ");
		goto fail;
	}
	if (filter_start(f->map, l->text, l->len) < 0)
		goto fail;
	while ((k = filter_next(f->map, &f->mapped)) > 0) {
		nout++;
		arena_reset(&f->aout);
		if (l->plain) {
			sb_reset(&f->line);
			if (json_parse(&f->aout, f->mapped.buf, f->mapped.len,
			    &obj, NULL) < 0 || plain_record_line(l->plain,
			    &f->aout, &obj, &rec, &f->line) < 0)
				goto badout;
			k = 1;
		} else {
			k = stream_parse_line(&f->aout, f->mapped.buf,
			    f->mapped.len, &obj, &rec, &kind, &kindlen);
			if (k < 0)
				goto badout;
			if (k == 0) {
				rd_seterr(RD_EXIT_DATA, "a \"%s\" line, not a record",
				    rd_quote(kind, kindlen));
				goto badout;
			}
		}
		/* The map's records, not its inputs, are of a type and a shard. */
		if ((l->raw && !fetch_wants(f->fo, &rec)) ||
		    !shard_keeps(&f->fo->shard, rec.type, rec.typelen, rec.key,
		    rec.keylen))
			continue;
		if (emit(f, l, l->plain ? f->line.buf : f->mapped.buf,
		    l->plain ? f->line.len : f->mapped.len, &rec) < 0)
			return -1;
	}
	if (k < 0)
		goto fail;
	return 0;
badout:
	rd_prefixerr("--map: output %zu: ", nout);
fail:
	where_from(l);
	return -1;
}

static int
put(void *ctx, const struct rline *l)
{
	struct fetch *f = ctx;

	if (f->map && (l->raw || l->rec)) {
		if (map(f, l) < 0)
			return -1;
	} else if (l->rec) {
		if (emit(f, l, l->text, l->len, l->rec) < 0)
			return -1;
	} else if (!f->flat) {
		/* Lines of other kinds pass through; --flat writes records. */
		stream_out_line(l->text, l->len);
	}
	/* A cursor is said at once: a reader may keep it and resume from it. */
	if (f->paged && !l->rec && !l->raw && fflush(stdout) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "write error: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "allow-empty", no_argument, NULL, 'E' },
		{ "window", required_argument, NULL, 'W' },
		{ "changes", no_argument, NULL, 'C' },
		{ "cursor-only", no_argument, NULL, 'O' },
		{ "resume", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "shard", required_argument, NULL, 'S' },
		{ "map", required_argument, NULL, 'M' },
		{ "where", required_argument, NULL, 'H' },
		{ "flat", optional_argument, NULL, 'F' },
		{ "allow-missing", no_argument, NULL, 'A' },
		{ "check-args", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct fetch_opts fo = { 0 };
	struct window_tally tally = { 0 };
	struct fetch f = { 0 };
	struct store_sink sink = { .put = put, .ctx = &f };
	const char *mapprog = NULL, *whereprog = NULL;
	struct store st;
	int c, ret, checkargs = 0;

	rd_setprogname(argv[0]);
	argv[0] = (char *)rd_progname;	/* getopt's messages use it */
	while ((c = getopt_long(argc, argv, "t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			fo.types = xreallocarray(fo.types, fo.ntypes + 1,
			    sizeof *fo.types);
			fo.types[fo.ntypes++] = optarg;
			break;
		case 'E':
			fo.allow_empty = 1;
			break;
		case 'W':
			if (fetch_window(&fo, optarg) < 0)
				rd_die_pending();
			break;
		case 'C':
			fo.changes = 1;
			break;
		case 'O':
			fo.cursor_only = 1;
			break;
		case 'R':
			fo.resume = optarg;
			break;
		case 'J':
			if (store_parse_jobs(optarg) < 0)
				rd_die_pending();
			break;
		case 'I':
			store_insecure_http = 1;
			break;
		case 'S':
			if (shard_parse(&fo.shard, optarg) < 0)
				rd_die_pending();
			break;
		case 'M':
			mapprog = optarg;
			break;
		case 'H':
			whereprog = optarg;
			break;
		case 'F':
			f.flat = optarg ? optarg : "key";
			if (!*f.flat || !utf8_valid(f.flat, strlen(f.flat)))
				rd_die(RD_EXIT_USAGE, "--flat: \"%s\": expected a "
				    "member name", rd_quote(f.flat,
				    strlen(f.flat)));
			break;
		case 'A':
			fo.missing_ok = 1;
			break;
		case 'K':
			checkargs = 1;
			break;
		case 'h':
			usage(stdout);
			return RD_EXIT_OK;
		case 'V':
			printf("recdelta-fetch %s\n", RD_VERSION);
			return RD_EXIT_OK;
		default:
			usage(stderr);
			return RD_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (fo.cursor_only && !fo.changes)
		rd_die(RD_EXIT_USAGE, "--cursor-only: only with --changes");
	if (fo.cursor_only && (fo.resume || f.flat || mapprog || whereprog ||
	    fo.wfield))
		rd_die(RD_EXIT_USAGE, "--cursor-only and %s: one or the other",
		    fo.resume ? "--resume" : f.flat ? "--flat" : mapprog ?
		    "--map" : whereprog ? "--where" : "--window");
	if (argc != 1) {
		rd_warn(argc ? "too many arguments" : "missing SOURCE");
		usage(stderr);
		return RD_EXIT_USAGE;
	}

	/* Compiled before anything is read: a bad filter is a usage error. */
	if (mapprog && !(f.map = filter_new("--map", mapprog)))
		rd_die_pending();
	if (whereprog && !(f.where = filter_new("--where", whereprog)))
		rd_die_pending();
	/* One type named: a plain object needs no "type" to say it. */
	f.flat_type = fo.ntypes != 1;

	if (rd_log_open(NULL) < 0)
		rd_die_pending();
	if (store_open(&st, argv[0]) < 0)
		rd_die_pending();
	if (fo.changes && store_feed_check(&st) < 0)
		rd_die_pending();
	if (fo.cursor_only && store_feed_now_check(&st) < 0)
		rd_die_pending();
	if (fo.resume && !st.ops->cursors)
		rd_die(RD_EXIT_USAGE, "%s: the %s: store has no cursors (--resume)",
		    argv[0], st.ops->scheme);
	if (checkargs) {
		store_close(&st);
		free(fo.types);
		free(fo.wfield);
		filter_free(f.map);
		filter_free(f.where);
		return RD_EXIT_OK;
	}
	/* --flat writes records alone: no cursor lines among them. */
	fo.cursors = !f.flat;
	fo.raw = f.map != NULL;
	f.paged = st.ops->cursors && fo.cursors;
	f.fo = &fo;
	arena_init(&f.ain);
	arena_init(&f.aout);
	sb_init(&f.mapped, 1024);
	sb_init(&f.line, 1024);
	stream_out_init();
	fo.tally = &tally;
	ret = store_fetch(&st, &fo, &sink);
	if (ret == 0)
		ret = window_tally_check(&fo, argv[0]);
	free(tally.example);
	store_close(&st);
	free(fo.types);
	free(fo.wfield);
	filter_free(f.map);
	filter_free(f.where);
	arena_release(&f.ain);
	arena_release(&f.aout);
	sb_release(&f.mapped);
	sb_release(&f.line);
	if (ret < 0) {
		fflush(stdout);
		rd_die_pending();
	}
	if (stream_out_close() < 0)
		rd_die_pending();
	return RD_EXIT_OK;
}
