#!/usr/bin/env bats
# recdelta-diff: change lines and ops, comparison rules, the summary and exit
# codes, inputs of every scheme, and bad input refused with exit 3 and nothing
# on stdout.
#
# Starting a test costs about half a second here (the helper libraries are
# loaded for each one), so related checks share a test; each still asserts
# exact output and exact messages.

load helpers/common
bats_require_minimum_version 1.5.0

# The two inputs most tests use, as given on the command line.
L=ndjson:local.ndjson
R=ndjson:remote.ndjson

# one_each LOCAL-FIELDS REMOTE-FIELDS: record T/a on both sides, remote rev 9.
one_each() {
	rec T a "$1" > local.ndjson
	rec T a "$2" 9 > remote.ndjson
}

# bad_local LINE: local.ndjson is a good record and then LINE, at line 2;
# remote.ndjson one good record.
bad_local() {
	rec T good '{"n":1}' > local.ndjson
	printf '%s\n' "$1" >> local.ndjson
	rec T good '{"n":1}' 1 > remote.ndjson
}

# assert_refused MESSAGE: the run wrote exactly MESSAGE on stderr and nothing
# on stdout.
assert_refused() {
	assert_equal "$stderr" "$1"
	assert_output ''
}

# big_record N FILE: a record line T/big whose field "s" is N bytes of "x".
big_record() {
	head -c "$1" /dev/zero | tr '\0' x > xs
	{ printf '{"kind":"record","type":"T","key":"big","fields":{"s":"'; cat xs; printf '"}}\n'; } > "$2"
}

USAGE1='usage: recdelta-diff --local SRC --remote SRC [-a] [-i FIELD]...'

# Change lines and ops

@test "writes create, update and delete lines; same lines only with --all or -a" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","fields":{"n":1}}
{"kind":"record","type":"T","key":"b","fields":{"n":2,"m":"x"}}
{"kind":"record","type":"T","key":"c","fields":{"n":3}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"T","key":"d","rev":"4","fields":{"n":4}}
{"kind":"record","type":"T","key":"b","rev":"7","fields":{"n":2,"m":"y"}}
{"kind":"record","type":"T","key":"a","rev":"3","fields":{"n":1}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"T","key":"b","rev":"7","fields":{"n":2,"m":"x"},"changed":["m"]}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"delete","type":"T","key":"d","rev":"4"}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"a","rev":"3","fields":{"n":1}}
{"kind":"change","op":"update","type":"T","key":"b","rev":"7","fields":{"n":2,"m":"x"},"changed":["m"]}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"delete","type":"T","key":"d","rev":"4"}
EOF
	run --separate-stderr recdelta-diff -a -l "$L" -r "$R"
	assert_success
	assert_line --index 0 '{"kind":"change","op":"same","type":"T","key":"a","rev":"3","fields":{"n":1}}'
	assert_equal "${#lines[@]}" 4
}

@test "update has the remote rev, the local fields and the sorted names of the differing fields" {
	rec T a '{"z":1,"keep":0,"a":1,"only_local":true,"m":1}' 1 > local.ndjson
	rec T a '{"m":2,"keep":0,"only_remote":null,"a":2,"z":2}' 9 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"9","fields":{"z":1,"keep":0,"a":1,"only_local":true,"m":1},"changed":["a","m","only_local","z"]}'
}

@test "order: remote pass-through lines first, then local order with its pass-through lines in place, then deletes in remote order" {
	cat > local.ndjson <<'EOF'
{"kind":"cursor", "source" : "local",  "value":"L1"}
{"kind":"record","type":"T","key":"c","fields":{"n":3}}
{"kind":"future-thing","x":[1, 2.50 ,"\u00e9"],  "y" :{ }}
{"kind":"record","type":"T","key":"a","fields":{"n":1}}
{"kind":"record","type":"T","key":"b","fields":{"n":2}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"T","key":"z","rev":"1","fields":{}}
{"kind":"cursor","source":"remote",   "value":"R1"}
{"kind":"record","type":"T","key":"b","rev":"2","fields":{"n":20}}
{"kind":"record","type":"T","key":"m","rev":"3","fields":{}}
{ "kind" : "future-thing" , "n":1E+2}
{"kind":"record","type":"T","key":"a","rev":"4","fields":{"n":1}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output - <<'EOF'
{"kind":"cursor","source":"remote",   "value":"R1"}
{ "kind" : "future-thing" , "n":1E+2}
{"kind":"cursor", "source" : "local",  "value":"L1"}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"future-thing","x":[1, 2.50 ,"\u00e9"],  "y" :{ }}
{"kind":"change","op":"update","type":"T","key":"b","rev":"2","fields":{"n":2},"changed":["n"]}
{"kind":"change","op":"delete","type":"T","key":"z","rev":"1"}
{"kind":"change","op":"delete","type":"T","key":"m","rev":"3"}
EOF
}

@test "unknown-kind lines pass through byte for byte and in order, from a file or standard input" {
	cat > local.ndjson <<'EOF'
{"kind":"future-thing" ,"a" : [ 1 ,2 ], "b":{"z":1,"a":2},"n":1.000}
{"kind":"record","type":"T","key":"a","fields":{"n":1}}
{"kind":"cursor","source":"x","name":"marker","value":"\ud83d\ude00"}
{   "value":"\u0041","kind":"cursor",	"tab":"\t", "n":-0.0e-0 }
EOF
	rec T a '{"n":1}' 1 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output "$(grep -v '"kind":"record"' local.ndjson)"
	assert_equal "${#lines[@]}" 3
	run --separate-stderr recdelta-diff --local - --remote "$R" < local.ndjson
	assert_success
	assert_output - <<'EOF'
{"kind":"future-thing" ,"a" : [ 1 ,2 ], "b":{"z":1,"a":2},"n":1.000}
{"kind":"cursor","source":"x","name":"marker","value":"\ud83d\ude00"}
{   "value":"\u0041","kind":"cursor",	"tab":"\t", "n":-0.0e-0 }
EOF
}

@test "a remote record without rev gives update, delete and same lines without rev" {
	rec T a '{"n":1}' > local.ndjson
	rec T b '{"n":1}' >> local.ndjson
	rec T a '{"n":2}' > remote.ndjson
	rec T b '{"n":1}' >> remote.ndjson
	rec T c '{"n":1}' >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"T","key":"a","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"same","type":"T","key":"b","fields":{"n":1}}
{"kind":"change","op":"delete","type":"T","key":"c"}
EOF
}

