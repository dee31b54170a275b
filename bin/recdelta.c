/*
 * recdelta - run a recdelta program or flow by name, as git runs its
 * commands: "recdelta diff ARGS" execs recdelta-diff ARGS, and
 * "recdelta smart-sync ARGS" runs the flow pipelines/smart-sync.
 *
 * Programs are looked for next to this executable, then on PATH; flows in
 * RECDELTA_PIPELINES, then ../pipelines and ../libexec/recdelta beside this
 * executable.  The directory of this executable is put first on PATH for the
 * child, so a flow runs the programs of the same installation.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/util.h"

static const char *const programs[] = {
	"fetch", "diff", "merge", "push", "checkpoint",
};
static const char *const flows[] = {
	"diff-only", "smart-sync", "two-way-sync", "historical-import", "undo",
};

static int
is_one_of(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

/* The directory holding this executable, or NULL. */
static char *
exec_dir(void)
{
	char buf[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	if (!(slash = strrchr(buf, '/')))
		return NULL;
	*slash = '\0';
	return xstrdup(buf);
}

static void
prepend_path(const char *dir)
{
	const char *old = getenv("PATH");
	size_t n = strlen(dir) + (old ? strlen(old) : 0) + 2;
	char *p = xmalloc(n);

	snprintf(p, n, "%s%s%s", dir, old ? ":" : "", old ? old : "");
	setenv("PATH", p, 1);
	free(p);
}

static char *
find_flow(const char *dir, const char *name)
{
	const char *env = getenv("RECDELTA_PIPELINES");
	const char *rel[] = { "../pipelines", "../libexec/recdelta" };
	char buf[PATH_MAX];
	size_t i;

	if (env && *env) {
		snprintf(buf, sizeof buf, "%s/%s", env, name);
		if (access(buf, X_OK) == 0)
			return xstrdup(buf);
	}
	for (i = 0; dir && i < sizeof rel / sizeof rel[0]; i++) {
		snprintf(buf, sizeof buf, "%s/%s/%s", dir, rel[i], name);
		if (access(buf, X_OK) == 0)
			return xstrdup(buf);
	}
	return NULL;
}

/* True when recdelta-NAME is beside this executable or on PATH. */
static int
have_program(const char *dir, const char *name)
{
	const char *path = getenv("PATH"), *p, *e;
	char buf[PATH_MAX];

	if (dir && snprintf(buf, sizeof buf, "%s/recdelta-%s", dir, name) <
	    (int)sizeof buf && access(buf, X_OK) == 0)
		return 1;
	for (p = path; p && *p; p = *e ? e + 1 : e) {
		if (!(e = strchr(p, ':')))
			e = p + strlen(p);
		if (snprintf(buf, sizeof buf, "%.*s/recdelta-%s", (int)(e - p),
		    e > p ? p : ".", name) < (int)sizeof buf &&
		    access(buf, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* "fetch, diff" of the names in list that are installed, or "none". */
static void
list_installed(FILE *fp, const char *dir, const char *const *list, size_t n,
    int flow)
{
	size_t i, k = 0;
	char *f;

	for (i = 0; i < n; i++) {
		if (flow) {
			if (!(f = find_flow(dir, list[i])))
				continue;
			free(f);
		} else if (!have_program(dir, list[i])) {
			continue;
		}
		fprintf(fp, "%s%s", k++ ? ", " : "", list[i]);
	}
	fputs(k ? "\n" : "none installed\n", fp);
}

/* The usage, with the programs and flows this installation has. */
static void
usage(FILE *fp)
{
	char *dir = exec_dir();

	fprintf(fp,
	    "usage: recdelta NAME [ARGS...]\n"
	    "       recdelta help [NAME]\n"
	    "       recdelta -h | --help\n"
	    "       recdelta -V | --version\n"
	    "\n"
	    "programs: ");
	list_installed(fp, dir, programs, sizeof programs / sizeof programs[0],
	    0);
	fputs("flows:    ", fp);
	list_installed(fp, dir, flows, sizeof flows / sizeof flows[0], 1);
	fputs("\n\"recdelta NAME --help\" or \"man recdelta-NAME\" tells more.\n",
	    fp);
	free(dir);
}

int
main(int argc, char *argv[])
{
	char *dir, *flow, prog[256], *helpv[3];
	const char *name;
	char **args;

	rd_setprogname(argv[0]);
	if (argc < 2) {
		usage(stderr);
		return RD_EXIT_USAGE;
	}
	name = argv[1];
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
		usage(stdout);
		return RD_EXIT_OK;
	}
	if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
		printf("recdelta %s\n", RD_VERSION);
		return RD_EXIT_OK;
	}
	args = argv + 1;	/* args[0] becomes the program, the rest its arguments */
	if (strcmp(name, "help") == 0) {
		if (argc < 3) {
			usage(stdout);
			return RD_EXIT_OK;
		}
		name = argv[2];
		helpv[0] = NULL;
		helpv[1] = "--help";
		helpv[2] = NULL;
		args = helpv;
	}
	if (name[0] == '-' || strchr(name, '/') ||
	    (!is_one_of(name, programs, sizeof programs / sizeof programs[0]) &&
	    !is_one_of(name, flows, sizeof flows / sizeof flows[0]))) {
		rd_warn("\"%s\" is not a recdelta program or flow",
		    rd_quote(name, strlen(name)));
		usage(stderr);
		return RD_EXIT_USAGE;
	}
	dir = exec_dir();
	if (dir)
		prepend_path(dir);
	if (is_one_of(name, flows, sizeof flows / sizeof flows[0])) {
		if (!(flow = find_flow(dir, name)))
			rd_die(RD_EXIT_RUNTIME, "flow \"%s\" is not installed", name);
		args[0] = flow;
		execv(flow, args);
		rd_die(RD_EXIT_RUNTIME, "%s: %s", flow, strerror(errno));
	}
	snprintf(prog, sizeof prog, "recdelta-%s", name);
	args[0] = prog;
	execvp(prog, args);
	rd_die(errno == ENOENT ? RD_EXIT_USAGE : RD_EXIT_RUNTIME,
	    "%s: %s", prog, errno == ENOENT ? "not installed in this version" :
	    strerror(errno));
}
