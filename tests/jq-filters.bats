#!/usr/bin/env bats
# The user's jq filters: recdelta-fetch --map, --where and --flat, and
# recdelta-diff --where (lib/filter.h, libjq).

bats_require_minimum_version 1.5.0

load helpers/common

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# An API's answers, one document a line, as a tool saves them.
api_pages() {
	cat > pages.ndjson <<'EOF'
{"data":{"games":[{"id":7,"name":"Chess","players":2,"tags":["board"]},{"id":12,"name":"Go","players":2,"rating":9.5}]},"next":"p2"}
{"data":{"games":[{"id":13,"name":"Bridge \u00e9","players":4,"big":{"$int":"9007199254740993"}}]},"next":null}
EOF
}

MAP_GAMES='.data.games[] | {kind: "record", type: "games", key: (.id | tostring), fields: del(.id)}'

# --- --map ------------------------------------------------------------------

@test "--map: records from an API-shaped document, one page a line" {
	api_pages
	run -0 --separate-stderr recdelta-fetch --map "$MAP_GAMES" ndjson:pages.ndjson
	assert_stderr ""
	assert_equal "$output" '{"kind":"record","type":"games","key":"7","fields":{"name":"Chess","players":2,"tags":["board"]}}
{"kind":"record","type":"games","key":"12","fields":{"name":"Go","players":2,"rating":9.5}}
{"kind":"record","type":"games","key":"13","fields":{"name":"Bridge é","players":4,"big":{"$int":"9007199254740993"}}}'
}

@test "--map: .[] takes the elements of a document's array, from standard input" {
	printf '[{"sku":"a-1","qty":3},{"sku":"b-2","qty":0}]\n' > export.json
	run -0 --separate-stderr recdelta-fetch --map \
	    '.[] | {kind: "record", type: "stock", key: .sku, fields: {qty}}' - < export.json
	assert_stderr ""
	assert_equal "$output" '{"kind":"record","type":"stock","key":"a-1","fields":{"qty":3}}
{"kind":"record","type":"stock","key":"b-2","fields":{"qty":0}}'
}

@test "--map: -t keeps the records of its types among the outputs" {
	api_pages
	run -0 --separate-stderr recdelta-fetch -t other --map "$MAP_GAMES" ndjson:pages.ndjson
	assert_stderr ""
	assert_equal "$output" ""
	run -0 --separate-stderr recdelta-fetch -t games --map "$MAP_GAMES | select(.fields.players > 2)" \
	    ndjson:pages.ndjson
	assert_equal "$output" '{"kind":"record","type":"games","key":"13","fields":{"name":"Bridge é","players":4,"big":{"$int":"9007199254740993"}}}'
}

@test "--map: an integer beyond 2^53 is refused, naming file, line and member, never rounded" {
	printf '{"items":[{"id":1}]}\n{"items":[{"id":2},{"id":3},{"id":4},{"id":9007199254740993}]}\n' > big.ndjson
	run -3 --separate-stderr recdelta-fetch \
	    --map '.items[] | {kind: "record", type: "t", key: (.id | tostring), fields: {}}' ndjson:big.ndjson
	assert_stderr 'recdelta-fetch: big.ndjson:2: --map: .items[3].id: 9007199254740993 would be rounded by jq, whose numbers are doubles (integers exact up to 2^53)'
	# Fetch streams: the lines before the bad one are written, as for a bad line.
	assert_equal "$output" '{"kind":"record","type":"t","key":"1","fields":{}}'
	# A negative one, a member name that is no identifier, an integer in
	# exponent form past a double's range.
	printf '{"a b":[-9007199254740993]}\n' > neg.ndjson
	run -3 --separate-stderr recdelta-fetch --map . ndjson:neg.ndjson
	assert_stderr 'recdelta-fetch: neg.ndjson:1: --map: .["a b"][0]: -9007199254740993 would be rounded by jq, whose numbers are doubles (integers exact up to 2^53)'
	assert_equal "$output" ""
	printf '1e400\n' > huge.ndjson
	run -3 --separate-stderr recdelta-fetch --map . ndjson:huge.ndjson
	assert_stderr 'recdelta-fetch: huge.ndjson:1: --map: .: 1e400 would be rounded by jq, whose numbers are doubles (integers exact up to 2^53)'
}

