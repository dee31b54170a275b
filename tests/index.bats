#!/usr/bin/env bats
# lib/index, the keyed index of recdelta-diff, through tests/helpers/indexwalk
# (built by make check): each store spec filled into an index of its own,
# every entry read back, and the order index_walk visits the keys of all of
# them in.  An ndjson: file is read back from the store itself; a line the
# store cannot read again (ndjson:- on a pipe, a dir: store) from the spool.

bats_require_minimum_version 1.5.0

load helpers/common

INDEXWALK=$TOP/tests/helpers/indexwalk

suite_setup() {
	[ -x "$INDEXWALK" ] || fail "$INDEXWALK: missing; make check builds it"
	# Odd but valid lines: spaces, escapes, UTF-8, a rev, a tombstone-free
	# mix of types, a line of another kind.
	cat > a.ndjson <<'EOF'
{"kind":"record","type":"T","key":"b","rev":"1","fields":{"n":1}}
{"kind":"cursor","value":"T:x"}
{ "kind" : "record", "type":"T","key":"a","fields":{"s":"tab\tand \u00e9 é"}}
{"kind":"record","type":"U","key":"a","fields":{"n":3}}
EOF
	cat > b.ndjson <<'EOF'
{"kind":"record","type":"T","key":"c","fields":{"n":4}}
{"kind":"record","type":"T","key":"a","fields":{"n":5}}
EOF
	cat > c.ndjson <<'EOF'
{"kind":"record","type":"V","key":"z","fields":{}}
{"kind":"record","type":"T","key":"c","fields":{"n":6}}
{"kind":"record","type":"T","key":"b","fields":{"n":7,"big":12345678901234567890}}
EOF
}

# piped FILE CMD...: CMD reading FILE through a pipe, which ndjson:- cannot
# read a line of again.
piped() {
	local f=$1
	shift
	cat "$f" | "$@"
}

# column KIND FIELDS: the fields (cut -f) of the KIND lines of $output.
column() {
	printf '%s\n' "$output" | grep "^$1	" | cut -f "$2"
}

@test "an index keeps its input's order, records and other lines alike, and each entry's type, key and rev" {
	run -0 --separate-stderr "$INDEXWALK" ndjson:a.ndjson
	assert_equal "$stderr" ''
	assert_equal "$(column entry 3 | tr '\n' ' ')" '1 2 3 4 '
	assert_equal "$(printf '%s\n' "$output" | grep '^entry' | cut -f 5-8)" "$(printf '%s\t%s\t%s\t%s\n' \
	    record T b 1  pass - - -  record T a -  record U a -)"
}

@test "entries are read back exactly: from the store when it can read a line again, else from the spool" {
	# A regular file: from the store.
	run -0 --separate-stderr "$INDEXWALK" ndjson:a.ndjson
	assert_equal "$(column entry 4 | sort -u)" store
	assert_equal "$(column entry 9)" "$(cat a.ndjson)"
	# A pipe: every line spooled, read back the same.
	run -0 --separate-stderr piped c.ndjson "$INDEXWALK" ndjson:-
	assert_equal "$(column entry 4 | sort -u)" spool
	assert_equal "$(column entry 9)" "$(cat c.ndjson)"
	# Both at once, and a dir: store, which cannot read a line again.
	recdelta-diff -l ndjson:b.ndjson -r dir:S --allow-empty --allow-missing-remote | recdelta-push -q dir:S > /dev/null
	recdelta-fetch dir:S > s.ndjson
	run -0 --separate-stderr piped c.ndjson "$INDEXWALK" ndjson:a.ndjson ndjson:- dir:S
	assert_equal "$(column entry 2 | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' ')" '0:4 1:3 2:2 '
	assert_equal "$(printf '%s\n' "$output" | awk -F '\t' '$1 == "entry" { print $2, $4 }' | uniq | tr '\n' ' ')" \
	    '0 store 1 spool 2 spool '
	assert_equal "$(printf '%s\n' "$output" | awk -F '\t' '$1 == "entry" && $2 == 0 { print $9 }')" "$(cat a.ndjson)"
	assert_equal "$(printf '%s\n' "$output" | awk -F '\t' '$1 == "entry" && $2 == 1 { print $9 }')" "$(cat c.ndjson)"
	assert_equal "$(printf '%s\n' "$output" | awk -F '\t' '$1 == "entry" && $2 == 2 { print $9 }')" "$(cat s.ndjson)"
}