@test "a tombstone on either side counts as absent" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"gone_here","deleted":true}
{"kind":"record","type":"T","key":"gone_here_too","rev":"5","deleted":true,"fields":{"n":1}}
{"kind":"record","type":"T","key":"gone_there","fields":{"n":1}}
{"kind":"record","type":"T","key":"gone_both","deleted":true}
{"kind":"record","type":"T","key":"live","deleted":false,"fields":{"n":1}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"T","key":"gone_here","rev":"1","fields":{"n":1}}
{"kind":"record","type":"T","key":"gone_here_too","rev":"2","fields":{"n":1}}
{"kind":"record","type":"T","key":"gone_there","rev":"3","deleted":true}
{"kind":"record","type":"T","key":"gone_both","rev":"4","deleted":true}
{"kind":"record","type":"T","key":"live","rev":"6","fields":{"n":1}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"create","type":"T","key":"gone_there","fields":{"n":1}}
{"kind":"change","op":"same","type":"T","key":"live","rev":"6","fields":{"n":1}}
{"kind":"change","op":"delete","type":"T","key":"gone_here","rev":"1"}
{"kind":"change","op":"delete","type":"T","key":"gone_here_too","rev":"2"}
EOF
}

@test "a key or type with quotes, backslashes, controls and any Unicode survives into the change line" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T y\"pe","key":"a\"b\\c\u0001 \u00e9 \ud83d\ude00 /","fields":{}}
EOF
	echo '{"kind":"record","type":"T","key":"x","fields":{}}' > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"create","type":"T y\"pe","key":"a\"b\\c\u0001 é 😀 /","fields":{}}
{"kind":"change","op":"delete","type":"T","key":"x"}
EOF
}

# Rules

@test "--ignore and -i (repeatable): a difference only in ignored fields is no change, and they are not listed in changed" {
	rec T a '{"n":1,"seen":"monday"}' > local.ndjson
	rec T b '{"n":1,"p":1,"q":1,"only_local":1}' >> local.ndjson
	rec T a '{"n":1,"seen":"tuesday"}' 1 > remote.ndjson
	rec T b '{"n":2,"p":2,"q":2,"seen":"x"}' 2 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all --ignore seen -i p --ignore q -i only_local
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"a","rev":"1","fields":{"n":1,"seen":"tuesday"}}
{"kind":"change","op":"update","type":"T","key":"b","rev":"2","fields":{"n":1,"p":1,"q":1,"only_local":1},"changed":["n"]}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_line --index 0 '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":1,"seen":"monday"},"changed":["seen"]}'
}

@test "--tolerance: numbers within EPS are equal and beyond it differ, also inside the field" {
	rec T in '{"price":10.0}' > local.ndjson
	rec T edge '{"price":10.0}' >> local.ndjson
	rec T out '{"price":10.0}' >> local.ndjson
	rec T arr_in '{"v":[1.0,2.0,{"w":3.0}],"exact":[1.0]}' >> local.ndjson
	rec T arr_out '{"v":[1.0,2.0,{"w":3.0}]}' >> local.ndjson
	rec T nested_out '{"v":[1.0,2.0,{"w":3.0}]}' >> local.ndjson
	rec T int_in '{"v":{"$int":"100"}}' >> local.ndjson
	rec T in '{"price":10.04}' 1 > remote.ndjson
	rec T edge '{"price":9.95}' 2 >> remote.ndjson
	rec T out '{"price":10.06}' 3 >> remote.ndjson
	rec T arr_in '{"v":[1.04,1.96,{"w":3.01}],"exact":[1.01]}' 4 >> remote.ndjson
	rec T arr_out '{"v":[1.0,2.06,{"w":3.0}]}' 5 >> remote.ndjson
	rec T nested_out '{"v":[1.0,2.0,{"w":3.2}]}' 6 >> remote.ndjson
	rec T int_in '{"v":100.04}' 7 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all --tolerance price=0.05 --tolerance v=0.05
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"in","rev":"1","fields":{"price":10.04}}
{"kind":"change","op":"same","type":"T","key":"edge","rev":"2","fields":{"price":9.95}}
{"kind":"change","op":"update","type":"T","key":"out","rev":"3","fields":{"price":10.0},"changed":["price"]}
{"kind":"change","op":"update","type":"T","key":"arr_in","rev":"4","fields":{"v":[1.0,2.0,{"w":3.0}],"exact":[1.0]},"changed":["exact"]}
{"kind":"change","op":"update","type":"T","key":"arr_out","rev":"5","fields":{"v":[1.0,2.0,{"w":3.0}]},"changed":["v"]}
{"kind":"change","op":"update","type":"T","key":"nested_out","rev":"6","fields":{"v":[1.0,2.0,{"w":3.0}]},"changed":["v"]}
{"kind":"change","op":"same","type":"T","key":"int_in","rev":"7","fields":{"v":100.04}}
EOF
}

@test "--tolerance refuses x, x=-1 and x=abc as usage errors" {
	one_each '{"n":1}' '{"n":1}'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" --tolerance x
	assert_refused 'recdelta-diff: "x": tolerance must be FIELD=EPS'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" --tolerance x=-1
	assert_refused 'recdelta-diff: "x=-1": tolerance is not a non-negative number'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" --tolerance x=abc
	assert_refused 'recdelta-diff: "x=abc": tolerance is not a non-negative number'
}

@test "\$loc compares within 0.0001 by default, and --tolerance on the field overrides it" {
	rec T near '{"at":{"$loc":{"lat":1.00005,"lng":2.0}}}' > local.ndjson
	rec T far '{"at":{"$loc":{"lat":1.0002,"lng":2.0}}}' >> local.ndjson
	rec T near '{"at":{"$loc":{"lng":2,"lat":1.0}}}' 1 > remote.ndjson
	rec T far '{"at":{"$loc":{"lng":2,"lat":1.0}}}' 2 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"near","rev":"1","fields":{"at":{"$loc":{"lng":2,"lat":1.0}}}}
{"kind":"change","op":"update","type":"T","key":"far","rev":"2","fields":{"at":{"$loc":{"lat":1.0002,"lng":2.0}}},"changed":["at"]}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all --tolerance at=0.00001
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"T","key":"near","rev":"1","fields":{"at":{"$loc":{"lat":1.00005,"lng":2.0}}},"changed":["at"]}
{"kind":"change","op":"update","type":"T","key":"far","rev":"2","fields":{"at":{"$loc":{"lat":1.0002,"lng":2.0}}},"changed":["at"]}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all --tolerance at=0.001
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"near","rev":"1","fields":{"at":{"$loc":{"lng":2,"lat":1.0}}}}
{"kind":"change","op":"same","type":"T","key":"far","rev":"2","fields":{"at":{"$loc":{"lng":2,"lat":1.0}}}}
EOF
}

