/* log.c - NDJSON log lines. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

static int logfd = -1;

int
rd_log_open(const char *path)
{
	if (!path)
		path = getenv("RECDELTA_LOG");
	if (!path || !*path)
		return 0;
	logfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

void
rd_log_close(void)
{
	if (logfd >= 0)
		close(logfd);
	logfd = -1;
}

void
rd_log(const char *level, const char *msg, const char *ctx)
{
	struct timeval tv;
	struct tm tm;
	char ts[40];
	struct sb line;

	if (logfd < 0)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	sb_init(&line, 256);
	sb_addf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":", ts,
	    (long)tv.tv_usec / 1000);
	json_write_string(&line, level, strlen(level));
	sb_adds(&line, ",\"prog\":");
	json_write_string(&line, rd_progname, strlen(rd_progname));
	sb_adds(&line, ",\"pid\":");
	sb_addf(&line, "%ld", (long)getpid());
	sb_adds(&line, ",\"msg\":");
	json_write_string(&line, msg, strlen(msg));
	if (ctx && *ctx) {
		sb_addc(&line, ',');
		sb_adds(&line, ctx);
	}
	sb_adds(&line, "}\n");
	/* A failing log must not fail the run; it is best effort. */
	if (write(logfd, line.buf, line.len) < 0)
		(void)0;
	sb_release(&line);
}
