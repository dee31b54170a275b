/*
 * recdelta-checkpoint - run state: base snapshot, cursors, windows, history,
 * lock, outbox and the preflight, in one SQLite database per scope.
 *
 * `record` reads a stream on standard input and writes every line of it on
 * standard output unchanged and in order, while it records the result,
 * cursor and conflict lines in the state, one transaction per batch; a
 * batch's lines are flushed before it commits, so the state never holds a
 * confirmation that was not both read and passed on.  `base`, `outbox`,
 * `windows pending --json`, `history --json`, `show --json` and `conflicts
 * --json` write NDJSON lines; the other subcommands write short reports for
 * people.  Messages, notices and refusals go to standard error.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/index.h"
#include "../lib/insync.h"
#include "../lib/record.h"
#include "../lib/log.h"
#include "../lib/state.h"
#include "../lib/store.h"
#include "../lib/stream.h"

#define DEFAULT_BATCH 1000

static const char *state_opt;	/* --state, or NULL */
static const char *scope_opt;	/* --scope, or NULL */

/* The synopsis alone after a usage error, all of it for --help. */
static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-checkpoint [--state PATH] [--scope SCOPE] SUBCOMMAND [options]\n"
	    "       recdelta-checkpoint record --scope SCOPE [--run ID] [--flow NAME] [--batch N]\n"
	    "                                  [--window START] [--undoes RUN]\n"
	    "       recdelta-checkpoint base [--count] [-t TYPE]...\n"
	    "       recdelta-checkpoint fold [--full] [-t TYPE]...\n"
	    "       recdelta-checkpoint fold --check\n"
	    "       recdelta-checkpoint cursor get NAME\n"
	    "       recdelta-checkpoint cursor set NAME VALUE\n"
	    "       recdelta-checkpoint windows plan --from DATE --to DATE [--step STEP]\n"
	    "       recdelta-checkpoint windows pending [--json]\n"
	    "       recdelta-checkpoint windows done START\n"
	    "       recdelta-checkpoint windows fail START --reason TEXT\n"
	    "       recdelta-checkpoint windows reset (--from DATE --to DATE | --all)\n"
	    "       recdelta-checkpoint windows coverage [--json]\n"
	    "       recdelta-checkpoint windows calendar\n"
	    "       recdelta-checkpoint windows report\n"
	    "       recdelta-checkpoint status [--json] [--check] [--pid PID]\n"
	    "       recdelta-checkpoint preflight --scope SCOPE [--pid PID]\n"
	    "       recdelta-checkpoint lock --scope SCOPE [--pid PID]\n"
	    "       recdelta-checkpoint unlock [--pid PID] [--force]\n"
	    "       recdelta-checkpoint run start --scope SCOPE --flow NAME [--pid PID]\n"
	    "       recdelta-checkpoint run end RUN [--partial]\n"
	    "       recdelta-checkpoint scope [-z] [--source SRC] [--shard I/N] TARGET\n"
	    "       recdelta-checkpoint history [--json]\n"
	    "       recdelta-checkpoint show [--json] [--values] RUN\n"
	    "       recdelta-checkpoint undo [--scope SCOPE] RUN\n"
	    "       recdelta-checkpoint conflicts [--json] [--all] [-t TYPE]...\n"
	    "       recdelta-checkpoint conflicts review (ID... | --all [-t TYPE]...)\n"
	    "       recdelta-checkpoint outbox\n"
	    "       recdelta-checkpoint prune [--runs N | [--sparse [--digest FILE] |\n"
	    "                                 --whole] [--cursor NAME] [-t TYPE]...]\n");
	if (fp == stderr)
		return;
	fprintf(fp,
	    "\n"
	    "      --state PATH   the state database (default $RECDELTA_STATE,\n"
	    "                     else .recdelta/state.db)\n"
	    "      --scope SCOPE  the remote's identity plus the data set\n"
	    "      --source SRC   the store a flow reads from, for its scope\n"
	    "      --shard I/N    the scope of shard I of N: \"#shard=I/N\" appended\n"
	    "  -z                 end each value with NUL, not a newline\n"
	    "      --run ID       continue run ID instead of starting a new one\n"
	    "      --flow NAME    the flow the run belongs to\n"
	    "      --batch N      lines per transaction (default 1000)\n"
	    "      --window START mark the window done with the last results\n"
	    "      --undoes RUN   the run recorded takes back run RUN\n"
	    "      --runs N       keep the before-images of the newest N runs\n"
	    "                     (default 50)\n"
	    "      --values       show the records' fields before and after\n"
	    "  -t, --type TYPE    only records of TYPE\n"
	    "      --step STEP    window length: Nd or Nh (default 1d)\n"
	    "      --pid PID      the run's owner (default: the parent process)\n"
	    "      --check        exit 1 when the preflight would refuse (status),\n"
	    "                     when the feed changes the base (fold)\n"
	    "      --force        release a lock held by another process\n"
	    "      --partial      end the run as partial\n"
	    "      --full         the feed is a whole read: the base left out (fold)\n"
	    "      --cursor NAME  keep the input's last cursor as NAME (prune)\n"
	    "      --sparse       the results name only what changed: remove only\n"
	    "                     the records the feed said were gone (prune)\n"
	    "      --whole        the run read the remote whole: keep what it read\n"
	    "                     of the records it did not settle (prune)\n"
	    "      --count        print the number of rows, not the rows (base)\n"
	    "      --digest FILE  store the in-step digest recdelta-diff --digest-out\n"
	    "                     wrote, settled against the base (prune --sparse)\n"
	    "      --all          every window (windows reset), every conflict\n"
	    "                     (conflicts, conflicts review)\n"
	    "      --json         write NDJSON\n"
	    "  -h, --help         print this help and exit\n"
	    "  -V, --version      print the version and exit\n");
}

static _Noreturn void
badusage(const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fflush(stdout);
		fprintf(stderr, "%s: ", rd_progname);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	usage(stderr);
	exit(RD_EXIT_USAGE);
}

/*
 * Options every subcommand takes, then its own.  Parsing starts at argv[1],
 * argv[0] being the subcommand; the GNU getopt is reset with optind 0.
 */
enum {
	O_STATE = 256, O_SUMMARY, O_SCOPE, O_RUN, O_FLOW, O_BATCH, O_WINDOW, O_FROM, O_TO, O_STEP,
	O_REASON, O_JSON, O_CHECK, O_PID, O_FORCE, O_ALL, O_PARTIAL, O_SOURCE,
	O_SHARD, O_UNDOES, O_RUNS, O_VALUES, O_FULL, O_CURSOR, O_SPARSE,
	O_WHOLE, O_DIGEST, O_COUNT
};

struct subopts {
	long run, pid, undoes, runs;	/* runs: -1 when not given */
	int values;
	const char *flow, *from, *to, *step, *reason, *window, *source, *cursor;
	const char *digest;
	struct shard shard;	/* --shard; n 0: none */
	size_t batch;
	int json, check, force, all, partial, nul, summary, full, sparse, whole;
	int count;
	char **types;
	size_t ntypes;
};

static long
number(const char *opt, const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > max)
		badusage("%s: \"%s\" is not a number from 1 to %ld", opt,
		    rd_quote(s, strlen(s)), max);
	return v;
}

/* Parse argv, allowing the common options and those of allowed (0-ended). */
static int
parse_opts(int argc, char **argv, const int *allowed, struct subopts *o)
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, O_STATE },
		{ "scope", required_argument, NULL, O_SCOPE },
		{ "run", required_argument, NULL, O_RUN },
		{ "summary", no_argument, NULL, O_SUMMARY },
		{ "flow", required_argument, NULL, O_FLOW },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "type", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, O_FROM },
		{ "to", required_argument, NULL, O_TO },
		{ "step", required_argument, NULL, O_STEP },
		{ "reason", required_argument, NULL, O_REASON },
		{ "json", no_argument, NULL, O_JSON },
		{ "check", no_argument, NULL, O_CHECK },
		{ "pid", required_argument, NULL, O_PID },
		{ "force", no_argument, NULL, O_FORCE },
		{ "all", no_argument, NULL, O_ALL },
		{ "partial", no_argument, NULL, O_PARTIAL },
		{ "source", required_argument, NULL, O_SOURCE },
		{ "shard", required_argument, NULL, O_SHARD },
		{ "undoes", required_argument, NULL, O_UNDOES },
		{ "runs", required_argument, NULL, O_RUNS },
		{ "values", no_argument, NULL, O_VALUES },
		{ "full", no_argument, NULL, O_FULL },
		{ "cursor", required_argument, NULL, O_CURSOR },
		{ "sparse", no_argument, NULL, O_SPARSE },
		{ "whole", no_argument, NULL, O_WHOLE },
		{ "digest", required_argument, NULL, O_DIGEST },
		{ "count", no_argument, NULL, O_COUNT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const int *a;
	int c, ok;

	memset(o, 0, sizeof *o);
	o->batch = DEFAULT_BATCH;
	o->runs = -1;
	argv[0] = (char *)rd_progname;	/* getopt's messages use it */
	optind = 0;
	while ((c = getopt_long(argc, argv, "t:zhV", longopts, NULL)) != -1) {
		for (ok = 0, a = allowed; *a; a++)
			ok |= *a == c;
		if (c == O_STATE || c == O_SCOPE || c == 'h' || c == 'V')
			ok = 1;
		if (c == '?')
			badusage(NULL);
		if (!ok)
			badusage("option \"%s\" does not go with this subcommand",
			    argv[optind - 1]);
		switch (c) {
		case O_STATE:
			state_opt = optarg;
			break;
		case O_SCOPE:
			scope_opt = optarg;
			break;
		case O_RUN:
			o->run = number("--run", optarg, LONG_MAX);
			break;
		case O_SUMMARY:
			o->summary = 1;
			break;
		case O_FLOW:
			o->flow = optarg;
			break;
		case O_BATCH:
			o->batch = (size_t)number("--batch", optarg, 10000000);
			break;
		case O_WINDOW:
			o->window = optarg;
			break;
		case 't':
			o->types = xreallocarray(o->types, o->ntypes + 1,
			    sizeof *o->types);
			o->types[o->ntypes++] = optarg;
			break;
		case O_FROM:
			o->from = optarg;
			break;
		case O_TO:
			o->to = optarg;
			break;
		case O_STEP:
			o->step = optarg;
			break;
		case O_REASON:
			o->reason = optarg;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_CHECK:
			o->check = 1;
			break;
		case O_PID:
			o->pid = number("--pid", optarg, INT_MAX);
			break;
		case O_ALL:
			o->all = 1;
			break;
		case O_FORCE:
			o->force = 1;
			break;
		case O_PARTIAL:
			o->partial = 1;
			break;
		case O_SOURCE:
			o->source = optarg;
			break;
		case O_SHARD:
			if (shard_parse(&o->shard, optarg) < 0)
				badusage("%s", rd_errmsg());
			break;
		case O_UNDOES:
			o->undoes = number("--undoes", optarg, LONG_MAX);
			break;
		case O_RUNS:
			/* 0 keeps no images. */
			o->runs = strcmp(optarg, "0") == 0 ? 0 :
			    number("--runs", optarg, LONG_MAX);
			break;
		case O_VALUES:
			o->values = 1;
			break;
		case O_FULL:
			o->full = 1;
			break;
		case O_CURSOR:
			if (!*optarg)
				badusage("--cursor: empty name");
			o->cursor = optarg;
			break;
		case O_SPARSE:
			o->sparse = 1;
			break;
		case O_WHOLE:
			o->whole = 1;
			break;
		case O_COUNT:
			o->count = 1;
			break;
		case O_DIGEST:
			if (!*optarg)
				badusage("--digest: empty path");
			o->digest = optarg;
			break;
		case 'z':
			o->nul = 1;
			break;
		case 'h':
			usage(stdout);
			exit(RD_EXIT_OK);
		case 'V':
			printf("recdelta-checkpoint %s\n", RD_VERSION);
			exit(RD_EXIT_OK);
		}
	}
	if (!o->pid)
		o->pid = (long)getppid();
	return optind;
}

