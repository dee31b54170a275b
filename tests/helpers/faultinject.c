/*
 * faultinject.c - an LD_PRELOAD shim that makes the Nth file-system call fail,
 * or stops the process there until a test has seen it stopped.
 *
 * It wraps the calls a store or the state database writes through:
 *
 *   open     open open64 openat openat64 creat creat64 and the _2 forms
 *   write    write
 *   pwrite   pwrite pwrite64
 *   fsync    fsync
 *   fdatasync fdatasync
 *   syncfs   syncfs
 *   ftruncate ftruncate ftruncate64
 *   rename   rename renameat renameat2
 *   unlink   unlink unlinkat
 *   mkdir    mkdir mkdirat
 *   send     send sendto sendmsg (counted only when named: what an HTTP
 *            store sends, a request or more per call)
 *
 * and counts the calls of the families named in RECDELTA_FAULT_CALLS (a
 * comma-separated list; all of them but send when unset), from the first call of the
 * process on.  Calls glibc makes internally (stdio's writes, tmpfile) do not
 * go through the shim and are neither counted nor failed.  Environment:
 *
 *   RECDELTA_FAULT_AT=N      the Nth counted call fails without doing
 *                            anything; unset or 0: none does
 *   RECDELTA_FAULT_REPEAT=1  every counted call from the Nth on fails, as on
 *                            a disk that stays full
 *   RECDELTA_FAULT_ERRNO=E   the errno of the failure: ENOSPC (default), EIO,
 *                            EACCES, EROFS, EDQUOT or a number
 *   RECDELTA_FAULT_COUNT=F   write the number of counted calls so far to F
 *                            after each one: a run without a fault there
 *                            says how far a walk over N must go
 *   RECDELTA_FAULT_TRACE=F   append "N call subject" for each counted call to
 *                            F, and " FAULT" after the failed ones
 *   RECDELTA_FAULT_PROG=P    only in processes whose name is P; others pass
 *                            every call through uncounted
 *   RECDELTA_FAULT_PAUSE=N   before the Nth counted call, create the file
 *                            RECDELTA_FAULT_PAUSE_FILE holding the pid and
 *                            wait until that file is removed, then go on;
 *                            each process of P that reaches N does so
 *
 * A pause is how a test kills a program at a point it chose rather than after
 * a delay: it waits for the pause file (helpers/faultinject.bash), then kills
 * the process with SIGKILL or lets it go on by removing the file.  The file
 * appears whole (written aside, then linked into place) and only while no
 * other process holds it, so processes of a pipeline that reach N at once
 * pause one after the other.
 * The environment is inherited, so a child process loads the shim too and
 * counts its own calls from 1; a test that runs one program directly needs
 * nothing more, one that runs a flow names the program with
 * RECDELTA_FAULT_PROG (which also keeps a valgrind or shell wrapper out of
 * the count).  The counter is atomic, so calls from several threads are each
 * counted once; the walk is deterministic as long as the program makes its
 * calls in a deterministic order, which recdelta's do.
 */
#define _GNU_SOURCE
/* Fortified headers define open() inline: this file defines the real one. */
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

enum {
	F_OPEN = 1 << 0, F_WRITE = 1 << 1, F_PWRITE = 1 << 2, F_FSYNC = 1 << 3,
	F_FDATASYNC = 1 << 4, F_SYNCFS = 1 << 5, F_FTRUNCATE = 1 << 6,
	F_RENAME = 1 << 7, F_UNLINK = 1 << 8, F_MKDIR = 1 << 9,
	F_ALL = (1 << 10) - 1,
	F_SEND = 1 << 10
};

static const struct {
	const char *name;
	int bit;
} families[] = {
	{ "open", F_OPEN }, { "write", F_WRITE }, { "pwrite", F_PWRITE },
	{ "fsync", F_FSYNC }, { "fdatasync", F_FDATASYNC },
	{ "syncfs", F_SYNCFS }, { "ftruncate", F_FTRUNCATE },
	{ "rename", F_RENAME }, { "unlink", F_UNLINK }, { "mkdir", F_MKDIR },
	{ "send", F_SEND },
};

