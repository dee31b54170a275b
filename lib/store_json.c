/*
 * store_json.c - json:PATH[?type=T&key=FIELD&path=.A.B], read only.
 *
 * One JSON document whose records are the elements of an array: the
 * document itself, or the array at a simple path, member names after dots
 * (".data.games"; "." is the document; a name may not hold a dot).  Each
 * element is what a line of ndjson: would be: a record line (or a line of
 * another kind, passed on) without type= and key=, a plain object
 * (lib/plain.h) with them, written on as one compact line.
 *
 * The document is read as a stream: a tokenizer over read() buffers finds
 * where each element begins and ends (strings with their escapes, nesting)
 * and hands its bytes alone to the exact parser, so memory grows with the
 * longest element (at most rd_max_line() bytes), never with the document.
 * The members passed over on the way to the array, and after it, are checked
 * for their structure (strings closed, brackets matched), not parsed; every
 * element is parsed whole.  Messages name the line where the element
 * begins and its place, as jq writes it: "games.json:3: .data.games[2]: ...".
 */
#include "plain.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct jsonstore {
	char *file;
	char *path;		/* path=, or NULL */
	char **comp;		/* its member names */
	size_t ncomp;
	struct plain plain;
};

#define SCAN_BUF (64 * 1024)

/* A JSON text read in buffers; capt, when set, keeps the bytes consumed. */
struct scan {
	int fd;
	const char *name;
	char *buf;
	size_t pos, end;
	int eof;
	unsigned long line;
	struct sb *capt;
	size_t capstart, maxel;
};

static int
scan_err(struct scan *sc, const char *what)
{
	rd_seterr(RD_EXIT_DATA, "%s:%lu: %s", sc->name, sc->line, what);
	return -1;
}

/* The next buffer: 1, 0 at the end, -1 with a message. */
static int
scan_fill(struct scan *sc)
{
	ssize_t n;

	if (sc->capt) {
		sb_add(sc->capt, sc->buf + sc->capstart, sc->end - sc->capstart);
		sc->capstart = 0;
		if (sc->capt->len > sc->maxel) {
			rd_seterr(RD_EXIT_DATA, "%s:%lu: an element longer than "
			    "%zu bytes (RECDELTA_MAX_LINE)", sc->name, sc->line,
			    sc->maxel);
			return -1;
		}
	}
	sc->pos = sc->end = 0;
	if (sc->eof)
		return 0;
	do
		n = read(sc->fd, sc->buf, SCAN_BUF);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", sc->name, strerror(errno));
		return -1;
	}
	if (n == 0) {
		sc->eof = 1;
		return 0;
	}
	sc->end = (size_t)n;
	return 1;
}

/* The next byte, consumed: 0..255, -1 at the end, -2 on error. */
static int
scan_getc(struct scan *sc)
{
	int c, r;

	if (sc->pos == sc->end && (r = scan_fill(sc)) <= 0)
		return r == 0 ? -1 : -2;
	c = (unsigned char)sc->buf[sc->pos++];
	if (c == '\n')
		sc->line++;
	return c;
}

/* The next byte that is not white space, not consumed; as scan_getc. */
static int
scan_peek(struct scan *sc)
{
	int r;

	for (;;) {
		if (sc->pos == sc->end && (r = scan_fill(sc)) <= 0)
			return r == 0 ? -1 : -2;
		switch (sc->buf[sc->pos]) {
		case '\n':
			sc->line++;
			/* FALLTHROUGH */
		case ' ': case '\t': case '\r':
			sc->pos++;
			continue;
		}
		return (unsigned char)sc->buf[sc->pos];
	}
}

static int
scan_expect(struct scan *sc, int want, const char *what)
{
	int c = scan_peek(sc);

	if (c == -2)
		return -1;
	if (c != want)
		return scan_err(sc, c == -1 ? "unexpected end of input" : what);
	scan_getc(sc);
	return 0;
}

/* The rest of a string whose quote was consumed, raw bytes into name. */
static int
scan_string(struct scan *sc, struct sb *name)
{
	int c, esc = 0;

	for (;;) {
		if ((c = scan_getc(sc)) < 0)
			return c == -1 ? scan_err(sc, "unexpected end of input "
			    "in a string") : -1;
		if (name)
			sb_addc(name, c);
		if (esc)
			esc = 0;
		else if (c == '\\')
			esc = 1;
		else if (c == '"')
			return 0;
	}
}

