/*
 * recgen - write synthetic NDJSON record sets for benchmarks and tests.
 *
 * Writes LEFT, n records shaped like ../shared/bench/gen_records.py makes
 * them, one compact JSON object a line.  With RIGHT, also writes a mutated
 * copy of LEFT: floor(n * changed) records edited (one field really differs
 * and rev becomes "r2"), floor(n * deleted) records dropped and
 * floor(n * new) records added with keys beyond n; the changed and deleted
 * sets are disjoint.  --shuffle writes RIGHT in random order.  The counts a
 * diff of RIGHT (local) against LEFT (remote) must find are printed on
 * stderr as one JSON line.
 *
 * The output depends only on the options and the seed.  Every record, and
 * the edit made to it, is drawn from a generator seeded with (seed, index),
 * so RIGHT can be written in any order without keeping LEFT in memory: the
 * memory used is a few bytes per record for the picks and the shuffle.
 *
 * For a three-way merge, two RIGHTs of one LEFT: --edit-seed E draws the
 * picks and the edits from E instead of the seed, so two edit seeds give two
 * sets of changed records of one LEFT; --shared F picks floor(n * F) further
 * records from the seed alone (the same for every edit seed, disjoint from
 * the other picks) and raises their capacity by an amount drawn from the
 * edit seed: two RIGHTs with two edit seeds both change that field of those
 * records, almost always to different values.  Without these options the
 * output is what it was before they existed.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define IOBUFSIZE	(1 << 20)
#define RECMAX		1024	/* longer than any record we format */
#define MAXRECS		UINT32_MAX

/* Independent random streams, so that one option does not shift another. */
enum { S_RECORD = 1, S_EDIT, S_PICK, S_SHUFFLE, S_SHARED, S_SHARED_EDIT };

/* Long options with no short form. */
enum { O_SEED = 256, O_CHANGED, O_NEW, O_DELETED, O_SHUFFLE, O_EDITSEED,
    O_SHARED, O_HELP };

/* Marks for a LEFT record in RIGHT. */
enum { KEEP = 0, CHANGE, DROP, SHARED };

static const char *types[] = { "Stadium", "Team", "Player", "Venue", "Event" };
static const char *words[] = {
	"North", "South", "Arena", "Field", "Park", "Dome", "Center", "Memorial",
	"Valley", "River", "Lake", "Summit", "Harbor", "Grand", "Union", "Liberty"
};
static const char *tagnames[] = {
	"outdoor", "indoor", "grass", "turf", "retractable", "historic",
	"downtown", "suburban", "a", "b", "c"
};

struct rec {
	uint64_t	 i;
	const char	*word[3];
	int		 suffix;	/* name gets " II" */
	uint32_t	 capacity;
	int32_t		 lat, lng;	/* in units of 0.0001 degree */
	uint32_t	 team;
	unsigned	 ntags;
	const char	*tag[NELEM(tagnames) + 1];
	unsigned	 year, month, day;
	int		 rev;
};

static char lbuf[IOBUFSIZE], rbuf[IOBUFSIZE];

/* splitmix64: Steele, Lea and Flood, "Fast splittable pseudorandom number generators". */
static uint64_t
mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void
rng_init(uint64_t *s, uint64_t seed, unsigned stream, uint64_t i)
{
	*s = mix(mix(mix(seed) + stream) + i);
}

static uint64_t
rng_next(uint64_t *s)
{
	return mix(*s += UINT64_C(0x9e3779b97f4a7c15));
}

/* A number in [lo, hi]; the modulo bias is below 2^-40 for our ranges. */
static int64_t
rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static void
make_record(struct rec *r, uint64_t seed, uint64_t i)
{
	uint64_t s;
	unsigned idx[NELEM(tagnames)], j, k, t;

	rng_init(&s, seed, S_RECORD, i);
	r->i = i;
	for (j = 0; j < 3; j++)
		r->word[j] = words[rng_range(&s, 0, NELEM(words) - 1)];
	r->suffix = 0;
	r->capacity = rng_range(&s, 1000, 110000);
	r->lat = rng_range(&s, -900000, 900000);
	r->lng = rng_range(&s, -1800000, 1800000);
	r->team = rng_range(&s, 1, 5000);
	r->ntags = rng_range(&s, 0, 4);
	for (j = 0; j < NELEM(tagnames); j++)
		idx[j] = j;
	for (j = 0; j < r->ntags; j++) {
		k = rng_range(&s, j, NELEM(tagnames) - 1);
		t = idx[j];
		idx[j] = idx[k];
		idx[k] = t;
		r->tag[j] = tagnames[idx[j]];
	}
	r->year = rng_range(&s, 1900, 2024);
	r->month = rng_range(&s, 1, 12);
	r->day = rng_range(&s, 1, 28);
	r->rev = 1;
}

