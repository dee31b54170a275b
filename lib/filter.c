/* filter.c - the user's jq filters through libjq (filter.h). */
#include <jq.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"

struct filter {
	jq_state *jq;
	char *opt;
	struct sb msgs;		/* what jq said while compiling */
};

/* jq's error callback: consumes msg. */
static void
collect(void *data, jv msg)
{
	struct filter *f = data;

	if (jv_get_kind(msg) != JV_KIND_STRING)
		msg = jv_dump_string(msg, 0);
	if (f->msgs.len)
		sb_adds(&f->msgs, "; ");
	sb_add(&f->msgs, jv_string_value(msg),
	    (size_t)jv_string_length_bytes(jv_copy(msg)));
	jv_free(msg);
	/* jq pads the program's line it quotes. */
	while (f->msgs.len && (f->msgs.buf[f->msgs.len - 1] == ' ' ||
	    f->msgs.buf[f->msgs.len - 1] == '\n'))
		f->msgs.buf[--f->msgs.len] = '\0';
}

struct filter *
filter_new(const char *opt, const char *program)
{
	struct filter *f = xcalloc(1, sizeof *f);
	size_t i;

	f->opt = xstrdup(opt);
	sb_init(&f->msgs, 128);
	if (!(f->jq = jq_init())) {
		rd_seterr(RD_EXIT_RUNTIME, "%s: cannot start libjq", opt);
		goto fail;
	}
	jq_set_error_cb(f->jq, collect, f);
	if (!jq_compile(f->jq, program)) {
		/* jq quotes the program's line after a newline: one line here. */
		for (i = 0; i < f->msgs.len; i++)
			if (f->msgs.buf[i] == '\n')
				f->msgs.buf[i] = ' ';
		rd_seterr(RD_EXIT_USAGE, "%s: %s", opt, f->msgs.len ?
		    f->msgs.buf : "jq: error: cannot compile the filter");
		goto fail;
	}
	sb_reset(&f->msgs);
	return f;
fail:
	filter_free(f);
	return NULL;
}

void
filter_free(struct filter *f)
{
	if (!f)
		return;
	if (f->jq)
		jq_teardown(&f->jq);
	sb_release(&f->msgs);
	free(f->opt);
	free(f);
}

int
filter_start(struct filter *f, const char *text, size_t len)
{
	jv v;

	if (len > INT_MAX) {
		rd_seterr(RD_EXIT_DATA, "%s: a value too long for jq", f->opt);
		return -1;
	}
	v = jv_parse_sized(text, (int)len);
	if (!jv_is_valid(v)) {
		jv msg = jv_invalid_get_msg(v);

		rd_seterr(RD_EXIT_DATA, "%s: jq cannot read the value: %s",
		    f->opt, jv_get_kind(msg) == JV_KIND_STRING ?
		    jv_string_value(msg) : "invalid JSON");
		jv_free(msg);
		return -1;
	}
	jq_start(f->jq, v, 0);	/* consumes v */
	return 0;
}

/* The message of an invalid jv from jq_next, consumed, as jq's CLI says it. */
static void
jq_error(struct filter *f, jv out)
{
	jv msg = jv_invalid_get_msg(out);

	if (jv_get_kind(msg) == JV_KIND_STRING) {
		rd_seterr(RD_EXIT_DATA, "%s: jq: error: %s", f->opt,
		    jv_string_value(msg));
	} else {
		msg = jv_dump_string(msg, 0);
		rd_seterr(RD_EXIT_DATA, "%s: jq: error: %s (not a string)",
		    f->opt, jv_string_value(msg));
	}
	jv_free(msg);
}

int
filter_next(struct filter *f, struct sb *out)
{
	jv v = jq_next(f->jq), s;

	sb_reset(out);
	if (!jv_is_valid(v)) {
		if (jv_invalid_has_msg(jv_copy(v))) {
			jq_error(f, v);
			return -1;
		}
		jv_free(v);
		if (jq_halted(f->jq)) {
			jv code = jq_get_exit_code(f->jq);
			int failed = jv_is_valid(code) &&
			    !(jv_get_kind(code) == JV_KIND_NUMBER &&
			    jv_number_value(code) == 0);

			jv_free(code);
			if (failed) {
				jv m = jq_get_error_message(f->jq);

				if (jv_get_kind(m) != JV_KIND_STRING)
					m = jv_dump_string(m, 0);
				rd_seterr(RD_EXIT_DATA, "%s: jq: halt_error: %s",
				    f->opt, jv_string_value(m));
				jv_free(m);
				return -1;
			}
		}
		return 0;
	}
	s = jv_dump_string(v, 0);	/* consumes v */
	sb_add(out, jv_string_value(s), (size_t)jv_string_length_bytes(
	    jv_copy(s)));
	jv_free(s);
	return 1;
}