static int
is_scalar_byte(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
}

/*
 * Pass over one value, checking its structure only: strings closed,
 * brackets matched, at most JSON_MAX_DEPTH deep.
 */
static int
scan_skip(struct scan *sc)
{
	char stack[JSON_MAX_DEPTH];
	size_t depth = 0;
	int c = scan_peek(sc);

	if (c == -2)
		return -1;
	if (c == -1)
		return scan_err(sc, "unexpected end of input");
	if (is_scalar_byte(c)) {
		do
			scan_getc(sc);
		while (sc->pos < sc->end ? is_scalar_byte((unsigned char)
		    sc->buf[sc->pos]) : (c = scan_peek(sc)) >= 0 &&
		    is_scalar_byte(c));
		return c == -2 ? -1 : 0;
	}
	for (;;) {
		if ((c = scan_getc(sc)) < 0)
			return c == -1 ? scan_err(sc, "unexpected end of input") :
			    -1;
		switch (c) {
		case '"':
			if (scan_string(sc, NULL) < 0)
				return -1;
			break;
		case '{':
		case '[':
			if (depth == sizeof stack)
				return scan_err(sc, "nested too deep");
			stack[depth++] = (char)(c == '{' ? '}' : ']');
			break;
		case '}':
		case ']':
			if (depth == 0 || stack[depth - 1] != c)
				return scan_err(sc, "unexpected character");
			depth--;
			break;
		default:
			if (depth == 0)
				return scan_err(sc, "unexpected character");
		}
		if (depth == 0)
			return 0;
	}
}

/* A member name: its decoded bytes into out (NUL-terminated), or -1. */
static int
scan_name(struct scan *sc, struct arena *a, struct sb *raw, struct json *out)
{
	size_t errpos;

	if (scan_expect(sc, '"', "expected a member name") < 0)
		return -1;
	sb_reset(raw);
	sb_addc(raw, '"');
	if (scan_string(sc, raw) < 0)
		return -1;
	arena_reset(a);
	if (json_parse(a, raw->buf, raw->len, out, &errpos) < 0) {
		rd_prefixerr("%s:%lu: ", sc->name, sc->line);
		return -1;
	}
	return scan_expect(sc, ':', "expected ':'");
}

/* Pass over the members of an object after the one read, and its '}'. */
static int
scan_rest(struct scan *sc, struct arena *a, struct sb *raw)
{
	struct json name;
	int c;

	for (;;) {
		if ((c = scan_peek(sc)) == -2)
			return -1;
		if (c == '}') {
			scan_getc(sc);
			return 0;
		}
		if (scan_expect(sc, ',', "expected ',' or '}'") < 0 ||
		    scan_name(sc, a, raw, &name) < 0 || scan_skip(sc) < 0)
			return -1;
	}
}

static void
json_free(struct jsonstore *j)
{
	size_t i;

	if (!j)
		return;
	for (i = 0; i < j->ncomp; i++)
		free(j->comp[i]);
	free(j->comp);
	free(j->file);
	free(j->path);
	plain_release(&j->plain);
	free(j);
}

static int
json_open(struct store *s, const char *arg)
{
	struct jsonstore *j = xcalloc(1, sizeof *j);
	const char *qm = strrchr(arg, '?'), *p, *dot;

	if (qm == arg) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": missing path before the "
		    "parameters", rd_quote(s->spec, strlen(s->spec)));
		goto fail;
	}
	j->file = qm ? xmemdup(arg, (size_t)(qm - arg)) : xstrdup(arg);
	if (qm && plain_params(&j->plain, s->spec, qm + 1, &j->path) < 0)
		goto fail;
	s->priv = j;
	if (!j->path || strcmp(j->path, ".") == 0)
		return 0;
	for (p = j->path; *p; p = dot) {
		if (*p != '.' || !p[1] || p[1] == '.') {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": path= is not a simple "
			    "path (.NAME.NAME...)", rd_quote(s->spec,
			    strlen(s->spec)));
			s->priv = NULL;
			goto fail;
		}
		p++;
		if (!(dot = strchr(p, '.')))
			dot = p + strlen(p);
		j->comp = xreallocarray(j->comp, j->ncomp + 1, sizeof *j->comp);
		j->comp[j->ncomp++] = xmemdup(p, (size_t)(dot - p));
	}
	return 0;