@test "--map: 2^53, integers a double holds and fractions go through; jq writes the numbers" {
	printf '{"a":9007199254740992,"b":-9007199254740992,"c":1e20,"d":25.10000000000000142,"e":0.5}\n' > ok.ndjson
	run -0 --separate-stderr recdelta-fetch \
	    --map '{kind: "record", type: "n", key: "k", fields: .}' ndjson:ok.ndjson
	assert_stderr ""
	assert_equal "$output" '{"kind":"record","type":"n","key":"k","fields":{"a":9007199254740992,"b":-9007199254740992,"c":1e+20,"d":25.1,"e":0.5}}'
}

@test "--map: an output that is not a record line is bad input, naming the line and the output" {
	api_pages
	run -3 --separate-stderr recdelta-fetch --map '.data.games[]' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: output 1: missing "kind"'
	assert_equal "$output" ""
	run -3 --separate-stderr recdelta-fetch --map '.next' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: output 1: line is not a JSON object'
	run -3 --separate-stderr recdelta-fetch --map '{kind: "cursor", name: "n", value: 1}' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: output 1: a "cursor" line, not a record'
	run -3 --separate-stderr recdelta-fetch --map '.data.games[] | {kind: "record", type: "g", key: .id, fields: {}}' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: output 1: "key" is not a string'
}

