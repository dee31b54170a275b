#!/usr/bin/env bats
# The record scanner (lib/scan.h): recdelta-diff reads the common record
# line without building its tree, writing its canonical form as it goes,
# and leaves every other line to the exact parser.  A line it takes must
# read the same as the parser reads it, to the byte of its canonical form,
# and a diff must find the same whichever reader took each side's line.

bats_require_minimum_version 1.5.0

load helpers/common

SCANLINE=$TOP/tests/helpers/scanline

# The lines of the first test: the reader expected for each, in order.
lines() {
	cat <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"1","fields":{"n":1,"s":"x"}}
{ "fields" : { "s" : "x" , "n" : 1 } , "key" : "a" , "type" : "T" , "kind" : "record" } 
{"kind":"record","type":"T","key":"a","mtime":"2026-01-01T00:00:00Z","rev":"","fields":{}}
{"kind":"record","type":"T","key":"a","fields":{"s":"caf\u00e9"}}
{"kind":"record","type":"T","key":"a","fields":{"s":"café 日本 😀"}}
{"kind":"record","type":"T","key":"a","fields":{"n":1e5}}
{"kind":"record","type":"T","key":"a","fields":{"n":-0,"m":0.5,"o":-12.250,"p":9007199254740993}}
{"kind":"record","type":"T","key":"a","fields":{"n":01}}
{"kind":"record","type":"T","key":"a","fields":{"n":1.}}
{"kind":"record","type":"T","key":"a","fields":{"r":{"$ref":"team_1"},"l":{"$loc":{"lat":1.5,"lng":-2,"alt":3}}}}
{"kind":"record","type":"T","key":"a","fields":{"r":{"$ref":""}}}
{"kind":"record","type":"T","key":"a","fields":{"r":{"$ref":"x","action":"NONE"}}}
{"kind":"record","type":"T","key":"a","fields":{"r":{"$ref":5}}}
{"kind":"record","type":"T","key":"a","fields":{"l":{"$loc":{"lat":1,"lng":2},"x":1}}}
{"kind":"record","type":"T","key":"a","fields":{"l":{"$loc":{"lat":1}}}}
{"kind":"record","type":"T","key":"a","fields":{"l":{"$loc":{"lat":"1","lng":2}}}}
{"kind":"record","type":"T","key":"a","fields":{"t":{"$ts":"2026-01-01T00:00:00Z"}}}
{"kind":"record","type":"T","key":"a","fields":{"i":{"$int":"5"}}}
{"kind":"record","type":"T","key":"a","fields":{"$ref":"no tag at the top","o":{"$other":1}}}
{"kind":"record","type":"T","key":"a","fields":{"o":{"n":1,"n":2}}}
{"kind":"record","type":"T","key":"a","deleted":false,"fields":{}}
{"kind":"record","type":"T","key":"a","before":{},"fields":{}}
{"kind":"record","kind":"record","type":"T","key":"a","fields":{}}
{"kind":"change","type":"T","key":"a","fields":{}}
{"kind":"record","type":"","key":"a","fields":{}}
{"kind":"record","type":"T","key":"a"}
{"kind":"record","type":"T","key":"a","fields":[]}
{"kind":"record","type":"T","key":"a","fields":{}} x
{"kind":"record","type":"T","key":"a","fields":{"a":[1,[2,[3]],{"b":null,"c":true,"d":false}]}}
{"kind":"record","type":"T","key":"a","fields":{"s":"tru"},"x":tru}
EOF
	# Invalid UTF-8, a control character.
	printf '{"kind":"record","type":"T","key":"a","fields":{"s":"\377"}}\n'
	printf '{"kind":"record","type":"T","key":"a","fields":{"s":"a\001b"}}\n'
	# Nesting of 32 levels (the fields object and 31 arrays), then 33.
	local d
	for d in 31 32; do
		printf '{"kind":"record","type":"T","key":"a","fields":{"d":'
		printf '[%.0s' $(seq "$d")
		printf ']%.0s' $(seq "$d")
		printf '}}\n'
	done
	# 32 members, then 33.
	for d in 31 32; do
		printf '{"kind":"record","type":"T","key":"a","fields":{'
		printf '"f%d":1,' $(seq 0 $((d - 1)))
		printf '"f%d":1}}\n' "$d"
	done
	# A null member at the top (left out of the canonical form), members
	# out of order at every level.
	printf '%s\n' '{"kind":"record","type":"T","key":"a","fields":{"z":null,"b":{"y":[{"q":null,"p":-1.50}],"x":2},"a":"s"}}'
}

@test "scan_record takes the plain record line, leaves every line it is not sure of to the parser, and reads what it takes as the parser does" {
	lines > lines.ndjson
	run -0 "$SCANLINE" lines.ndjson
	assert_output - <<'EOF'
1: scan
2: scan
3: scan
4: parse
5: scan
6: parse
7: scan
8: parse
9: parse
10: scan
11: parse
12: scan
13: parse
14: parse
15: parse
16: parse
17: parse
18: parse
19: scan
20: parse
21: parse
22: parse
23: parse
24: parse
25: parse
26: parse
27: parse
28: parse
29: scan
30: parse
31: parse
32: parse
33: scan
34: parse
35: scan
36: parse
37: scan
EOF
}