/* Change one field so that the record really differs, as gen_records.py does. */
static void
mutate(struct rec *r, uint64_t seed)
{
	uint64_t s;

	rng_init(&s, seed, S_EDIT, r->i);
	switch (rng_range(&s, 0, 3)) {
	case 0:
		r->capacity += rng_range(&s, 1, 500);
		break;
	case 1:
		r->suffix = 1;
		break;
	case 2:
		r->tag[r->ntags++] = "renovated";
		break;
	default:
		/* 0.001 north, or south at the pole: still seen with a 0.0001 tolerance. */
		r->lat += r->lat + 10 <= 900000 ? 10 : -10;
		break;
	}
	r->rev = 2;
}

/* The edit of a --shared record: its capacity, by an amount of the seed's. */
static void
mutate_shared(struct rec *r, uint64_t seed)
{
	uint64_t s;

	rng_init(&s, seed, S_SHARED_EDIT, r->i);
	r->capacity += rng_range(&s, 1, 500);
	r->rev = 2;
}

static char *
putstr(char *p, const char *s)
{
	while (*s != '\0')
		*p++ = *s++;
	return p;
}

/* Decimal, zero-padded to at least width digits. */
static char *
putnum(char *p, uint64_t v, int width)
{
	char t[20];
	int n = 0;

	do
		t[n++] = '0' + v % 10;
	while ((v /= 10) != 0);
	while (n < width)
		t[n++] = '0';
	while (n > 0)
		*p++ = t[--n];
	return p;
}

/* Degrees as Python prints round(x, 4): at most 4 decimals, at least one. */
static char *
putdeg(char *p, int32_t v)
{
	uint32_t a, frac;
	int n;

	if (v < 0)
		*p++ = '-';
	a = v < 0 ? -(uint32_t)v : (uint32_t)v;
	p = putnum(p, a / 10000, 1);
	*p++ = '.';
	frac = a % 10000;
	for (n = 4; n > 1 && frac % 10 == 0; n--)
		frac /= 10;
	return putnum(p, frac, n);
}

/* Format r as one line, newline included, into buf; return its length. */
static size_t
format(char *buf, const struct rec *r)
{
	char *p = buf;
	unsigned j;

	p = putstr(p, "{\"kind\":\"record\",\"type\":\"");
	p = putstr(p, types[r->i % NELEM(types)]);
	p = putstr(p, "\",\"key\":\"k");
	p = putnum(p, r->i, 7);
	p = putstr(p, "\",\"rev\":\"r");
	p = putnum(p, r->rev, 1);
	p = putstr(p, "\",\"fields\":{\"name\":\"");
	for (j = 0; j < 3; j++) {
		p = putstr(p, r->word[j]);
		*p++ = ' ';
	}
	p = putnum(p, r->i, 1);
	if (r->suffix)
		p = putstr(p, " II");
	p = putstr(p, "\",\"capacity\":");
	p = putnum(p, r->capacity, 1);
	p = putstr(p, ",\"location\":{\"$loc\":{\"lat\":");
	p = putdeg(p, r->lat);
	p = putstr(p, ",\"lng\":");
	p = putdeg(p, r->lng);
	p = putstr(p, "}},\"team\":{\"$ref\":\"team_");
	p = putnum(p, r->team, 1);
	p = putstr(p, "\"},\"tags\":[");
	for (j = 0; j < r->ntags; j++) {
		if (j > 0)
			*p++ = ',';
		*p++ = '"';
		p = putstr(p, r->tag[j]);
		*p++ = '"';
	}
	p = putstr(p, "],\"opened\":\"");
	p = putnum(p, r->year, 4);
	*p++ = '-';
	p = putnum(p, r->month, 2);
	*p++ = '-';
	p = putnum(p, r->day, 2);
	p = putstr(p, "\"}}\n");
	return p - buf;
}

