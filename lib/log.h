/*
 * log.h - structured logs: one JSON object a line, appended to the file named
 * by --log or RECDELTA_LOG, with "ts", "level", "prog", "msg" and the
 * caller's context members.  Never on the stream; never a secret (callers
 * pass only names, counts and keys).  Without a log file every call is a
 * no-op.  Each line is written with one write(2) to a file opened O_APPEND,
 * so the stages of a flow can share one log.
 */
#ifndef RD_LOG_H
#define RD_LOG_H

/* Open path, or RECDELTA_LOG when path is NULL; 0, or -1 with a message. */
int rd_log_open(const char *path);
void rd_log_close(void);
/*
 * Log msg with context: ctx is NULL or the inside of a JSON object, e.g.
 * "\"batch\":3,\"ok\":200", built by the caller with json_write_string.
 */
void rd_log(const char *level, const char *msg, const char *ctx);

#endif
