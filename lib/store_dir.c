/*
 * store_dir.c - dir:PATH, the embedded default remote: the layout of
 * store_layout.h over the local file system.
 *
 * store_layout.c decides every name, the index and the version files; this
 * file does the I/O.  Every name comes from layout_type_name() and
 * layout_key_name(), which leave no '/', no leading '.' and no "meta." at
 * the base, and every open, write and removal goes through the store's or
 * the type folder's file descriptor with O_NOFOLLOW, so no record can reach
 * outside the folder.  A writer about to replace or remove something the
 * store owns first checks that it is the store's: a symbolic link, a file
 * with other hard links (writing through it would change another file) or
 * something of the wrong kind makes a damaged store, and nothing is touched.
 *
 * A folder that does not exist is an error for a source and an empty store
 * for a target (fetch_opts.missing_ok); reading creates nothing, not even
 * the lock file.  Writing creates the folder only for a batch that holds a
 * create (and sets store.created); without one, updates and deletes into a
 * missing store conflict and nothing is made.
 *
 * Writing (section 6 of the brief, for a local folder): under an exclusive
 * flock(2) on PATH/.lock, read meta.json and the bucket files of the
 * batch's keys, check each change's rev against the index, create each new
 * version's file exclusively, list in the collect journal what the commit
 * supersedes and the bucket files it writes, write the new bucket files in
 * meta.idx, make them all durable (each file and each folder that holds
 * one by fsync(2), or for a bulk load the whole file system: struct
 * flush), then commit by writing meta.json.tmp and renaming it over
 * meta.json; only then remove the superseded version and bucket files.
 * A writer killed at any point leaves the last committed index intact,
 * plus at most files it does not name: uncommitted versions the next
 * writer replaces, superseded versions and buckets, and new buckets of a
 * commit that did not land, which the next writer removes through the
 * collect journal (collect_recover).  Readers take a shared lock, so a
 * version or bucket file is never removed under a fetch.
 */
#ifdef __linux__
#define _GNU_SOURCE	/* sync_file_range(2), syncfs(2) */
#endif
#include "store_layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct dirstore {
	char *path;
};

static int
dir_open(struct store *s, const char *arg)
{
	struct dirstore *d = xcalloc(1, sizeof *d);

	d->path = xstrdup(arg);
	s->priv = d;
	return 0;
}

/* Whether the folder is there; a missing one is never made by reading. */
static int
dir_exists(struct store *s)
{
	struct dirstore *d = s->priv;
	struct stat st;
	int e;

	if (stat(d->path, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			return 1;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(ENOTDIR));
		return -1;
	}
	e = errno;
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(e));
	return e == ENOENT ? 0 : -1;
}

/* A scope: the folder's path, canonical. */
static int
dir_scope(const char *arg, struct sb *out)
{
	return store_canon_path(arg, out);
}

static int
read_all(int fd, struct sb *out)
{
	ssize_t n;

	for (;;) {
		sb_grow(out, 64 * 1024);
		do
			n = read(fd, out->buf + out->len, out->cap - out->len - 1);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	out->buf[out->len] = '\0';
	return 0;
}


/* Reading */

/* A transport for layout_fetch(): the type folders of the store. */
struct dirio {
	const char *path;
	int basefd, typefd, idxfd;
};

/* Read a file of the folder dirfd whole: 0, or -1 with a message. */
static int
read_file(int dirfd, const char *name, const char *path, struct sb *out)
{
	int fd, e;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", path,
		    strerror(errno));
		return -1;
	}
	if (read_all(fd, out) < 0) {
		e = errno;
		close(fd);
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(e));
		return -1;
	}
	close(fd);
	return 0;
}