int
filter_test(struct filter *f, const char *text, size_t len)
{
	jv v;

	if (filter_start(f, text, len) < 0)
		return -1;
	for (;;) {
		jv_kind k;

		v = jq_next(f->jq);
		if (!jv_is_valid(v)) {
			if (jv_invalid_has_msg(jv_copy(v))) {
				jq_error(f, v);
				return -1;
			}
			jv_free(v);
			return 0;
		}
		k = jv_get_kind(v);
		jv_free(v);
		if (k != JV_KIND_FALSE && k != JV_KIND_NULL)
			return 1;
	}
}

/* Append to path the step to member name, or to item i when name is NULL. */
static void
path_step(struct sb *path, const char *name, size_t n, size_t i)
{
	size_t k;
	int ident = n > 0 && !(name[0] >= '0' && name[0] <= '9');

	if (!name) {
		sb_addf(path, "[%zu]", i);
		return;
	}
	for (k = 0; k < n && ident; k++)
		ident = (name[k] >= 'a' && name[k] <= 'z') ||
		    (name[k] >= 'A' && name[k] <= 'Z') ||
		    (name[k] >= '0' && name[k] <= '9') || name[k] == '_';
	if (ident) {
		sb_addc(path, '.');
		sb_add(path, name, n);
	} else {
		sb_adds(path, path->len ? "[" : ".[");
		json_write_string(path, name, n);
		sb_addc(path, ']');
	}
}

/*
 * Whether the number literal lit survives jq: a value with a fraction always
 * does (jq reads the nearest double, by design); an integer only when the
 * nearest double is the integer itself.
 */
static int
number_exact(const char *lit, size_t n)
{
	struct sb canon, back;
	char buf[40];
	const char *e;
	double d;
	int ok;

	sb_init(&canon, 48);
	if (json_number_canon(&canon, lit, n) < 0) {
		sb_release(&canon);
		return 0;
	}
	e = strrchr(canon.buf, 'e');
	if (e && e[1] == '-') {		/* a fraction: let through */
		sb_release(&canon);
		return 1;
	}
	sb_release(&canon);
	{
		char *s = xmemdup(lit, n);

		d = strtod(s, NULL);
		free(s);
	}
	if (!isfinite(d) || json_format_double(buf, sizeof buf, d) < 0)
		return 0;
	sb_init(&back, 48);
	sb_adds(&back, buf);
	ok = json_number_equal(lit, n, back.buf, back.len);
	sb_release(&back);
	return ok;
}

static int
exact(const struct json *v, struct sb *path)
{
	size_t i, mark = path->len;

	switch (v->type) {
	case JSON_NUMBER:
		if (number_exact(v->u.s, v->len))
			return 0;
		rd_seterr(RD_EXIT_DATA, "%s: %.*s would be rounded by jq, whose "
		    "numbers are doubles (integers exact up to 2^53)",
		    path->len ? path->buf : ".", (int)v->len, v->u.s);
		return -1;
	case JSON_ARRAY:
		for (i = 0; i < v->len; i++) {
			path_step(path, NULL, 0, i);
			if (exact(&v->u.items[i], path) < 0)
				return -1;
			path->len = mark;
			path->buf[mark] = '\0';
		}
		return 0;
	case JSON_OBJECT:
		for (i = 0; i < v->len; i++) {
			const struct json_member *m = &v->u.members[i];

			path_step(path, m->name, m->namelen, 0);
			if (exact(&m->value, path) < 0)
				return -1;
			path->len = mark;
			path->buf[mark] = '\0';
		}
		return 0;
	default:
		return 0;
	}
}

int
filter_exact(const struct json *v)
{
	struct sb path;
	int ret;

	sb_init(&path, 64);
	ret = exact(v, &path);
	sb_release(&path);
	return ret;
}
