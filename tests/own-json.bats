#!/usr/bin/env bats
# Bringing one's own JSON (issue 16): plain objects under ndjson:'s type= and
# key=, json: arrays read as a stream, bare file and folder words, and
# numbers compared as JSON tools read them.

bats_require_minimum_version 1.5.0

load helpers/common

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# The words a store may begin with, as the messages list them.
WORDS='ndjson:PATH, -, json:PATH, sqlite:DB?table=T&key=COL, dir:PATH, cloudkit:CONTAINER/ENV/DB, couchdb:URL/DB or webdav:URL'

plain_games() {
	cat > games.ndjson <<'EOF'
{"id":7,"name":"Opening","score":25.10000000000000142,"kind":"league"}
{"id":"g-2","name":"Caf\u00e9 Cup","tags":["a"],"when":{"$ts":"2026-01-02T03:04:05Z"}}
{"id":9007199254740993,"name":"Big","t":"Final"}
EOF
}

# --- ndjson: with type= and key= ----------------------------------------------

@test "ndjson:?type=&key=: plain objects with string and integer keys become records; the key member leaves the fields, kind is a field" {
	plain_games
	run -0 --separate-stderr recdelta-fetch 'ndjson:games.ndjson?type=Game&key=id'
	assert_output - <<'EOF'
{"kind":"record","type":"Game","key":"7","fields":{"name":"Opening","score":25.10000000000000142,"kind":"league"}}
{"kind":"record","type":"Game","key":"g-2","fields":{"name":"Café Cup","tags":["a"],"when":{"$ts":"2026-01-02T03:04:05Z"}}}
{"kind":"record","type":"Game","key":"9007199254740993","fields":{"name":"Big","t":"Final"}}
EOF
	assert_stderr ''
}

@test "ndjson:?type=@FIELD: the type from a member, which leaves the fields; a missing or bad one is exit 3 naming file, line and member" {
	cat > t.ndjson <<'EOF'
{"id":1,"type":"Team","name":"a"}
{"id":2,"type":"Game","name":"b"}
EOF
	run -0 --separate-stderr recdelta-fetch 'ndjson:t.ndjson?type=@type&key=id'
	assert_output - <<'EOF'
{"kind":"record","type":"Team","key":"1","fields":{"name":"a"}}
{"kind":"record","type":"Game","key":"2","fields":{"name":"b"}}
EOF
	printf '{"id":1,"type":"Team"}\n{"id":2,"name":"b"}\n' > m.ndjson
	run -3 --separate-stderr recdelta-diff -l 'ndjson:m.ndjson?type=@type&key=id' -r 'ndjson:t.ndjson?type=@type&key=id'
	assert_output ''
	assert_stderr 'recdelta-diff: m.ndjson:2: missing "type" (type=@type)'
	printf '{"id":1,"type":3}\n' > n.ndjson
	run -3 --separate-stderr recdelta-fetch 'ndjson:n.ndjson?type=@type&key=id'
	assert_stderr 'recdelta-fetch: n.ndjson:1: "type" is not a string'
}

@test "ndjson:?key=: a key that is missing, empty, a fraction, an exponent or an object is exit 3 naming file, line and member; a line that is no object too" {
	local line msg
	while IFS='|' read -r line msg; do
		printf '{"id":"ok"}\n%s\n' "$line" > bad.ndjson
		run -3 --separate-stderr recdelta-diff -l 'ndjson:bad.ndjson?type=G&key=id' -r ndjson:/dev/null --allow-empty
		assert_output ''
		assert_stderr "recdelta-diff: bad.ndjson:2: $msg"
	done <<'EOF'
{"name":"x"}|missing "id" (key=id)
{"id":""}|"id" is empty
{"id":7.0}|"id" is not a string or an integer
{"id":7e0}|"id" is not a string or an integer
{"id":{"a":1}}|"id" is not a string or an integer
[1,2]|not a JSON object
EOF
}

@test "ndjson:?type=&key=: a record line is a plain object like any other; without parameters record lines work unchanged and a plain object is refused" {
	rec G k '{"a":1}' > r.ndjson
	run -0 --separate-stderr recdelta-fetch 'ndjson:r.ndjson?type=T&key=key'
	assert_output '{"kind":"record","type":"T","key":"k","fields":{"kind":"record","type":"G","fields":{"a":1}}}'
	run -0 --separate-stderr recdelta-fetch ndjson:r.ndjson
	assert_output '{"kind":"record","type":"G","key":"k","fields":{"a":1}}'
	plain_games
	run -3 --separate-stderr recdelta-diff -l ndjson:games.ndjson -r r.ndjson
	assert_output ''
	assert_stderr 'recdelta-diff: games.ndjson:2: missing "kind"'
}