/* The bucket files names[0..n) of BASE/meta.idx, for layout_read_index(). */
static int
io_read_buckets(void *ctx, char *const *names, size_t n, struct sb *out)
{
	struct dirio *io = ctx;
	struct sb path;
	size_t i;
	int ret = -1;

	sb_init(&path, 256);
	if (io->idxfd < 0 && (io->idxfd = openat(io->basefd, LAYOUT_IDX,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: %s", io->path,
		    LAYOUT_IDX, strerror(errno));
		goto out;
	}
	for (i = 0; i < n; i++) {
		sb_reset(&path);
		sb_addf(&path, "%s/%s/%s", io->path, LAYOUT_IDX, names[i]);
		if (read_file(io->idxfd, names[i], path.buf, &out[i]) < 0)
			goto out;
	}
	ret = 0;
out:
	sb_release(&path);
	return ret;
}

static int
io_open_type(void *ctx, const char *typename)
{
	struct dirio *io = ctx;

	io->typefd = openat(io->basefd, typename, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (io->typefd < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: %s", io->path,
		    typename, strerror(errno));
		return -1;
	}
	return 0;
}

static int
io_read(void *ctx, const char *name, const char *where, struct sb *out)
{
	struct dirio *io = ctx;
	int fd, e;

	fd = openat(io->typefd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: damaged store: %s", io->path,
		    where, strerror(errno));
		return -1;
	}
	if (read_all(fd, out) < 0) {
		e = errno;
		close(fd);
		rd_seterr(RD_EXIT_RUNTIME, "%s/%s: %s", io->path, where,
		    strerror(e));
		return -1;
	}
	close(fd);
	return 0;
}

static void
io_close_type(void *ctx)
{
	struct dirio *io = ctx;

	close(io->typefd);
	io->typefd = -1;
}

static int
dir_fetch(struct store *s, const struct fetch_opts *o,
    const struct store_sink *sink)
{
	struct dirstore *d = s->priv;
	struct dirio dio = { .path = d->path, .basefd = -1, .typefd = -1,
	    .idxfd = -1 };
	const struct layout_io io = {
		.ctx = &dio, .open_type = io_open_type, .read = io_read,
		.close_type = io_close_type,
	};
	struct sb meta;
	struct arena a;
	const struct json *ents;
	unsigned long long generation;
	struct layout_feed f;
	struct stat st;
	int fd, lockfd = -1, ret = -1;

	sb_init(&meta, 0);
	arena_init(&a);
	dio.basefd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dio.basefd < 0) {
		/*
		 * A target that does not exist yet is empty, as a 404 on
		 * webdav:; a source that does not exist is an error.
		 */
		if (errno == ENOENT && stat(d->path, &st) < 0) {
			/* Empty, as a folder without meta.json. */
			if (o && o->missing_ok)
				ret = layout_fetch_empty(o, sink, s->spec);
			else
				rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path,
				    strerror(ENOENT));
			goto out;
		}
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		goto out;
	}
	/* A shared lock keeps writers from collecting files under us. */
	if ((lockfd = openat(dio.basefd, ".lock", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) >= 0 && flock(lockfd, LOCK_SH) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", d->path, strerror(errno));
		goto out;
	}
	fd = openat(dio.basefd, "meta.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* An empty store. */
		if (errno == ENOENT)
			ret = layout_fetch_empty(o, sink, s->spec);
		else
			rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", d->path,
			    strerror(errno));
		goto out;
	}
	if (read_all(fd, &meta) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/meta.json: %s", d->path,
		    strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	if (layout_read_index(&a, meta.buf, meta.len, d->path, o, &f,
	    io_read_buckets, &dio, &ents, &generation) < 0)
		goto out;
	/* --cursor-only: meta.json's generation, read under the lock. */
	ret = o && o->cursor_only ? 0 :
	    layout_fetch(d->path, ents, o, &f, &io, sink);
	if (ret == 0)
		ret = layout_feed_cursor(&f, o, sink, s->spec, generation);
out:
	if (lockfd >= 0)
		close(lockfd);
	if (dio.idxfd >= 0)
		close(dio.idxfd);
	if (dio.basefd >= 0)
		close(dio.basefd);
	arena_release(&a);
	sb_release(&meta);
	return ret;
}

/*
 * Load meta.json (absent: an empty index) from the store's folder into the
 * empty index x.
 */
static int
load_index(struct layout_index *x, const char *path, int basefd)
{
	struct sb data, where;
	int fd, ret = -1;

	sb_init(&data, 0);
	sb_init(&where, 256);
	sb_addf(&where, "%s/meta.json", path);
	fd = openat(basefd, "meta.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			ret = 0;
		else
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where.buf,
			    strerror(errno));
		goto out;
	}
	if (read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where.buf, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);
	ret = layout_index_load(x, data.buf, data.len, where.buf);
out:
	sb_release(&data);
	sb_release(&where);
	return ret;
}