static void
need_args(int have, int want, const char *what)
{
	if (have < want)
		badusage("missing %s", what);
	if (have > want)
		badusage("too many arguments");
}

static const char *
need_scope(void)
{
	if (!scope_opt)
		badusage("--scope is required");
	if (!*scope_opt)
		badusage("--scope: empty scope");
	return scope_opt;
}

static struct state *
open_state(int flags)
{
	struct state *s;

	if (state_open(&s, state_opt, flags) < 0)
		rd_die_pending();
	return s;
}

/* Print the pending error after releasing the state, and exit. */
static _Noreturn void
die_state(struct state *s)
{
	char msg[1024];
	int status = rd_errstatus();

	snprintf(msg, sizeof msg, "%s", rd_errmsg());
	state_close(s);
	rd_die(status, "%s", msg);
}

/* Print a refusal or notice: the program name before each unindented line. */
static void
print_lines(const struct sb *m)
{
	const char *p = m->buf, *nl;

	fflush(stdout);
	while (*p) {
		nl = strchr(p, '\n');
		if (!nl)
			nl = p + strlen(p);
		if (*p != ' ')
			fprintf(stderr, "%s: ", rd_progname);
		fprintf(stderr, "%.*s\n", (int)(nl - p), p);
		p = *nl ? nl + 1 : nl;
	}
}

static void
finish_out(struct state *s)
{
	if (stream_out_close() < 0) {
		state_close(s);
		rd_die_pending();
	}
	state_close(s);
}

/* Append bytes for a report line, control characters escaped. */
static void
add_text(struct sb *out, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f)
			sb_addf(out, "\\x%02x", c);
		else
			sb_addc(out, (char)c);
	}
}

/* record */

/*
 * True when the reader holds no whole line and nothing waits on its input:
 * the writer has paused, so what was read is confirmed now rather than at
 * the end of a batch that may be long in coming.
 */
static int
input_idle(const struct lreader *r)
{
	struct pollfd p;

	if (r->eof || memchr(r->buf + r->start, '\n', r->end - r->start))
		return 0;
	p.fd = r->fd;
	p.events = POLLIN;
	p.revents = 0;
	return poll(&p, 1, 0) == 0;
}

/*
 * What a two-way sync did, from the lines record saw: per side, the records
 * created, updated and deleted (results with that target, status ok); the
 * records that went to both sides (merged); the conflict lines; and the
 * changes a side refused or could not take.  Keys are kept as 64-bit hashes
 * of (type, key), with the sides each was written to.
 */
struct tally2 {
	unsigned long n[3][RD_OP_N];	/* [side][op], ok results */
	unsigned long merged, conflicts, refused, failed, deferred;
	uint64_t *keys;			/* hash << 2 | sides, 0: free */
	size_t cap, len;
};

static void
tally2_key(struct tally2 *t, uint64_t h, enum rd_side side)
{
	size_t i, old;
	uint64_t *prev;

	h = (h << 2) | 0;
	if (!h)
		h = 4;
	if (2 * (t->len + 1) > t->cap) {
		prev = t->keys;
		old = t->cap;
		t->cap = t->cap ? 2 * t->cap : 1024;
		t->keys = xcalloc(t->cap, sizeof *t->keys);
		t->len = 0;
		for (i = 0; i < old; i++) {
			uint64_t e = prev[i];
			size_t j;

			if (!e)
				continue;
			for (j = (e >> 2) & (t->cap - 1); t->keys[j];
			    j = (j + 1) & (t->cap - 1))
				;
			t->keys[j] = e;
			t->len++;
		}
		free(prev);
	}
	for (i = (h >> 2) & (t->cap - 1); t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (t->keys[i] >> 2 == h >> 2)
			break;
	if (!t->keys[i]) {
		t->keys[i] = h;
		t->len++;
	}
	if ((t->keys[i] & 3) == 3)
		return;
	t->keys[i] |= side == RD_SIDE_LOCAL ? 1 : 2;
	if ((t->keys[i] & 3) == 3)
		t->merged++;
}

static void
tally2_line(struct tally2 *t, const struct json *obj, enum rd_kind kind)
{
	struct result res;

	if (kind == RD_KIND_CONFLICT) {
		t->conflicts++;
		return;
	}
	if (kind != RD_KIND_RESULT || stream_get_result(obj, &res) < 0 ||
	    res.target == RD_SIDE_NONE)
		return;
	switch (res.status) {
	case RD_ST_OK:
		if (res.op == RD_OP_SAME)
			break;
		t->n[res.target][res.op]++;
		tally2_key(t, index_keyhash(res.type, res.typelen, res.key,
		    res.keylen), res.target);
		break;
	case RD_ST_CONFLICT:
		t->refused++;
		break;
	case RD_ST_FAILED:
		t->failed++;
		break;
	case RD_ST_DEFERRED:
		t->deferred++;
		break;
	default:
		break;
	}
}

static void
tally2_print(const struct tally2 *t)
{
	static const enum rd_side sides[2] = { RD_SIDE_LOCAL, RD_SIDE_REMOTE };
	int i;

	for (i = 0; i < 2; i++)
		fprintf(stderr, "%s: created %lu, updated %lu, deleted %lu; ",
		    i ? "Remote" : "Local", t->n[sides[i]][RD_OP_CREATE],
		    t->n[sides[i]][RD_OP_UPDATE], t->n[sides[i]][RD_OP_DELETE]);
	fprintf(stderr, "Merged %lu; Conflicts %lu\n", t->merged, t->conflicts);
	if (t->refused)
		fprintf(stderr, "%s: %lu record%s changed by another writer "
		    "during the sync: left for the next run\n", rd_progname,
		    t->refused, t->refused == 1 ? "" : "s");
	if (t->failed || t->deferred)
		fprintf(stderr, "%s: %lu change%s failed, %lu deferred to the "
		    "outbox\n", rd_progname, t->failed,
		    t->failed == 1 ? "" : "s", t->deferred);
}

static int
cmd_record(int argc, char **argv)
{
	static const int allowed[] = { O_RUN, O_FLOW, O_BATCH, O_WINDOW,
	    O_SUMMARY, O_UNDOES, 0 };
	struct tally2 t2;
	struct subopts o;
	struct state *s;
	struct lreader r;
	struct arena a;
	struct json obj;
	struct record rec;
	const char *line, *scope;
	size_t len, n = 0;
	unsigned long lines = 0;
	int k;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	scope = need_scope();
	if (rd_log_open(NULL) < 0)
		rd_die_pending();
	memset(&t2, 0, sizeof t2);

	s = open_state(STATE_WRITE);
	if (state_record_start(s, scope, o.run, o.flow) < 0 ||
	    (o.window && state_record_window(s, o.window) < 0) ||
	    (o.undoes && state_record_undoes(s, o.undoes) < 0))
		die_state(s);
	if (lreader_open(&r, "-") < 0)
		die_state(s);
	arena_init(&a);
	stream_out_init();
	while ((k = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		k = stream_parse_kind(&a, line, len, &obj);
		if (k == RD_KIND_RECORD)
			k = stream_get_record(&obj, &rec);
		else if (k >= 0) {
			enum rd_kind kind = (enum rd_kind)k;

			k = state_record_line(s, &obj, kind);
			if (k >= 0 && o.summary)
				tally2_line(&t2, &obj, kind);
		}
		if (k < 0) {
			if (rd_errstatus() == RD_EXIT_DATA)
				rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			break;
		}
		stream_out_line(line, len);
		lines++;
		if (++n < o.batch && !input_idle(&r))
			continue;
		n = 0;
		if (fflush(stdout) != 0) {
			rd_seterr(RD_EXIT_RUNTIME, "write error: %s",
			    strerror(errno));
			k = -1;
			break;
		}
		if ((k = state_record_commit(s)) < 0)
			break;
	}
	arena_release(&a);
	lreader_close(&r);
	if (k == 0 && fflush(stdout) != 0) {
		rd_seterr(RD_EXIT_RUNTIME, "write error: %s", strerror(errno));
		k = -1;
	}
	if (k == 0 && state_record_finish(s) < 0)
		k = -1;
	if (k < 0) {
		rd_log("error", "record failed", NULL);
		state_record_abort(s);
		fflush(stdout);
		die_state(s);
	}
	{
		char ctx[64];

		snprintf(ctx, sizeof ctx, "\"lines\":%lu", lines);
		rd_log("info", "record done", ctx);
	}
	if (o.summary)
		tally2_print(&t2);
	free(t2.keys);
	rd_log_close();
	finish_out(s);
	return RD_EXIT_OK;
}

/* base */

static int
typecmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
base_row(void *ctx, const struct state_baserow *row)
{
	struct sb *b = ctx;
	struct record rec = {
		.type = row->type, .typelen = row->typelen,
		.key = row->key, .keylen = row->keylen,
		.rev = row->rev, .revlen = row->revlen,
	};

	sb_reset(b);
	stream_write_record_text(b, &rec, row->fields, row->fieldslen);
	stream_out_line(b->buf, b->len);
	return 0;
}

/*
 * The rows each() gives, as record lines: of the types of -t (each once, in
 * order), or all.
 */
static int
rows_out(struct state *s, struct subopts *o, int (*each)(struct state *,
    const char *, int (*)(void *, const struct state_baserow *), void *),
    struct sb *b)
{
	size_t i;
	int ret = 0;

	if (!o->ntypes)
		return each(s, NULL, base_row, b);
	qsort(o->types, o->ntypes, sizeof *o->types, typecmp);
	for (i = 0; i < o->ntypes && ret == 0; i++)
		if (i == 0 || strcmp(o->types[i], o->types[i - 1]) != 0)
			ret = each(s, o->types[i], base_row, b);
	return ret;
}

static int
cmd_base(int argc, char **argv)
{
	static const int allowed[] = { 't', O_COUNT, 0 };
	struct subopts o;
	struct state *s;
	struct sb b;
	long long n;
	int ret;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	s = open_state(0);
	if (o.count) {
		/* Kept by the base's triggers: no row is read. */
		if (state_base_count(s, o.types, o.ntypes, &n) < 0)
			die_state(s);
		free(o.types);
		printf("%lld\n", n);
		finish_out(s);
		return RD_EXIT_OK;
	}
	stream_out_init();
	sb_init(&b, 4096);
	ret = rows_out(s, &o, state_base_each, &b);
	sb_release(&b);
	free(o.types);
	if (ret < 0)
		die_state(s);
	finish_out(s);
	return RD_EXIT_OK;
}

/*
 * Whether folding in one record (fields NULL: a tombstone) leaves the base
 * as it is: 1, 0, or -1 with a message.
 */
static int
fold_keeps(struct state *s, const char *type, size_t typelen,
    const char *key, size_t keylen, const char *rev, size_t revlen,
    const struct json *fields, struct sb *scratch)
{
	struct ruleview none = { 0 };
	unsigned char h[RD_HASH_LEN];
	char hex[2 * RD_HASH_LEN + 1];

	if (fields) {
		if (record_hash(&none, fields, h, scratch) < 0)
			return -1;
		hex_encode(hex, h, RD_HASH_LEN);
	}
	return state_fold_keeps(s, type, typelen, key, keylen, rev, revlen,
	    fields ? hex : NULL);
}

struct seencheck {
	struct state *s;
	struct arena a;
	struct sb scratch;
	int keeps;
};

/* A row of feed_seen, as fold_keeps() sees one record of the feed. */
static int
seen_keeps(void *ctx, const struct state_baserow *row)
{
	struct seencheck *c = ctx;
	struct json fields;
	int k;

	arena_reset(&c->a);
	if (row->fields && json_parse(&c->a, arena_memdup(&c->a, row->fields,
	    row->fieldslen), row->fieldslen, &fields, NULL) < 0) {
		rd_prefixerr("%s: feed_seen: ", state_path(c->s));
		return -1;
	}
	if ((k = fold_keeps(c->s, row->type, row->typelen, row->key,
	    row->keylen, row->rev, row->revlen, row->fields ? &fields : NULL,
	    &c->scratch)) < 0)
		return -1;
	if (!k) {
		c->keeps = 0;
		return 1;	/* stop: one is enough */
	}
	return 0;
}

/*
 * fold --check: whether the feed on standard input, with what earlier feeds
 * said (feed_seen), leaves the base as it is, every record of it one the
 * base holds at its rev with its content and every tombstone of a key the
 * base does not hold; then the fold would write the base as base does.
 * RD_EXIT_OK or RD_EXIT_FOUND; nothing is written.  Every line is read, so
 * that bad input is still an error.
 */
static int
fold_check(struct state *s, struct lreader *r)
{
	struct seencheck c = { s, { 0 }, { 0 }, 1 };
	struct json obj;
	struct record rec;
	const char *line, *kind;
	size_t len, kindlen;
	int n, k;

	if (state_fold_check_begin(s) < 0)
		return -1;
	arena_init(&c.a);
	sb_init(&c.scratch, 4096);
	while ((n = lreader_next(r, &line, &len)) > 0) {
		arena_reset(&c.a);
		if ((k = stream_parse_line(&c.a, line, len, &obj, &rec, &kind,
		    &kindlen)) < 0) {
			rd_prefixerr("%s:%lu: ", r->name, r->lineno);
			n = -1;
			break;
		}
		if (k == 0 || !c.keeps)
			continue;
		if ((k = fold_keeps(s, rec.type, rec.typelen, rec.key,
		    rec.keylen, rec.rev, rec.revlen, rec.deleted ||
		    !rec.fields ? NULL : rec.fields, &c.scratch)) < 0) {
			n = -1;
			break;
		}
		c.keeps = k;
	}
	if (n == 0 && c.keeps && state_feed_seen_each(s, seen_keeps, &c) < 0)
		n = -1;
	arena_release(&c.a);
	sb_release(&c.scratch);
	state_fold_check_end(s);
	return n < 0 ? -1 : c.keeps ? RD_EXIT_OK : RD_EXIT_FOUND;
}

/*
 * fold: the base snapshot with the record lines of a change feed on
 * standard input folded in (a record replaces the base's of its type and
 * key, a tombstone removes it; other lines are ignored), on standard
 * output as base writes it; with --full the feed alone, a whole read of
 * the store.  The state is only read.
 */
static int
cmd_fold(int argc, char **argv)
{
	static const int allowed[] = { 't', O_FULL, O_CHECK, 0 };
	struct subopts o;
	struct state *s;
	struct lreader r;
	struct arena a;
	struct json obj;
	struct record rec;
	struct sb b;
	const char *line, *kind;
	size_t len, kindlen;
	int n, k, ret = 0;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	if (o.check && (o.full || o.ntypes))
		badusage("fold: --check takes neither --full nor -t");
	s = open_state(0);
	if (lreader_open(&r, "-") < 0)
		die_state(s);
	if (o.check) {
		ret = fold_check(s, &r);
		lreader_close(&r);
		if (ret < 0)
			die_state(s);
		state_close(s);
		return ret;
	}
	if (state_fold_begin(s, o.full) < 0)
		die_state(s);
	arena_init(&a);
	sb_init(&b, 4096);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		if ((k = stream_parse_line(&a, line, len, &obj, &rec, &kind,
		    &kindlen)) < 0) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			n = -1;
			break;
		}
		if (k == 0)
			continue;
		sb_reset(&b);
		if (!rec.deleted && rec.fields)
			json_write(&b, rec.fields, 0);
		if (state_fold_put(s, rec.type, rec.typelen, rec.key,
		    rec.keylen, rec.rev, rec.revlen,
		    rec.deleted || !rec.fields ? NULL : b.buf, b.len) < 0) {
			n = -1;
			break;
		}
	}
	arena_release(&a);
	lreader_close(&r);
	if (n < 0)
		die_state(s);
	stream_out_init();
	ret = rows_out(s, &o, state_fold_each, &b);
	sb_release(&b);
	free(o.types);
	if (ret < 0)
		die_state(s);
	state_fold_end(s);
	finish_out(s);
	return RD_EXIT_OK;
}