@test "\$ref compares by key alone and \$ts as an instant" {
	rec T ref_same '{"team":{"$ref":"t1"}}' > local.ndjson
	rec T ref_other '{"team":{"$ref":"t1"}}' >> local.ndjson
	rec T ts_same '{"t":{"$ts":"2026-01-10T16:02:53Z"},"u":{"$ts":"2026-01-10T16:02:53Z"}}' >> local.ndjson
	rec T ts_other '{"t":{"$ts":"2026-01-10T16:02:53Z"}}' >> local.ndjson
	rec T ref_same '{"team":{"action":"NONE","$ref":"t1"}}' 1 > remote.ndjson
	rec T ref_other '{"team":{"$ref":"t2","action":"NONE"}}' 2 >> remote.ndjson
	rec T ts_same '{"t":{"$ts":"2026-01-10T16:02:53.000Z"},"u":{"$ts":"2026-01-10T17:02:53+01:00"}}' 3 >> remote.ndjson
	rec T ts_other '{"t":{"$ts":"2026-01-10T16:02:54Z"}}' 4 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"ref_same","rev":"1","fields":{"team":{"action":"NONE","$ref":"t1"}}}
{"kind":"change","op":"update","type":"T","key":"ref_other","rev":"2","fields":{"team":{"$ref":"t1"}},"changed":["team"]}
{"kind":"change","op":"same","type":"T","key":"ts_same","rev":"3","fields":{"t":{"$ts":"2026-01-10T16:02:53.000Z"},"u":{"$ts":"2026-01-10T17:02:53+01:00"}}}
{"kind":"change","op":"update","type":"T","key":"ts_other","rev":"4","fields":{"t":{"$ts":"2026-01-10T16:02:53Z"}},"changed":["t"]}
EOF
}

@test "member order never matters, nested too, and numbers compare by value: 1 = 1.0 = 1e0 = 10e-1, 100 = 1e2, 1.0000000000000001 (the double 1) = 1" {
	rec T order '{"o":{"a":1,"b":{"c":[{"x":1,"y":{"p":1,"q":2}}],"d":"s"}},"z":0}' > local.ndjson
	rec T order_other '{"o":{"a":1,"b":{"c":[{"x":1,"y":2}]}}}' >> local.ndjson
	rec T num '{"p":1,"q":1,"r":1,"s":100,"t":0.5,"u":-0}' >> local.ndjson
	rec T num_other '{"p":1,"q":100}' >> local.ndjson
	rec T order '{"z":0,"o":{"b":{"d":"s","c":[{"y":{"q":2,"p":1},"x":1}]},"a":1}}' 1 > remote.ndjson
	rec T order_other '{"o":{"b":{"c":[{"y":2,"x":2}]},"a":1}}' 2 >> remote.ndjson
	rec T num '{"p":1.0,"q":1e0,"r":10e-1,"s":1e2,"t":5E-1,"u":0.0}' 3 >> remote.ndjson
	rec T num_other '{"p":1.0000000000000001,"q":1e3}' 4 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"order","rev":"1","fields":{"z":0,"o":{"b":{"d":"s","c":[{"y":{"q":2,"p":1},"x":1}]},"a":1}}}
{"kind":"change","op":"update","type":"T","key":"order_other","rev":"2","fields":{"o":{"a":1,"b":{"c":[{"x":1,"y":2}]}}},"changed":["o"]}
{"kind":"change","op":"same","type":"T","key":"num","rev":"3","fields":{"p":1.0,"q":1e0,"r":10e-1,"s":1e2,"t":5E-1,"u":0.0}}
{"kind":"change","op":"update","type":"T","key":"num_other","rev":"4","fields":{"p":1,"q":100},"changed":["q"]}
EOF
}

@test "a top-level null field equals an absent one, in the hash and in the comparison; a nested null is a value" {
	rec T null_local '{"a":1,"b":null}' > local.ndjson
	rec T null_remote '{"a":1}' >> local.ndjson
	rec T null_vs_value '{"a":1,"b":null}' >> local.ndjson
	rec T nested '{"o":{"x":null}}' >> local.ndjson
	rec T nested_arr '{"v":[null]}' >> local.ndjson
	rec T null_local '{"a":1}' 1 > remote.ndjson
	rec T null_remote '{"b":null,"a":1}' 2 >> remote.ndjson
	rec T null_vs_value '{"a":1,"b":2}' 3 >> remote.ndjson
	rec T nested '{"o":{}}' 4 >> remote.ndjson
	rec T nested_arr '{"v":[]}' 5 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"null_local","rev":"1","fields":{"a":1}}
{"kind":"change","op":"same","type":"T","key":"null_remote","rev":"2","fields":{"b":null,"a":1}}
{"kind":"change","op":"update","type":"T","key":"null_vs_value","rev":"3","fields":{"a":1,"b":null},"changed":["b"]}
{"kind":"change","op":"update","type":"T","key":"nested","rev":"4","fields":{"o":{"x":null}},"changed":["o"]}
{"kind":"change","op":"update","type":"T","key":"nested_arr","rev":"5","fields":{"v":[null]},"changed":["v"]}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_output 'Ts: 2 unchanged, 0 new, 3 updated, 0 deleted'

	# The comparison, not only the hash: the numbers differ within a
	# tolerance, so the records are compared field by field.
	rec T a '{"p":1.0,"b":null,"c":null}' > local.ndjson
	rec T b '{"p":1.0}' >> local.ndjson
	rec T c '{"p":1.0,"b":null}' >> local.ndjson
	rec T a '{"p":1.01}' 1 > remote.ndjson
	rec T b '{"p":1.01,"b":null}' 2 >> remote.ndjson
	rec T c '{"p":1.01,"b":false}' 3 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all --tolerance p=0.1
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"a","rev":"1","fields":{"p":1.01}}
{"kind":"change","op":"same","type":"T","key":"b","rev":"2","fields":{"p":1.01,"b":null}}
{"kind":"change","op":"update","type":"T","key":"c","rev":"3","fields":{"p":1.0,"b":null},"changed":["b"]}
EOF
	# Nothing differs: --exit-code says so.
	rec T a '{"a":1,"b":null}' > local.ndjson
	rec T a '{"a":1}' 1 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --exit-code
	assert_success
	assert_output ''
}