/* Load the bucket files the index x asks for (layout_index_pending). */
static int
load_buckets(struct layout_index *x, const char *path, int basefd)
{
	struct dirio io = { .path = path, .basefd = basefd, .idxfd = -1 };
	struct sb name, where, data;
	size_t *list, n = layout_index_pending(x, &list), i;
	int ret = -1;

	sb_init(&name, 64);
	sb_init(&where, 256);
	sb_init(&data, 0);
	for (i = 0; i < n; i++) {
		char *nm;

		sb_reset(&name);
		layout_bucket_name(&name, list[i], x->bgen[list[i]]);
		sb_reset(&where);
		sb_addf(&where, "%s/%s/%s", path, LAYOUT_IDX, name.buf);
		sb_reset(&data);
		nm = name.buf;
		if (io_read_buckets(&io, &nm, 1, &data) < 0 ||
		    layout_index_bucket(x, list[i], data.buf, data.len,
		    where.buf) < 0)
			goto out;
	}
	ret = 0;
out:
	if (io.idxfd >= 0)
		close(io.idxfd);
	free(list);
	sb_release(&name);
	sb_release(&where);
	sb_release(&data);
	return ret;
}

/* Writing */

static int
mkdirs(const char *path)
{
	char *p = xstrdup(path), *q;
	int ret = 0;

	for (q = p + 1; ; q++) {
		if (*q == '/' || *q == '\0') {
			char c = *q;

			*q = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				ret = -1;
				break;
			}
			*q = c;
			if (!c)
				break;
		}
	}
	free(p);
	return ret;
}

/* The path of a file for messages: BASE/NAME or BASE/DIR/NAME. */
static const char *
where(struct sb *b, const char *base, const char *dir, const char *name)
{
	sb_reset(b);
	sb_adds(b, base);
	if (dir)
		sb_addf(b, "/%s", dir);
	sb_addf(b, "/%s", name);
	return b->buf;
}

/*
 * Is what dirfd holds under name the store's own folder (dir) or file?
 * 1 when it is, 0 when nothing is there, -1 with a message (a damaged store
 * when it is not the store's; path names it).
 */
static int
check_own(int dirfd, const char *name, int dir, const char *path)
{
	struct stat st;
	const char *why;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode))
		why = "a symbolic link";
	else if (dir && !S_ISDIR(st.st_mode))
		why = "not a folder";
	else if (!dir && !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (!dir && st.st_nlink > 1)
		why = "a file with other hard links";
	else
		return 1;
	rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", path, why);
	return -1;
}

/*
 * The files a batch has written and not yet made durable.  A batch of up
 * to FLUSH_MAX files begins each one's writeback as it is written
 * (sync_file_range(2), where there is one) and makes each durable by
 * fsync(2), so that it waits for its own writes alone, never for whatever
 * else the file system holds to write (a large file written just before
 * the run, another program's); a larger one, a bulk load whose own writes
 * are most of what there is to flush, by one flush of the whole file
 * system (syncfs(2); sync(2) where there is none), cheaper than that many.
 */
#define FLUSH_MAX 256

struct flush {
	int fd[FLUSH_MAX];
	char *path[FLUSH_MAX];	/* for messages */
	size_t n;
	int many;		/* more than FLUSH_MAX: one flush of them all */
};

/* Make the files of f durable when sync is set, and close them: 0 or -1. */
static int
flush_files(struct flush *f, int sync)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < f->n; i++) {
		int e = 0;

		if (sync && ret == 0 && fsync(f->fd[i]) < 0)
			e = errno;
		if (close(f->fd[i]) < 0 && sync && ret == 0 && !e)
			e = errno;
		if (e) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", f->path[i],
			    strerror(e));
			ret = -1;
		}
		free(f->path[i]);
	}
	f->n = 0;
	return ret;
}

/*
 * Write a new file: whatever an earlier writer left under its name is
 * removed first (once known to be the store's), never written through.
 * Durable on return when f is NULL; else once flush_files(f, 1) returns 0.
 */