/* cursor */

static int
cmd_cursor(int argc, char **argv)
{
	struct subopts o;
	struct state *s;
	const char *verb;
	char *value;
	int k;

	argc -= parse_opts(argc, argv, (const int[]){ 0 }, &o);
	argv += optind;
	if (argc < 1)
		badusage("cursor: missing get or set");
	verb = argv[0];
	if (strcmp(verb, "get") == 0) {
		need_args(argc - 1, 1, "NAME");
		s = open_state(0);
		if ((k = state_cursor_get(s, argv[1], &value)) < 0)
			die_state(s);
		state_close(s);
		if (k == 0)
			return RD_EXIT_FOUND;
		stream_out_init();
		stream_out_line(value, strlen(value));
		free(value);
		if (stream_out_close() < 0)
			rd_die_pending();
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "set") == 0) {
		need_args(argc - 1, 2, "NAME VALUE");
		s = open_state(STATE_WRITE);
		if (state_cursor_set(s, argv[1], argv[2]) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	badusage("cursor: unknown verb \"%s\" (expected get or set)",
	    rd_quote(verb, strlen(verb)));
}

/* windows */

/* A date (the day's start, or its end with end set) or a date-time. */
static long long
parse_when(const char *opt, const char *s, int end)
{
	char buf[32];
	long long sec;
	long nsec;

	if (strlen(s) == 10) {
		snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
		if (rd_parse_iso8601(buf, strlen(buf), &sec, &nsec) == 0)
			return sec + (end ? 86400 : 0);
	} else if (rd_parse_iso8601(s, strlen(s), &sec, &nsec) == 0) {
		return sec;
	}
	badusage("%s: \"%s\" is not a date (YYYY-MM-DD) or a date-time "
	    "(YYYY-MM-DDTHH:MM:SSZ)", opt, rd_quote(s, strlen(s)));
}

static long long
parse_step(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || v < 1 || v > 100000 ||
	    (strcmp(end, "d") != 0 && strcmp(end, "h") != 0))
		badusage("--step: \"%s\" is not a step (Nd or Nh)",
		    rd_quote(s, strlen(s)));
	return (long long)v * (*end == 'd' ? 86400 : 3600);
}

static int
window_line(void *ctx, const struct state_window *w)
{
	struct sb *b = ctx;

	sb_reset(b);
	sb_adds(b, "{\"kind\":\"window\",\"start\":");
	json_write_string(b, w->start, strlen(w->start));
	sb_adds(b, ",\"end\":");
	json_write_string(b, w->end, strlen(w->end));
	sb_adds(b, ",\"status\":");
	json_write_string(b, w->status, strlen(w->status));
	if (w->reason) {
		sb_adds(b, ",\"reason\":");
		json_write_string(b, w->reason, strlen(w->reason));
	}
	sb_adds(b, ",\"updated\":");
	json_write_string(b, w->updated, strlen(w->updated));
	sb_addc(b, '}');
	stream_out_line(b->buf, b->len);
	return 0;
}

static int
window_start(void *ctx, const struct state_window *w)
{
	(void)ctx;
	stream_out_line(w->start, strlen(w->start));
	return 0;
}

struct gaps {
	struct state_gap *g;
	size_t n;
	char **names;	/* start and end of each */
};

static int
gap_add(void *ctx, const struct state_gap *g)
{
	struct gaps *gs = ctx;

	gs->g = xreallocarray(gs->g, gs->n + 1, sizeof *gs->g);
	gs->names = xreallocarray(gs->names, 2 * (gs->n + 1), sizeof *gs->names);
	gs->g[gs->n] = *g;
	gs->names[2 * gs->n] = xstrdup(g->start);
	gs->names[2 * gs->n + 1] = xstrdup(g->end);
	gs->g[gs->n].start = gs->names[2 * gs->n];
	gs->g[gs->n].end = gs->names[2 * gs->n + 1];
	gs->n++;
	return 0;
}

static void
gaps_release(struct gaps *gs)
{
	size_t i;

	for (i = 0; i < 2 * gs->n; i++)
		free(gs->names[i]);
	free(gs->names);
	free(gs->g);
}

