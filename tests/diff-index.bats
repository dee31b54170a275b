#!/usr/bin/env bats
# recdelta-diff's index: the content digest (XXH3-128 of the canonical
# fields) decides "same" without a comparison, so two records whose digests
# are equal must be equal under every rule, and any byte the canonical form
# keeps must make the digests differ; a walk that tries the entry after its
# last match matches each key to its own; an index sized from its first
# records still grows when the rest of the file holds more.

load helpers/common
bats_require_minimum_version 1.5.0

L=ndjson:local.ndjson
R=ndjson:remote.ndjson

@test "equal digests never hide a difference: one byte the canonical form keeps is an update; the same canonical form is same; -i and --tolerance still decide where digests differ" {
	# Each pair is alike but for one thing; the names say what.
	rec T ctl '{"s":"a\u0000b"}' > local.ndjson
	rec T ctl '{"s":"a\u0001b"}' 1 > remote.ndjson
	rec T quote '{"s":"a\"b"}' >> local.ndjson
	rec T quote '{"s":"a\\b"}' 2 >> remote.ndjson
	rec T late_byte '{"s":"xxxxxxxxxxxxxxxxxxxxxxxxAxxxxxxx"}' >> local.ndjson
	rec T late_byte '{"s":"xxxxxxxxxxxxxxxxxxxxxxxxBxxxxxxx"}' 3 >> remote.ndjson
	rec T str_num '{"n":"1"}' >> local.ndjson
	rec T str_num '{"n":1}' 4 >> remote.ndjson
	rec T big_int '{"n":{"$int":"9007199254740993"}}' >> local.ndjson
	rec T big_int '{"n":9007199254740992}' 5 >> remote.ndjson
	rec T nested '{"o":{"a":1,"b":2}}' >> local.ndjson
	rec T nested '{"o":{"b":3,"a":1}}' 6 >> remote.ndjson
	rec T arr_order '{"v":[1,2]}' >> local.ndjson
	rec T arr_order '{"v":[2,1]}' 7 >> remote.ndjson
	rec T boundary '{"a":"x","b":"y"}' >> local.ndjson
	rec T boundary '{"a":"x\",\"b\":\"y"}' 8 >> remote.ndjson
	rec T unicode '{"s":"\u00e9"}' >> local.ndjson
	rec T unicode '{"s":"e\u0301"}' 9 >> remote.ndjson
	rec T ref '{"r":{"$ref":"team_1"}}' >> local.ndjson
	rec T ref '{"r":{"$ref":"team_2"}}' 10 >> remote.ndjson
	rec T escapes_alike '{"s":"\u0041\u00e9\/","b":1,"a":[1.0]}' >> local.ndjson
	rec T escapes_alike '{"a":[1],"s":"Aé/","b":1}' 11 >> remote.ndjson
	rec T ignored '{"a":1,"ign":"x"}' >> local.ndjson
	rec T ignored '{"a":1,"ign":"y"}' 12 >> remote.ndjson
	rec T within '{"t":1}' >> local.ndjson
	rec T within '{"t":1.25}' 13 >> remote.ndjson
	rec T beyond '{"t":1}' >> local.ndjson
	rec T beyond '{"t":2}' 14 >> remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all \
	    -i ign --tolerance t=0.5
	assert_success
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"T","key":"ctl","rev":"1","fields":{"s":"a\u0000b"},"changed":["s"]}
{"kind":"change","op":"update","type":"T","key":"quote","rev":"2","fields":{"s":"a\"b"},"changed":["s"]}
{"kind":"change","op":"update","type":"T","key":"late_byte","rev":"3","fields":{"s":"xxxxxxxxxxxxxxxxxxxxxxxxAxxxxxxx"},"changed":["s"]}
{"kind":"change","op":"update","type":"T","key":"str_num","rev":"4","fields":{"n":"1"},"changed":["n"]}
{"kind":"change","op":"update","type":"T","key":"big_int","rev":"5","fields":{"n":{"$int":"9007199254740993"}},"changed":["n"]}
{"kind":"change","op":"update","type":"T","key":"nested","rev":"6","fields":{"o":{"a":1,"b":2}},"changed":["o"]}
{"kind":"change","op":"update","type":"T","key":"arr_order","rev":"7","fields":{"v":[1,2]},"changed":["v"]}
{"kind":"change","op":"update","type":"T","key":"boundary","rev":"8","fields":{"a":"x","b":"y"},"changed":["a","b"]}
{"kind":"change","op":"update","type":"T","key":"unicode","rev":"9","fields":{"s":"é"},"changed":["s"]}
{"kind":"change","op":"update","type":"T","key":"ref","rev":"10","fields":{"r":{"$ref":"team_1"}},"changed":["r"]}
{"kind":"change","op":"same","type":"T","key":"escapes_alike","rev":"11","fields":{"a":[1],"s":"Aé/","b":1}}
{"kind":"change","op":"same","type":"T","key":"ignored","rev":"12","fields":{"a":1,"ign":"y"}}
{"kind":"change","op":"same","type":"T","key":"within","rev":"13","fields":{"t":1.25}}
{"kind":"change","op":"update","type":"T","key":"beyond","rev":"14","fields":{"t":1},"changed":["t"]}
EOF
}