fail:
	json_free(j);
	return -1;
}

static void
json_close(struct store *s)
{
	json_free(s->priv);
	s->priv = NULL;
}

static int
json_exists(struct store *s)
{
	struct jsonstore *j = s->priv;
	struct stat st;

	if (strcmp(j->file, "-") == 0 || stat(j->file, &st) == 0 ||
	    errno != ENOENT)
		return 1;
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", j->file, strerror(ENOENT));
	return 0;
}

/* A scope: the file, canonical, and the array's path when not the top. */
static int
json_scope(const char *arg, struct sb *out)
{
	struct store tmp;
	struct jsonstore *j;
	int r = 0;

	memset(&tmp, 0, sizeof tmp);
	tmp.spec = xmalloc(strlen(arg) + sizeof "json:");
	sprintf(tmp.spec, "json:%s", arg);
	if (json_open(&tmp, arg) < 0)
		r = -1;
	j = tmp.priv;
	if (r == 0 && strcmp(j->file, "-") == 0)
		sb_addc(out, '-');
	else if (r == 0)
		r = store_canon_path(j->file, out);
	if (r == 0 && j->ncomp) {
		sb_adds(out, "?path=");
		for (const char *p = j->path; *p; p++)
			if (*p == '%' || *p == '&' || *p == '=' ||
			    (unsigned char)*p < 0x20)
				sb_addf(out, "%%%02X", (unsigned char)*p);
			else
				sb_addc(out, *p);
	}
	json_free(j);
	free(tmp.spec);
	return r;
}

/* One element's bytes: its line handed to the sink. */
static int
json_element(struct jsonstore *j, const struct fetch_opts *o,
    const struct store_sink *sink, struct scan *sc, struct arena *a,
    struct sb *el, unsigned long line, unsigned long idx, struct sb *made)
{
	struct json obj;
	struct record rec;
	const char *kind;
	size_t kindlen, errpos = 0, i;
	int k;

	arena_reset(a);
	sb_reset(made);
	if (json_parse(a, el->buf, el->len, &obj, &errpos) < 0) {
		for (i = 0; i < errpos && i < el->len; i++)
			line += el->buf[i] == '\n';
		k = -1;
	} else if (o && o->raw) {
		/* Handed on as it is, for --map (fetch_opts.raw). */
		json_write(made, &obj, 0);
		k = 2;
	} else if (plain_active(&j->plain)) {
		k = plain_record_line(&j->plain, a, &obj, &rec, made) < 0 ? -1 : 1;
	} else if ((k = stream_parse_line(a, el->buf, el->len, &obj, &rec,
	    &kind, &kindlen)) == 1) {
		stream_write_record(made, &rec);
	} else if (k == 0) {
		json_write(made, &obj, 0);
	}
	if (k < 0) {
		rd_prefixerr("%s:%lu: %s[%lu]: ", sc->name, line,
		    j->path && j->ncomp ? j->path : ".", idx);
		return -1;
	}
	if (k == 1 && !fetch_wants(o, &rec))
		return 0;
	{
		struct rline l = {
			.text = made->buf, .len = made->len, .src = sc->name,
			.lineno = line, .offset = -1, .rec = k == 1 ? &rec : NULL,
			.raw = k == 2, .plain = k == 2 && plain_active(&j->plain) ?
			    &j->plain : NULL,
		};

		return sink->put(sink->ctx, &l);
	}
}