@test "integers are exact: \$int equals the plain number, 2^53+1 differs from 2^53, 20 digits survive byte for byte" {
	rec T tagged '{"n":{"$int":"9007199254740993"}}' > local.ndjson
	rec T plain '{"n":9007199254740993}' >> local.ndjson
	rec T near '{"n":9007199254740993}' >> local.ndjson
	rec T big '{"big":12345678901234567890,"neg":-98765432109876543210,"f":1.50,"e":1E+2}' >> local.ndjson
	rec T big2 '{"big":12345678901234567890,"x":1}' >> local.ndjson
	rec T tagged '{"n":9007199254740993}' 1 > remote.ndjson
	rec T plain '{"n":{"$int":"9007199254740993"}}' 2 >> remote.ndjson
	rec T near '{"n":9007199254740992}' 3 >> remote.ndjson
	rec T big2 '{"big":12345678901234567890,"x":2}' 4 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"T","key":"tagged","rev":"1","fields":{"n":9007199254740993}}
{"kind":"change","op":"same","type":"T","key":"plain","rev":"2","fields":{"n":{"$int":"9007199254740993"}}}
{"kind":"change","op":"update","type":"T","key":"near","rev":"3","fields":{"n":9007199254740993},"changed":["n"]}
{"kind":"change","op":"create","type":"T","key":"big","fields":{"big":12345678901234567890,"neg":-98765432109876543210,"f":1.50,"e":1E+2}}
{"kind":"change","op":"update","type":"T","key":"big2","rev":"4","fields":{"big":12345678901234567890,"x":1},"changed":["x"]}
EOF
}

@test "rev and mtime are never compared" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"1","mtime":"2020-01-01T00:00:00Z","fields":{"n":1}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"99","mtime":"2026-01-10T16:02:53Z","fields":{"n":1}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output ''
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output '{"kind":"change","op":"same","type":"T","key":"a","rev":"99","fields":{"n":1}}'
}

@test "--rules: per-type ignore and tolerance, * for every type, comments; a Stadium rule does not apply to Team" {
	cat > rules <<'EOF'
# comparison rules

Stadium ignore note
Stadium tolerance capacity=0.5   # half a seat
* ignore updated
EOF
	rec Stadium s1 '{"name":"A","capacity":100.0,"note":"x","updated":"1"}' > local.ndjson
	rec Stadium s2 '{"name":"B","capacity":100.0,"note":"x","updated":"1"}' >> local.ndjson
	rec Team t1 '{"capacity":100.0,"note":"x","updated":"1"}' >> local.ndjson
	rec Stadium s1 '{"name":"A","capacity":100.4,"note":"y","updated":"2"}' 1 > remote.ndjson
	rec Stadium s2 '{"name":"B","capacity":101,"note":"y","updated":"2"}' 2 >> remote.ndjson
	rec Team t1 '{"capacity":100.4,"note":"y","updated":"2"}' 3 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --rules rules --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"Stadium","key":"s1","rev":"1","fields":{"name":"A","capacity":100.4,"note":"y","updated":"2"}}
{"kind":"change","op":"update","type":"Stadium","key":"s2","rev":"2","fields":{"name":"B","capacity":100.0,"note":"x","updated":"1"},"changed":["capacity"]}
{"kind":"change","op":"update","type":"Team","key":"t1","rev":"3","fields":{"capacity":100.0,"note":"x","updated":"1"},"changed":["capacity","note"]}
EOF
}

@test "--rules: a bad line is bad input naming the file and line; a missing file is a runtime failure" {
	one_each '{"n":1}' '{"n":2}'
	printf '# rules\n\nStadium ignore\n' > rules
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R" --rules rules
	assert_refused 'recdelta-diff: rules:3: expected "TYPE ignore FIELD" or "TYPE tolerance FIELD=EPS"'
	printf 'Stadium ignore note\nStadium frobnicate note\n' > rules
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R" --rules rules
	assert_refused 'recdelta-diff: rules:2: unknown rule "frobnicate"'
	printf 'Stadium tolerance capacity=abc\n' > rules
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R" --rules rules
	assert_refused 'recdelta-diff: rules:1: "capacity=abc": tolerance is not a non-negative number'
	run -4 --separate-stderr recdelta-diff --local "$L" --remote "$R" --rules no-such-rules
	assert_refused 'recdelta-diff: no-such-rules: No such file or directory'
}

# Summary and exit codes

# summary_inputs: 32 same, 1 updated and 2 new Stadiums; 1 new City;
# 1 deleted Team.
summary_inputs() {
	local i

	: > local.ndjson
	: > remote.ndjson
	for i in $(seq 1 32); do
		rec Stadium "s$i" "{\"cap\":$i}" >> local.ndjson
		rec Stadium "s$i" "{\"cap\":$i}" "$i" >> remote.ndjson
	done
	rec Stadium s33 '{"cap":1}' >> local.ndjson
	rec Stadium s33 '{"cap":2}' 33 >> remote.ndjson
	rec Stadium s34 '{"cap":1}' >> local.ndjson
	rec Team t1 '{}' 1 >> remote.ndjson
	rec City c1 '{}' >> local.ndjson
	rec Stadium s35 '{"cap":1}' >> local.ndjson
}

@test "--summary writes one line per type, types sorted, and no change lines; --summary=json the counts" {
	summary_inputs
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
Cities: 0 unchanged, 1 new, 0 updated, 0 deleted
Stadiums: 32 unchanged, 2 new, 1 updated, 0 deleted
Teams: 0 unchanged, 0 new, 0 updated, 1 deleted
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary=json
	assert_success
	assert_output '{"kind":"summary","stage":"diff","counts":{"City":{"same":0,"create":1,"update":0,"delete":0},"Stadium":{"same":32,"create":2,"update":1,"delete":0},"Team":{"same":0,"create":0,"update":0,"delete":1}}}'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary=bogus
	assert_refused 'recdelta-diff: --summary: "bogus": expected text or json'
}

@test "--summary when no record has a given type: no report lines, and json counts that are empty" {
	rec A a '{"n":1}' > local.ndjson
	run -0 --separate-stderr recdelta-diff --local "$L" --remote dir:nonexistent --allow-missing-remote -t Nope --summary
	assert_equal "$stderr" ''
	assert_output ''
	run -0 --separate-stderr recdelta-diff --local "$L" --remote dir:nonexistent --allow-missing-remote -t Nope --summary=json
	assert_equal "$stderr" ''
	assert_output '{"kind":"summary","stage":"diff","counts":{}}'
}

