/* stream.c - line reader, record lines, standard output. */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_LINE (4u << 20)

size_t
rd_max_line(void)
{
	const char *s = getenv("RECDELTA_MAX_LINE");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return DEFAULT_MAX_LINE;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < 64 || v > (1ull << 31))
		return DEFAULT_MAX_LINE;
	return (size_t)v;
}

int
lreader_open(struct lreader *r, const char *path)
{
	memset(r, 0, sizeof *r);
	if (strcmp(path, "-") == 0) {
		r->fd = STDIN_FILENO;
		r->name = "<stdin>";
	} else {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
			return -1;
		}
		r->owned = 1;
		r->name = path;
	}
	r->cap = 256 * 1024;
	r->buf = xmalloc(r->cap);
	r->maxline = rd_max_line();
	return 0;
}

void
lreader_close(struct lreader *r)
{
	if (r->owned && r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
}

static int
isblankline(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

int
lreader_next(struct lreader *r, const char **line, size_t *len)
{
	for (;;) {
		char *nl = NULL;
		size_t scanned = 0;
		ssize_t n;

		for (;;) {
			if (r->end > r->start + scanned)
				nl = memchr(r->buf + r->start + scanned, '\n',
				    r->end - r->start - scanned);
			if (nl || r->eof)
				break;
			scanned = r->end - r->start;
			if (scanned > r->maxline) {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: line too long "
				    "(more than %zu bytes)", r->name, r->lineno + 1,
				    r->maxline);
				return -1;
			}
			if (r->start > 0 && r->start >= r->cap / 2) {
				memmove(r->buf, r->buf + r->start, r->end - r->start);
				r->end -= r->start;
				r->start = 0;
			}
			if (r->end == r->cap) {
				r->cap *= 2;
				r->buf = xrealloc(r->buf, r->cap);
			}
			do
				n = read(r->fd, r->buf + r->end, r->cap - r->end);
			while (n < 0 && errno == EINTR);
			if (n < 0) {
				rd_seterr(RD_EXIT_RUNTIME, "%s: %s", r->name,
				    strerror(errno));
				return -1;
			}
			if (n == 0)
				r->eof = 1;
			r->end += (size_t)n;
		}
		if (!nl && r->start == r->end)
			return 0;
		{
			size_t l = nl ? (size_t)(nl - (r->buf + r->start)) :
			    r->end - r->start;
			const char *p = r->buf + r->start;

			r->lineno++;
			r->offset = r->next;
			r->next += (off_t)l + (nl ? 1 : 0);
			r->start += l + (nl ? 1 : 0);
			if (l > r->maxline) {
				rd_seterr(RD_EXIT_DATA, "%s:%lu: line too long "
				    "(more than %zu bytes)", r->name, r->lineno,
				    r->maxline);
				return -1;
			}
			if (isblankline(p, l))
				continue;
			*line = p;
			*len = l;
			return 1;
		}
	}
}

static int
getstr(const struct json *obj, const char *name, const char **s, size_t *n,
    int required)
{
	const struct json *v = json_get(obj, name);

	if (!v) {
		if (required) {
			rd_seterr(RD_EXIT_DATA, "missing \"%s\"", name);
			return -1;
		}
		*s = NULL;
		*n = 0;
		return 0;
	}
	if (v->type != JSON_STRING) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is not a string", name);
		return -1;
	}
	if (required && v->len == 0) {
		rd_seterr(RD_EXIT_DATA, "empty \"%s\"", name);
		return -1;
	}
	*s = v->u.s;
	*n = v->len;
	return 0;
}

int
stream_parse_line(struct arena *a, const char *line, size_t len,
    struct json *obj, struct record *rec, const char **kind, size_t *kindlen)
{
	const struct json *v;

	if (json_parse(a, line, len, obj, NULL) < 0)
		return -1;
	if (obj->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "line is not a JSON object");
		return -1;
	}
	if (getstr(obj, "kind", kind, kindlen, 1) < 0)
		return -1;
	if (*kindlen != 6 || memcmp(*kind, "record", 6) != 0)
		return 0;
	memset(rec, 0, sizeof *rec);
	if (getstr(obj, "type", &rec->type, &rec->typelen, 1) < 0 ||
	    getstr(obj, "key", &rec->key, &rec->keylen, 1) < 0 ||
	    getstr(obj, "rev", &rec->rev, &rec->revlen, 0) < 0 ||
	    getstr(obj, "mtime", &rec->mtime, &rec->mtimelen, 0) < 0)
		return -1;
	v = json_get(obj, "deleted");
	if (v) {
		if (v->type != JSON_TRUE && v->type != JSON_FALSE) {
			rd_seterr(RD_EXIT_DATA, "\"deleted\" is not a boolean");
			return -1;
		}
		rec->deleted = v->type == JSON_TRUE;
	}
	v = json_get(obj, "fields");
	if (v && v->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "\"fields\" is not an object");
		return -1;
	}
	if (!v && !rec->deleted) {
		rd_seterr(RD_EXIT_DATA, "missing \"fields\"");
		return -1;
	}
	rec->fields = v;
	return 1;
}

void
stream_write_record(struct sb *out, const struct record *rec)
{
	sb_adds(out, "{\"kind\":\"record\",\"type\":");
	json_write_string(out, rec->type, rec->typelen);
	sb_adds(out, ",\"key\":");
	json_write_string(out, rec->key, rec->keylen);
	if (rec->rev) {
		sb_adds(out, ",\"rev\":");
		json_write_string(out, rec->rev, rec->revlen);
	}
	if (rec->mtime) {
		sb_adds(out, ",\"mtime\":");
		json_write_string(out, rec->mtime, rec->mtimelen);
	}
	if (rec->deleted)
		sb_adds(out, ",\"deleted\":true");
	if (rec->fields) {
		sb_adds(out, ",\"fields\":");
		json_write(out, rec->fields, 0);
	}
	sb_addc(out, '}');
}

static char *outbuf;

void
stream_out_init(void)
{
	outbuf = xmalloc(1 << 20);
	setvbuf(stdout, outbuf, _IOFBF, 1 << 20);
}

void
stream_out_line(const char *line, size_t len)
{
	fwrite(line, 1, len, stdout);
	putchar('\n');
}

int
stream_out_close(void)
{
	int bad = fflush(stdout) != 0 || ferror(stdout);
	int e = errno;

	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	/* stdout is closed; its buffer may go. */
	free(outbuf);
	outbuf = NULL;
	if (bad) {
		rd_seterr(RD_EXIT_RUNTIME, "write error: %s", strerror(e));
		return -1;
	}
	return 0;
}