static const struct {
	const char *name;
	int value;
} errnos[] = {
	{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EACCES", EACCES },
	{ "EROFS", EROFS }, { "EDQUOT", EDQUOT }, { "EPERM", EPERM },
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int active, calls = F_ALL, fault_errno = ENOSPC, repeat;
static unsigned long fault_at, pause_at, counter;
static const char *countfile, *tracefile, *pausefile;

static int (*real_open)(const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_unlink)(const char *);

#define REAL_UNLINK(path) (real_unlink ? (void)real_unlink(path) : (void)0)

static void
config(void)
{
	const char *s;
	size_t i;

	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT,
	    "write");
	real_unlink = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
	s = getenv("RECDELTA_FAULT_PROG");
	if (s && *s && strcmp(s, program_invocation_short_name) != 0)
		return;
	active = 1;
	if ((s = getenv("RECDELTA_FAULT_AT")))
		fault_at = strtoul(s, NULL, 10);
	if ((s = getenv("RECDELTA_FAULT_REPEAT")))
		repeat = strcmp(s, "1") == 0;
	if ((s = getenv("RECDELTA_FAULT_ERRNO")) && *s) {
		fault_errno = atoi(s);
		for (i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
			if (strcmp(s, errnos[i].name) == 0)
				fault_errno = errnos[i].value;
		if (fault_errno <= 0)
			fault_errno = ENOSPC;
	}
	if ((s = getenv("RECDELTA_FAULT_CALLS")) && *s) {
		calls = 0;
		for (i = 0; i < sizeof families / sizeof families[0]; i++) {
			size_t n = strlen(families[i].name);
			const char *p;

			for (p = s; (p = strstr(p, families[i].name)); p += n)
				if ((p == s || p[-1] == ',') &&
				    (p[n] == ',' || p[n] == '\0'))
					calls |= families[i].bit;
		}
	}
	if ((s = getenv("RECDELTA_FAULT_PAUSE")))
		pause_at = strtoul(s, NULL, 10);
	pausefile = getenv("RECDELTA_FAULT_PAUSE_FILE");
	if (pausefile && !*pausefile)
		pausefile = NULL;
	countfile = getenv("RECDELTA_FAULT_COUNT");
	tracefile = getenv("RECDELTA_FAULT_TRACE");
	if (countfile && !*countfile)
		countfile = NULL;
	if (tracefile && !*tracefile)
		tracefile = NULL;
}

static void
put(const char *file, int flags, const char *buf, size_t len)
{
	int e = errno, fd = real_open(file, O_WRONLY | O_CREAT | O_CLOEXEC | flags,
	    0644);

	if (fd >= 0) {
		if (real_write(fd, buf, len) < 0)
			(void)0;	/* a test helper: the file says what it got */
		close(fd);
	}
	errno = e;
}

/*
 * Stop here: make pausefile, holding the pid, once no other process holds
 * it, and wait until it is gone.  The waits poll, as the shim has no other
 * way to learn of a file's creation or removal; they wait for an event, and
 * a test that never removes the file kills the process instead.
 */
static void
stop(void)
{
	static const struct timespec tick = { 0, 10 * 1000 * 1000 };
	char tmp[4200], buf[32];
	int e = errno, len;

	snprintf(tmp, sizeof tmp, "%s.%ld", pausefile, (long)getpid());
	len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	put(tmp, O_TRUNC, buf, (size_t)len);
	while (link(tmp, pausefile) == -1 && errno == EEXIST)
		nanosleep(&tick, NULL);
	REAL_UNLINK(tmp);
	while (access(pausefile, F_OK) == 0)
		nanosleep(&tick, NULL);
	errno = e;
}

/*
 * Count a call of family bit about subject (a path, or an fd when path is
 * NULL); true when it is to fail, with errno set.
 */
static int
fault(int bit, const char *call, const char *path, int fd)
{
	unsigned long n;
	int fail;

	pthread_once(&once, config);
	if (!active || !(calls & bit))
		return 0;
	n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
	fail = fault_at && (n == fault_at || (repeat && n > fault_at));
	if (countfile) {
		char buf[32];
		int len = snprintf(buf, sizeof buf, "%lu\n", n);

		put(countfile, O_TRUNC, buf, (size_t)len);
	}
	if (tracefile) {
		char buf[4200], link[64], target[4096];
		ssize_t tn;
		int len;

		if (!path) {
			snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
			tn = readlink(link, target, sizeof target - 1);
			target[tn < 0 ? 0 : tn] = '\0';
			snprintf(link, sizeof link, "fd %d ", fd);
		}
		len = snprintf(buf, sizeof buf, "%lu %s %s%s%s\n", n, call,
		    path ? "" : link, path ? path : target, fail ? " FAULT" : "");
		put(tracefile, O_APPEND, buf, len < (int)sizeof buf ?
		    (size_t)len : sizeof buf - 1);
	}
	if (pause_at && n == pause_at && pausefile)
		stop();
	if (fail)
		errno = fault_errno;
	return fail;
}

#define REAL(type, name, args) \
	static type (*real) args; \
	if (!real) \
		real = (type (*) args)dlsym(RTLD_NEXT, name)

#define NEEDS_MODE(flags) (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE)

#define OPEN(fn, name) \
int \
fn(const char *path, int flags, ...) \
{ \
	REAL(int, name, (const char *, int, ...)); \
	mode_t mode = 0; \
	va_list ap; \
\
	if (NEEDS_MODE(flags)) { \
		va_start(ap, flags); \
		mode = va_arg(ap, mode_t); \
		va_end(ap); \
	} \
	if (fault(F_OPEN, name, path, -1)) \
		return -1; \
	return real(path, flags, mode); \
}

#define OPENAT(fn, name) \
int \
fn(int dirfd, const char *path, int flags, ...) \
{ \
	REAL(int, name, (int, const char *, int, ...)); \
	mode_t mode = 0; \
	va_list ap; \
\
	if (NEEDS_MODE(flags)) { \
		va_start(ap, flags); \
		mode = va_arg(ap, mode_t); \
		va_end(ap); \
	} \
	if (fault(F_OPEN, name, path, -1)) \
		return -1; \
	return real(dirfd, path, flags, mode); \
}

OPEN(open, "open")
OPEN(open64, "open64")
OPENAT(openat, "openat")
OPENAT(openat64, "openat64")

/* The fortified forms, called by code built with _FORTIFY_SOURCE. */
#define OPEN2(fn, name) \
int \
fn(const char *path, int flags) \
{ \
	REAL(int, name, (const char *, int)); \
	if (fault(F_OPEN, name, path, -1)) \
		return -1; \
	return real(path, flags); \
}

#define OPENAT2(fn, name) \
int \
fn(int dirfd, const char *path, int flags) \
{ \
	REAL(int, name, (int, const char *, int)); \
	if (fault(F_OPEN, name, path, -1)) \
		return -1; \
	return real(dirfd, path, flags); \
}

int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);
OPEN2(__open_2, "__open_2")
OPEN2(__open64_2, "__open64_2")
OPENAT2(__openat_2, "__openat_2")
OPENAT2(__openat64_2, "__openat64_2")

#define CREAT(fn, name) \
int \
fn(const char *path, mode_t mode) \
{ \
	REAL(int, name, (const char *, mode_t)); \
	if (fault(F_OPEN, name, path, -1)) \
		return -1; \
	return real(path, mode); \
}

CREAT(creat, "creat")
CREAT(creat64, "creat64")

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	REAL(ssize_t, "send", (int, const void *, size_t, int));

	if (fault(F_SEND, "send", NULL, fd))
		return -1;
	return real(fd, buf, len, flags);
}

ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	REAL(ssize_t, "sendto", (int, const void *, size_t, int,
	    const struct sockaddr *, socklen_t));

	if (fault(F_SEND, "sendto", NULL, fd))
		return -1;
	return real(fd, buf, len, flags, to, tolen);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(ssize_t, "sendmsg", (int, const struct msghdr *, int));

	if (fault(F_SEND, "sendmsg", NULL, fd))
		return -1;
	return real(fd, msg, flags);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	REAL(ssize_t, "write", (int, const void *, size_t));
	if (fault(F_WRITE, "write", NULL, fd))
		return -1;
	return real(fd, buf, len);
}