/*
 * A gap as people read it: days named by date run to their last day
 * inclusive ("2025-01-03..2025-01-05", or one date alone); anything else is
 * START..END with END exclusive.
 */
static void
gap_text(struct sb *out, const struct state_coverage *c,
    const struct state_gap *g)
{
	char last[32];
	long long n = (g->t1 - g->t0) / c->unitsec;

	if (c->unitsec == 86400 && strlen(g->start) == 10) {
		state_fmt_time(last, sizeof last, g->t1 - 86400, 1);
		if (strcmp(last, g->start) == 0)
			sb_adds(out, g->start);
		else
			sb_addf(out, "%s..%s", g->start, last);
	} else {
		sb_addf(out, "%s..%s", g->start, g->end);
	}
	sb_addf(out, " (%lld %.*s)", n, (int)strlen(c->unit) - (n == 1),
	    c->unit);
}

/* Rounded, but 100% only when all is done. */
static long long
percent(const struct state_coverage *c)
{
	long long p;

	if (!c->total)
		return 0;
	p = (c->done * 200 + c->total) / (2 * c->total);
	return p == 100 && c->done < c->total ? 99 : p;
}

static void
coverage_text(struct sb *out, const struct state_coverage *c)
{
	if (!c->windows) {
		sb_adds(out, "no windows planned");
		return;
	}
	sb_addf(out, "%lld%% complete (%lld/%lld %s)", percent(c), c->done,
	    c->total, c->unit);
}

static void
coverage_json(struct sb *out, const struct state_coverage *c,
    const struct gaps *gs)
{
	size_t i;

	sb_addf(out, "{\"percent\":%lld,\"done\":%lld,\"total\":%lld,"
	    "\"unit\":\"%s\",\"windows\":%lu,\"windows_done\":%lu,\"gaps\":[",
	    percent(c), c->done, c->total, c->unit, c->windows,
	    c->windows_done);
	for (i = 0; i < gs->n; i++) {
		if (i)
			sb_addc(out, ',');
		sb_adds(out, "{\"start\":");
		json_write_string(out, gs->g[i].start, strlen(gs->g[i].start));
		sb_adds(out, ",\"end\":");
		json_write_string(out, gs->g[i].end, strlen(gs->g[i].end));
		sb_addf(out, ",\"windows\":%lu}", gs->g[i].windows);
	}
	sb_adds(out, "]}");
}

/*
 * The calendar: a cell a day, a line a month ("2025-01 ##x..."), the day
 * done when all its windows are, failed when one of them failed, else
 * pending.  Colours (green, red, grey) on a terminal unless NO_COLOR is set;
 * letters otherwise.
 */
struct cal {
	struct sb *out;
	int color, state, any;	/* state: 0 done, 1 pending, 2 failed */
	char day[11], month[8];
};

static void
cal_flush(struct cal *c)
{
	static const char *const cells[2][3] = {
		{ "#", ".", "x" },
		{ "\033[42m \033[0m", "\033[100m \033[0m", "\033[41m \033[0m" },
	};

	if (!c->any)
		return;
	if (strncmp(c->day, c->month, 7) != 0 || !c->month[0]) {
		if (c->month[0])
			sb_addc(c->out, '\n');
		memcpy(c->month, c->day, 7);
		c->month[7] = '\0';
		sb_addf(c->out, "%s ", c->month);
	}
	sb_adds(c->out, cells[c->color][c->state]);
}

static int
cal_window(void *ctx, const struct state_window *w)
{
	struct cal *c = ctx;
	int st = strcmp(w->status, "done") == 0 ? 0 :
	    strcmp(w->status, "failed") == 0 ? 2 : 1;

	if (!c->any || strncmp(c->day, w->start, 10) != 0) {
		cal_flush(c);
		snprintf(c->day, sizeof c->day, "%.10s", w->start);
		c->state = st;
		c->any = 1;
	} else if (st > c->state) {
		c->state = st;
	}
	return 0;
}

static int
calendar_text(struct state *s, struct sb *out, int color)
{
	struct cal c;

	memset(&c, 0, sizeof c);
	c.out = out;
	c.color = color;
	if (state_windows_each(s, 0, cal_window, &c) < 0)
		return -1;
	cal_flush(&c);
	if (c.any)
		sb_adds(out, color ? "\n\033[42m \033[0m done  \033[41m \033[0m "
		    "failed  \033[100m \033[0m pending" :
		    "\n# done  x failed  . pending");
	return 0;
}

static int
use_color(void)
{
	const char *nc = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && !(nc && *nc);
}

/* The failed windows and why, one a line, at most ten. */
struct failed {
	struct sb *out;
	size_t n;
};

static int
failed_window(void *ctx, const struct state_window *w)
{
	struct failed *f = ctx;

	if (strcmp(w->status, "failed") != 0)
		return 0;
	if (f->n++ < 10) {
		sb_addf(f->out, "\nfailed: %s: ", w->start);
		add_text(f->out, w->reason ? w->reason : "no reason given",
		    strlen(w->reason ? w->reason : "no reason given"));
	}
	return 0;
}

static int
cmd_windows(int argc, char **argv)
{
	static const int allowed[] = { O_FROM, O_TO, O_STEP, O_REASON, O_JSON,
	    O_ALL, 0 };
	struct subopts o;
	struct state *s;
	const char *verb;
	struct sb b;
	int ret;

	argc -= parse_opts(argc, argv, allowed, &o);
	argv += optind;
	if (argc < 1)
		badusage("windows: missing plan, pending, done, fail, reset, "
		    "coverage, calendar or report");
	verb = argv[0];
	argc--;
	argv++;
	if ((o.from || o.to) && strcmp(verb, "plan") != 0 &&
	    strcmp(verb, "reset") != 0)
		badusage("--from and --to go with windows plan or reset");
	if (o.step && strcmp(verb, "plan") != 0)
		badusage("--step goes with windows plan");
	if (o.all && strcmp(verb, "reset") != 0)
		badusage("--all goes with windows reset");
	if (o.reason && strcmp(verb, "fail") != 0)
		badusage("--reason goes with windows fail");
	if (o.json && strcmp(verb, "pending") != 0 &&
	    strcmp(verb, "coverage") != 0)
		badusage("--json goes with windows pending or coverage");

	if (strcmp(verb, "plan") == 0) {
		long long from, to, step;
		unsigned long added;

		need_args(argc, 0, "");
		if (!o.from || !o.to)
			badusage("windows plan: --from and --to are required");
		from = parse_when("--from", o.from, 0);
		to = parse_when("--to", o.to, 1);
		step = parse_step(o.step ? o.step : "1d");
		if (to <= from)
			badusage("windows plan: --to is not after --from");
		if ((to - from) / step > 1000000)
			badusage("windows plan: more than 1000000 windows");
		s = open_state(STATE_WRITE);
		if (state_windows_plan(s, from, to, step,
		    step % 86400 == 0 && from % 86400 == 0, &added) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "pending") == 0) {
		need_args(argc, 0, "");
		s = open_state(0);
		stream_out_init();
		memset(&b, 0, sizeof b);
		if (o.json)
			sb_init(&b, 256);
		ret = state_windows_each(s, 1, o.json ? window_line :
		    window_start, &b);
		if (o.json)
			sb_release(&b);
		if (ret < 0)
			die_state(s);
		finish_out(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "reset") == 0) {
		long long from = LLONG_MIN, to = LLONG_MAX;
		unsigned long n;

		need_args(argc, 0, "");
		if (o.all && (o.from || o.to))
			badusage("windows reset: --all goes without --from and --to");
		if (!o.all && (!o.from || !o.to))
			badusage("windows reset: --from and --to, or --all, are required");
		if (!o.all) {
			from = parse_when("--from", o.from, 0);
			to = parse_when("--to", o.to, 1);
			if (to <= from)
				badusage("windows reset: --to is not after --from");
		}
		s = open_state(0);
		if (state_windows_reset(s, from, to, &n) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "done") == 0 || strcmp(verb, "fail") == 0) {
		int done = verb[0] == 'd';

		need_args(argc, 1, "START");
		if (!done && !o.reason)
			badusage("windows fail: --reason is required");
		s = open_state(0);
		if (state_window_mark(s, argv[0], done, o.reason) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "calendar") == 0) {
		struct sb cal;

		need_args(argc, 0, "");
		s = open_state(0);
		sb_init(&cal, 1024);
		if (calendar_text(s, &cal, use_color()) < 0)
			die_state(s);
		stream_out_init();
		if (cal.len)
			stream_out_line(cal.buf, cal.len);
		sb_release(&cal);
		finish_out(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "coverage") == 0 || strcmp(verb, "report") == 0) {
		struct state_coverage c;
		struct gaps gs = { NULL, 0, NULL };
		size_t i;

		need_args(argc, 0, "");
		if (o.json && verb[0] == 'r')
			badusage("--json goes with windows pending or coverage");
		s = open_state(0);
		if (state_coverage(s, &c, gap_add, &gs) < 0)
			die_state(s);
		stream_out_init();
		sb_init(&b, 256);
		if (o.json) {
			sb_adds(&b, "{\"kind\":\"coverage\",\"coverage\":");
			coverage_json(&b, &c, &gs);
			sb_addc(&b, '}');
		} else {
			coverage_text(&b, &c);
			for (i = 0; i < gs.n; i++) {
				sb_adds(&b, "\ngap: ");
				gap_text(&b, &c, &gs.g[i]);
			}
		}
		if (verb[0] == 'r' && c.windows) {
			struct failed f = { &b, 0 };

			if (state_windows_each(s, 1, failed_window, &f) < 0)
				die_state(s);
			if (f.n > 10)
				sb_addf(&b, "\nfailed: and %zu more", f.n - 10);
			sb_addc(&b, '\n');
			if (calendar_text(s, &b, use_color()) < 0)
				die_state(s);
		}
		stream_out_line(b.buf, b.len);
		sb_release(&b);
		gaps_release(&gs);
		finish_out(s);
		return RD_EXIT_OK;
	}
	badusage("windows: unknown verb \"%s\" (expected plan, pending, done, "
	    "fail, reset, coverage, calendar or report)",
	    rd_quote(verb, strlen(verb)));
}

/* status, preflight, lock, unlock */

static void
counts_text(struct sb *out, const unsigned long *counts)
{
	int i, any = 0;

	for (i = RD_ST_OK; i < RD_ST_N; i++) {
		if (!counts[i])
			continue;
		sb_addf(out, "%s%lu %s", any ? ", " : "", counts[i],
		    rd_status_name(i));
		any = 1;
	}
	if (!any)
		sb_adds(out, "no results");
}

/* A two-way run's changes by side; nothing for a run without targets. */
static void
targets_text(struct sb *out, const struct state_run *r)
{
	if (r->to_local || r->to_remote)
		sb_addf(out, "; %lu to local, %lu to remote", r->to_local,
		    r->to_remote);
}

