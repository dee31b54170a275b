/*
 * recdelta-fetch - read a store and write its records as a stream.
 *
 * Reads the store SOURCE names and writes one record line per record on
 * standard output (tombstones with "deleted":true); an ndjson: source's lines
 * of other kinds pass through unchanged and in order.  Nothing else is
 * written to standard output; messages go to standard error.  A store read
 * page by page (cloudkit:, couchdb:) also writes a cursor line after each page, from
 * which --resume goes on, and so does a change feed (dir:, webdav: after it).  --check-args checks the options and SOURCE's word
 * (with --changes: that the store has a change feed), reading nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "../lib/store.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: recdelta-fetch [-t TYPE]... [--window FIELD=FROM..TO] [--allow-empty]\n"
	    "                      [--allow-missing] [--changes] [--resume CURSOR]\n"
	    "                      [--jobs N] [--insecure-http] [--check-args] SOURCE\n"
	    "\n"
	    "  -t, --type TYPE   only records of TYPE (cloudkit: the types to\n"
	    "                    read, in this order)\n"
	    "      --window FIELD=FROM..TO  only records whose FIELD is an instant\n"
	    "                    from FROM up to, not including, TO\n"
	    "      --allow-empty accept an ndjson input with no lines\n"
	    "      --allow-missing  a store that does not exist reads as empty\n"
	    "      --changes     read the change feed (couchdb:, cloudkit: custom\n"
	    "                    zones, dir:, webdav:)\n"
	    "      --resume CURSOR  go on from the value of a cursor line\n"
	    "      --jobs N      webdav: requests at once (default 4)\n"
	    "      --insecure-http  allow plain http to a host that is not this\n"
	    "                    machine (couchdb:, webdav:)\n"
	    "      --check-args  check the options and SOURCE's word (with\n"
	    "                    --changes: that it has a change feed), then exit\n"
	    "  -h, --help        print this help and exit\n"
	    "  -V, --version     print the version and exit\n"
	    "\n"
	    "SOURCE: ndjson:PATH | - | sqlite:DB?table=T&key=COL[&rev=COL][&type=T]\n"
	    "        | dir:PATH | cloudkit:CONTAINER/ENVIRONMENT/DATABASE[/ZONE]\n"
	    "        | couchdb:http(s)://HOST[:PORT]/DB | webdav:URL\n");
}

static int
put(void *ctx, const struct rline *l)
{
	const int *paged = ctx;

	stream_out_line(l->text, l->len);
	/* A cursor is said at once: a reader may keep it and resume from it. */
	if (*paged && !l->rec && fflush(stdout) != 0) {
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
		{ "resume", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "insecure-http", no_argument, NULL, 'I' },
		{ "allow-missing", no_argument, NULL, 'M' },
		{ "check-args", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct fetch_opts fo = { 0 };
	struct window_tally tally = { 0 };
	int paged = 0;
	struct store_sink sink = { .put = put, .ctx = &paged };
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
		case 'M':
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
	if (argc != 1) {
		rd_warn(argc ? "too many arguments" : "missing SOURCE");
		usage(stderr);
		return RD_EXIT_USAGE;
	}

	if (rd_log_open(NULL) < 0)
		rd_die_pending();
	if (store_open(&st, argv[0]) < 0)
		rd_die_pending();
	if (fo.changes && store_feed_check(&st) < 0)
		rd_die_pending();
	if (fo.resume && !st.ops->cursors)
		rd_die(RD_EXIT_USAGE, "%s: the %s: store has no cursors (--resume)",
		    argv[0], st.ops->scheme);
	if (checkargs) {
		store_close(&st);
		free(fo.types);
		free(fo.wfield);
		return RD_EXIT_OK;
	}
	fo.cursors = 1;
	paged = st.ops->cursors;
	stream_out_init();
	fo.tally = &tally;
	ret = store_fetch(&st, &fo, &sink);
	if (ret == 0)
		ret = window_tally_check(&fo, argv[0]);
	free(tally.example);
	store_close(&st);
	free(fo.types);
	free(fo.wfield);
	if (ret < 0) {
		fflush(stdout);
		rd_die_pending();
	}
	if (stream_out_close() < 0)
		rd_die_pending();
	return RD_EXIT_OK;
}