@test "--summary names types in the plural: Matches, Cities, Keys, Boxes, Buses, Classes; games stays games" {
	: > local.ndjson
	for t in Match City Key Box Bus Stadium Class games; do
		rec "$t" k '{}' >> local.ndjson
	done
	cp local.ndjson remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_output - <<'EOF'
Boxes: 1 unchanged, 0 new, 0 updated, 0 deleted
Buses: 1 unchanged, 0 new, 0 updated, 0 deleted
Cities: 1 unchanged, 0 new, 0 updated, 0 deleted
Classes: 1 unchanged, 0 new, 0 updated, 0 deleted
Keys: 1 unchanged, 0 new, 0 updated, 0 deleted
Matches: 1 unchanged, 0 new, 0 updated, 0 deleted
Stadiums: 1 unchanged, 0 new, 0 updated, 0 deleted
games: 1 unchanged, 0 new, 0 updated, 0 deleted
EOF
}

@test "-o FILE writes the change lines to FILE: with --summary the report goes to stdout, without it nothing does (-o - is a file named -); -o onto an input is refused" {
	cat > local.ndjson <<'EOF'
{"kind":"cursor","value":"L"}
{"kind":"record","type":"T","key":"a","fields":{"n":1}}
{"kind":"record","type":"T","key":"b","fields":{"n":2}}
EOF
	rec T a '{"n":0}' 5 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary -o changes.ndjson
	assert_success
	assert_output 'Ts: 0 unchanged, 1 new, 1 updated, 0 deleted'
	assert_equal "$(cat changes.ndjson)" '{"kind":"cursor","value":"L"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"5","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":2}}'
	rm changes.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --output -
	assert_success
	assert_output ''
	assert_equal "$(cat ./-)" '{"kind":"cursor","value":"L"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"5","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":2}}'
	cp remote.ndjson remote.before
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" -o remote.ndjson
	assert_refused 'recdelta-diff: -o remote.ndjson: would overwrite an input'
	cmp remote.ndjson remote.before
}

@test "--exit-code exits 1 when anything differs and 0 when nothing does; without it, 0 even when things differ" {
	one_each '{"n":1}' '{"n":2}'
	run -1 --separate-stderr recdelta-diff --local "$L" --remote "$R" --exit-code
	assert_equal "$stderr" ''
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"9","fields":{"n":1},"changed":["n"]}'
	run -1 --separate-stderr recdelta-diff --local "$L" --remote "$R" --exit-code --summary
	assert_output 'Ts: 0 unchanged, 0 new, 1 updated, 0 deleted'
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"9","fields":{"n":1},"changed":["n"]}'

	printf '%s\n' '{"kind":"cursor","value":"x"}' > local.ndjson
	rec T a '{"n":1.0}' >> local.ndjson
	rec T a '{"n":1}' 3 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --exit-code --all
	assert_success
	assert_output - <<'EOF'
{"kind":"cursor","value":"x"}
{"kind":"change","op":"same","type":"T","key":"a","rev":"3","fields":{"n":1}}
EOF
}

# Inputs

@test "either side may be standard input" {
	rec T a '{"n":1}' > local.ndjson
	rec T c '{"n":3}' >> local.ndjson
	rec T a '{"n":2}' 4 > remote.ndjson
	printf '%s\n' '{"kind":"cursor","value":"r"}' >> remote.ndjson
	rec T b '{"n":2}' 5 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote - < remote.ndjson
	assert_success
	assert_output - <<'EOF'
{"kind":"cursor","value":"r"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"4","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"delete","type":"T","key":"b","rev":"5"}
EOF
	run --separate-stderr recdelta-diff --local - --remote "$R" < local.ndjson
	assert_success
	assert_output - <<'EOF'
{"kind":"cursor","value":"r"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"4","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"delete","type":"T","key":"b","rev":"5"}
EOF
}

@test "usage errors: both sides standard input, a missing --local or --remote" {
	one_each '{"n":1}' '{"n":1}'
	run -2 --separate-stderr recdelta-diff --local - --remote - < local.ndjson
	assert_refused 'recdelta-diff: --local and --remote cannot both be standard input'
	run -2 --separate-stderr recdelta-diff --local ndjson:- --remote - < local.ndjson
	assert_refused 'recdelta-diff: --local and --remote cannot both be standard input'
	run -2 --separate-stderr recdelta-diff --remote "$R"
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-diff: both --local and --remote are required'
	assert_equal "${stderr_lines[1]}" "$USAGE1"
	run -2 --separate-stderr recdelta-diff --local "$L"
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-diff: both --local and --remote are required'
	assert_equal "${stderr_lines[1]}" "$USAGE1"
}

@test "usage errors: an unknown option or an extra argument, with the usage on stderr; -h prints it on stdout" {
	one_each '{"n":1}' '{"n":1}'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" --bogus
	assert_output ''
	assert_equal "${stderr_lines[0]}" "recdelta-diff: unrecognized option '--bogus'"
	assert_equal "${stderr_lines[1]}" "$USAGE1"
	run -2 --separate-stderr recdelta-diff --local "$L" --remote "$R" extra
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-diff: unexpected argument "extra"'
	assert_equal "${stderr_lines[1]}" "$USAGE1"
	run --separate-stderr recdelta-diff -h
	assert_success
	assert_equal "$stderr" ''
	assert_line --index 0 "$USAGE1"
}

@test "-t and --type keep only records of the given types, on both sides" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"A","key":"a","fields":{"n":1}}
{"kind":"record","type":"B","key":"b","fields":{"n":1}}
{"kind":"record","type":"C","key":"c1","fields":{"n":1}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"A","key":"a","fields":{"n":2}}
{"kind":"record","type":"C","key":"c2","fields":{"n":1}}
{"kind":"record","type":"B","key":"b","fields":{"n":2}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" -t A
	assert_success
	assert_output '{"kind":"change","op":"update","type":"A","key":"a","fields":{"n":1},"changed":["n"]}'
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --type C --type B
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"B","key":"b","fields":{"n":1},"changed":["n"]}
{"kind":"change","op":"create","type":"C","key":"c1","fields":{"n":1}}
{"kind":"change","op":"delete","type":"C","key":"c2"}
EOF
}