#define PWRITE(fn, name, off_type) \
ssize_t \
fn(int fd, const void *buf, size_t len, off_type off) \
{ \
	REAL(ssize_t, name, (int, const void *, size_t, off_type)); \
	if (fault(F_PWRITE, name, NULL, fd)) \
		return -1; \
	return real(fd, buf, len, off); \
}

PWRITE(pwrite, "pwrite", off_t)
PWRITE(pwrite64, "pwrite64", off64_t)

#define FDCALL(fn, name, bit) \
int \
fn(int fd) \
{ \
	REAL(int, name, (int)); \
	if (fault(bit, name, NULL, fd)) \
		return -1; \
	return real(fd); \
}

FDCALL(fsync, "fsync", F_FSYNC)
FDCALL(fdatasync, "fdatasync", F_FDATASYNC)
FDCALL(syncfs, "syncfs", F_SYNCFS)

#define FTRUNCATE(fn, name, off_type) \
int \
fn(int fd, off_type len) \
{ \
	REAL(int, name, (int, off_type)); \
	if (fault(F_FTRUNCATE, name, NULL, fd)) \
		return -1; \
	return real(fd, len); \
}

FTRUNCATE(ftruncate, "ftruncate", off_t)
FTRUNCATE(ftruncate64, "ftruncate64", off64_t)

int
rename(const char *from, const char *to)
{
	REAL(int, "rename", (const char *, const char *));
	if (fault(F_RENAME, "rename", to, -1))
		return -1;
	return real(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	REAL(int, "renameat", (int, const char *, int, const char *));
	if (fault(F_RENAME, "renameat", to, -1))
		return -1;
	return real(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned int flags)
{
	REAL(int, "renameat2", (int, const char *, int, const char *,
	    unsigned int));
	if (fault(F_RENAME, "renameat2", to, -1))
		return -1;
	return real(fromfd, from, tofd, to, flags);
}

int
unlink(const char *path)
{
	REAL(int, "unlink", (const char *));
	if (fault(F_UNLINK, "unlink", path, -1))
		return -1;
	return real(path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	REAL(int, "unlinkat", (int, const char *, int));
	if (fault(F_UNLINK, "unlinkat", path, -1))
		return -1;
	return real(dirfd, path, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	REAL(int, "mkdir", (const char *, mode_t));
	if (fault(F_MKDIR, "mkdir", path, -1))
		return -1;
	return real(path, mode);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	REAL(int, "mkdirat", (int, const char *, mode_t));
	if (fault(F_MKDIR, "mkdirat", path, -1))
		return -1;
	return real(dirfd, path, mode);
}