static void
put(FILE *fp, const char *path, const char *buf, size_t len)
{
	if (fwrite(buf, 1, len, fp) != len)
		err(1, "%s", path);
}

static FILE *
create(const char *path, char *iobuf)
{
	FILE *fp;

	if ((fp = fopen(path, "w")) == NULL)
		err(1, "%s", path);
	if (setvbuf(fp, iobuf, _IOFBF, IOBUFSIZE) != 0)
		errx(1, "%s: cannot set the output buffer", path);
	return fp;
}

static void
finish(FILE *fp, const char *path)
{
	errno = 0;
	if (fflush(fp) == EOF || ferror(fp)) {
		if (errno == 0)
			errno = EIO;
		err(1, "%s", path);
	}
	if (fclose(fp) == EOF)
		err(1, "%s", path);
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n ? n : 1, size)) == NULL)
		err(1, NULL);
	return p;
}

static void
usage(FILE *fp, int status)
{
	fprintf(fp, "usage: recgen [-n N] [--seed S] [--changed F] [--new F] "
	    "[--deleted F] [--shuffle]\n"
	    "              [--edit-seed E] [--shared F] LEFT [RIGHT]\n");
	exit(status);
}

static uint64_t
getcount(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0 ||
	    v > MAXRECS) {
		warnx("%s \"%s\": not a count from 0 to %" PRIu32, opt, s,
		    MAXRECS);
		usage(stderr, 2);
	}
	return v;
}

static uint64_t
getseed(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0) {
		warnx("--seed \"%s\": not an integer", s);
		usage(stderr, 2);
	}
	return (uint64_t)v;
}

