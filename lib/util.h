/*
 * util.h - the few things every part of recdelta shares.
 *
 * Exit statuses (STYLE.md, documented in every man page), the program name
 * used in messages, allocation wrappers that die on out-of-memory, a growable
 * byte buffer, and the library's error convention: a lib/ function that fails
 * returns -1 (or NULL) after calling rd_seterr(), which records an exit
 * status class and a message in thread-local storage; only bin/ prints it
 * and exits.
 */
#ifndef RD_UTIL_H
#define RD_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	RD_EXIT_OK = 0,		/* ran correctly, whatever it found */
	RD_EXIT_FOUND = 1,	/* --exit-code / --check: something differs */
	RD_EXIT_USAGE = 2,
	RD_EXIT_DATA = 3,	/* bad input data */
	RD_EXIT_RUNTIME = 4,	/* I/O, network, store, state */
	RD_EXIT_REFUSED = 5,	/* refused before writing anything */
	RD_EXIT_PARTIAL = 6	/* some changes not applied */
};

#define RD_VERSION "0.1.0"

extern const char *rd_progname;

void rd_setprogname(const char *argv0);

/* Record a failure: exit status class and message (no program name). */
void rd_seterr(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
const char *rd_errmsg(void);
/* Prefix the pending message, e.g. with "file:12: ". */
void rd_prefixerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Append to the pending message, e.g. "; gave up after 5 attempts". */
void rd_suffixerr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rd_errstatus(void);

/* Print "prog: message" on stderr. */
void rd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void rd_die(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Print the pending library error and exit with its status. */
_Noreturn void rd_die_pending(void);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xmemdup(const void *p, size_t n);	/* NUL-terminated copy */

/*
 * A growable byte buffer, always NUL-terminated (git's strbuf).  buf is
 * never NULL after sb_init; the owner releases it with sb_release.
 */
struct sb {
	char *buf;
	size_t len, cap;
};

void sb_init(struct sb *sb, size_t hint);
void sb_release(struct sb *sb);
void sb_grow(struct sb *sb, size_t extra);
void sb_add(struct sb *sb, const void *p, size_t n);
static inline void
sb_addc(struct sb *sb, int c)
{
	if (sb->len + 1 >= sb->cap)
		sb_grow(sb, 1);
	sb->buf[sb->len++] = (char)c;
	sb->buf[sb->len] = '\0';
}
void sb_adds(struct sb *sb, const char *s);
void sb_addf(struct sb *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void sb_reset(struct sb *sb) { sb->len = 0; sb->buf[0] = '\0'; }

/*
 * Quote s (length n) for a message: printable ASCII and UTF-8 kept, control
 * bytes escaped, long strings cut.  The result is valid until four more
 * calls in the same thread.
 */
const char *rd_quote(const char *s, size_t n);

/* Base64 (standard alphabet, padded). */
void base64_encode(struct sb *out, const unsigned char *p, size_t n);
/* Returns 0, or -1 if in is not canonical padded base64. */
int base64_decode(struct sb *out, const char *in, size_t n);

/*
 * A well-mixed 64-bit hash of a record's identity (type, key), for the
 * in-memory tables of diff, the dir: store and the checkpoint; never stored.
 */
uint64_t rd_idhash(const char *type, size_t typelen, const char *key,
    size_t keylen);

/*
 * Read len bytes at off of fd into buf, whole: a read cut short or
 * interrupted (EINTR) goes on.  -1 with a message (status 4): the error, or
 * "file changed while reading" when the file ends before len bytes; the
 * caller prefixes what it was reading.
 */
int rd_pread_full(int fd, void *buf, size_t len, off_t off);

/* Hex of n bytes into out (2n+1 bytes). */
void hex_encode(char *out, const unsigned char *p, size_t n);
/* The value of a hex digit, in either case, or -1. */
int hex_value(int c);
/*
 * s (n bytes) with each %XX decoded once (a '%' without two hex digits
 * stays as it is): an owned NUL-terminated copy, its length in *len (a
 * decoded NUL makes it longer than strlen).
 */
char *pct_decode(const char *s, size_t n, size_t *len);

/* True when s (length n) is valid UTF-8 (no overlongs, no surrogates). */
int utf8_valid(const char *s, size_t n);
/* Replace what is not valid UTF-8 in s (a message cut short) with '?'. */
void utf8_fix(char *s);

#endif