@test "scan_record takes every line of a generated record set, and each reads as the parser reads it" {
	"$TOP/bench/recgen" -n 5000 remote.ndjson local.ndjson 2> counts.json
	cat remote.ndjson local.ndjson > all.ndjson
	run -0 "$SCANLINE" all.ndjson
	run -0 sh -c "'$SCANLINE' all.ndjson | cut -d' ' -f2- | sort | uniq -c"
	assert_output "  $(wc -l < all.ndjson) scan"
}

@test "diff: a record compares by content whichever reader took each side: spelt otherwise (escapes, exponents, order, spaces) it is the same" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","fields":{"s":"café","n":100000,"r":{"$ref":"x"},"l":{"$loc":{"lat":1.5,"lng":2}}}}
{"kind":"record","type":"T","key":"b","fields":{"s":"é","n":1.5}}
{"kind":"record","type":"T","key":"c","fields":{"s":"x","n":1}}
{"kind":"record","type":"T","key":"d","fields":{"s":"x","n":1}}
EOF
	cat > remote.ndjson <<'EOF'
{ "fields": { "l": {"$loc": {"lng": 2.0, "lat": 15e-1}}, "r": {"$ref": "x"}, "n": 1e5, "s": "caf\u00e9" }, "key": "a", "type": "T", "kind": "record" }
{"kind":"record","type":"T","key":"b","fields":{"n":1.50,"s":"\u00e9"}}
{"kind":"record","type":"T","key":"c","fields":{"n":1,"s":"y"}}
{"kind":"record","type":"T","key":"d","fields":{"n":1.0,"s":"x","z":null}}
EOF
	run -0 --separate-stderr "$SCANLINE" local.ndjson
	assert_output $'1: scan\n2: scan\n3: scan\n4: scan'
	run -0 --separate-stderr "$SCANLINE" remote.ndjson
	assert_output $'1: parse\n2: parse\n3: scan\n4: scan'
	run -0 --separate-stderr recdelta-diff --local local.ndjson --remote remote.ndjson
	assert_output '{"kind":"change","op":"update","type":"T","key":"c","fields":{"s":"x","n":1},"changed":["s"]}'
	run -0 --separate-stderr recdelta-diff --local remote.ndjson --remote local.ndjson
	assert_output '{"kind":"change","op":"update","type":"T","key":"c","fields":{"n":1,"s":"y"},"changed":["s"]}'
}

@test "diff: a field ignored by the rules makes no update on scanned lines, nor does a tolerance" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","fields":{"s":"x","seen":"2026-01-01","v":1.0}}
{"kind":"record","type":"U","key":"a","fields":{"s":"x","seen":"2026-01-01","v":1.0}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","fields":{"s":"x","seen":"2026-02-02","v":1.05}}
{"kind":"record","type":"U","key":"a","fields":{"s":"x","seen":"2026-02-02","v":1.05}}
EOF
	run -0 --separate-stderr "$SCANLINE" remote.ndjson
	assert_output $'1: scan\n2: scan'
	printf 'T ignore seen\n' > rules
	run -0 --separate-stderr recdelta-diff --rules rules --tolerance v=0.1 --local local.ndjson --remote remote.ndjson
	assert_output '{"kind":"change","op":"update","type":"U","key":"a","fields":{"s":"x","seen":"2026-01-01","v":1.0},"changed":["seen"]}'
}

@test "diff: a plain line with a bad tagged value or a duplicate member is still bad input naming file and line, on either side" {
	rec T a '{"s":"x"}' > ok.ndjson
	printf '%s\n' "$(rec T a '{"s":"x"}')" '{"kind":"record","type":"T","key":"b","fields":{"r":{"$ref":""}}}' > bad.ndjson
	run -3 --separate-stderr recdelta-diff --local bad.ndjson --remote ok.ndjson
	assert_output ''
	assert_equal "$stderr" 'recdelta-diff: bad.ndjson:2: field "r": bad $ref value: not a non-empty string'
	run -3 --separate-stderr recdelta-diff --local ok.ndjson --remote bad.ndjson
	assert_equal "$stderr" 'recdelta-diff: bad.ndjson:2: field "r": bad $ref value: not a non-empty string'
	printf '%s\n' '{"kind":"record","type":"T","key":"b","fields":{"l":{"$loc":{"lat":1,"lat":2,"lng":3}}}}' > dup.ndjson
	run -3 --separate-stderr recdelta-diff --local dup.ndjson --remote ok.ndjson
	assert_equal "$stderr" 'recdelta-diff: dup.ndjson:1: duplicate member "lat"'
}