@test "two sides with records but no type in common: one warning line, the output as usual" {
	rec games a '{"n":1}' > local.ndjson
	rec game a '{"n":1}' 1 > remote.ndjson
	run -0 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_equal "$stderr" 'recdelta-diff: warning: the two sides share no type ("games" vs "game")'
	assert_output - <<'EOF'
{"kind":"change","op":"create","type":"games","key":"a","fields":{"n":1}}
{"kind":"change","op":"delete","type":"game","key":"a","rev":"1"}
EOF
	# Several types a side, sorted by their bytes; the summary as usual.
	{ rec B b '{}'; rec A a '{}'; } >> local.ndjson
	rec C c '{}' >> remote.ndjson
	run -0 --separate-stderr recdelta-diff --summary --local "$L" --remote "$R"
	assert_equal "$stderr" 'recdelta-diff: warning: the two sides share no type ("A", "B", "games" vs "C", "game")'
	assert_equal "${#lines[@]}" 5
	# One type in common, even with no key in common: no warning.
	rec C other '{}' >> local.ndjson
	run -0 --separate-stderr recdelta-diff --summary --local "$L" --remote "$R"
	assert_equal "$stderr" ''
	# Nothing to share on a side without records (after -t): no warning.
	run -0 --separate-stderr recdelta-diff --local "$L" --remote "$R" -t games
	assert_equal "$stderr" ''
	assert_output '{"kind":"change","op":"create","type":"games","key":"a","fields":{"n":1}}'
	: > remote.ndjson
	run -0 --separate-stderr recdelta-diff --allow-empty --summary --local "$L" --remote "$R"
	assert_equal "$stderr" ''
	# An sqlite: table read under its own name against typed records: the
	# warning names both; type= mends it.
	rec Game a '{"n":1}' > local.ndjson
	sqlite3 g.db "CREATE TABLE games(id TEXT PRIMARY KEY, n INTEGER); INSERT INTO games VALUES('a', 1);"
	run -0 --separate-stderr recdelta-diff --summary --local "$L" --remote 'sqlite:g.db?table=games&key=id'
	assert_equal "$stderr" 'recdelta-diff: warning: the two sides share no type ("Game" vs "games")'
	run -0 --separate-stderr recdelta-diff --summary --local "$L" --remote 'sqlite:g.db?table=games&key=id&type=Game'
	assert_equal "$stderr" ''
	assert_output 'Games: 1 unchanged, 0 new, 0 updated, 0 deleted'
}

@test "-t selects on an sqlite: side as on any other: the table's type, or nothing" {
	rec Game a '{"n":1}' > local.ndjson
	rec Team t '{"n":1}' >> local.ndjson
	sqlite3 g.db "CREATE TABLE games(id TEXT PRIMARY KEY, n INTEGER); INSERT INTO games VALUES('a', 2);"
	S='sqlite:g.db?table=games&key=id&type=Game'
	run -0 --separate-stderr recdelta-diff --local "$L" --remote "$S" -t Game
	assert_equal "$stderr" ''
	assert_output '{"kind":"change","op":"update","type":"Game","key":"a","rev":"0","fields":{"n":1},"changed":["n"]}'
	# -t Team: the table's records are not of that type, so none are read.
	run -0 --separate-stderr recdelta-diff --local "$L" --remote "$S" -t Team
	assert_equal "$stderr" "recdelta-diff: warning: $S: its records are of type \"Game\", which no -t names: none read (a table's type is named by type=)"
	assert_output '{"kind":"change","op":"create","type":"Team","key":"t","fields":{"n":1}}'
	run -0 --separate-stderr recdelta-diff --summary --local "$L" --remote "$S" -t Team -t Game
	assert_output - <<'EOF'
Games: 0 unchanged, 0 new, 1 updated, 0 deleted
Teams: 0 unchanged, 1 new, 0 updated, 0 deleted
EOF
}

@test "sqlite: is an input: the type is the table name or &type=, a JSON column holds JSON, integers are exact" {
	sqlite3 db.sqlite <<'EOF'
CREATE TABLE Stadium (id TEXT PRIMARY KEY, rev TEXT, name TEXT, capacity INTEGER, location JSON, ratio REAL);
INSERT INTO Stadium VALUES ('ari', '7', 'State Farm Stadium', 63400, '{"$loc":{"lat":33.5276,"lng":-112.2626}}', 0.5);
INSERT INTO Stadium VALUES ('atl', '3', 'Mercedes-Benz Stadium', 71000, '{"$loc":{"lat":33.7554,"lng":-84.4008}}', 0.25);
INSERT INTO Stadium VALUES ('old', '2', 'Gone', 1, NULL, NULL);
CREATE TABLE t (id TEXT, n INTEGER, tags JSON);
INSERT INTO t VALUES ('a', 9007199254740993, '[1,{"$ref":"x"}]');
INSERT INTO t VALUES ('b', 2, '{"z":1,"a":2}');
EOF
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"Stadium","key":"ari","fields":{"ratio":0.50,"location":{"$loc":{"lng":-112.2626,"lat":33.5276}},"capacity":63400,"name":"State Farm Stadium"}}
{"kind":"record","type":"Stadium","key":"atl","fields":{"name":"Mercedes-Benz Stadium","capacity":75000,"location":{"$loc":{"lat":33.7554,"lng":-84.4008}},"ratio":0.25}}
{"kind":"record","type":"Stadium","key":"new","fields":{"name":"New"}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote 'sqlite:db.sqlite?table=Stadium&key=id' --all
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"Stadium","key":"ari","rev":"7","fields":{"name":"State Farm Stadium","capacity":63400,"location":{"$loc":{"lat":33.5276,"lng":-112.2626}},"ratio":0.5}}
{"kind":"change","op":"update","type":"Stadium","key":"atl","rev":"3","fields":{"name":"Mercedes-Benz Stadium","capacity":75000,"location":{"$loc":{"lat":33.7554,"lng":-84.4008}},"ratio":0.25},"changed":["capacity"]}
{"kind":"change","op":"create","type":"Stadium","key":"new","fields":{"name":"New"}}
{"kind":"change","op":"delete","type":"Stadium","key":"old","rev":"2"}
EOF

	cat > remote.ndjson <<'EOF'
{"kind":"record","type":"Stadium","key":"a","rev":"1","fields":{"tags":[1.0,{"$ref":"x"}],"n":{"$int":"9007199254740993"}}}
{"kind":"record","type":"Stadium","key":"b","rev":"2","fields":{"n":3,"tags":{"a":2,"z":1}}}
{"kind":"record","type":"t","key":"a","rev":"3","fields":{"n":9007199254740993,"tags":[1,{"$ref":"x"}]}}
EOF
	run --separate-stderr recdelta-diff --local 'sqlite:db.sqlite?table=t&key=id&type=Stadium' --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"Stadium","key":"a","rev":"1","fields":{"tags":[1.0,{"$ref":"x"}],"n":{"$int":"9007199254740993"}}}
{"kind":"change","op":"update","type":"Stadium","key":"b","rev":"2","fields":{"n":2,"tags":{"z":1,"a":2}},"changed":["n"]}
{"kind":"change","op":"delete","type":"t","key":"a","rev":"3"}
EOF
}