static void
counts_json(struct sb *out, const unsigned long *counts)
{
	int i;

	sb_addc(out, '{');
	for (i = RD_ST_OK; i < RD_ST_N; i++)
		sb_addf(out, "%s\"%s\":%lu", i > RD_ST_OK ? "," : "",
		    rd_status_name(i), counts[i]);
	sb_addc(out, '}');
}

/* A run's status as shown: a running run whose process is gone was killed. */
static const char *
run_status(const struct state_run *r)
{
	if (strcmp(r->status, "running") == 0 && !r->live && r->host)
		return "interrupted";
	return r->status;
}

static void
jstr(struct sb *out, const char *name, const char *v)
{
	sb_addf(out, ",\"%s\":", name);
	if (v)
		json_write_string(out, v, strlen(v));
	else
		sb_adds(out, "null");
}

static void
run_json(struct sb *out, const struct state_run *r)
{
	sb_addf(out, "{\"kind\":\"run\",\"id\":%ld", r->id);
	jstr(out, "scope", r->scope);
	jstr(out, "flow", r->flow);
	jstr(out, "started", r->started);
	jstr(out, "ended", r->ended);
	jstr(out, "status", run_status(r));
	sb_adds(out, ",\"counts\":");
	counts_json(out, r->counts);
	if (r->to_local || r->to_remote)
		sb_addf(out, ",\"targets\":{\"local\":%lu,\"remote\":%lu}",
		    r->to_local, r->to_remote);
	sb_addf(out, ",\"undoable\":%s", r->undoable ? "true" : "false");
	if (r->undoes)
		sb_addf(out, ",\"undoes\":%ld", r->undoes);
	if (r->undone_by)
		sb_addf(out, ",\"undone_by\":%ld", r->undone_by);
	sb_addc(out, '}');
}

static int
last_run(void *ctx, const struct state_run *r)
{
	sb_reset(ctx);
	run_json(ctx, r);
	return 0;
}

static int
last_run_text(void *ctx, const struct state_run *r)
{
	struct sb *b = ctx;

	sb_reset(b);
	sb_addf(b, "%ld", r->id);
	if (r->flow)
		sb_addf(b, " (%s)", r->flow);
	sb_addf(b, " %s, %s..%s: ", run_status(r), r->started,
	    r->ended ? r->ended : "");
	counts_text(b, r->counts);
	targets_text(b, r);
	return 0;
}

static void
owner_text(struct sb *out, const struct state_owner *ow)
{
	sb_addf(out, "held by pid %ld on host \"%s\" since %s (recdelta %s, "
	    "scope \"%s\")", ow->pid, rd_quote(ow->host, strlen(ow->host)),
	    ow->started, ow->version, rd_quote(ow->scope, strlen(ow->scope)));
	if (ow->here && !ow->alive)
		sb_adds(out, ", an orphan: its process is gone");
}

static int
cmd_status(int argc, char **argv)
{
	static const int allowed[] = { O_JSON, O_CHECK, O_PID, 0 };
	struct subopts o;
	struct state *s;
	struct sb out, run, msg, notice;
	struct state_coverage c;
	struct state_owner ow;
	struct gaps gs = { NULL, 0, NULL };
	char *scope = NULL;
	long nout = 0;
	int held = 0, refused = 0;
	size_t i;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	s = open_state(STATE_PROBE);
	sb_init(&out, 1024);
	sb_init(&run, 256);
	sb_init(&msg, 256);
	sb_init(&notice, 256);
	memset(&c, 0, sizeof c);
	memset(&ow, 0, sizeof ow);
	if (state_version(s) <= STATE_SCHEMA) {
		if (state_scope(s, &scope) < 0 ||
		    state_runs_each(s, 0, 1, o.json ? last_run : last_run_text,
		    &run) < 0 ||
		    state_coverage(s, &c, gap_add, &gs) < 0 ||
		    (nout = state_outbox_count(s)) < 0 ||
		    (held = state_lock_owner(s, &ow)) < 0)
			die_state(s);
	}
	if (o.check && (refused = state_check(s, scope_opt, o.pid, &msg,
	    &notice)) < 0)
		die_state(s);

	if (o.json) {
		sb_adds(&out, "{\"kind\":\"status\"");
		jstr(&out, "state", state_path(s));
		sb_addf(&out, ",\"exists\":%s,\"schema\":%d",
		    state_exists(s) ? "true" : "false", state_version(s));
		jstr(&out, "scope", scope);
		sb_adds(&out, ",\"last_run\":");
		sb_adds(&out, run.len ? run.buf : "null");
		sb_adds(&out, ",\"coverage\":");
		coverage_json(&out, &c, &gs);
		sb_addf(&out, ",\"outbox\":%ld,\"lock\":", nout);
		if (held == 1) {
			sb_addf(&out, "{\"pid\":%ld", ow.pid);
			jstr(&out, "host", ow.host);
			jstr(&out, "started", ow.started);
			jstr(&out, "version", ow.version);
			jstr(&out, "scope", ow.scope);
			sb_addf(&out, ",\"orphan\":%s}",
			    ow.here && !ow.alive ? "true" : "false");
		} else {
			sb_adds(&out, "null");
		}
		if (o.check)
			sb_addf(&out, ",\"refused\":%s", refused ? "true" : "false");
		sb_addc(&out, '}');
	} else {
		sb_addf(&out, "state: %s", state_path(s));
		if (!state_exists(s))
			sb_adds(&out, " (not created yet)");
		else
			sb_addf(&out, " (schema %d)", state_version(s));
		if (scope)
			sb_addf(&out, "\nscope: \"%s\"", rd_quote(scope,
			    strlen(scope)));
		else
			sb_adds(&out, "\nscope: none yet");
		sb_addf(&out, "\nlast run: %s", run.len ? run.buf : "none");
		sb_adds(&out, "\ncoverage: ");
		coverage_text(&out, &c);
		for (i = 0; i < gs.n && i < 10; i++) {
			sb_adds(&out, i ? ", " : "\ngaps: ");
			gap_text(&out, &c, &gs.g[i]);
		}
		if (gs.n > 10)
			sb_addf(&out, ", and %zu more", gs.n - 10);
		if (c.windows) {
			struct failed f = { &out, 0 };

			if (state_windows_each(s, 1, failed_window, &f) < 0)
				die_state(s);
			if (f.n > 10)
				sb_addf(&out, "\nfailed: and %zu more", f.n - 10);
			sb_addc(&out, '\n');
			if (calendar_text(s, &out, use_color()) < 0)
				die_state(s);
		}
		if (nout)
			sb_addf(&out, "\noutbox: %ld undelivered change%s", nout,
			    nout == 1 ? "" : "s");
		else
			sb_adds(&out, "\noutbox: empty");
		sb_adds(&out, "\nlock: ");
		if (held == 1)
			owner_text(&out, &ow);
		else
			sb_adds(&out, "free");
	}
	stream_out_init();
	stream_out_line(out.buf, out.len);
	if (held == 1)
		state_owner_release(&ow);
	free(scope);
	gaps_release(&gs);
	sb_release(&out);
	sb_release(&run);
	finish_out(s);
	if (notice.len)
		print_lines(&notice);
	if (refused)
		print_lines(&msg);
	sb_release(&msg);
	sb_release(&notice);
	return refused ? RD_EXIT_FOUND : RD_EXIT_OK;
}

static int
cmd_preflight(int argc, char **argv)
{
	static const int allowed[] = { O_PID, 0 };
	struct subopts o;
	struct state *s;
	struct sb msg, notice;
	int r;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	need_scope();
	s = open_state(STATE_PROBE);
	sb_init(&msg, 256);
	sb_init(&notice, 256);
	if ((r = state_check(s, scope_opt, o.pid, &msg, &notice)) < 0)
		die_state(s);
	state_close(s);
	print_lines(&notice);
	print_lines(&msg);
	sb_release(&msg);
	sb_release(&notice);
	return r ? RD_EXIT_REFUSED : RD_EXIT_OK;
}

static int
cmd_lock(int argc, char **argv)
{
	static const int allowed[] = { O_PID, O_FORCE, 0 };
	struct subopts o;
	struct state *s;
	struct sb msg, notice;
	int r, lock = strcmp(argv[0], "lock") == 0;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	if (lock && o.force)
		badusage("--force goes with unlock");
	s = open_state(lock ? STATE_WRITE : 0);
	sb_init(&msg, 256);
	sb_init(&notice, 256);
	r = lock ? state_lock(s, need_scope(), o.pid, &msg, &notice) :
	    state_unlock(s, o.pid, o.force, &msg, &notice);
	if (r < 0)
		die_state(s);
	state_close(s);
	print_lines(&notice);
	print_lines(&msg);
	sb_release(&msg);
	sb_release(&notice);
	return r ? RD_EXIT_REFUSED : RD_EXIT_OK;
}

/*
 * run start: open a run that several `record --run ID` continue, and print
 * its id; run end: end it.
 */