@test "ndjson:?type=&key=: standard input, %-encoded names, a literal type beginning with @" {
	printf '{"the id":5,"a&b":1}\n' | {
		run -0 --separate-stderr recdelta-fetch 'ndjson:-?type=%40home&key=the%20id'
		assert_output '{"kind":"record","type":"@home","key":"5","fields":{"a&b":1}}'
	}
}

@test "ndjson: parameters: unknown, empty or alone is a usage error (exit 2); a target with parameters is refused (exit 2), the file unchanged" {
	plain_games
	run -2 --separate-stderr recdelta-fetch 'ndjson:games.ndjson?type=G&key=id&table=x'
	assert_stderr 'recdelta-fetch: "ndjson:games.ndjson?type=G&key=id&table=x": unknown parameter "table" (expected type, key)'
	run -2 --separate-stderr recdelta-fetch 'ndjson:games.ndjson?type=G'
	assert_stderr 'recdelta-fetch: "ndjson:games.ndjson?type=G": type= and key= go together'
	run -2 --separate-stderr recdelta-fetch 'ndjson:games.ndjson?type=&key=id'
	assert_stderr 'recdelta-fetch: "ndjson:games.ndjson?type=&key=id": parameter "type" is empty'
	before=$(sha256 games.ndjson)
	rec G 9 '{}' | recdelta-diff -l - -r ndjson:/dev/null --allow-empty > changes.ndjson
	run -2 --separate-stderr recdelta-push 'ndjson:games.ndjson?type=G&key=id' < changes.ndjson
	assert_output ''
	assert_stderr 'recdelta-push: ndjson:games.ndjson?type=G&key=id: a store read with type= and key= cannot be written'
	assert_equal "$(sha256 games.ndjson)" "$before"
}

@test "ndjson:?type=&key=: plain objects diff against record lines: a changed field is an update, the rest same" {
	plain_games
	{
		rec Game 7 '{"name":"Opening","score":25.1,"kind":"league"}'
		rec Game g-2 '{"name":"Café Cup","tags":["a"],"when":{"$ts":"2026-01-02T03:04:05.000Z"}}'
		rec Game 9007199254740993 '{"name":"Small","t":"Final"}'
	} > remote.ndjson
	run -0 --separate-stderr recdelta-diff -l 'ndjson:games.ndjson?type=Game&key=id' -r remote.ndjson
	assert_output '{"kind":"change","op":"update","type":"Game","key":"9007199254740993","fields":{"name":"Big","t":"Final"},"changed":["name"]}'
}

# --- json: arrays --------------------------------------------------------------

@test "json:: the elements of a top-level array, record lines or plain objects; pretty-printed input comes out one compact line each" {
	cat > export-array.json <<'EOF'
[
  {
    "id": 1,
    "name": "a \"quoted\" ] name",
    "nested": {"list": [1, [2, {"x": "}"}]]}
  },
  {"id": "two", "score": 1e2, "s": "\u00e9\\"}
]
EOF
	run -0 --separate-stderr recdelta-fetch 'json:export-array.json?type=Game&key=id'
	assert_output - <<'EOF'
{"kind":"record","type":"Game","key":"1","fields":{"name":"a \"quoted\" ] name","nested":{"list":[1,[2,{"x":"}"}]]}}}
{"kind":"record","type":"Game","key":"two","fields":{"score":1e2,"s":"é\\"}}
EOF
	assert_stderr ''
	printf '[%s,\n{"kind":"cursor","name":"n","value":1}]\n' "$(rec G k '{"a":1}')" > records.json
	run -0 --separate-stderr recdelta-fetch json:records.json
	assert_output - <<'EOF'
{"kind":"record","type":"G","key":"k","fields":{"a":1}}
{"kind":"cursor","name":"n","value":1}
EOF
}