@test "a file cut short after it was read: reading a line back fails (exit 4) naming the store, and says so" {
	cp a.ndjson x.ndjson
	run -4 --separate-stderr "$INDEXWALK" -t x.ndjson ndjson:x.ndjson
	assert_equal "$stderr" 'indexwalk: ndjson:x.ndjson: reading back: file changed while reading'
	# The lines before the cut were read back whole.
	assert_equal "$(column entry 9)" "$(head -n "${#lines[@]}" a.ndjson)"
	[ "${#lines[@]}" -lt 4 ]
}

@test "a duplicate (type, key) is refused, naming the line of the first; the same key under another type is not a duplicate" {
	{ cat a.ndjson; echo '{"kind":"record","type":"U","key":"b","fields":{}}'; \
	    echo '{"kind":"record","type":"T","key":"a","fields":{"n":9}}'; } > dup.ndjson
	run -3 --separate-stderr "$INDEXWALK" ndjson:dup.ndjson
	assert_output ''
	assert_equal "$stderr" 'indexwalk: dup.ndjson:6: duplicate record (type "T", key "a"), first at line 3'
	# From the spool, the same.
	run -3 --separate-stderr piped dup.ndjson "$INDEXWALK" ndjson:-
	assert_output ''
	assert_equal "$stderr" 'indexwalk: <stdin>:6: duplicate record (type "T", key "a"), first at line 3'
}

@test "a walk over 3 indexes visits each key once, in the first index's order then each later one's new keys, with the entry of each index that has it" {
	run -0 --separate-stderr piped c.ndjson "$INDEXWALK" ndjson:a.ndjson ndjson:b.ndjson ndjson:-
	assert_equal "$stderr" ''
	assert_equal "$(printf '%s\n' "$output" | grep '^walk')" "$(printf 'walk\t%s\n' \
	    $'T\tb\t0:1\t1:-\t2:3' \
	    $'pass\t-\t0:2' \
	    $'T\ta\t0:3\t1:2\t2:-' \
	    $'U\ta\t0:4\t1:-\t2:-' \
	    $'T\tc\t0:-\t1:1\t2:2' \
	    $'V\tz\t0:-\t1:-\t2:1')"
	# Each key once, and every record of every index met.
	assert_equal "$(column walk 2-3 | grep -v pass | sort | uniq -d)" ''
	# An entry a step names is the one with that key in that index.
	printf '%s\n' "$output" | awk -F '\t' '
	    $1 == "entry" && $5 == "record" { at[$2 ":" $3] = $6 "\t" $7 }
	    $1 == "walk" && $2 != "pass" {
		for (i = 4; i <= NF; i++) if ($i !~ /:-$/ && at[$i] != $2 "\t" $3) { print "step", NR, $i; bad = 1 }
	    }
	    END { exit bad }'
	# A second walk from scratch (the order does not depend on the first).
	run -0 "$INDEXWALK" ndjson:b.ndjson ndjson:a.ndjson
	assert_equal "$(column walk 2-3 | tr '\t\n' ': ')" 'T:c T:a T:b U:a '
}

@test "index_keyhash is a fixed function of (type, key): the same value on every machine, so a shard is too" {
	run -0 "$INDEXWALK" -k T a
	assert_output 2510884552533316608
	run -0 "$INDEXWALK" -k Game "g-0001"
	want=$output
	run -0 "$INDEXWALK" -k Game "g-0001"
	assert_output "$want"
	# The type and the key are kept apart: ("Ta", "b") is not ("T", "ab").
	run -0 "$INDEXWALK" -k T ab
	one=$output
	run -0 "$INDEXWALK" -k Ta b
	[ "$output" != "$one" ]
	# FNV-1a over type, 0xff, key, then a final mix: computed here
	# independently of the C code.
	run -0 node -e '
const M = (1n << 64n) - 1n, P = 1099511628211n;
function h(t, k) {
	let v = 1469598103934665603n;
	for (const c of Buffer.from(t)) v = ((v ^ BigInt(c)) * P) & M;
	v = ((v ^ 0xffn) * P) & M;
	for (const c of Buffer.from(k)) v = ((v ^ BigInt(c)) * P) & M;
	v ^= v >> 31n;
	v = (v * 0x9e3779b97f4a7c15n) & M;
	return v ^ (v >> 29n);
}
console.log([h("T", "a"), h("Game", "g-0001"), h("T", "ab")].join(" "));'
	assert_output "2510884552533316608 $want $one"
}