@test "--map: a line that is not JSON, and jq's own errors, are bad input naming the line" {
	printf '{"a":1}\n{"a":\n' > bad.ndjson
	run -3 --separate-stderr recdelta-fetch --map '{kind: "record", type: "t", key: "k", fields: .}' ndjson:bad.ndjson
	assert_output '{"kind":"record","type":"t","key":"k","fields":{"a":1}}'
	[[ $stderr == 'recdelta-fetch: bad.ndjson:2: '* ]] || fail "$stderr"
	api_pages
	run -3 --separate-stderr recdelta-fetch --map '.data.games[] | error("no \(.name)")' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: jq: error: no Chess'
	assert_equal "$output" ""
	run -3 --separate-stderr recdelta-fetch --map '.data + 1' ndjson:pages.ndjson
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: jq: error: object ({"games":[{...) and number (1) cannot be added'
}

@test "--map: a syntax error is a usage error with jq's message, before anything is read" {
	run -2 --separate-stderr recdelta-fetch --map '.data.games[' ndjson:absent.ndjson
	assert_stderr 'recdelta-fetch: --map: jq: error: syntax error, unexpected $end (Unix shell quoting issues?) at <top-level>, line 1: .data.games[; jq: 1 compile error'
	assert_equal "$output" ""
	run -2 --separate-stderr recdelta-fetch --map 'nosuch(1)' ndjson:absent.ndjson
	assert_stderr 'recdelta-fetch: --map: jq: error: nosuch/1 is not defined at <top-level>, line 1: nosuch(1); jq: 1 compile error'
}

@test "--map: a store of records hands the filter its record lines" {
	sqlite3 t.db "CREATE TABLE games (id INTEGER PRIMARY KEY, name TEXT);
	    INSERT INTO games VALUES (1, 'chess'), (2, 'go');"
	run -0 --separate-stderr recdelta-fetch \
	    --map '.type = "Game" | .fields.name |= ascii_upcase' 'sqlite:t.db?table=games&key=id'
	assert_stderr ""
	assert_equal "$output" '{"kind":"record","type":"Game","key":"1","rev":"0","fields":{"name":"CHESS"}}
{"kind":"record","type":"Game","key":"2","rev":"0","fields":{"name":"GO"}}'
}

# --- --where ----------------------------------------------------------------

# Odd spacing, escapes and number forms, which selection must keep.
where_input() {
	cat > in.ndjson <<'EOF'
{"kind":"cursor","source":"x","name":"n","value":"v1"}
{ "kind" : "record", "type":"games","key":"a","fields":{"players":4,"n":1.0e0,"s":"\u00e9"} }
{"kind":"record","type":"games","key":"b","rev":"2","fields":{"players":2}}
{"fields":{"players":10,"big":12345678901234567890123},"key":"c","type":"games","kind":"record"}
{"kind":"record","type":"teams","key":"a","fields":{"players":11}}
{"kind":"record","type":"games","key":"d","deleted":true}
EOF
}

@test "--where: keeps the records it holds for, each line byte for byte, and other kinds" {
	where_input
	run -0 --separate-stderr recdelta-fetch --where '.fields.players > 3' ndjson:in.ndjson
	assert_stderr ""
	expected=$(grep -v -e '"key":"b"' -e '"deleted":true' in.ndjson)
	assert_equal "$output" "$expected"
	recdelta-fetch --where '.type == "games" and .key != "b"' ndjson:in.ndjson > out.ndjson
	grep -v -e '"type":"teams"' -e '"key":"b"' in.ndjson > expected.ndjson
	cmp out.ndjson expected.ndjson
	# jq's truthiness: false and null drop, any other value keeps; no
	# output drops; the first true output is enough.
	run -0 --separate-stderr recdelta-fetch --where '.fields.nosuch' ndjson:in.ndjson
	assert_equal "$output" '{"kind":"cursor","source":"x","name":"n","value":"v1"}'
	run -0 --separate-stderr recdelta-fetch --where 'empty' ndjson:in.ndjson
	assert_equal "$output" '{"kind":"cursor","source":"x","name":"n","value":"v1"}'
	run -0 --separate-stderr recdelta-fetch -t teams --where '(false, 0, true)' ndjson:in.ndjson
	assert_equal "$output" '{"kind":"cursor","source":"x","name":"n","value":"v1"}
{"kind":"record","type":"teams","key":"a","fields":{"players":11}}'
}

@test "--where sees numbers as doubles; the line it keeps is unchanged" {
	printf '{"kind":"record","type":"t","key":"1","fields":{"n":9007199254740993}}\n' > big.ndjson
	run -0 --separate-stderr recdelta-fetch --where '.fields.n == 9007199254740992' ndjson:big.ndjson
	assert_stderr ""
	assert_equal "$output" "$(cat big.ndjson)"
}

@test "--where: jq's error is bad input naming the line; a syntax error a usage error" {
	where_input
	run -3 --separate-stderr recdelta-fetch --where '.fields.players | error' ndjson:in.ndjson
	assert_stderr 'recdelta-fetch: in.ndjson:2: --where: jq: error: 4 (not a string)'
	assert_equal "$output" '{"kind":"cursor","source":"x","name":"n","value":"v1"}'
	run -2 --separate-stderr recdelta-fetch --where '.a ==' ndjson:in.ndjson
	assert_stderr 'recdelta-fetch: --where: jq: error: syntax error, unexpected $end (Unix shell quoting issues?) at <top-level>, line 1: .a ==; jq: 1 compile error'
	assert_equal "$output" ""
}

@test "--where after --map: it sees the records the map made" {
	api_pages
	run -0 --separate-stderr recdelta-fetch --map "$MAP_GAMES" --where '.fields.rating' ndjson:pages.ndjson
	assert_equal "$output" '{"kind":"record","type":"games","key":"12","fields":{"name":"Go","players":2,"rating":9.5}}'
}

# --- --flat -----------------------------------------------------------------

@test "--flat: plain objects, the key first, the type unless -t names one, tagged values kept" {
	where_input
	grep -v deleted in.ndjson > live.ndjson
	run -0 --separate-stderr recdelta-fetch --flat ndjson:live.ndjson
	assert_stderr ""
	assert_equal "$output" '{"key":"a","type":"games","players":4,"n":1.0e0,"s":"é"}
{"key":"b","type":"games","players":2}
{"key":"c","type":"games","players":10,"big":12345678901234567890123}
{"key":"a","type":"teams","players":11}'
	printf '%s\n' '{"kind":"record","type":"g","key":"7","fields":{"at":{"$ts":"2026-01-01T00:00:00Z"},"n":{"$int":"9007199254740993"}}}' \
	    '{"kind":"record","type":"g","key":"007","fields":{}}' \
	    '{"kind":"record","type":"g","key":"-3","fields":{}}' \
	    '{"kind":"record","type":"g","key":"1234567890123456","fields":{}}' > keys.ndjson
	run -0 --separate-stderr recdelta-fetch --flat=id -t g ndjson:keys.ndjson
	assert_stderr ""
	assert_equal "$output" '{"id":7,"at":{"$ts":"2026-01-01T00:00:00Z"},"n":{"$int":"9007199254740993"}}
{"id":"007"}
{"id":-3}
{"id":"1234567890123456"}'
}

@test "--flat: a field named like the key or the type, and a tombstone, are refused naming the record" {
	printf '{"kind":"record","type":"g","key":"1","fields":{"id":5}}\n' > clash.ndjson
	run -3 --separate-stderr recdelta-fetch --flat=id ndjson:clash.ndjson
	assert_stderr 'recdelta-fetch: clash.ndjson:1: --flat: record "g" "1" has a field "id", the name of its key in a plain object (--flat=KEYNAME names another)'
	assert_equal "$output" ""
	printf '{"kind":"record","type":"g","key":"1","fields":{"type":"x"}}\n' > clash.ndjson
	run -3 --separate-stderr recdelta-fetch --flat ndjson:clash.ndjson
	assert_stderr 'recdelta-fetch: clash.ndjson:1: --flat: record "g" "1" has a field "type", the name of its type in a plain object (--flat=KEYNAME names another)'
	# With one type named, "type" is a field like any other.
	run -0 --separate-stderr recdelta-fetch --flat -t g ndjson:clash.ndjson
	assert_equal "$output" '{"key":1,"type":"x"}'
	printf '{"kind":"record","type":"g","key":"1","deleted":true}\n' > gone.ndjson
	run -3 --separate-stderr recdelta-fetch --flat ndjson:gone.ndjson
	assert_stderr 'recdelta-fetch: gone.ndjson:1: --flat: record "g" "1" is deleted: a plain object cannot say so'
	run -2 --separate-stderr recdelta-fetch --flat= ndjson:gone.ndjson
	assert_stderr 'recdelta-fetch: --flat: "": expected a member name'
}

@test "--flat then back in with --map gives the same records" {
	api_pages
	recdelta-fetch --map "$MAP_GAMES" ndjson:pages.ndjson > records.ndjson
	recdelta-fetch --flat=id -t games ndjson:records.ndjson > flat.ndjson
	run -0 --separate-stderr recdelta-fetch \
	    --map '{kind: "record", type: "games", key: (.id | tostring), fields: del(.id)}' ndjson:flat.ndjson
	assert_equal "$output" "$(cat records.ndjson)"
	run -0 --separate-stderr recdelta-diff -l ndjson:records.ndjson -r ndjson:<(printf '%s\n' "$output") --summary
	assert_equal "$output" "games: 3 unchanged, 0 new, 0 updated, 0 deleted"
}

@test "--map: under type= and key= its outputs are plain objects" {
	api_pages
	run -0 --separate-stderr recdelta-fetch --map '.data.games[] | del(.tags)' \
	    'ndjson:pages.ndjson?type=games&key=id'
	assert_stderr ""
	assert_equal "$output" '{"kind":"record","type":"games","key":"7","fields":{"name":"Chess","players":2}}
{"kind":"record","type":"games","key":"12","fields":{"name":"Go","players":2,"rating":9.5}}
{"kind":"record","type":"games","key":"13","fields":{"name":"Bridge é","players":4,"big":{"$int":"9007199254740993"}}}'
	run -0 --separate-stderr recdelta-fetch -t b --map '.data.games[] | {id, t: (if .players > 2 then "b" else "s" end)}' \
	    'ndjson:pages.ndjson?type=@t&key=id'
	assert_equal "$output" '{"kind":"record","type":"b","key":"13","fields":{}}'
	run -3 --separate-stderr recdelta-fetch --map '.data' 'ndjson:pages.ndjson?type=games&key=id'
	assert_stderr 'recdelta-fetch: pages.ndjson:1: --map: output 1: missing "id" (key=id)'
	assert_equal "$output" ""
}

@test "--map: a json: source hands it each element of its array" {
	printf '{"data":{"games":[\n {"id":7,"name":"Chess"},\n {"id":12,"name":"Go","n":9007199254740993}\n]}}\n' > api.json
	run -3 --separate-stderr recdelta-fetch --map '{id: (.id * 10), name}' 'json:api.json?path=.data.games&type=games&key=id'
	assert_equal "$output" '{"kind":"record","type":"games","key":"70","fields":{"name":"Chess"}}'
	assert_stderr 'recdelta-fetch: api.json:3: --map: .n: 9007199254740993 would be rounded by jq, whose numbers are doubles (integers exact up to 2^53)'
}

@test "--flat then back in with ndjson:?type=&key= gives the same records" {
	where_input
	grep '"type":"games"' in.ndjson | grep -v deleted > games.ndjson
	recdelta-fetch --flat=id -t games ndjson:games.ndjson > flat.ndjson
	recdelta-fetch 'ndjson:flat.ndjson?type=games&key=id' > back.ndjson
	run -0 --separate-stderr recdelta-diff -l ndjson:games.ndjson -r ndjson:back.ndjson --all
	assert_equal "$output" '{"kind":"change","op":"same","type":"games","key":"a","fields":{"players":4,"n":1.0e0,"s":"é"}}
{"kind":"change","op":"same","type":"games","key":"b","fields":{"players":2}}
{"kind":"change","op":"same","type":"games","key":"c","fields":{"players":10,"big":12345678901234567890123}}'
	# Every type, "type" in each object, read back by type=@type.
	grep -v -e deleted -e cursor in.ndjson > live.ndjson
	recdelta-fetch --flat ndjson:live.ndjson > flat.ndjson
	recdelta-fetch 'ndjson:flat.ndjson?type=@type&key=key' > back.ndjson
	run -0 --separate-stderr recdelta-diff -l ndjson:live.ndjson -r ndjson:back.ndjson --summary
	assert_equal "$output" "games: 3 unchanged, 0 new, 0 updated, 0 deleted
teams: 1 unchanged, 0 new, 0 updated, 0 deleted"
}

# --- recdelta-diff --where --------------------------------------------------

diff_sides() {
	rec games g1 '{"name":"Chess","players":2}' > local.ndjson
	rec games g2 '{"name":"Go","players":3}' >> local.ndjson	# now matches
	rec games g4 '{"name":"Poker","players":4}' >> local.ndjson	# new, matches
	rec games g6 '{"name":"Skat","players":2}' >> local.ndjson	# stopped matching
	rec games g1 '{"name":"Chess","players":2}' 1 > remote.ndjson
	rec games g2 '{"name":"Go","players":2}' 2 >> remote.ndjson
	rec games g3 '{"name":"Bridge","players":4}' 3 >> remote.ndjson	# gone, matched
	rec games g5 '{"name":"Whist","players":1}' 5 >> remote.ndjson	# gone, never matched
	rec games g6 '{"name":"Skat","players":3}' 6 >> remote.ndjson
}

@test "diff --where: a key is compared when its record is selected on either side" {
	diff_sides
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:remote.ndjson \
	    --where '.fields.players >= 3'
	assert_stderr ""
	assert_equal "$output" '{"kind":"change","op":"update","type":"games","key":"g2","rev":"2","fields":{"name":"Go","players":3},"changed":["players"]}
{"kind":"change","op":"create","type":"games","key":"g4","fields":{"name":"Poker","players":4}}
{"kind":"change","op":"update","type":"games","key":"g6","rev":"6","fields":{"name":"Skat","players":2},"changed":["players"]}
{"kind":"change","op":"delete","type":"games","key":"g3","rev":"3"}'
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:remote.ndjson \
	    --where '.fields.players >= 3' --summary
	assert_equal "$output" "games: 0 unchanged, 1 new, 2 updated, 1 deleted"
	# Without it, g5 is deleted and g1 counted.
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:remote.ndjson --summary
	assert_equal "$output" "games: 1 unchanged, 1 new, 2 updated, 2 deleted"
}

@test "diff --where: jq's error names the side's line; a syntax error is a usage error" {
	diff_sides
	run -3 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:/dev/null --allow-empty \
	    --where 'if .key == "g4" then error("bad \(.key)") else true end'
	assert_stderr 'recdelta-diff: local.ndjson:3: --where: jq: error: bad g4'
	assert_equal "$output" ""
	run -2 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:remote.ndjson --where '][' --check-args
	assert_stderr 'recdelta-diff: --where: jq: error: syntax error, unexpected INVALID_CHARACTER, expecting $end (Unix shell quoting issues?) at <top-level>, line 1: ][; jq: 1 compile error'
}

# --- the build --------------------------------------------------------------

@test "recdelta-fetch and recdelta-diff link libjq; the other programs do not" {
	for p in recdelta-fetch recdelta-diff; do
		ldd "$TOP/bin/$p" | grep -q 'libjq\.so' || fail "$p: no libjq"
	done
	for p in recdelta-push recdelta-merge recdelta-checkpoint; do
		! ldd "$TOP/bin/$p" | grep -q 'libjq\.so' || fail "$p links libjq"
	done
}