static int
json_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct jsonstore *j = s->priv;
	struct scan sc;
	struct arena a;
	struct sb raw, el, made;
	struct json name;
	unsigned long idx = 0, line;
	size_t i;
	int c, ret = -1;

	memset(&sc, 0, sizeof sc);
	sc.line = 1;
	sc.maxel = rd_max_line();
	if (strcmp(j->file, "-") == 0) {
		sc.fd = STDIN_FILENO;
		sc.name = "<stdin>";
	} else if ((sc.fd = open(j->file, O_RDONLY | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", j->file, strerror(errno));
		return -1;
	} else {
		sc.name = j->file;
	}
	sc.buf = xmalloc(SCAN_BUF);
	arena_init(&a);
	sb_init(&raw, 64);
	sb_init(&el, 4096);
	sb_init(&made, 4096);
	/* Down the path, member by member. */
	for (i = 0; i < j->ncomp; i++) {
		if ((c = scan_peek(&sc)) != '{') {
			if (c == -1)
				scan_err(&sc, "unexpected end of input");
			else if (c >= 0)
				rd_seterr(RD_EXIT_DATA, "%s:%lu: %s is not an "
				    "object (path=%s)", sc.name, sc.line,
				    i ? j->comp[i - 1] : "the document", j->path);
			goto out;
		}
		scan_getc(&sc);
		for (;;) {
			if ((c = scan_peek(&sc)) == '}') {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: no member \"%s\" "
				    "(path=%s)", sc.name, sc.line,
				    rd_quote(j->comp[i], strlen(j->comp[i])),
				    j->path);
				goto out;
			}
			if (scan_name(&sc, &a, &raw, &name) < 0)
				goto out;
			if (strlen(j->comp[i]) == name.len &&
			    memcmp(j->comp[i], name.u.s, name.len) == 0)
				break;
			if (scan_skip(&sc) < 0)
				goto out;
			if ((c = scan_peek(&sc)) == ',')
				scan_getc(&sc);
			else if (c != '}') {
				if (c != -2)
					scan_err(&sc, c == -1 ?
					    "unexpected end of input" :
					    "expected ',' or '}'");
				goto out;
			}
		}
	}
	if ((c = scan_peek(&sc)) != '[') {
		if (c == -2)
			goto out;
		if (c == -1)
			scan_err(&sc, "unexpected end of input");
		else
			rd_seterr(RD_EXIT_DATA, "%s:%lu: %s is not an array",
			    sc.name, sc.line, j->ncomp ? j->path :
			    "the document");
		goto out;
	}
	scan_getc(&sc);
	if ((c = scan_peek(&sc)) == ']') {
		scan_getc(&sc);
	} else {
		for (;;) {
			if ((c = scan_peek(&sc)) < 0) {
				if (c == -1)
					scan_err(&sc, "unexpected end of input");
				goto out;
			}
			line = sc.line;
			sb_reset(&el);
			sc.capt = &el;
			sc.capstart = sc.pos;
			c = scan_skip(&sc);
			sc.capt = NULL;
			if (c < 0)
				goto out;
			sb_add(&el, sc.buf + sc.capstart, sc.pos - sc.capstart);
			if (el.len > sc.maxel) {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: an element longer "
				    "than %zu bytes (RECDELTA_MAX_LINE)", sc.name,
				    line, sc.maxel);
				goto out;
			}
			if (json_element(j, o, sink, &sc, &a, &el, line, idx++,
			    &made) < 0)
				goto out;
			if ((c = scan_peek(&sc)) == ',') {
				scan_getc(&sc);
				continue;
			}
			if (c == ']') {
				scan_getc(&sc);
				break;
			}
			if (c != -2)
				scan_err(&sc, c == -1 ? "unexpected end of input" :
				    "expected ',' or ']'");
			goto out;
		}
	}
	for (i = 0; i < j->ncomp; i++)
		if (scan_rest(&sc, &a, &raw) < 0)
			goto out;
	if ((c = scan_peek(&sc)) != -1) {
		if (c >= 0)
			scan_err(&sc, "trailing characters after the document");
		goto out;
	}
	if (idx == 0 && !(o && o->allow_empty)) {
		rd_seterr(RD_EXIT_DATA, "%s: empty array (--allow-empty accepts "
		    "it)", sc.name);
		goto out;
	}
	ret = 0;
out:
	if (sc.fd != STDIN_FILENO)
		close(sc.fd);
	free(sc.buf);
	sb_release(&raw);
	sb_release(&el);
	sb_release(&made);
	arena_release(&a);
	return ret;
}

const struct store_ops store_json_ops = {
	.scheme = "json",
	.synopsis = "json:PATH",
	.open = json_open,
	.exists = json_exists,
	.scope = json_scope,
	.fetch = json_fetch,
	.close = json_close,
};