static int
put_file(int dirfd, const char *name, const struct sb *data, struct flush *f,
    const char *path)
{
	size_t off = 0;
	int r, fd;

	if ((r = check_own(dirfd, name, 0, path)) < 0)
		return -1;
	if (r && unlinkat(dirfd, name, 0) < 0)
		goto fail;
	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	while (off < data->len) {
		ssize_t n = write(fd, data->buf + off, data->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			errno = e;
			goto fail;
		}
		off += (size_t)n;
	}
	if (!f) {
		if (fsync(fd) < 0 || close(fd) < 0)
			goto fail;
		return 0;
	}
	if (!f->many && f->n == FLUSH_MAX) {
		flush_files(f, 0);
		f->many = 1;
	}
	if (f->many) {
		if (close(fd) < 0)
			goto fail;
		return 0;
	}
#ifdef SYNC_FILE_RANGE_WRITE
	/* Only a start: an error here is one fsync(2) reports again. */
	(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
	f->fd[f->n] = fd;
	f->path[f->n++] = xstrdup(path);
	return 0;
fail:
	rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
	return -1;
}

/* The type folders a batch uses, opened once. */
struct typedir {
	const char *type;
	size_t len;
	char *name;
	int fd;
};

struct typedirs {
	struct typedir *v;
	size_t n;
	const char *base;	/* the store's path, for messages */
	int basefd;
	int idxfd;		/* LAYOUT_IDX, once opened */
	struct flush flush;	/* the files written, not yet durable */
	struct sb name, msg;
};

static void
typedirs_init(struct typedirs *t, const char *base, int basefd)
{
	memset(t, 0, sizeof *t);
	t->base = base;
	t->basefd = basefd;
	t->idxfd = -1;
	sb_init(&t->name, 128);
	sb_init(&t->msg, 256);
}

static void
typedirs_release(struct typedirs *t)
{
	size_t i;

	flush_files(&t->flush, 0);
	for (i = 0; i < t->n; i++) {
		close(t->v[i].fd);
		free(t->v[i].name);
	}
	free(t->v);
	if (t->idxfd >= 0)
		close(t->idxfd);
	sb_release(&t->name);
	sb_release(&t->msg);
}

/*
 * The folder of the bucket files, checked to be the store's and created
 * when create is set: 1 open in t->idxfd, 0 absent, -1 with a message.
 */
static int
idx_dir(struct typedirs *t, int create)
{
	int r;

	if (t->idxfd >= 0)
		return 1;
	where(&t->msg, t->base, NULL, LAYOUT_IDX);
	if ((r = check_own(t->basefd, LAYOUT_IDX, 1, t->msg.buf)) < 0)
		return -1;
	if (!r && !create)
		return 0;
	if ((!r && mkdirat(t->basefd, LAYOUT_IDX, 0755) < 0 && errno != EEXIST) ||
	    (t->idxfd = openat(t->basefd, LAYOUT_IDX, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		return -1;
	}
	return 1;
}

/* Remove the bucket file name of LAYOUT_IDX, once known to be the store's. */
static int
remove_bucket(void *ctx, const char *name)
{
	struct typedirs *t = ctx;
	int r;

	if ((r = idx_dir(t, 0)) <= 0)
		return r;
	where(&t->msg, t->base, LAYOUT_IDX, name);
	if ((r = check_own(t->idxfd, name, 0, t->msg.buf)) < 0)
		return -1;
	if (r && unlinkat(t->idxfd, name, 0) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		return -1;
	}
	return 0;
}

/* put(), for layout_index_write(): a new bucket file. */
static int
put_bucket(void *ctx, const char *name, const struct sb *data)
{
	struct typedirs *t = ctx;
	struct sb path;
	int r;

	if (idx_dir(t, 1) < 0)
		return -1;
	sb_init(&path, 256);
	r = put_file(t->idxfd, name, data, &t->flush, where(&path, t->base,
	    LAYOUT_IDX, name));
	sb_release(&path);
	return r;
}

/* The folder of a type, created on first use: its index, or -1. */
static long
type_dir(struct typedirs *t, const char *type, size_t len)
{
	size_t i;
	int r, fd;

	for (i = 0; i < t->n; i++)
		if (t->v[i].len == len && memcmp(t->v[i].type, type, len) == 0)
			return (long)i;
	sb_reset(&t->name);
	layout_type_name(&t->name, type, len);
	where(&t->msg, t->base, NULL, t->name.buf);
	if ((r = check_own(t->basefd, t->name.buf, 1, t->msg.buf)) < 0)
		return -1;
	if ((!r && mkdirat(t->basefd, t->name.buf, 0755) < 0 && errno != EEXIST) ||
	    (fd = openat(t->basefd, t->name.buf, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		return -1;
	}
	t->v = xreallocarray(t->v, t->n + 1, sizeof *t->v);
	t->v[t->n].type = type;
	t->v[t->n].len = len;
	t->v[t->n].name = xstrdup(t->name.buf);
	t->v[t->n].fd = fd;
	return (long)t->n++;
}

/*
 * The version file of an entity, in the folder of its type: check it is the
 * store's.  1 there, 0 absent, -1 with a message; *ti is the type folder.
 */
static int
check_version(struct typedirs *t, const struct layout_entry *e,
    unsigned long long v, long *ti)
{
	if ((*ti = type_dir(t, e->type, e->typelen)) < 0)
		return -1;
	sb_reset(&t->name);
	layout_version_name(&t->name, e->key, e->keylen, v);
	return check_own(t->v[*ti].fd, t->name.buf, 0, where(&t->msg, t->base,
	    t->v[*ti].name, t->name.buf));
}

/*
 * The store's folder and its lock: shared for reading, exclusive (the
 * folder and .lock created when missing, *made set when the folder was)
 * for writing.  1, 0 when reading a folder that does not exist, or -1.
 */
static int
open_base(struct dirstore *d, int create, int *basefd, int *lockfd, int *made)
{
	*lockfd = -1;
	*basefd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*basefd < 0 && errno == ENOENT && create) {
		if (mkdirs(d->path) < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
			return -1;
		}
		*made = 1;
		*basefd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (*basefd < 0) {
		if (errno == ENOENT && !create)
			return 0;
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		return -1;
	}
	*lockfd = openat(*basefd, ".lock", (create ? O_RDWR | O_CREAT : O_RDONLY) |
	    O_NOFOLLOW | O_CLOEXEC, 0644);
	if (*lockfd < 0 && (create || errno != ENOENT)) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", d->path, strerror(errno));
		close(*basefd);
		*basefd = -1;
		return -1;
	}
	if (*lockfd >= 0 && flock(*lockfd, create ? LOCK_EX : LOCK_SH) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s/.lock: %s", d->path, strerror(errno));
		close(*lockfd);
		close(*basefd);
		*lockfd = *basefd = -1;
		return -1;
	}
	return 1;
}

/*
 * The collect journal.  Before the commit, .collect lists the version files
 * and the bucket files the new index supersedes, and the bucket files it
 * is about to write (layout_collect_list); after the commit the superseded
 * ones are removed and so is .collect.  A writer killed in between leaves
 * .collect behind, and the next writer, under the lock, acts on it: a line
 * is only ever a request, checked against the index just read
 * (layout_collect_plan), so a line names nothing outside the store, nor a
 * file the index still uses: the new bucket files of a commit that did not
 * land are removed, those of one that did stay.
 */
static int
collect_one(void *ctx, const struct layout_entry *e, unsigned long long v)
{
	struct typedirs *t = ctx;
	long ti;
	int r;

	if ((r = check_version(t, e, v, &ti)) < 0)
		return -1;
	if (r && unlinkat(t->v[ti].fd, t->name.buf, 0) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		return -1;
	}
	return 0;
}

static int
collect_recover(struct typedirs *t, struct layout_index *x)
{
	struct sb data;
	int r, fd, ret = -1;

	sb_init(&data, 4096);
	where(&t->msg, t->base, NULL, ".collect");
	if ((r = check_own(t->basefd, ".collect", 0, t->msg.buf)) <= 0) {
		ret = r;
		goto out;
	}
	if ((fd = openat(t->basefd, ".collect", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0 || read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->msg.buf, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	/* The buckets of the entities whose versions the journal names. */
	layout_collect_want(x, data.buf);
	if (load_buckets(x, t->base, t->basefd) < 0 ||
	    layout_collect_plan(x, data.buf, collect_one, remove_bucket, t) < 0)
		goto out;
	if (unlinkat(t->basefd, ".collect", 0) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&t->msg, t->base, NULL,
		    ".collect"), strerror(errno));
		goto out;
	}
	ret = 0;
out:
	sb_release(&data);
	return ret;
}

/* The files of the batch and the folders it wrote in durable: 0 or -1. */
static int
durable(struct typedirs *t)
{
	size_t i;

	if (t->flush.many) {
#ifdef __linux__
		if (syncfs(t->basefd) < 0) {
#else
		sync();
		if (0) {
#endif
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->base,
			    strerror(errno));
			return -1;
		}
		return 0;
	}
	if (flush_files(&t->flush, 1) < 0)
		return -1;
	for (i = 0; i < t->n; i++)
		if (fsync(t->v[i].fd) < 0) {
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&t->msg,
			    t->base, NULL, t->v[i].name), strerror(errno));
			return -1;
		}
	if (t->idxfd >= 0 && fsync(t->idxfd) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&t->msg, t->base,
		    NULL, LAYOUT_IDX), strerror(errno));
		return -1;
	}
	if (fsync(t->basefd) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", t->base, strerror(errno));
		return -1;
	}
	return 0;
}

static int
dir_apply(struct store *s, struct change *v, size_t n)
{
	struct dirstore *d = s->priv;
	struct layout_index x;
	struct typedirs t;
	struct sb file, meta, msg;
	struct stat st;
	char now[32];
	size_t i, committed = 0;
	int basefd, lockfd, r, keep, ret = -1;

	sb_init(&file, 1024);
	sb_init(&meta, 0);
	sb_init(&msg, 256);
	layout_index_init(&x);
	typedirs_init(&t, d->path, -1);
	basefd = lockfd = -1;
	/*
	 * Only a create makes a store: in one that does not exist, an update
	 * or a delete fails its guard, and nothing is made.
	 */
	for (i = 0; i < n && v[i].op != RD_OP_CREATE; i++)
		;
	if (i == n && stat(d->path, &st) < 0 && errno == ENOENT) {
		for (i = 0; i < n; i++)
			v[i].status = RD_ST_CONFLICT;
		ret = 0;
		goto out;
	}
	if (open_base(d, 1, &basefd, &lockfd, &s->created) < 0)
		goto out;
	t.basefd = basefd;
	/* A damaged store is refused before anything is written. */
	if (check_own(basefd, "meta.json", 0, where(&msg, d->path, NULL,
	    "meta.json")) < 0 || check_own(basefd, "meta.json.tmp", 0,
	    where(&msg, d->path, NULL, "meta.json.tmp")) < 0 ||
	    load_index(&x, d->path, basefd) < 0 || collect_recover(&t, &x) < 0)
		goto out;
	/* Of a /2 index, the buckets of the batch's keys. */
	layout_index_want_batch(&x, v, n);
	if (load_buckets(&x, d->path, basefd) < 0)
		goto out;
	layout_now(now);
	for (i = 0; i < n; i++) {
		struct change *c = &v[i];
		struct layout_entry *e;
		long ti;

		if (!(e = layout_guard(&x, c, d->path)))
			continue;
		sb_reset(&file);
		if (c->op != RD_OP_DELETE)
			layout_version_file(&file, c);
		layout_advance(&x, e, c, now, c->op == RD_OP_DELETE ? NULL : &file);
		committed++;
		if (e->oldv) {
			/* Removed after the commit: known to be ours now. */
			if ((r = check_version(&t, e, e->oldv, &ti)) < 0)
				goto out;
			if (!r)
				e->oldv = 0;
			e->folder = (size_t)ti;
		}
		if (c->op == RD_OP_DELETE)
			continue;
		if ((ti = type_dir(&t, c->type, c->typelen)) < 0)
			goto out;
		sb_reset(&t.name);
		layout_version_name(&t.name, c->key, c->keylen, e->v);
		/*
		 * Under the lock no other writer is in flight, so a file of this
		 * version is debris of a writer that died before its commit.
		 */
		if (put_file(t.v[ti].fd, t.name.buf, &file, &t.flush,
		    where(&msg, d->path, t.v[ti].name, t.name.buf)) < 0)
			goto out;
	}
	if (!committed) {
		ret = 0;
		goto out;
	}
	x.generation++;
	layout_index_plan(&x);
	/* The journal first: it names the bucket files written next. */
	sb_reset(&file);
	layout_collect_list(&x, &file);
	if (file.len && put_file(basefd, ".collect", &file, &t.flush,
	    where(&msg, d->path, NULL, ".collect")) < 0)
		goto out;
	if (layout_index_write(&x, &meta, put_bucket, &t) < 0)
		goto out;
	/*
	 * The new versions and buckets durable before the root names them,
	 * and the folders that hold their names: the type folders, meta.idx,
	 * and the base, which holds the journal and any folder made here.
	 */
	if (durable(&t) < 0)
		goto out;
	if (put_file(basefd, "meta.json.tmp", &meta, NULL, where(&msg, d->path, NULL,
	    "meta.json.tmp")) < 0)
		goto out;
	if (renameat(basefd, "meta.json.tmp", basefd, "meta.json") < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&msg, d->path, NULL,
		    "meta.json"), strerror(errno));
		goto out;
	}
	if (fsync(basefd) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
		goto out;
	}
	/*
	 * Committed: collect what the new index no longer names.  A removal
	 * that fails keeps the journal, so the next writer collects the file.
	 */
	keep = 0;
	for (i = 0; i < x.n; i++)
		if (x.e[i].oldv) {
			sb_reset(&t.name);
			layout_version_name(&t.name, x.e[i].key, x.e[i].keylen,
			    x.e[i].oldv);
			if (unlinkat(t.v[x.e[i].folder].fd, t.name.buf, 0) < 0 &&
			    errno != ENOENT)
				keep = 1;
		}
	for (i = 0; i < x.nold; i++) {
		sb_reset(&t.name);
		layout_bucket_name(&t.name, x.old[i], x.oldg[i]);
		if (idx_dir(&t, 0) < 0 || (t.idxfd >= 0 &&
		    unlinkat(t.idxfd, t.name.buf, 0) < 0 && errno != ENOENT))
			keep = 1;
	}
	if (file.len && !keep)
		unlinkat(basefd, ".collect", 0);
	ret = 0;