@test "dir: is an input: its versions are revs, its tombstones are absent, and it is left untouched" {
	mkdir -p store/Stadium
	printf '%s\n' '{"fields":{"capacity":63400,"name":"A"},"key":"ari","type":"Stadium"}' > 'store/Stadium/ari~3.json'
	printf '%s\n' '{"fields":{"capacity":100,"name":"B"},"key":"atl","type":"Stadium"}' > 'store/Stadium/atl~1.json'
	printf '%s\n' '{"fields":{"name":"C"},"key":"a/b","type":"Stadium"}' > 'store/Stadium/a%2Fb~2.json'
	printf '{"entities":{"Stadium":{"a/b":{"sha256":"%s","v":2},"ari":{"sha256":"%s","v":3},"atl":{"sha256":"%s","v":1},"gone":{"deleted":true,"v":5}}},"format":"recdelta-store/1","generation":4}\n' \
	    "$(sha256 'store/Stadium/a%2Fb~2.json')" "$(sha256 'store/Stadium/ari~3.json')" "$(sha256 'store/Stadium/atl~1.json')" > store/meta.json
	before=$(tree_digest store)
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"Stadium","key":"ari","fields":{"name":"A","capacity":63400}}
{"kind":"record","type":"Stadium","key":"atl","fields":{"name":"B","capacity":200}}
{"kind":"record","type":"Stadium","key":"gone","fields":{"name":"G"}}
EOF
	run --separate-stderr recdelta-diff --local "$L" --remote dir:store --all
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"change","op":"same","type":"Stadium","key":"ari","rev":"3","fields":{"capacity":63400,"name":"A"}}
{"kind":"change","op":"update","type":"Stadium","key":"atl","rev":"1","fields":{"name":"B","capacity":200},"changed":["capacity"]}
{"kind":"change","op":"create","type":"Stadium","key":"gone","fields":{"name":"G"}}
{"kind":"change","op":"delete","type":"Stadium","key":"a/b","rev":"2"}
EOF
	assert_equal "$(tree_digest store)" "$before"
}

@test "round trip: 2000 records, shuffled lines and members, leave nothing to diff" {
	# Remote: the same records in another line order (7919 is prime to
	# 2000, so i*7919 mod 2000 visits every record once), members in
	# another order, numbers spelled differently, and other revs.
	awk 'BEGIN { for (i = 1; i <= 2000; i++)
		printf "{\"kind\":\"record\",\"type\":\"Item\",\"key\":\"k%04d\",\"rev\":\"%d\",\"fields\":{\"n\":%d,\"s\":\"item %d\",\"o\":{\"a\":%d,\"b\":[%d,\"x\",{\"$ref\":\"r%d\"}]}}}\n", i, i, i, i, i, i, i }' > local.ndjson
	awk 'BEGIN { for (j = 0; j < 2000; j++) { i = (j * 7919) % 2000 + 1
		printf "{\"fields\":{\"o\":{\"b\":[%d.0,\"x\",{\"$ref\":\"r%d\"}],\"a\":%de0},\"s\":\"item %d\",\"n\":%d},\"rev\":\"r%d\",\"key\":\"k%04d\",\"type\":\"Item\",\"kind\":\"record\"}\n", i, i, i, i, i, i, i } }' > remote.ndjson
	awk 'BEGIN { for (i = 1; i <= 2000; i++)
		printf "{\"kind\":\"change\",\"op\":\"same\",\"type\":\"Item\",\"key\":\"k%04d\",\"rev\":\"r%d\",\"fields\":{\"o\":{\"b\":[%d.0,\"x\",{\"$ref\":\"r%d\"}],\"a\":%de0},\"s\":\"item %d\",\"n\":%d}}\n", i, i, i, i, i, i, i }' > expected
	# The shuffle really is a permutation of the keys, and not the identity.
	grep -o '"key":"k[0-9]*"' local.ndjson > local.keys
	grep -o '"key":"k[0-9]*"' remote.ndjson > remote.keys
	assert_not_equal "$(cat remote.keys)" "$(cat local.keys)"
	sort -u remote.keys | cmp - local.keys

	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --exit-code
	assert_success
	assert_output ''
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_equal "${#lines[@]}" 2000
	assert_equal "${lines[0]}" "$(head -n 1 expected)"
	assert_output "$(cat expected)"
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_output 'Items: 2000 unchanged, 0 new, 0 updated, 0 deleted'
}

@test "store names: an unknown scheme, couchdb: and webdav: words that are no database or URL, and a bare path that does not exist are usage errors" {
	rec T a '{}' > local.ndjson
	run -2 --separate-stderr recdelta-diff --local "$L" --remote foo:bar
	assert_refused 'recdelta-diff: "foo:bar": unknown store scheme "foo"'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote couchdb:x
	assert_refused 'recdelta-diff: "couchdb:x": expected couchdb:http(s)://HOST[:PORT]/DB, DB a database name (a-z, 0-9 and _$()+-, starting with a letter)'
	run -2 --separate-stderr recdelta-diff --local "$L" --remote webdav:x
	assert_refused 'recdelta-diff: webdav: not a URL: Bad scheme'
	run -2 --separate-stderr recdelta-diff --local missing.ndjson --remote "$L"
	assert_refused 'recdelta-diff: "missing.ndjson": not a store: no such file or folder (a bare word is an existing file or folder; a missing path is not a store; expected ndjson:PATH, -, json:PATH, sqlite:DB?table=T&key=COL, dir:PATH, cloudkit:CONTAINER/ENV/DB, couchdb:URL/DB or webdav:URL)'
}

