/* util.c - exit statuses, messages, allocation, byte buffers, encodings. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const char *rd_progname = "recdelta";

static _Thread_local char errbuf[1024];
static _Thread_local int errstatus;

void
rd_setprogname(const char *argv0)
{
	const char *p = strrchr(argv0, '/');

	rd_progname = p ? p + 1 : argv0;
}

void
rd_seterr(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	errstatus = status;
}

void
rd_prefixerr(const char *fmt, ...)
{
	char prefix[512], old[sizeof errbuf];
	size_t pl, ol;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, errbuf, sizeof old);
	pl = strlen(prefix);
	ol = strnlen(old, sizeof old - 1);
	if (pl + ol >= sizeof errbuf)
		ol = sizeof errbuf - 1 - pl;
	memcpy(errbuf, prefix, pl);
	memcpy(errbuf + pl, old, ol);
	errbuf[pl + ol] = '\0';
}

void
rd_suffixerr(const char *fmt, ...)
{
	size_t ol = strnlen(errbuf, sizeof errbuf - 1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf + ol, sizeof errbuf - ol, fmt, ap);
	va_end(ap);
}

const char *
rd_errmsg(void)
{
	return errbuf[0] ? errbuf : "unknown error";
}

int
rd_errstatus(void)
{
	return errstatus ? errstatus : RD_EXIT_RUNTIME;
}

static void
vwarn(const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: ", rd_progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
rd_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
}

void
rd_die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(fmt, ap);
	va_end(ap);
	exit(status);
}

void
rd_die_pending(void)
{
	rd_die(rd_errstatus(), "%s", rd_errmsg());
}

static _Noreturn void
oom(void)
{
	fprintf(stderr, "%s: out of memory\n", rd_progname);
	exit(RD_EXIT_RUNTIME);
}

/*
 * A large block (the indexes, digests and line tables of a run over
 * millions of records) is asked to be backed by transparent huge pages
 * where the system has them, a hint (madvise(2), MADV_HUGEPAGE; glibc's
 * malloc gives such a block pages of its own): filled once, as these are,
 * it then takes a page fault per 2 MB rather than one per 4 kB, and on a
 * virtual machine the faults cost more than the bytes.  Only the whole
 * 2 MB spans inside the block are named.
 */
#define LARGE ((size_t)4 << 20)
#define HUGE_SPAN ((uintptr_t)2 << 20)