@test "a walk matches each key to its own: inputs in one order, in another, the same key under two types side by side, lines of other kinds among them" {
	# Both sides hold A/k1 A/k2 B/k2 A/k3 B/k4; B/k2 and A/k2 are
	# neighbours, and the local side has them the other way round, so the
	# entry after the last match is sometimes the wrong type's.  Values
	# name their type, so a mismatch would show as an update.
	for side in local remote; do
		rev=
		[ "$side" = remote ] && rev=1
		{
			rec A k1 '{"v":"A1"}' $rev
			printf '{"kind":"note","n":"%s"}\n' "$side"
			if [ "$side" = local ]; then
				rec B k2 '{"v":"B2"}' $rev
				rec A k2 '{"v":"A2"}' $rev
			else
				rec A k2 '{"v":"A2"}' $rev
				rec B k2 '{"v":"B2"}' $rev
			fi
			rec A k3 '{"v":"A3"}' $rev
			rec B k4 '{"v":"B4"}' $rev
		} > $side.ndjson
	done
	# The remote also has a record the local lacks, between matches.
	sed -i 's/^\({"kind":"record","type":"A","key":"k3".*\)$/{"kind":"record","type":"B","key":"k3","rev":"1","fields":{"v":"B3"}}\n\1/' remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --all
	assert_success
	assert_output - <<'EOF'
{"kind":"note","n":"remote"}
{"kind":"change","op":"same","type":"A","key":"k1","rev":"1","fields":{"v":"A1"}}
{"kind":"note","n":"local"}
{"kind":"change","op":"same","type":"B","key":"k2","rev":"1","fields":{"v":"B2"}}
{"kind":"change","op":"same","type":"A","key":"k2","rev":"1","fields":{"v":"A2"}}
{"kind":"change","op":"same","type":"A","key":"k3","rev":"1","fields":{"v":"A3"}}
{"kind":"change","op":"same","type":"B","key":"k4","rev":"1","fields":{"v":"B4"}}
{"kind":"change","op":"delete","type":"B","key":"k3","rev":"1"}
EOF
	# Reversed local order: every guess misses, every key is still found.
	tac local.ndjson > rev.ndjson
	run --separate-stderr recdelta-diff --local ndjson:rev.ndjson --remote "$R" --summary
	assert_success
	assert_output - <<'EOF'
As: 3 unchanged, 0 new, 0 updated, 0 deleted
Bs: 2 unchanged, 0 new, 0 updated, 1 deleted
EOF
}

@test "an index sized from its first records grows past that size when the rest of the file holds many more, shorter ones" {
	# 4096 records of about 1 kB, then 8000 of about 60 bytes: the size
	# taken from the first ones is under half the count.
	awk 'BEGIN { pad = sprintf("%1000s", ""); gsub(/ /, "x", pad)
		for (i = 0; i < 4096; i++)
			printf "{\"kind\":\"record\",\"type\":\"Item\",\"key\":\"a%d\",\"fields\":{\"s\":\"%s\"}}\n", i, pad
		for (i = 0; i < 8000; i++)
			printf "{\"kind\":\"record\",\"type\":\"Item\",\"key\":\"b%d\",\"fields\":{\"n\":%d}}\n", i, i }' > local.ndjson
	# The remote: the same records bottom up, one of them changed.
	tac local.ndjson | sed 's/"key":"b17","fields":{"n":17}/"key":"b17","fields":{"n":18}/' > remote.ndjson
	run --separate-stderr recdelta-diff --local "$L" --remote "$R"
	assert_success
	assert_output '{"kind":"change","op":"update","type":"Item","key":"b17","fields":{"n":17},"changed":["n"]}'
	run --separate-stderr recdelta-diff --local "$L" --remote "$R" --summary
	assert_success
	assert_output 'Items: 12095 unchanged, 0 new, 1 updated, 0 deleted'
}

@test "types are kept once each by number: 65,535 types in one input are compared, one more is exit 3 naming the line, nothing written" {
	awk 'BEGIN { for (i = 0; i < 65535; i++)
	    printf "{\"kind\":\"record\",\"type\":\"T%d\",\"key\":\"k\",\"fields\":{\"n\":%d}}\n", i, i }' > remote.ndjson
	sed 's/"n":7}/"n":8}/' remote.ndjson > local.ndjson
	run -0 --separate-stderr recdelta-diff -l "$L" -r "$R"
	assert_output '{"kind":"change","op":"update","type":"T7","key":"k","fields":{"n":8},"changed":["n"]}'
	echo '{"kind":"record","type":"one more","key":"k","fields":{}}' >> local.ndjson
	run -3 --separate-stderr recdelta-diff -l "$L" -r "$R" -o out.ndjson
	assert_output ''
	[ "$stderr" = 'recdelta-diff: local.ndjson:65536: type "one more": more than 65535 record types in one input' ]
	[ ! -e out.ndjson ]
}
