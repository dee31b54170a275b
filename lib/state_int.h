/*
 * state_int.h - what the parts of lib/state share; not for use outside
 * lib/state*.c.
 *
 * The database handle (struct state), the SQLite helpers every part uses
 * (they set the message through rd_seterr() as the public functions do,
 * status 4, and return -1), the refusals more than one part writes, and the
 * recorder's tear-down for state_close().  The parts:
 *
 *   state.c          opening, the schema and its migrations, these helpers
 *   state_lock.c     the run lock and the preflight (state_check)
 *   state_record.c   recording a result stream: the writer thread, batches
 *   state_windows.c  the windows of a historical import, coverage and gaps
 *   state_query.c    the base, cursors, runs, change logs, the outbox,
 *                    pruning the base
 *   state_insync.c   the in-step digest: read, and settled by a prune
 */
#ifndef RD_STATE_INT_H
#define RD_STATE_INT_H

#include <sqlite3.h>
#include <stddef.h>

#include "state.h"
#include "util.h"

struct recorder;
struct insync;

struct state {
	sqlite3 *db;
	char *path;
	char *fixcmd;		/* how a fix names this program and state */
	int exists, version, newer;
	char host[256];
	struct recorder *rec;
	sqlite3_stmt *keeps[2];	/* of an open fold --check (state_fold_keeps) */
	sqlite3_stmt *baseget;	/* state_base_get's, prepared at its first call */
};

/* Setting a cursor, alone or in the transaction of a recorded batch. */
#define SQL_CURSOR_SET \
	"INSERT INTO cursors(name, value, updated) VALUES (?1, ?2, ?3)" \
	" ON CONFLICT (name) DO UPDATE SET value = excluded.value," \
	" updated = excluded.updated"

/*
 * Retention of before-images: those of all but the newest ?1 runs that keep
 * them are dropped, and those runs marked as keeping none.
 */
#define SQL_IMAGES_OLD \
	"SELECT id FROM runs WHERE images = 1 ORDER BY id DESC LIMIT -1 OFFSET ?1"
#define SQL_IMAGES_DROP \
	"DELETE FROM images WHERE run IN (" SQL_IMAGES_OLD ")"
#define SQL_IMAGES_RUNS \
	"UPDATE runs SET images = 0 WHERE id IN (" SQL_IMAGES_OLD ")"

int db_err(struct state *s);
int db_exec(struct state *s, const char *sql);
void db_finalize(sqlite3_stmt *st);
int db_prep(struct state *s, sqlite3_stmt **st, const char *sql,
    int persistent);
/* Bind text of length n, or NULL when p is NULL; borrowed until the step. */
int db_bindt(struct state *s, sqlite3_stmt *st, int i, const char *p,
    size_t n);
int db_binds(struct state *s, sqlite3_stmt *st, int i, const char *p);
int db_bindi(struct state *s, sqlite3_stmt *st, int i, long long v);
/* Step a statement that returns no rows, and reset it. */
int db_step_done(struct state *s, sqlite3_stmt *st);
/* Step once: 1 for a row, 0 at the end (statement reset), -1 on error. */
int db_step_row(struct state *s, sqlite3_stmt *st);
/* A text column and its length (n may be NULL), or an owned copy. */
const char *db_col(sqlite3_stmt *st, int i, size_t *n);
char *db_coldup(sqlite3_stmt *st, int i);
/* The integer of a one-row query, such as a pragma. */
int db_int(struct state *s, const char *sql, int *out);
int db_begin(struct state *s);
int db_commit(struct state *s);
/* Roll back without touching a pending error message. */
void db_rollback(struct state *s);

/* Append s quoted for a shell command line when it needs quoting. */
void state_shquote(struct sb *out, const char *s);
int state_pid_alive(long pid);
int state_set_scope(struct state *s, const char *scope);
/* The lines of a refusal: the schema is newer; the state has another scope. */
void state_newer_msg(struct state *s, struct sb *out);
void state_scope_refusal(struct state *s, const char *own, const char *scope,
    const char *cmd, struct sb *msg);

/* Stop a recorder neither finished nor aborted, dropping what it holds. */
void state_record_drop(struct state *s);

/* The next in-step digest, settled and stored by a prune's finish. */
int state_insync_store(struct state *s, const struct insync *next);

#endif