static void *
large(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	uintptr_t a, b;

	if (n >= LARGE) {
		a = ((uintptr_t)p + HUGE_SPAN - 1) & ~(HUGE_SPAN - 1);
		b = ((uintptr_t)p + n) & ~(HUGE_SPAN - 1);
		if (b > a)
			(void)madvise((void *)a, b - a, MADV_HUGEPAGE);
	}
#else
	(void)n;
#endif
	return p;
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return large(p, n);
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	/* calloc checked the product. */
	return large(p, n * size);
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return large(p, n);
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		oom();
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

char *
xmemdup(const void *p, size_t n)
{
	char *s = xmalloc(n + 1);

	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

void
sb_init(struct sb *sb, size_t hint)
{
	sb->cap = hint < 64 ? 64 : hint;
	sb->buf = xmalloc(sb->cap);
	sb->buf[0] = '\0';
	sb->len = 0;
}

void
sb_release(struct sb *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

void
sb_grow(struct sb *sb, size_t extra)
{
	size_t want;

	if (extra >= SIZE_MAX - sb->len - 1)
		oom();
	want = sb->len + extra + 1;
	if (want <= sb->cap)
		return;
	while (sb->cap < want)
		sb->cap = sb->cap < SIZE_MAX / 2 ? sb->cap * 2 : want;
	sb->buf = xrealloc(sb->buf, sb->cap);
}

void
sb_add(struct sb *sb, const void *p, size_t n)
{
	sb_grow(sb, n);
	memcpy(sb->buf + sb->len, p, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

void
sb_adds(struct sb *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void
sb_addf(struct sb *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sb->cap - sb->len) {
		sb_grow(sb, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
		va_end(ap);
	}
	sb->len += (size_t)n;
}

const char *
rd_quote(const char *s, size_t n)
{
	static _Thread_local char ring[4][160];
	static _Thread_local unsigned next;
	char *out = ring[next++ % 4];
	size_t o = 0, i;

	for (i = 0; i < n && o < sizeof ring[0] - 8; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			out[o++] = (char)c;
		} else if (c >= 0x80) {
			out[o++] = (char)c;	/* UTF-8 passes through */
		} else {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		}
	}
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
base64_encode(struct sb *out, const unsigned char *p, size_t n)
{
	size_t i;

	sb_grow(out, (n + 2) / 3 * 4);
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		sb_addc(out, b64[v >> 18]);
		sb_addc(out, b64[v >> 12 & 63]);
		sb_addc(out, b64[v >> 6 & 63]);
		sb_addc(out, b64[v & 63]);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		sb_addc(out, b64[v >> 18]);
		sb_addc(out, b64[v >> 12 & 63]);
		sb_adds(out, "==");
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		sb_addc(out, b64[v >> 18]);
		sb_addc(out, b64[v >> 12 & 63]);
		sb_addc(out, b64[v >> 6 & 63]);
		sb_addc(out, '=');
	}
}

static int
b64val(int c)
{
	const char *p;

	if (c == 0)
		return -1;
	p = strchr(b64, c);
	return p ? (int)(p - b64) : -1;
}

int
base64_decode(struct sb *out, const char *in, size_t n)
{
	size_t i;

	if (n % 4)
		return -1;
	for (i = 0; i < n; i += 4) {
		int last = i + 4 == n;
		int a = b64val(in[i]), b = b64val(in[i + 1]);
		int c = last && in[i + 2] == '=' ? -2 : b64val(in[i + 2]);
		int d = last && in[i + 3] == '=' ? -2 : b64val(in[i + 3]);

		if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
			return -1;
		sb_addc(out, a << 2 | b >> 4);
		if (c == -2) {
			if (b & 15)
				return -1;	/* stray bits: not canonical */
			break;
		}
		sb_addc(out, (b & 15) << 4 | c >> 2);
		if (d == -2) {
			if (c & 3)
				return -1;
			break;
		}
		sb_addc(out, (c & 3) << 6 | d);
	}
	return 0;
}

uint64_t
rd_idhash(const char *t, size_t tn, const char *k, size_t kn)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a, then a final mix */
	size_t i;

	for (i = 0; i < tn; i++)
		h = (h ^ (unsigned char)t[i]) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (i = 0; i < kn; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ULL;
	h ^= h >> 31;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

void
hex_encode(char *out, const unsigned char *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hx[p[i] >> 4];
		out[2 * i + 1] = hx[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 32;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char *
pct_decode(const char *s, size_t n, size_t *len)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			*o++ = (char)(hex_value(s[i + 1]) << 4 |
			    hex_value(s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

int
utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str, *e = s + n;

	while (s < e) {
		unsigned c = *s;

		if (c < 0x80) {
			s++;
		} else if (c >= 0xc2 && c <= 0xdf) {
			if (e - s < 2 || (s[1] & 0xc0) != 0x80)
				return 0;
			s += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			if (e - s < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
				return 0;
			if (c == 0xe0 && s[1] < 0xa0)
				return 0;	/* overlong */
			if (c == 0xed && s[1] >= 0xa0)
				return 0;	/* surrogate */
			s += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			if (e - s < 4 || (s[1] & 0xc0) != 0x80 ||
			    (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
				return 0;
			if (c == 0xf0 && s[1] < 0x90)
				return 0;
			if (c == 0xf4 && s[1] >= 0x90)
				return 0;
			s += 4;
		} else {
			return 0;
		}
	}
	return 1;
}

void
utf8_fix(char *s)
{
	size_t i = 0, n = strlen(s), k;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		k = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		if (i + k > n || !utf8_valid(s + i, k)) {
			s[i] = '?';
			k = 1;
		}
		i += k;
	}
}

int
rd_pread_full(int fd, void *buf, size_t len, off_t off)
{
	char *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, p + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s", n < 0 ? strerror(errno) :
			    "file changed while reading");
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}