static double
getfrac(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v >= 0 && v <= 1)) {
		warnx("%s \"%s\": not a fraction from 0 to 1", opt, s);
		usage(stderr, 2);
	}
	return v;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "seed",	required_argument,	NULL, O_SEED },
		{ "changed",	required_argument,	NULL, O_CHANGED },
		{ "new",	required_argument,	NULL, O_NEW },
		{ "deleted",	required_argument,	NULL, O_DELETED },
		{ "shuffle",	no_argument,		NULL, O_SHUFFLE },
		{ "edit-seed",	required_argument,	NULL, O_EDITSEED },
		{ "shared",	required_argument,	NULL, O_SHARED },
		{ "help",	no_argument,		NULL, O_HELP },
		{ NULL,		0,			NULL, 0 }
	};
	const char *lpath, *rpath;
	FILE *lf, *rf = NULL;
	struct stat lst, rst;
	struct rec r;
	char line[RECMAX], edited[RECMAX];
	uint64_t n = 1000000, seed = 1, eseed = 0, s, i, j, k, m;
	uint64_t nchanged, nnew, ndeleted, nshared;
	double changed = 0.01, added = 0.005, deleted = 0.005, shared = 0;
	int haveeseed = 0;
	unsigned char *mark = NULL;
	uint32_t *perm, t;
	size_t len;
	int ch, shuffle = 0;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hn:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			n = getcount("-n", optarg);
			break;
		case O_SEED:
			seed = getseed(optarg);
			break;
		case O_CHANGED:
			changed = getfrac("--changed", optarg);
			break;
		case O_NEW:
			added = getfrac("--new", optarg);
			break;
		case O_DELETED:
			deleted = getfrac("--deleted", optarg);
			break;
		case O_SHUFFLE:
			shuffle = 1;
			break;
		case O_EDITSEED:
			eseed = getseed(optarg);
			haveeseed = 1;
			break;
		case O_SHARED:
			shared = getfrac("--shared", optarg);
			break;
		case 'h':
		case O_HELP:
			usage(stdout, 0);
			break;
		case ':':
			warnx("option requires an argument: %s", argv[optind - 1]);
			usage(stderr, 2);
			break;
		default:
			if (optopt >= O_SEED)
				warnx("option takes no argument: %s",
				    argv[optind - 1]);
			else if (optopt != 0)
				warnx("unknown option: -%c", optopt);
			else
				warnx("unknown option: %s", argv[optind - 1]);
			usage(stderr, 2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2)
		usage(stderr, 2);
	lpath = argv[0];
	rpath = argc > 1 ? argv[1] : NULL;

	nchanged = (uint64_t)floor((double)n * changed);
	nnew = (uint64_t)floor((double)n * added);
	ndeleted = (uint64_t)floor((double)n * deleted);
	nshared = (uint64_t)floor((double)n * shared);
	if (!haveeseed)
		eseed = seed;
	if (nchanged + ndeleted + nshared > n) {
		warnx("--changed, --deleted and --shared add up to more than "
		    "all records");
		usage(stderr, 2);
	}
	if (n + nnew > MAXRECS) {
		warnx("too many records: %" PRIu64 " plus %" PRIu64 " new",
		    n, nnew);
		usage(stderr, 2);
	}

	lf = create(lpath, lbuf);
	if (rpath != NULL) {
		rf = create(rpath, rbuf);
		if (fstat(fileno(lf), &lst) == -1)
			err(1, "%s", lpath);
		if (fstat(fileno(rf), &rst) == -1)
			err(1, "%s", rpath);
		if (S_ISREG(lst.st_mode) && lst.st_dev == rst.st_dev &&
		    lst.st_ino == rst.st_ino)
			errx(1, "%s and %s are the same file", lpath, rpath);

		/* The shared picks, by the seed alone: drawn until new. */
		mark = xcalloc(n, 1);
		rng_init(&s, seed, S_SHARED, n);
		for (i = 0; i < nshared; i++) {
			do
				k = rng_range(&s, 0, n - 1);
			while (mark[k] != KEEP);
			mark[k] = SHARED;
		}
		/*
		 * Partial Fisher-Yates over the others: the first picks are
		 * changed, the rest dropped.
		 */
		perm = xcalloc(n, sizeof(*perm));
		for (i = m = 0; i < n; i++)
			if (mark[i] == KEEP)
				perm[m++] = i;
		rng_init(&s, eseed, S_PICK, n);
		for (i = 0; i < nchanged + ndeleted; i++) {
			k = rng_range(&s, i, m - 1);
			t = perm[i];
			perm[i] = perm[k];
			perm[k] = t;
			mark[perm[i]] = i < nchanged ? CHANGE : DROP;
		}
		free(perm);
	}

	for (i = 0; i < n; i++) {
		make_record(&r, seed, i);
		len = format(line, &r);
		put(lf, lpath, line, len);
		if (rf == NULL || shuffle || mark[i] == DROP)
			continue;
		if (mark[i] == CHANGE || mark[i] == SHARED) {
			if (mark[i] == CHANGE)
				mutate(&r, eseed);
			else
				mutate_shared(&r, eseed);
			put(rf, rpath, edited, format(edited, &r));
		} else
			put(rf, rpath, line, len);
	}
	finish(lf, lpath);
	if (rf == NULL)
		return 0;

	if (!shuffle) {
		for (i = n; i < n + nnew; i++) {
			make_record(&r, seed, i);
			put(rf, rpath, line, format(line, &r));
		}
	} else {
		/* Fisher-Yates over the indices of RIGHT's records, then regenerate them. */
		m = n - ndeleted + nnew;
		perm = xcalloc(m, sizeof(*perm));
		for (i = j = 0; i < n + nnew; i++)
			if (i >= n || mark[i] != DROP)
				perm[j++] = i;
		rng_init(&s, seed, S_SHUFFLE, n);
		for (i = m; i > 1; i--) {
			k = rng_range(&s, 0, i - 1);
			t = perm[i - 1];
			perm[i - 1] = perm[k];
			perm[k] = t;
		}
		for (j = 0; j < m; j++) {
			make_record(&r, seed, perm[j]);
			if (perm[j] < n && mark[perm[j]] == CHANGE)
				mutate(&r, eseed);
			else if (perm[j] < n && mark[perm[j]] == SHARED)
				mutate_shared(&r, eseed);
			put(rf, rpath, line, format(line, &r));
		}
		free(perm);
	}
	finish(rf, rpath);
	free(mark);

	fprintf(stderr, "{\"left\":%" PRIu64 ",\"right\":%" PRIu64
	    ",\"new\":%" PRIu64 ",\"updated\":%" PRIu64 ",\"deleted\":%" PRIu64
	    ",\"unchanged\":%" PRIu64 "}\n", n, n - ndeleted + nnew, nnew,
	    nchanged + nshared, ndeleted, n - nchanged - ndeleted - nshared);
	return 0;
}