@test "json:?path=: the array at a nested path, members before and after it passed over; type=@field" {
	cat > api.json <<'EOF'
{"meta": {"next": null, "odd": ["]", {"}": "\"["}]},
 "data": {"count": 2, "games": [
   {"id": 10, "type": "Game", "home": "A"},
   {"id": 11, "type": "Cup", "home": "B"}
 ], "after": {"games": []}},
 "tail": [1, 2, 3]}
EOF
	run -0 --separate-stderr recdelta-fetch 'json:api.json?path=.data.games&key=id&type=@type'
	assert_output - <<'EOF'
{"kind":"record","type":"Game","key":"10","fields":{"home":"A"}}
{"kind":"record","type":"Cup","key":"11","fields":{"home":"B"}}
EOF
	run -0 --separate-stderr recdelta-diff -l 'json:api.json?path=.data.games&key=id&type=@type' -r 'json:api.json?type=@type&key=id&path=.data.games'
	assert_output ''
}

@test "json:: bad input is exit 3 naming file, line and element; an empty array needs --allow-empty; json: cannot be written (exit 2)" {
	local doc word msg
	while IFS='|' read -r doc word msg; do
		printf '%b' "$doc" > bad.json
		run -3 --separate-stderr recdelta-diff -l "json:bad.json$word" -r ndjson:/dev/null --allow-empty
		assert_output ''
		assert_stderr "recdelta-diff: $msg"
	done <<'EOF'
[{"id":1},\n {"id":2,}]|?type=G&key=id|bad.json:2: .[1]: expected member name in object
[{"id":1},\n {"id":1.5}]|?type=G&key=id|bad.json:2: .[1]: "id" is not a string or an integer
{"data":{"games":[\n\n{"x":1}]}}|?type=G&key=id&path=.data.games|bad.json:3: .data.games[0]: missing "id" (key=id)
{"data":{"gmaes":[]}}|?type=G&key=id&path=.data.games|bad.json:1: no member "games" (path=.data.games)
{"data":{"games":{}}}|?type=G&key=id&path=.data.games|bad.json:1: .data.games is not an array
{"data":[]}|?type=G&key=id&path=.data.games|bad.json:1: data is not an object (path=.data.games)
{"id":1}|?type=G&key=id|bad.json:1: the document is not an array
[{"id":1}] []|?type=G&key=id|bad.json:1: trailing characters after the document
[{"id":1}|?type=G&key=id|bad.json:1: unexpected end of input
[{"id":"1]|?type=G&key=id|bad.json:1: unexpected end of input in a string
EOF
	echo '[]' > empty.json
	run -3 --separate-stderr recdelta-fetch json:empty.json
	assert_stderr 'recdelta-fetch: empty.json: empty array (--allow-empty accepts it)'
	run -0 --separate-stderr recdelta-fetch --allow-empty json:empty.json
	assert_output ''
	run -2 --separate-stderr recdelta-fetch 'json:empty.json?path=data'
	assert_stderr 'recdelta-fetch: "json:empty.json?path=data": path= is not a simple path (.NAME.NAME...)'
	run -2 --separate-stderr recdelta-push json:empty.json < /dev/null
	assert_stderr 'recdelta-push: json:empty.json: the json: store cannot be written'
}

@test "json:: an element longer than RECDELTA_MAX_LINE is exit 3, read no further" {
	printf '[{"id":1,"s":"%s"}]' "$(head -c 3000 /dev/zero | tr '\0' x)" > long.json
	RECDELTA_MAX_LINE=1000 run -3 --separate-stderr recdelta-fetch 'json:long.json?type=G&key=id'
	assert_stderr 'recdelta-fetch: long.json:1: an element longer than 1000 bytes (RECDELTA_MAX_LINE)'
}

@test "json:: a 200 MB array streams in under 100 MB of memory, every element read" {
	command -v /usr/bin/time > /dev/null || skip "no /usr/bin/time"
	# valgrind's own memory would be measured; bench/json is the check there.
	[ "${RECDELTA_VALGRIND:-}" != 1 ] || skip "under valgrind"
	# A sanitizer build keeps freed memory in quarantine: none here.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
	# 200 000 elements of about 1 kB, made by awk (no timing involved).
	awk 'BEGIN { pad = sprintf("%1000s", ""); gsub(/ /, "x", pad);
	    printf "{\"data\":{\"games\":[";
	    for (i = 0; i < 200000; i++)
		printf "%s\n{\"id\":%d,\"pad\":\"%s\"}", i ? "," : "", i, pad;
	    printf "]}}\n" }' > big.json
	[ "$(stat -c %s big.json)" -gt 200000000 ]
	run -0 --separate-stderr sh -c '/usr/bin/time -f %M -o rss recdelta-fetch "json:big.json?type=G&key=id&path=.data.games" | wc -l > count'
	assert_stderr ''
	assert_equal "$(cat count)" 200000
	rss=$(tail -n 1 rss)
	[ "$rss" -lt 100000 ] || fail "peak RSS $rss kB"
}

@test "json:-: standard input; it and ndjson:-?... count as standard input, so two of them are a usage error" {
	printf '[{"id":1}]' | {
		run -0 --separate-stderr recdelta-fetch 'json:-?type=G&key=id'
		assert_output '{"kind":"record","type":"G","key":"1","fields":{}}'
	}
	run -2 --separate-stderr recdelta-diff -l 'json:-?type=G&key=id' -r 'ndjson:-?type=G&key=id' < /dev/null
	assert_output ''
	assert_stderr 'recdelta-diff: --local and --remote cannot both be standard input'
}

# --- bare words --------------------------------------------------------------------

@test "bare words: an existing file is ndjson:, a folder dir:, - standard input; the scope is the scheme's" {
	rec Game a '{"n":1}' > local.ndjson
	mkdir remote
	rec Game a '{"n":1}' | recdelta-diff -l - -r dir:remote | recdelta-push dir:remote > /dev/null
	run -0 --separate-stderr recdelta-diff --summary -l local.ndjson -r remote
	assert_output 'Games: 1 unchanged, 0 new, 0 updated, 0 deleted'
	run -0 --separate-stderr recdelta-diff --check-args -l local.ndjson -r remote/
	assert_equal "$(recdelta-checkpoint scope -- local.ndjson | sed -n 1p)" "ndjson:$(pwd -P)/local.ndjson"
	assert_equal "$(recdelta-checkpoint scope -- remote | sed -n 1p)" "dir:$(pwd -P)/remote"
	assert_equal "$(recdelta-checkpoint scope -- remote/ | sed -n 2p)" "$(recdelta-checkpoint scope -- dir:remote | sed -n 2p)"
}

@test "bare words: a flow takes them" {
	rec Game a '{"n":1}' > local.ndjson
	rec Game b '{"n":2}' >> local.ndjson
	mkdir remote
	export RECDELTA_STATE=$PWD/state.db
	run -0 --separate-stderr recdelta smart-sync -q -l local.ndjson -r remote
	run -0 --separate-stderr recdelta diff-only -l local.ndjson -r remote
	assert_output 'Games: 2 unchanged, 0 new, 0 updated, 0 deleted'
}

@test "bare words: a missing path is never a store, with any program and flow (exit 2, nothing written); a scheme wins over a file of that name" {
	mkdir remote
	run -2 --separate-stderr recdelta-diff -l missing.ndjson -r remote
	assert_output ''
	assert_stderr "recdelta-diff: \"missing.ndjson\": not a store: no such file or folder (a bare word is an existing file or folder; a missing path is not a store; expected $WORDS)"
	run -2 --separate-stderr recdelta-diff --check-args -l missing.ndjson -r remote
	run -2 --separate-stderr recdelta-push missing/ < /dev/null
	assert_stderr "recdelta-push: \"missing/\": not a store: no such file or folder (a bare word is an existing file or folder; a missing path is not a store; expected $WORDS)"
	export RECDELTA_STATE=$PWD/state.db
	run -2 --separate-stderr recdelta smart-sync -q -l missing.ndjson -r remote
	[ ! -e state.db ]
	assert_equal "$(ls -A remote)" ''
	# "dir:x" as a file name: the word is still the dir: store x.
	echo '{}' > 'dir:x'
	run -4 --separate-stderr recdelta-fetch 'dir:x'
	assert_stderr 'recdelta-fetch: x: No such file or directory'
	run -2 --separate-stderr recdelta-fetch /dev/null/x
	run -2 --separate-stderr recdelta-fetch 'nosuch:x'
	assert_stderr 'recdelta-fetch: "nosuch:x": unknown store scheme "nosuch"'
}

@test "bare words: a FIFO is ndjson: read once; a '?' in a bare word is part of the file's name" {
	mkfifo in.fifo
	rec G a '{"n":1}' > in.fifo &
	run -0 --separate-stderr recdelta-fetch in.fifo
	wait
	assert_output '{"kind":"record","type":"G","key":"a","fields":{"n":1}}'
	rec G q '{}' > 'odd?name'
	run -0 --separate-stderr recdelta-fetch 'odd?name'
	assert_output '{"kind":"record","type":"G","key":"q","fields":{}}'
	run -0 --separate-stderr recdelta-fetch 'ndjson:odd?name?'
	assert_output '{"kind":"record","type":"G","key":"q","fields":{}}'
}

# --- numbers -------------------------------------------------------------------------

@test "numbers: 25.10000000000000142 equals 25.1, 9007199254740993 differs from 9007199254740992, 1.0 equals 1; push writes the local value byte for byte" {
	rec G a '{"x":25.10000000000000142,"n":1.0}' > local.ndjson
	rec G b '{"y":9007199254740993}' >> local.ndjson
	rec G a '{"x":25.1,"n":1}' > remote.ndjson
	rec G b '{"y":9007199254740992}' >> remote.ndjson
	run -0 --separate-stderr recdelta-diff -l local.ndjson -r remote.ndjson
	assert_output '{"kind":"change","op":"update","type":"G","key":"b","fields":{"y":9007199254740993},"changed":["y"]}'
	# Pushed to a store, every number goes as written locally.
	mkdir remote
	rec G a '{"x":25.2}' | recdelta-diff -l - -r dir:remote | recdelta-push dir:remote > /dev/null
	recdelta-diff -l local.ndjson -r dir:remote | recdelta-push dir:remote > /dev/null
	run -0 --separate-stderr recdelta-fetch dir:remote
	assert_output --partial '"fields":{"n":1.0,"x":25.10000000000000142}}'
	assert_output --partial '"fields":{"y":9007199254740993}}'
	run -0 --separate-stderr recdelta-diff -l local.ndjson -r dir:remote
	assert_output ''
}

@test "numbers: a fraction compares by its double, an integer exactly, beyond a double's range by decimal value" {
	local a b op
	while read -r a b op; do
		rec G k "{\"v\":$a}" > l.ndjson
		rec G k "{\"v\":$b}" > r.ndjson
		run -0 --separate-stderr recdelta-diff --all -l l.ndjson -r r.ndjson
		assert_output --partial "\"op\":\"$op\""
	done <<'EOF'
25.10000000000000142 25.1 same
0.1 0.10000000000000000555 same
0.1 0.1000000000000001 update
1e0 1 same
100 1e2 same
-0.0 0 same
9007199254740993 9007199254740992 update
9007199254740992 9007199254740993.0 same
9007199254740993 9007199254740993.0 update
12345678901234567890123 12345678901234567890124 update
1e400 10e399 same
1e-400 0 same
EOF
}

@test "numbers: the key of a fraction formed without strtod (15 digits or fewer) agrees with strtod on 200,000 seeded pairs" {
	run -0 "$TOP/tests/helpers/numkey" 200000 1
	assert_output '200000 pairs: 151631 equal, 0 disagree'
}

@test "numbers: the base snapshot's hash follows the rule: a synced 25.1 stays in step with 25.10000000000000142" {
	export RECDELTA_STATE=$PWD/state.db
	rec Game a '{"x":25.10000000000000142}' > local.ndjson
	mkdir remote
	run -0 --separate-stderr recdelta smart-sync -q -l local.ndjson -r remote
	rec Game a '{"x":25.1}' > local.ndjson
	run -0 --separate-stderr recdelta smart-sync -q --incremental -l local.ndjson -r remote
	run -0 --separate-stderr recdelta diff-only -l local.ndjson -r remote
	assert_output 'Games: 1 unchanged, 0 new, 0 updated, 0 deleted'
	run -0 --separate-stderr recdelta-fetch remote
	assert_output --partial '"fields":{"x":25.10000000000000142}}'
}

@test "numbers: the canonical form a hash is taken of does not move: a record's \"seen\" is the one the checkpoints already hold" {
	# Fractions and integers the one-pass key forms, and those it leaves
	# to the long way (an exponent, 17 digits); computed before it existed.
	cat > nums.ndjson <<'EOF2'
{"kind":"record","type":"T","key":"a","fields":{"a":20.5179,"b":-72.8558,"c":100.0,"d":0.05,"e":-0.0,"f":38500,"g":1.5e3,"h":0.1000000000000000055511151231257827,"i":123456789012345.6,"j":9007199254740993,"k":1e-300,"l":0.000001}}
EOF2
	run -0 "$TOP/tests/helpers/seenhash" < nums.ndjson
	assert_output 3edc8b15dff5d219072e54c0bf2c9e2c640cf1fdea4d52a375a314746baf5d59
}