static int
cmd_run(int argc, char **argv)
{
	static const int allowed[] = { O_FLOW, O_PID, O_PARTIAL, 0 };
	struct subopts o;
	struct state *s;
	const char *verb;
	long id;

	argc -= parse_opts(argc, argv, allowed, &o);
	argv += optind;
	if (argc < 1)
		badusage("run: missing start or end");
	verb = argv[0];
	if (strcmp(verb, "start") == 0) {
		need_args(argc - 1, 0, "");
		if (o.partial)
			badusage("--partial goes with run end");
		if (!o.flow || !*o.flow)
			badusage("run start: --flow is required");
		s = open_state(STATE_WRITE);
		if (state_run_open(s, need_scope(), o.flow, o.pid, &id) < 0)
			die_state(s);
		stream_out_init();
		printf("%ld\n", id);
		finish_out(s);
		return RD_EXIT_OK;
	}
	if (strcmp(verb, "end") == 0) {
		need_args(argc - 1, 1, "RUN");
		if (o.flow)
			badusage("--flow goes with run start");
		id = number("run end", argv[1], LONG_MAX);
		s = open_state(0);
		if (state_run_close(s, id, o.partial) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	badusage("run: unknown verb \"%s\" (expected start or end)",
	    rd_quote(verb, strlen(verb)));
}

/* scope */

/*
 * The scope of the state at path, owned; NULL when it has none yet or
 * cannot be read (the command that uses the state will say why).
 */
static char *
scope_of(const char *path)
{
	struct state *s;
	char *own = NULL;

	if (access(path, F_OK) < 0 || state_open(&s, path, STATE_PROBE) < 0)
		return NULL;
	if (state_version(s) > STATE_SCHEMA || state_scope(s, &own) < 0)
		own = NULL;
	state_close(s);
	return own;
}

/* True when own, a state's scope, names what canon does, spelt otherwise. */
static int
same_scope(const char *own, const char *canon)
{
	char *c = store_scope_canon(own);
	int r = strcmp(c, canon) == 0;

	free(c);
	return r;
}

/*
 * The scope a flow gives its runs, and the state they use.  The scope is
 * --scope, else TARGET (" <- " SOURCE), each store word in its store's
 * spelling.  The state is --state, else RECDELTA_STATE, else the scope's
 * own; but .recdelta/state.db, where every scope lived before, while it
 * belongs to this scope and the scope has no state of its own yet.  A
 * state that belongs to the same store spelt otherwise (made before
 * spellings were canonical) keeps its spelling, which is then the scope.
 * A shard's scope (--shard) is that scope and "#shard=I/N": a scope, a
 * state and a lock of its own, so that N shards run side by side.
 */
static int
cmd_scope(int argc, char **argv)
{
	static const int allowed[] = { O_SOURCE, O_SHARD, 'z', 0 };
	const char *env = getenv("RECDELTA_STATE");
	struct subopts o;
	struct sb words;
	char *scope, *own, *path;
	int end;

	argc -= parse_opts(argc, argv, allowed, &o);
	argv += optind;
	need_args(argc, 1, "TARGET");
	if (scope_opt && !*scope_opt)
		badusage("--scope: empty scope");
	if (!*argv[0] || (o.source && !*o.source))
		badusage("empty store");
	sb_init(&words, 256);
	if (scope_opt) {
		sb_adds(&words, scope_opt);
	} else {
		/* A bare store word as the store it names. */
		if (store_scope(argv[0], &words) < 0)
			sb_adds(&words, argv[0]);
		if (o.source) {
			sb_adds(&words, " <- ");
			if (store_scope(o.source, &words) < 0)
				sb_adds(&words, o.source);
		}
	}
	scope = store_scope_canon(words.buf);
	sb_release(&words);
	if (o.shard.n) {
		char sh[48];

		shard_format(&o.shard, sh, sizeof sh);
		sb_init(&words, strlen(scope) + 64);
		sb_adds(&words, scope);
		sb_adds(&words, "#shard=");
		sb_adds(&words, sh);
		free(scope);
		scope = words.buf;
	}
	if (state_opt) {
		path = xstrdup(state_opt);
	} else if (env && *env) {
		path = xstrdup(env);
	} else {
		path = state_scope_path(scope);
		if (access(path, F_OK) < 0 && errno == ENOENT &&
		    (own = scope_of(STATE_DEFAULT_PATH))) {
			if (same_scope(own, scope)) {
				free(path);
				path = xstrdup(STATE_DEFAULT_PATH);
			}
			free(own);
		}
	}
	if ((own = scope_of(path)) && strcmp(own, scope) != 0 &&
	    same_scope(own, scope)) {
		free(scope);
		scope = own;
		own = NULL;
	}
	free(own);
	end = o.nul ? '\0' : '\n';
	fputs(scope, stdout);
	putchar(end);
	fputs(path, stdout);
	putchar(end);
	free(scope);
	free(path);
	if (fflush(stdout) == EOF || ferror(stdout))
		rd_die(RD_EXIT_RUNTIME, "write error: %s", strerror(errno));
	return RD_EXIT_OK;
}

/* history, show, outbox */

struct histctx {
	struct sb b;
	int json;
};

/*
 * What undo can do with a run, a last column only when there is something
 * to say: it takes back run N, it can be taken back, it was.
 */
static void
undo_text(struct sb *out, const struct state_run *r)
{
	const char *sep = "\t";

	if (r->undoes) {
		sb_addf(out, "%sundoes %ld", sep, r->undoes);
		sep = ", ";
	}
	if (r->undone_by) {
		sb_addf(out, "%sundone by %ld", sep, r->undone_by);
		sep = ", ";
	}
	if (r->undoable && !r->live)
		sb_addf(out, "%sundoable", sep);
}

static int
history_row(void *ctx, const struct state_run *r)
{
	struct histctx *h = ctx;

	sb_reset(&h->b);
	if (h->json) {
		run_json(&h->b, r);
	} else {
		sb_addf(&h->b, "%ld\t%s\t%s\t%s\t", r->id, r->started,
		    r->ended ? r->ended : "-", r->flow ? r->flow : "-");
		counts_text(&h->b, r->counts);
		targets_text(&h->b, r);
		sb_addf(&h->b, "\t%s", run_status(r));
		undo_text(&h->b, r);
	}
	stream_out_line(h->b.buf, h->b.len);
	return 0;
}

static int
cmd_history(int argc, char **argv)
{
	static const int allowed[] = { O_JSON, 0 };
	struct subopts o;
	struct state *s;
	struct histctx h;
	int ret;

	argc -= parse_opts(argc, argv, allowed, &o);
	need_args(argc, 0, "");
	s = open_state(0);
	stream_out_init();
	sb_init(&h.b, 256);
	h.json = o.json;
	ret = state_runs_each(s, 0, 0, history_row, &h);
	sb_release(&h.b);
	if (ret < 0)
		die_state(s);
	finish_out(s);
	return RD_EXIT_OK;
}

struct showctx {
	struct sb b;
	struct arena a;
	long run;
	int json, values;
};

static int
found_run(void *ctx, const struct state_run *r)
{
	(void)r;
	*(int *)ctx = 1;
	return 0;
}

static int
show_row(void *ctx, const struct state_change *c)
{
	struct showctx *sc = ctx;
	struct sb *b = &sc->b;
	struct json v;
	size_t i;

	sb_reset(b);
	if (sc->json) {
		sb_addf(b, "{\"kind\":\"logentry\",\"run\":%ld", sc->run);
		jstr(b, "op", c->op);
		sb_adds(b, ",\"type\":");
		json_write_string(b, c->type, c->typelen);
		sb_adds(b, ",\"key\":");
		json_write_string(b, c->key, c->keylen);
		if (c->target)
			jstr(b, "target", c->target);
		jstr(b, "status", c->status);
		if (c->rev)
			jstr(b, "rev", c->rev);
		if (c->changed)
			sb_addf(b, ",\"changed\":%s", c->changed);
		if (c->code || c->message) {
			sb_adds(b, ",\"error\":{");
			if (c->code) {
				sb_adds(b, "\"code\":");
				json_write_string(b, c->code, strlen(c->code));
			}
			if (c->message) {
				sb_adds(b, c->code ? ",\"message\":" :
				    "\"message\":");
				json_write_string(b, c->message,
				    strlen(c->message));
			}
			sb_addc(b, '}');
		}
		if (c->before_rev)
			jstr(b, "before_rev", c->before_rev);
		if (sc->values && c->before)
			sb_addf(b, ",\"before\":%.*s", (int)c->beforelen,
			    c->before);
		if (sc->values && c->after)
			sb_addf(b, ",\"after\":%.*s", (int)c->afterlen,
			    c->after);
		sb_addc(b, '}');
		stream_out_line(b->buf, b->len);
		return 0;
	}
	sb_addf(b, "%s %s ", c->status, c->op);
	add_text(b, c->type, c->typelen);
	sb_addc(b, ' ');
	add_text(b, c->key, c->keylen);
	if (c->target)
		sb_addf(b, " to %s", c->target);
	if (c->rev) {
		sb_adds(b, " rev ");
		add_text(b, c->rev, strlen(c->rev));
	}
	arena_reset(&sc->a);
	if (c->changed && json_parse(&sc->a, c->changed, strlen(c->changed),
	    &v, NULL) == 0 && v.type == JSON_ARRAY && v.len) {
		sb_adds(b, " changed: ");
		for (i = 0; i < v.len; i++) {
			if (i)
				sb_adds(b, ", ");
			if (v.u.items[i].type == JSON_STRING)
				add_text(b, v.u.items[i].u.s, v.u.items[i].len);
		}
	} else if (strcmp(c->op, "create") == 0 && !strcmp(c->status, "ok")) {
		sb_adds(b, " (new record)");
	}
	if (c->code || c->message) {
		sb_adds(b, " error");
		if (c->code) {
			sb_addc(b, ' ');
			add_text(b, c->code, strlen(c->code));
		}
		if (c->message) {
			sb_adds(b, ": ");
			add_text(b, c->message, strlen(c->message));
		}
	}
	if (c->before_rev) {
		sb_adds(b, " (was rev ");
		add_text(b, c->before_rev, c->before_revlen);
		sb_addc(b, ')');
	}
	if (sc->values && c->before) {
		sb_adds(b, "\n  before: ");
		add_text(b, c->before, c->beforelen);
	}
	if (sc->values && c->after) {
		sb_adds(b, "\n  after: ");
		add_text(b, c->after, c->afterlen);
	}
	stream_out_line(b->buf, b->len);
	return 0;
}

static int
cmd_show(int argc, char **argv)
{
	static const int allowed[] = { O_JSON, O_VALUES, 0 };
	struct subopts o;
	struct state *s;
	struct showctx sc;
	int found = 0, ret;

	argc -= parse_opts(argc, argv, allowed, &o);
	argv += optind;
	need_args(argc, 1, "RUN");
	sc.run = number("show", argv[0], LONG_MAX);
	sc.json = o.json;
	sc.values = o.values;
	s = open_state(0);
	if (state_runs_each(s, sc.run, 0, found_run, &found) < 0)
		die_state(s);
	if (!found) {
		state_close(s);
		rd_die(RD_EXIT_USAGE, "show: no run %ld; see: recdelta-checkpoint "
		    "history", sc.run);
	}
	stream_out_init();
	sb_init(&sc.b, 256);
	arena_init(&sc.a);
	ret = state_changes_each(s, sc.run, show_row, &sc);
	sb_release(&sc.b);
	arena_release(&sc.a);
	if (ret < 0)
		die_state(s);
	finish_out(s);
	return RD_EXIT_OK;
}

/* undo */

/*
 * Taking a run back.  Its applied changes come by type, key and order, so
 * that a record the run changed more than once (a historical import's
 * windows) is taken back once: from what its last change left to what its
 * first change found.  A record that existed before and after is updated
 * to its before-fields; one the run created is deleted; one it deleted is
 * created again.  Each update and delete is guarded by the rev the run left
 * and the hash of the fields it wrote ("seen"), so that a record changed
 * since is a conflict, never overwritten; a create by the record's absence.
 * A two-way run's changes are taken back side by side: a record is one per
 * target, and each line carries the target of the changes it takes back.
 */
struct undoctx {
	long run;
	int check;		/* the first pass: count what is missing */
	unsigned long missing, lines;
	struct sb type, key;	/* the record being gathered */
	enum rd_side target;	/* its side; RD_SIDE_NONE: one-way */
	int have, existed, exists, hasbefore, hasafter;
	struct sb brev, before, rev, after;
	int hasbrev, hasrev;
	struct sb line, canon;
	struct arena a;
};

static void
undo_emit(struct undoctx *u)
{
	struct change c;
	struct json bf, af, ch;
	struct ruleview none = { 0 };
	unsigned char h[RD_HASH_LEN];
	char seen[2 * RD_HASH_LEN + 1];
	struct sb names;

	if (!u->have)
		return;
	u->have = 0;
	if (u->existed && !u->hasbefore)
		u->missing++;
	if (u->exists && !u->hasafter)
		u->missing++;
	if (u->check || (u->existed && !u->hasbefore) ||
	    (u->exists && !u->hasafter) || (!u->existed && !u->exists))
		return;
	arena_reset(&u->a);
	memset(&c, 0, sizeof c);
	c.type = u->type.buf;
	c.typelen = u->type.len;
	c.key = u->key.buf;
	c.keylen = u->key.len;
	c.undoes = u->run;
	c.target = u->target;
	if ((u->existed && json_parse(&u->a, u->before.buf, u->before.len, &bf,
	    NULL) < 0) || (u->exists && json_parse(&u->a, u->after.buf,
	    u->after.len, &af, NULL) < 0)) {
		u->missing++;
		return;
	}
	if (u->exists) {
		/* The guard: what the run left. */
		if (u->hasrev) {
			c.rev = u->rev.buf;
			c.revlen = u->rev.len;
		}
		sb_reset(&u->canon);
		if (record_hash(&none, &af, h, &u->canon) == 0) {
			hex_encode(seen, h, RD_HASH_LEN);
			c.seen = seen;
			c.seenlen = 2 * RD_HASH_LEN;
		}
		c.before = stream_before(&u->a, c.rev, c.revlen, &af);
	}
	if (u->existed && u->exists) {
		sb_init(&names, 64);
		if (record_compare(&none, &af, &bf, &names) == 0) {
			/* The run left it as it found it: nothing to take back. */
			sb_release(&names);
			return;
		}
		c.op = RD_OP_UPDATE;
		c.fields = &bf;
		if (json_parse(&u->a, arena_memdup(&u->a, names.buf, names.len),
		    names.len, &ch, NULL) == 0)
			c.changed = &ch;
		sb_release(&names);
	} else if (u->exists) {
		c.op = RD_OP_DELETE;
	} else {
		c.op = RD_OP_CREATE;
		c.fields = &bf;
	}
	sb_reset(&u->line);
	stream_write_change(&u->line, &c);
	stream_out_line(u->line.buf, u->line.len);
	u->lines++;
}

static void
sb_set(struct sb *b, const char *p, size_t n)
{
	sb_reset(b);
	if (p)
		sb_add(b, p, n);
}

static int
undo_row(void *ctx, const struct state_change *c)
{
	struct undoctx *u = ctx;
	enum rd_side t = RD_SIDE_NONE;

	if (c->target)
		t = strcmp(c->target, "local") == 0 ? RD_SIDE_LOCAL :
		    RD_SIDE_REMOTE;
	if (!u->have || u->type.len != c->typelen || u->key.len != c->keylen ||
	    memcmp(u->type.buf, c->type, c->typelen) != 0 ||
	    memcmp(u->key.buf, c->key, c->keylen) != 0 || u->target != t) {
		undo_emit(u);
		sb_set(&u->type, c->type, c->typelen);
		sb_set(&u->key, c->key, c->keylen);
		u->target = t;
		u->have = 1;
		/* The first change says what was there before the run. */
		u->existed = strcmp(c->op, "create") != 0;
		u->hasbefore = c->before != NULL;
		u->hasbrev = c->before_rev != NULL;
		sb_set(&u->before, c->before, c->beforelen);
		sb_set(&u->brev, c->before_rev, c->before_revlen);
	}
	/* The last, what the run left. */
	u->exists = strcmp(c->op, "delete") != 0;
	u->hasafter = c->after != NULL;
	u->hasrev = c->rev != NULL;
	sb_set(&u->after, c->after, c->afterlen);
	sb_set(&u->rev, c->rev, c->rev ? strlen(c->rev) : 0);
	return 0;
}

static int
undo_pass(struct state *s, struct undoctx *u)
{
	u->have = 0;
	if (state_applied_each(s, u->run, undo_row, u) < 0)
		return -1;
	undo_emit(u);
	return 0;
}

/* The run to take back: whether it exists, and runs still. */
struct undorun {
	long id;
	int live;
};

static int
found_undo_run(void *ctx, const struct state_run *r)
{
	struct undorun *ur = ctx;

	ur->id = r->id;
	ur->live = r->live;
	return 0;
}

static int
cmd_undo(int argc, char **argv)
{
	struct subopts o;
	struct state *s;
	struct undorun r;
	struct undoctx u;
	char *own = NULL;
	int ret;

	argc -= parse_opts(argc, argv, (const int[]){ 0 }, &o);
	argv += optind;
	need_args(argc, 1, "RUN");
	memset(&u, 0, sizeof u);
	u.run = number("undo", argv[0], LONG_MAX);
	memset(&r, 0, sizeof r);
	s = open_state(0);
	if (state_runs_each(s, u.run, 0, found_undo_run, &r) < 0)
		die_state(s);
	if (!r.id) {
		state_close(s);
		rd_die(RD_EXIT_USAGE, "undo: no run %ld; see: recdelta-checkpoint "
		    "history", u.run);
	}
	if (scope_opt && state_scope(s, &own) < 0)
		die_state(s);
	if (own && strcmp(own, scope_opt) != 0) {
		rd_warn("refused: %s belongs to scope \"%s\", not \"%s\"",
		    state_path(s), rd_quote(own, strlen(own)),
		    rd_quote(scope_opt, strlen(scope_opt)));
		free(own);
		state_close(s);
		return RD_EXIT_REFUSED;
	}
	free(own);
	if (r.live) {
		state_close(s);
		rd_die(RD_EXIT_REFUSED, "refused: run %ld is still running",
		    u.run);
	}
	sb_init(&u.type, 64);
	sb_init(&u.key, 64);
	sb_init(&u.brev, 32);
	sb_init(&u.rev, 32);
	sb_init(&u.before, 1024);
	sb_init(&u.after, 1024);
	sb_init(&u.line, 1024);
	sb_init(&u.canon, 1024);
	arena_init(&u.a);
	/* Checked whole before the first line: a refusal writes nothing. */
	u.check = 1;
	ret = undo_pass(s, &u);
	if (ret == 0 && u.missing) {
		rd_warn("refused: run %ld: %lu record%s without %s before-image "
		    "(recorded without one, or beyond the retention: prune "
		    "--runs); nothing written", u.run, u.missing,
		    u.missing == 1 ? "" : "s", u.missing == 1 ? "its" : "their");
		ret = 1;
	}
	if (ret == 0) {
		u.check = 0;
		stream_out_init();
		ret = undo_pass(s, &u);
	}
	sb_release(&u.type);
	sb_release(&u.key);
	sb_release(&u.brev);
	sb_release(&u.rev);
	sb_release(&u.before);
	sb_release(&u.after);
	sb_release(&u.line);
	sb_release(&u.canon);
	arena_release(&u.a);
	if (ret < 0)
		die_state(s);
	if (ret > 0) {
		state_close(s);
		return RD_EXIT_REFUSED;
	}
	finish_out(s);
	return RD_EXIT_OK;
}

/* conflicts */

struct cfctx {
	struct state *s;
	struct sb b;
	struct arena a;
	int json;
};

/* A stored value back as JSON in a: *v NULL when absent. */
static int
cf_value(const struct state *st, struct arena *a,
    const struct state_conflict *c, const char *name, const char *text,
    size_t len, const struct json **v)
{
	struct json *j;

	*v = NULL;
	if (!text)
		return 0;
	j = arena_alloc(a, sizeof *j);
	if (json_parse(a, text, len, j, NULL) < 0) {
		char why[512];

		snprintf(why, sizeof why, "%s", rd_errmsg());
		rd_seterr(RD_EXIT_RUNTIME, "%s: conflict %lld: %s: %s",
		    state_path(st), c->id, name, why);
		return -1;
	}
	*v = j;
	return 0;
}

static int
conflict_row(void *ctx, const struct state_conflict *c)
{
	struct cfctx *x = ctx;
	struct sb *b = &x->b;
	int side = rd_side_parse(c->winner, strlen(c->winner));
	const char *lost;
	size_t lostlen;

	sb_reset(b);
	if (x->json) {
		struct conflict cf = {
			.type = c->type, .typelen = c->typelen,
			.key = c->key, .keylen = c->keylen,
			.field = c->field, .fieldlen = c->fieldlen,
			.winner = side < 0 ? RD_SIDE_NONE : (enum rd_side)side,
			.reason = c->reason, .reasonlen = c->reasonlen,
			.id = c->id, .run = c->run,
			.recorded = c->recorded, .reviewed = c->reviewed,
		};

		if (side < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "conflict %lld: winner \"%s\" "
			    "is not local or remote", c->id,
			    rd_quote(c->winner, strlen(c->winner)));
			return -1;
		}
		arena_reset(&x->a);
		if (cf_value(x->s, &x->a, c, "base", c->base, c->baselen,
		    &cf.base) < 0 ||
		    cf_value(x->s, &x->a, c, "local", c->local, c->locallen,
		    &cf.local) < 0 ||
		    cf_value(x->s, &x->a, c, "remote", c->remote, c->remotelen,
		    &cf.remote) < 0)
			return -1;
		stream_write_conflict(b, &cf);
		stream_out_line(b->buf, b->len);
		return 0;
	}
	/* The value of the side that did not win. */
	lost = side == RD_SIDE_LOCAL ? c->remote : c->local;
	lostlen = side == RD_SIDE_LOCAL ? c->remotelen : c->locallen;
	sb_addf(b, "%lld  ", c->id);
	if (c->run)
		sb_addf(b, "%lld  ", c->run);
	else
		sb_adds(b, "-  ");
	add_text(b, c->type, c->typelen);
	sb_adds(b, "  ");
	add_text(b, c->key, c->keylen);
	sb_adds(b, "  ");
	if (c->field)
		add_text(b, c->field, c->fieldlen);
	else
		sb_adds(b, "(record)");
	sb_adds(b, "  winner ");
	add_text(b, c->winner, strlen(c->winner));
	sb_adds(b, " (");
	add_text(b, c->reason, c->reasonlen);
	sb_adds(b, "); lost: ");
	if (lost)
		add_text(b, lost, lostlen);
	else
		sb_adds(b, "(deleted)");
	if (c->reviewed)
		sb_addf(b, "; reviewed %s", c->reviewed);
	stream_out_line(b->buf, b->len);
	return 0;
}

/*
 * conflicts: list the conflicts kept for review; conflicts review: mark
 * them reviewed.
 */
static int
cmd_conflicts(int argc, char **argv)
{
	static const int allowed[] = { O_JSON, O_ALL, 't', 0 };
	struct subopts o;
	struct state *s;
	struct cfctx x;
	long long *ids;
	unsigned long marked;
	int i, ret;

	argc -= parse_opts(argc, argv, allowed, &o);
	argv += optind;
	if (argc >= 1 && strcmp(argv[0], "review") == 0) {
		argc--;
		argv++;
		if (o.json)
			badusage("--json goes with conflicts, not conflicts review");
		if (o.all && argc)
			badusage("conflicts review: IDs or --all, not both");
		if (!o.all && !argc)
			badusage("conflicts review: missing ID (or --all)");
		if (o.ntypes && !o.all)
			badusage("conflicts review: -t goes with --all");
		ids = xcalloc(argc ? (size_t)argc : 1, sizeof *ids);
		for (i = 0; i < argc; i++)
			ids[i] = number("conflicts review", argv[i], LONG_MAX);
		s = open_state(0);
		ret = state_conflicts_review(s, ids, (size_t)argc, o.types,
		    o.ntypes, &marked);
		free(ids);
		free(o.types);
		if (ret < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	if (argc >= 1)
		badusage("conflicts: unknown verb \"%s\" (expected review)",
		    rd_quote(argv[0], strlen(argv[0])));
	s = open_state(0);
	stream_out_init();
	sb_init(&x.b, 256);
	arena_init(&x.a);
	x.json = o.json;
	x.s = s;
	ret = state_conflicts_each(s, o.all, o.types, o.ntypes, conflict_row,
	    &x);
	sb_release(&x.b);
	arena_release(&x.a);
	free(o.types);
	if (ret < 0)
		die_state(s);
	finish_out(s);
	return RD_EXIT_OK;
}

static int
outbox_line(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	stream_out_line(line, len);
	return 0;
}

static int
cmd_outbox(int argc, char **argv)
{
	struct subopts o;
	struct state *s;

	argc -= parse_opts(argc, argv, (const int[]){ 0 }, &o);
	need_args(argc, 0, "");
	s = open_state(0);
	stream_out_init();
	if (state_outbox_each(s, outbox_line, NULL) < 0)
		die_state(s);
	finish_out(s);
	return RD_EXIT_OK;
}

/*
 * Of prune --whole: a result that did not settle its record hands the
 * fold the record as the plan read it, its before-image, as a feed's
 * record line would; a create's, which has none, a tombstone (the remote
 * held no such record).  A result of another op without a before-image
 * says nothing, and the base stands for it, as before.
 */
static int
prune_read(struct state *s, const struct result *res, struct sb *fields)
{
	const struct json *rev = NULL, *f = NULL;

	if (res->before) {
		rev = json_get(res->before, "rev");
		f = json_get(res->before, "fields");
		if (rev && rev->type != JSON_STRING)
			rev = NULL;
		if (!f || f->type != JSON_OBJECT)
			return 0;
		sb_reset(fields);
		json_write(fields, f, 0);
		return state_prune_feed(s, res->type, res->typelen, res->key,
		    res->keylen, rev ? rev->u.s : NULL, rev ? rev->len : 0,
		    fields->buf, fields->len);
	}
	if (res->op != RD_OP_CREATE)
		return 0;
	return state_prune_feed(s, res->type, res->typelen, res->key,
	    res->keylen, NULL, 0, NULL, 0);
}

/*
 * prune: read a complete result stream on standard input; keep in the base
 * only the records it names.  The record lines among it are what the run's
 * change feed said: of those, the records that a result names without
 * settling them (a remote edit kept, an orphan, a conflict) are kept for
 * the next run's fold.  With --sparse, the results of a sparse plan, which
 * leave out the records in step: a base row goes only when the feed's
 * last word of its record is a tombstone and no result names it (gone
 * from both sides).  With --cursor NAME, the value of the last cursor
 * line of the input becomes cursor NAME; all in one transaction, so that a
 * flow's feed cursor moves exactly when its run's base is settled.  With
 * --runs N instead (no input is read): keep the before-images of the
 * newest N runs only, from now on, and drop the others now.  Lines of
 * other kinds (a plan's summary) are read past.
 *
 * With -t, the results are of a run limited to those types: the rows of
 * the others stay.  With --whole, of a run that read the remote whole,
 * not through its feed (a full run over a remote that has one, keeping
 * the feed's cursor as of before its read): what earlier feeds said of
 * the run's types goes, and of each record a result names without
 * settling it, the record as the plan read it (the result's before; a
 * create's: none, a tombstone) is kept for the next run's fold, as a
 * feed's record would be.
 */
static int
cmd_prune(int argc, char **argv)
{
	static const int allowed[] = { O_RUNS, O_CURSOR, O_SPARSE, O_WHOLE,
	    O_DIGEST, 't', 0 };
	struct subopts o;
	struct cursor cur;
	struct record rec;
	struct sb curval, fields;
	struct state *s;
	struct lreader r;
	struct arena a;
	struct json obj;
	struct result res;
	const char *line;
	size_t len;
	long long removed = 0;
	int n, k, settled;

	int havecur = 0;
	struct insync next;

	argc -= parse_opts(argc, argv, allowed, &o);
	if (o.runs >= 0 && (o.cursor || o.sparse || o.whole || o.ntypes ||
	    o.digest))
		badusage("--runs and %s: one or the other", o.cursor ?
		    "--cursor" : o.sparse ? "--sparse" : o.whole ? "--whole" :
		    o.digest ? "--digest" : "-t");
	if (o.sparse && o.whole)
		badusage("--sparse and --whole: one or the other");
	if (o.digest && !o.sparse)
		badusage("--digest needs --sparse");
	need_args(argc, 0, "");
	/* The digest read whole before the state is opened: bad, nothing written. */
	insync_init(&next);
	if (o.digest && insync_read_file(&next, o.digest) < 0)
		rd_die_pending();
	s = open_state(STATE_WRITE);
	if (o.runs >= 0) {
		unsigned long runs = 0;

		if (state_images_prune(s, o.runs, &runs) < 0)
			die_state(s);
		state_close(s);
		return RD_EXIT_OK;
	}
	if (lreader_open(&r, "-") < 0)
		die_state(s);
	arena_init(&a);
	sb_init(&curval, 64);
	sb_init(&fields, 1024);
	if (state_prune_begin(s, o.sparse, o.whole, o.types, o.ntypes) < 0)
		die_state(s);
	while ((n = lreader_next(&r, &line, &len)) > 0) {
		arena_reset(&a);
		if ((k = stream_parse_kind(&a, line, len, &obj)) < 0 ||
		    (k == RD_KIND_RESULT &&
		    stream_get_result(&obj, &res) < 0) ||
		    (k == RD_KIND_RECORD && stream_get_record(&obj, &rec) < 0) ||
		    (k == RD_KIND_CURSOR && o.cursor &&
		    stream_get_cursor(&obj, &cur) < 0)) {
			rd_prefixerr("%s:%lu: ", r.name, r.lineno);
			n = -1;
			break;
		}
		if (k == RD_KIND_CURSOR && o.cursor) {
			/* Kept as record keeps one: a string's text, else JSON. */
			sb_reset(&curval);
			if (cur.value->type == JSON_STRING)
				sb_add(&curval, cur.value->u.s, cur.value->len);
			else
				json_write(&curval, cur.value, 0);
			havecur = 1;
			continue;
		}
		if (k == RD_KIND_RECORD) {
			sb_reset(&fields);
			if (!rec.deleted && rec.fields)
				json_write(&fields, rec.fields, 0);
			if (state_prune_feed(s, rec.type, rec.typelen, rec.key,
			    rec.keylen, rec.rev, rec.revlen,
			    rec.deleted || !rec.fields ? NULL : fields.buf,
			    fields.len) < 0) {
				n = -1;
				break;
			}
			continue;
		}
		if (k != RD_KIND_RESULT)
			continue;
		/* An ok, or a "same", confirmed what the remote holds. */
		settled = res.status == RD_ST_OK ||
		    (res.status == RD_ST_SKIPPED && res.op == RD_OP_SAME);
		if (state_prune_add(s, res.type, res.typelen, res.key,
		    res.keylen, settled) < 0 ||
		    (o.whole && !settled && prune_read(s, &res, &fields) < 0)) {
			n = -1;
			break;
		}
	}
	arena_release(&a);
	lreader_close(&r);
	if (n == 0 && havecur && state_prune_cursor(s, o.cursor, curval.buf) < 0)
		n = -1;
	sb_release(&curval);
	sb_release(&fields);
	free(o.types);
	if (n < 0) {
		state_prune_abort(s);
		die_state(s);
	}
	if (o.digest)
		state_prune_digest(s, &next);
	if (state_prune_finish(s, &removed) < 0)
		die_state(s);
	insync_release(&next);
	state_close(s);
	if (removed) {
		char ctx[64];

		snprintf(ctx, sizeof ctx, "\"removed\":%lld", removed);
		if (rd_log_open(NULL) == 0) {
			rd_log("info", "base pruned", ctx);
			rd_log_close();
		}
	}
	return RD_EXIT_OK;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "record", cmd_record },
	{ "base", cmd_base },
	{ "fold", cmd_fold },
	{ "cursor", cmd_cursor },
	{ "windows", cmd_windows },
	{ "status", cmd_status },
	{ "preflight", cmd_preflight },
	{ "lock", cmd_lock },
	{ "unlock", cmd_lock },
	{ "run", cmd_run },
	{ "scope", cmd_scope },
	{ "history", cmd_history },
	{ "show", cmd_show },
	{ "conflicts", cmd_conflicts },
	{ "outbox", cmd_outbox },
	{ "prune", cmd_prune },
	{ "undo", cmd_undo },
};

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "state", required_argument, NULL, O_STATE },
		{ "scope", required_argument, NULL, O_SCOPE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	size_t i;
	int c;

	rd_setprogname(argv[0]);
	argv[0] = (char *)rd_progname;	/* getopt's messages use it */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case O_STATE:
			state_opt = optarg;
			break;
		case O_SCOPE:
			scope_opt = optarg;
			break;
		case 'h':
			usage(stdout);
			return RD_EXIT_OK;
		case 'V':
			printf("recdelta-checkpoint %s\n", RD_VERSION);
			return RD_EXIT_OK;
		default:
			usage(stderr);
			return RD_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		badusage("missing SUBCOMMAND");
	for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(argc, argv);
	badusage("unknown subcommand \"%s\"", rd_quote(argv[0], strlen(argv[0])));
}