@test "a nonexistent ndjson file on either side is a runtime failure" {
	rec T a '{}' > local.ndjson
	run -4 --separate-stderr recdelta-diff --local "$L" --remote ndjson:no-such.ndjson
	assert_refused 'recdelta-diff: no-such.ndjson: No such file or directory'
	run -4 --separate-stderr recdelta-diff --local ndjson:no-such.ndjson --remote "$L"
	assert_refused 'recdelta-diff: no-such.ndjson: No such file or directory'
}

# Bad input: exit 3, the file and line named, nothing on stdout

@test "bad input: malformed JSON (truncated object, trailing garbage, bad literal, bare word)" {
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"n":1}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: unterminated object'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"n":1}} x'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: trailing characters after JSON value'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"n":tru}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: invalid literal'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"n":NaN}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: unexpected character'
}

@test "bad input: not an object, no type, no key, empty key, non-string key, fields not an object, no kind; blank lines counted" {
	bad_local '["kind","record"]'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: line is not a JSON object'
	bad_local '{"kind":"record","key":"a","fields":{}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: missing "type"'
	bad_local '{"kind":"record","type":"T","fields":{}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: missing "key"'
	bad_local '{"kind":"record","type":"T","key":"","fields":{}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: empty "key"'
	bad_local '{"kind":"record","type":"T","key":7,"fields":{}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: "key" is not a string'
	bad_local '{"kind":"record","type":"T","key":"a","fields":["n",1]}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: "fields" is not an object'
	bad_local '{"type":"T","key":"a","fields":{}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: missing "kind"'
	# Blank lines are skipped but counted.
	printf '\n  \n%s\n' '{"kind":"record","type":"T","fields":{}}' > local.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:3: missing "key"'
}

@test "bad input: the same (type, key) twice names both lines, in a file or on standard input" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"T","key":"j","fields":{}}
{"kind":"record","type":"T","key":"k","fields":{"n":1}}
{"kind":"record","type":"U","key":"k","fields":{}}
{"kind":"cursor","value":"k"}
{"kind":"record","type":"T","key":"k","fields":{"n":2}}
EOF
	rec T j '{}' 1 > remote.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:5: duplicate record (type "T", key "k"), first at line 2'
	run -3 --separate-stderr recdelta-diff --local "$R" --remote - < local.ndjson
	assert_refused 'recdelta-diff: <stdin>:5: duplicate record (type "T", key "k"), first at line 2'
}

@test "bad input: invalid UTF-8, a lone surrogate, duplicate member names" {
	rec T good '{"n":1}' > local.ndjson
	printf '{"kind":"record","type":"T","key":"a","fields":{"s":"caf\xe9"}}\n' >> local.ndjson
	rec T good '{"n":1}' 1 > remote.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: invalid UTF-8'
	printf '{"kind":"record","type":"T","key":"a","fields":{"s":"\xff"}}\n' > local.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:1: invalid UTF-8'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"s":"\ud800"}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: lone surrogate in string'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"o":{"n":1,"n":2}}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: duplicate member "n"'
}

@test "bad input: an empty file, which --allow-empty accepts (then every remote record is a delete)" {
	: > local.ndjson
	rec T a '{}' 1 > remote.ndjson
	rec T b '{}' 2 >> remote.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson: empty input (--allow-empty accepts it)'
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --allow-empty
	assert_success
	assert_output - <<'EOF'
{"kind":"change","op":"delete","type":"T","key":"a","rev":"1"}
{"kind":"change","op":"delete","type":"T","key":"b","rev":"2"}
EOF
}

@test "bad input: a line over the limit (5 MB over the default 4 MiB, 2000 bytes over RECDELTA_MAX_LINE=1000)" {
	big_record 5000000 local.ndjson
	rec T a '{}' 1 > remote.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:1: line too long (more than 4194304 bytes)'
	big_record 2000 local.ndjson
	RECDELTA_MAX_LINE=1000 run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:1: line too long (more than 1000 bytes)'
	big_record 900 local.ndjson
	RECDELTA_MAX_LINE=1000 run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_output 'Ts: 0 unchanged, 1 new, 0 updated, 1 deleted'
}

@test "a 3 MB record line is accepted and written back whole" {
	big_record 3000000 local.ndjson
	{ printf '{"kind":"change","op":"create","type":"T","key":"big","fields":{"s":"'; cat xs; printf '"}}\n'; } > expected
	echo '{"kind":"change","op":"delete","type":"T","key":"a","rev":"1"}' >> expected
	rec T a '{}' 1 > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" -o changes.ndjson
	assert_success
	assert_output ''
	cmp changes.ndjson expected
}

@test "bad input: malformed tagged values \$loc, \$int, \$ts, \$bytes" {
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"at":{"$loc":"x"}}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: field "at": bad $loc value: needs numbers "lat" and "lng"'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"n":{"$int":"12a"}}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: field "n": bad $int value: not a string of decimal digits'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"t":{"$ts":"yesterday"}}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: field "t": bad $ts value: not an ISO-8601 date and time'
	bad_local '{"kind":"record","type":"T","key":"a","fields":{"b":{"$bytes":"%%%"}}}'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:2: field "b": bad $bytes value: not padded standard base64'
}

@test "bad input on the remote side is reported the same way, and nothing is written, not even to -o" {
	cat > local.ndjson <<'EOF'
{"kind":"cursor","value":"L"}
{"kind":"record","type":"T","key":"new","fields":{"n":1}}
EOF
	cat > remote.ndjson <<'EOF'
{"kind":"cursor","value":"R"}
{"kind":"record","type":"T","key":"old","rev":"1","fields":{"n":1}}
{"kind":"record","type":"T","key":"bad","rev":"2","fields":{"n":}}
EOF
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: remote.ndjson:3: unexpected character'
	run -3 --separate-stderr recdelta-diff --local "$L" --remote - --all < remote.ndjson
	assert_refused 'recdelta-diff: <stdin>:3: unexpected character'
	echo 'previous output' > changes.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R" -o changes.ndjson --summary
	assert_refused 'recdelta-diff: remote.ndjson:3: unexpected character'
	assert_equal "$(cat changes.ndjson)" 'previous output'
	rec T old '{"at":{"$ts":"2026-02-30T00:00:00Z"}}' 1 > remote.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: remote.ndjson:1: field "at": bad $ts value: not an ISO-8601 date and time'
	# Both bad: the first error of each input, the local one first.
	echo '{"kind":"record","type":"T","key":"x","fields":{"n":1}' >> local.ndjson
	run -3 --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_refused 'recdelta-diff: local.ndjson:3: unterminated object
recdelta-diff: remote.ndjson:1: field "at": bad $ts value: not an ISO-8601 date and time'
}