out:
	if (ret < 0)
		for (i = 0; i < n; i++)
			v[i].status = RD_ST_NONE;
	typedirs_release(&t);
	layout_index_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&file);
	sb_release(&meta);
	sb_release(&msg);
	return ret;
}

static int
dir_get(struct store *s, const char *type, size_t typelen, const char *key,
    size_t keylen, struct arena *a, struct record *out)
{
	struct dirstore *d = s->priv;
	struct layout_index x;
	struct layout_entry *e;
	struct sb tname, name, msg, data;
	const struct json *fields;
	char ver[24];
	int basefd, lockfd, fd = -1, tfd, r, ret = -1;

	layout_index_init(&x);
	sb_init(&tname, 128);
	sb_init(&name, 128);
	sb_init(&msg, 256);
	sb_init(&data, 0);
	if ((r = open_base(d, 0, &basefd, &lockfd, NULL)) <= 0) {
		ret = r;
		goto out;
	}
	if (load_index(&x, d->path, basefd) < 0)
		goto out;
	layout_index_want(&x, type, typelen, key, keylen);
	if (load_buckets(&x, d->path, basefd) < 0)
		goto out;
	e = layout_index_find(&x, type, typelen, key, keylen);
	if (!e || e->deleted) {
		ret = 0;
		goto out;
	}
	snprintf(ver, sizeof ver, "%llu", e->v);
	layout_type_name(&tname, type, typelen);
	layout_version_name(&name, key, keylen, e->v);
	where(&msg, d->path, tname.buf, name.buf);
	if ((tfd = openat(basefd, tname.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) >= 0) {
		fd = openat(tfd, name.buf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		close(tfd);
	}
	if (fd < 0 || read_all(fd, &data) < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: damaged store: %s", msg.buf,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (layout_version_read(a, arena_memdup(a, data.buf, data.len), data.len,
	    type, typelen, key, keylen, e->sha, msg.buf, &fields) < 0)
		goto out;
	layout_record(out, arena_memdup(a, type, typelen), typelen,
	    arena_memdup(a, key, keylen), keylen, arena_memdup(a, ver,
	    strlen(ver)), e, fields);
	if (e->mtime)
		out->mtime = arena_memdup(a, e->mtime, e->mtimelen);
	ret = 1;
out:
	layout_index_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&tname);
	sb_release(&name);
	sb_release(&msg);
	sb_release(&data);
	return ret;
}

