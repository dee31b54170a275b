/*
 * numkey - json_number_key() against its specification for literals with a
 * fraction or an exponent: two such numbers share a key exactly when strtod
 * reads them as one double.  Seeded pairs of literals, each a spelling of a
 * random decimal of up to 15 significant digits (which json_number_key
 * forms without strtod) against another spelling of it, a neighbour a few
 * units in its 16th or 17th digit, or its double's shortest digits.
 * Built by make check, for tests/own-json.bats.
 *
 * numkey [PAIRS [SEED]]
 *
 * Prints "PAIRS pairs: E equal, 0 disagree" and exits 0; prints each pair
 * that disagrees (at most 10) and exits 1.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/json.h"

static unsigned long long rng = 88172645463325252ULL;

static unsigned
draw(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

/* digits[0..nd) as a literal with the point after `point` digits, then e. */
static void
spell(char *out, int neg, const char *digits, int nd, int point, int e)
{
	char *p = out;
	int i;

	if (neg)
		*p++ = '-';
	if (point <= 0) {
		*p++ = '0';
		*p++ = '.';
		for (i = point; i < 0; i++)
			*p++ = '0';
		point = 0;
	}
	for (i = 0; i < nd; i++) {
		if (i == point && i > 0)
			*p++ = '.';
		*p++ = digits[i];
	}
	for (; i < point; i++)
		*p++ = '0';
	if (point >= nd)
		p += sprintf(p, ".0");
	if (e)
		p += sprintf(p, "e%d", e);
	*p = '\0';
}

static int
key(struct sb *out, const char *lit)
{
	out->len = 0;
	return json_number_key(out, lit, strlen(lit));
}

int
main(int argc, char *argv[])
{
	long pairs = argc > 1 ? atol(argv[1]) : 200000, i, equal = 0, bad = 0;
	struct sb ka, kb;
	char d[40], a[96], b[96];

	if (argc > 2)
		rng ^= strtoull(argv[2], NULL, 10) * 0x9e3779b97f4a7c15ULL;
	sb_init(&ka, 64);
	sb_init(&kb, 64);
	for (i = 0; i < pairs; i++) {
		int nd = 1 + (int)draw(15), point = (int)draw(40) - 20;
		int e = draw(3) ? 0 : (int)draw(600) - 300, neg = (int)draw(2);
		int k, same;

		for (k = 0; k < nd; k++)
			d[k] = (char)('0' + draw(10));
		if (d[0] == '0')
			d[0] = '1';
		spell(a, neg, d, nd, point, e);
		switch (draw(3)) {
		case 0:		/* the same value: the point and exponent moved */
			k = (int)draw(9) - 4;
			spell(b, neg, d, nd, point + k, e - k);
			break;
		case 1:		/* a neighbour in the 16th or 17th digit */
			for (k = nd; k < 17; k++)
				d[k] = '0';
			d[15 + draw(2)] = (char)('0' + draw(10));
			spell(b, neg, d, 17, point, e);
			break;
		default:	/* the double's shortest digits */
			snprintf(b, sizeof b, "%.17g", strtod(a, NULL));
			if (!strpbrk(b, ".e"))
				strcat(b, ".0");
			break;
		}
		if (!isfinite(strtod(a, NULL)) || !isfinite(strtod(b, NULL)) ||
		    strtod(a, NULL) == 0 || fabs(strtod(a, NULL)) < 1e-300) {
			i--;
			continue;
		}
		if (key(&ka, a) < 0 || key(&kb, b) < 0) {
			printf("%s %s: no key\n", a, b);
			bad++;
			break;
		}
		same = ka.len == kb.len && memcmp(ka.buf, kb.buf, ka.len) == 0;
		equal += same;
		if (same != (strtod(a, NULL) == strtod(b, NULL)) && bad++ < 10)
			printf("%s %s: keys %s, doubles %s\n", a, b,
			    same ? "equal" : "differ", same ? "differ" : "equal");
	}
	sb_release(&ka);
	sb_release(&kb);
	if (bad)
		return 1;
	printf("%ld pairs: %ld equal, 0 disagree\n", pairs, equal);
	return 0;
}
