/* plain.c - plain JSON objects as records (plain.h). */
#include "plain.h"

#include <stdlib.h>
#include <string.h>

/*
 * A parameter value with %XX decoded: an owned NUL-terminated copy, or NULL
 * with a message (status 2) when it is empty, holds a NUL or is not UTF-8.
 */
static char *
param_value(const char *spec, const char *name, const char *s, size_t n)
{
	size_t len;
	char *out = pct_decode(s, n, &len);

	if (len == 0 || strlen(out) != len || !utf8_valid(out, len)) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": parameter \"%s\" %s",
		    rd_quote(spec, strlen(spec)), name, len == 0 ? "is empty" :
		    strlen(out) != len ? "holds a NUL byte once decoded" :
		    "holds bytes that are not UTF-8 once decoded");
		free(out);
		return NULL;
	}
	return out;
}

int
plain_init(struct plain *p, const char *spec, const char *type,
    size_t typelen, const char *key, size_t keylen)
{
	memset(p, 0, sizeof *p);
	if (!type || !key) {
		rd_seterr(RD_EXIT_USAGE, "\"%s\": type= and key= go together",
		    rd_quote(spec, strlen(spec)));
		return -1;
	}
	if (typelen > 0 && type[0] == '@') {
		if (!(p->typefield = param_value(spec, "type", type + 1,
		    typelen - 1)))
			goto fail;
	} else if (!(p->type = param_value(spec, "type", type, typelen)))
		goto fail;
	if (!(p->keyfield = param_value(spec, "key", key, keylen)))
		goto fail;
	return 0;
fail:
	plain_release(p);
	return -1;
}

void
plain_release(struct plain *p)
{
	free(p->type);
	free(p->typefield);
	free(p->keyfield);
	memset(p, 0, sizeof *p);
}

int
plain_params(struct plain *p, const char *spec, const char *query,
    char **path)
{
	const char *type = NULL, *key = NULL, *s;
	size_t typelen = 0, keylen = 0;

	memset(p, 0, sizeof *p);
	if (path)
		*path = NULL;
	for (s = query; *s; ) {
		const char *amp = strchr(s, '&'), *eq;
		size_t n = amp ? (size_t)(amp - s) : strlen(s);

		eq = memchr(s, '=', n);
		if (eq && eq - s == 4 && memcmp(s, "type", 4) == 0) {
			type = eq + 1;
			typelen = (size_t)(s + n - type);
		} else if (eq && eq - s == 3 && memcmp(s, "key", 3) == 0) {
			key = eq + 1;
			keylen = (size_t)(s + n - key);
		} else if (eq && path && eq - s == 4 &&
		    memcmp(s, "path", 4) == 0) {
			free(*path);
			if (!(*path = param_value(spec, "path", eq + 1,
			    (size_t)(s + n - eq - 1))))
				return -1;
		} else {
			rd_seterr(RD_EXIT_USAGE, "\"%s\": unknown parameter "
			    "\"%.*s\" (expected %s)", rd_quote(spec,
			    strlen(spec)), (int)(eq ? (size_t)(eq - s) : n), s,
			    path ? "type, key, path" : "type, key");
			goto fail;
		}
		s += n + (amp ? 1 : 0);
	}
	if ((type || key) && plain_init(p, spec, type, typelen, key,
	    keylen) < 0)
		goto fail;
	return 0;
fail:
	if (path) {
		free(*path);
		*path = NULL;
	}
	return -1;
}

int
plain_record(const struct plain *p, struct arena *a, const struct json *obj,
    struct record *rec)
{
	const struct json *k, *t = NULL;
	struct json *fields;
	size_t i, n = 0;

	memset(rec, 0, sizeof *rec);
	if (obj->type != JSON_OBJECT) {
		rd_seterr(RD_EXIT_DATA, "not a JSON object");
		return -1;
	}
	if (!(k = json_get(obj, p->keyfield))) {
		rd_seterr(RD_EXIT_DATA, "missing \"%s\" (key=%s)",
		    rd_quote(p->keyfield, strlen(p->keyfield)),
		    rd_quote(p->keyfield, strlen(p->keyfield)));
		return -1;
	}
	if (!(k->type == JSON_STRING || (k->type == JSON_NUMBER &&
	    json_number_is_integer(k->u.s, k->len)))) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is not a string or an integer",
		    rd_quote(p->keyfield, strlen(p->keyfield)));
		return -1;
	}
	if (k->len == 0) {
		rd_seterr(RD_EXIT_DATA, "\"%s\" is empty",
		    rd_quote(p->keyfield, strlen(p->keyfield)));
		return -1;
	}
	rec->key = k->u.s;
	rec->keylen = k->len;
	if (p->typefield) {
		if (!(t = json_get(obj, p->typefield))) {
			rd_seterr(RD_EXIT_DATA, "missing \"%s\" (type=@%s)",
			    rd_quote(p->typefield, strlen(p->typefield)),
			    rd_quote(p->typefield, strlen(p->typefield)));
			return -1;
		}
		if (t->type != JSON_STRING || t->len == 0) {
			rd_seterr(RD_EXIT_DATA, "\"%s\" is %s",
			    rd_quote(p->typefield, strlen(p->typefield)),
			    t->type != JSON_STRING ? "not a string" : "empty");
			return -1;
		}
		rec->type = t->u.s;
		rec->typelen = t->len;
	} else {
		rec->type = p->type;
		rec->typelen = strlen(p->type);
	}
	fields = arena_alloc(a, sizeof *fields);
	fields->type = JSON_OBJECT;
	fields->u.members = arena_alloc(a, (obj->len ? obj->len : 1) *
	    sizeof *fields->u.members);
	for (i = 0; i < obj->len; i++) {
		const struct json_member *m = &obj->u.members[i];

		if (&m->value == k || &m->value == t)
			continue;
		fields->u.members[n++] = *m;
	}
	fields->len = n;
	rec->fields = fields;
	return 0;
}

int
plain_record_line(const struct plain *p, struct arena *a,
    const struct json *obj, struct record *rec, struct sb *out)
{
	if (plain_record(p, a, obj, rec) < 0)
		return -1;
	stream_write_record(out, rec);
	return 0;
}