static long long
dir_count(struct store *s, char *const *types, size_t ntypes)
{
	struct dirstore *d = s->priv;
	struct layout_index x;
	long long live = 0;
	size_t i;
	int basefd, lockfd, r;

	(void)types, (void)ntypes;
	if ((r = open_base(d, 0, &basefd, &lockfd, NULL)) <= 0)
		return r;
	layout_index_init(&x);
	if (load_index(&x, d->path, basefd) < 0 ||
	    (layout_index_want_all(&x), load_buckets(&x, d->path, basefd)) < 0)
		live = -1;
	for (i = 0; live >= 0 && i < x.n; i++)
		live += !x.e[i].deleted;
	layout_index_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	close(basefd);
	return live;
}

/*
 * The sweep, under the writers' lock: the collect journal acted on, then
 * every version file in a type folder that the index does not name as
 * current and that was last changed more than grace seconds ago removed.
 * Only regular files of the store's own folders are looked at.
 */
static int
dir_sweep(struct store *s, double grace, unsigned long *removed)
{
	struct dirstore *d = s->priv;
	struct layout_index x;
	struct typedirs t;
	struct sb name, msg;
	struct stat st;
	struct dirent *de, *fe;
	DIR *top = NULL;
	char **used = NULL;
	size_t nused = 0, i;
	time_t now = time(NULL);
	int basefd = -1, lockfd = -1, made = 0, ret = -1, r;

	*removed = 0;
	layout_index_init(&x);
	typedirs_init(&t, d->path, -1);
	sb_init(&name, 256);
	sb_init(&msg, 256);
	if ((r = dir_exists(s)) <= 0)
		goto out;
	if (open_base(d, 1, &basefd, &lockfd, &made) < 0)
		goto out;
	t.basefd = basefd;
	if (load_index(&x, d->path, basefd) < 0 || collect_recover(&t, &x) < 0)
		goto out;
	layout_index_want_all(&x);
	if (load_buckets(&x, d->path, basefd) < 0)
		goto out;
	/* The files the index names, TYPENAME/NAME and LAYOUT_IDX/I~G.json. */
	layout_used_names(&x, &used, &nused);
	{
		int fd = dup(basefd);

		if (fd < 0 || !(top = fdopendir(fd))) {
			if (fd >= 0)
				close(fd);
			rd_seterr(RD_EXIT_RUNTIME, "%s: %s", d->path, strerror(errno));
			goto out;
		}
	}
	while ((de = readdir(top))) {
		DIR *sub;
		int tfd;

		if (de->d_name[0] == '.' || fstatat(basefd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if ((tfd = openat(basefd, de->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		if (!(sub = fdopendir(tfd))) {
			close(tfd);
			continue;
		}
		while ((fe = readdir(sub))) {
			char *key;

			if (!layout_is_version_name(fe->d_name) || fstatat(tfd, fe->d_name,
			    &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
			    difftime(now, st.st_mtime) < grace)
				continue;
			sb_reset(&name);
			sb_addf(&name, "%s/%s", de->d_name, fe->d_name);
			key = name.buf;
			if (bsearch(&key, used, nused, sizeof *used, layout_strpcmp))
				continue;
			if (unlinkat(tfd, fe->d_name, 0) < 0) {
				rd_seterr(RD_EXIT_RUNTIME, "%s: %s", where(&msg,
				    d->path, de->d_name, fe->d_name), strerror(errno));
				closedir(sub);
				goto out;
			}
			(*removed)++;
		}
		closedir(sub);
	}
	ret = 0;
out:
	for (i = 0; i < nused; i++)
		free(used[i]);
	free(used);
	if (top)
		closedir(top);
	typedirs_release(&t);
	layout_index_release(&x);
	if (lockfd >= 0)
		close(lockfd);
	if (basefd >= 0)
		close(basefd);
	sb_release(&name);
	sb_release(&msg);
	return ret;
}

static void
dir_close(struct store *s)
{
	struct dirstore *d = s->priv;

	if (d)
		free(d->path);
	free(d);
	s->priv = NULL;
}

const struct store_ops store_dir_ops = {
	.scheme = "dir",
	.synopsis = "dir:PATH",
	.writable = 1,
	/* Each batch writes the root and the buckets it changed. */
	.batch = 5000,
	.max_batch = STORE_MAX_BATCH,
	/* The index is a change feed (store_layout.h). */
	.change_feed = 1,
	.feed_now = 1,
	.cursors = 1,
	.open = dir_open,
	.exists = dir_exists,
	.scope = dir_scope,
	.fetch = dir_fetch,
	.close = dir_close,
	.apply = dir_apply,
	.get = dir_get,
	.count = dir_count,
	.sweep = dir_sweep,
};
