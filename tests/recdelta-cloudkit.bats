#!/usr/bin/env bats
# The cloudkit: store of recdelta-fetch and recdelta-push, against the
# CloudKit emulator (tests/servers/cloudkit-emulator.js): signing and its
# failures, query paging and resuming from a cursor, batches of more than 200
# changes, the conflict loop in both of CloudKit's shapes, throttling, 5xx
# and dropped connections retried, the outbox when the store stays
# unreachable, every field type both ways, refusals, credentials, and the
# change feed of a private zone.
#
# One emulator serves the whole file (started in setup_file, reset before
# each test); a test that needs another clock starts one of its own.  What
# the client did is read from the emulator's request log and stored state;
# what the emulator's log does not keep (request bodies) from a recording
# proxy, px_start.  jq 1.6 rounds integers past 2^53, so anything that may
# hold one goes through canon (node), which keeps every number's text.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit

# One emulator for the file, reset before each test: one test at a time,
# even under bats --jobs.
BATS_NO_PARALLELIZE_WITHIN_FILE=true

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR ck_start --private-zones || return 1
	chmod 600 "$CK_KEY_FILE"
	FILE_CK_PID=$CK_PID
	export FILE_CK_PID

	# canon.js [MEMBER]...: the JSON document on stdin, each number kept
	# as written, MEMBER selected in turn, printed compactly with every
	# object's members sorted.
	cat > "$BATS_FILE_TMPDIR/canon.js" <<'JS'
'use strict';
const fs = require('fs');
const argv = process.argv.slice(2);
const NUM = '\u0000n:';
const TOKEN = /"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/g;
const sort = (x) => Array.isArray(x) ? x.map(sort)
    : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sort(x[k])])) : x;
const text = fs.readFileSync(0, 'utf8');
let v = JSON.parse(text.replace(TOKEN, (t) => (t[0] === '"' ? t : JSON.stringify(NUM + t))));
for (const k of argv) v = v === null || v === undefined ? undefined : v[k];
process.stdout.write(JSON.stringify(sort(v === undefined ? null : v)).replace(/"\\u0000n:([^"]*)"/g, '$1') + '\n');
JS

	# proxy.js UPSTREAM LOG: forward every request to UPSTREAM as it is,
	# appending {method, path, body, status, response} to LOG; a dropped
	# upstream connection drops the client's.
	cat > "$BATS_FILE_TMPDIR/proxy.js" <<'JS'
'use strict';
const http = require('http');
const fs = require('fs');
const [upstream, logFile] = process.argv.slice(2);
const u = new URL(upstream);
const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const body = Buffer.concat(chunks);
		const p = http.request({ host: u.hostname, port: u.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
			const rc = [];
			r.on('data', (c) => rc.push(c));
			r.on('end', () => {
				const rb = Buffer.concat(rc);
				fs.appendFileSync(logFile, JSON.stringify({ method: req.method, path: req.url,
				    body: body.toString('utf8'), status: r.statusCode, response: rb.toString('utf8') }) + '\n');
				res.writeHead(r.statusCode, r.headers);
				res.end(rb);
			});
		});
		p.on('error', () => req.socket.destroy());
		p.end(body);
	});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
JS
}

teardown_file() {
	CK_PID=$FILE_CK_PID ck_stop
}

suite_setup() {
	# (ck_request keeps its responses there.)
	mkdir -p "$BATS_TEST_TMPDIR/ck"
	ck_control POST reset > /dev/null || return 1
	export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
	export RECDELTA_CLOUDKIT_URL=$CK_URL RECDELTA_HTTP_BACKOFF=0.05
	# No config file but the ones a test writes.
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	unset RECDELTA_CLOUDKIT_CONFIG RECDELTA_HTTP_RETRIES RECDELTA_HTTP_TIMEOUT RECDELTA_LOG RECDELTA_STATE
	export RECDELTA_STATE=$BATS_TEST_TMPDIR/state.db
	T=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/$CK_DATABASE
	PX_PID=
}

teardown() {
	if [ -n "${PX_PID:-}" ]; then
		kill "$PX_PID" 2>/dev/null || true
		wait "$PX_PID" 2>/dev/null || true
	fi
	# An emulator of the test's own.
	if [ -n "${CK_PID:-}" ] && [ "$CK_PID" != "$FILE_CK_PID" ]; then
		ck_stop
	fi
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# canon [MEMBER]...: see setup_file.
canon() {
	node "$BATS_FILE_TMPDIR/canon.js" "$@"
}

# px_start: put the recording proxy between the programs and the emulator;
# its log is px.ndjson.
px_start() {
	: > px.ndjson
	node "$BATS_FILE_TMPDIR/proxy.js" "$CK_URL" "$PWD/px.ndjson" > px.out 2> px.err 3>&- &
	PX_PID=$!
	local port
	port=$(listening_port "$PX_PID" px.out px.err) || return 1
	export RECDELTA_CLOUDKIT_URL=http://127.0.0.1:$port
}

# px_bodies OPERATION: the request bodies the proxy saw for OPERATION, one
# a line, as sent.
px_bodies() {
	jq -r --arg op "$1" 'select(.path | endswith("/" + $op)) | .body' px.ndjson
}

# modify_body OPS-JSON [ZONE]: a records/modify body.
modify_body() {
	jq -cn --argjson ops "$1" --arg z "${2:-_defaultZone}" '{zoneID:{zoneName:$z},operations:$ops}'
}

# ck_modify OPS-JSON [ZONE]: a records/modify through the wire, as another
# client would; fails unless every operation succeeded.  The response is in
# mod.json.
ck_modify() {
	ck_request records/modify "$(modify_body "$1" "${2:-_defaultZone}")" > mod.json
	if [ "$CK_STATUS" != 200 ] || [ "$(jq '[.records[] | select(.serverErrorCode)] | length' mod.json)" != 0 ]; then
		echo "ck_modify: $CK_STATUS $(cat mod.json)" >&2
		return 1
	fi
}

# ck_seed TYPE PREFIX FROM TO [ZONE]: create the records PREFIX-NNNN, NNNN
# from FROM to TO - 1, of TYPE, with one INT64 field n = NNNN, 200 a request.
ck_seed() {
	local a=$3 b
	while [ "$a" -lt "$4" ]; do
		b=$((a + 200))
		[ "$b" -le "$4" ] || b=$4
		ck_modify "$(jq -cn --arg t "$1" --arg p "$2" --argjson a "$a" --argjson b "$b" \
		    '[range($a; $b) | {operationType:"create", record:{recordName:($p + "-" + (tostring | ("0000" + .)[-4:])),
		      recordType:$t, fields:{n:{value:.}}}}]')" "${5:-_defaultZone}" || return 1
		a=$b
	done
}

# ck_records [DB [ZONE]]: the emulator's stored records, one a line, sorted
# by name (through jq: only for records without integers past 2^53).
ck_records() {
	ck_control GET state | jq -c --arg db "${1:-public}" --arg z "${2:-_defaultZone}" \
	    '.dbs[$db][$z].records | to_entries | map(.value) | sort_by(.recordName)[]'
}

# ck_tag NAME [DB [ZONE]]: the stored record's change tag.
ck_tag() {
	ck_control GET state | jq -r --arg n "$1" --arg db "${2:-public}" --arg z "${3:-_defaultZone}" \
	    '.dbs[$db][$z].records[$n].recordChangeTag'
}

# ck_fields NAME [DB [ZONE]]: the stored record's fields, wire form, canon.
ck_fields() {
	ck_control GET state | canon dbs "${2:-public}" "${3:-_defaultZone}" records "$1" fields
}

# ck_names [DB [ZONE]]: the names of the stored records.
ck_names() {
	ck_records "$@" | jq -r .recordName
}

# ck_log: [op, status, ops] of each request the emulator answered, one a line.
ck_log() {
	ck_control GET log | jq -c '.[] | [.op, .status, .ops]'
}

# expect_records TYPE [DB [ZONE]]: the record lines a fetch of TYPE should
# write, without mtime, sorted by key (fields: small INT64 and STRING only).
expect_records() {
	ck_records "${2:-public}" "${3:-_defaultZone}" | jq -c --arg t "$1" 'select(.recordType == $t) |
	    {kind:"record", type:.recordType, key:.recordName, rev:.recordChangeTag, fields:(.fields | map_values(.value))}'
}

# no_mtime: drop the mtime member of record lines.
no_mtime() {
	sed -E 's/,"mtime":"[^"]*"//'
}

# cursor VALUE [NAME [SOURCE]]: a cursor line.
cursor() {
	printf '{"kind":"cursor","source":"%s","name":"%s","value":"%s"}\n' "${3:-$T}" "${2:-continuationMarker}" "$1"
}

# change OP KEY [FIELDS] [REV] [TYPE]: a change line.
change() {
	printf '{"kind":"change","op":"%s","type":"%s","key":"%s"' "$1" "${5:-Item}" "$2"
	[ -z "${4:-}" ] || printf ',"rev":"%s"' "$4"
	[ -z "${3:-}" ] || printf ',"fields":%s' "$3"
	printf '}\n'
}

# summary CREATED UPDATED SKIPPED DELETED [CONFLICTS]: push's summary line.
summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' \
	    "$1" "$2" "$3" "$4" "${5:-0}"
}

# results: [op, key, status] of each result line of $output.
results() {
	printf '%s\n' "$output" | jq -c 'select(.kind == "result") | [.op, .key, .status]'
}

# MT: a jq function, mt: milliseconds since 1970 (not negative) as the
# contract writes an mtime, with milliseconds only when they are not 0.
MT='def mt: (. / 1000 | floor | todate) as $s | (. % 1000) as $ms |
    if $ms == 0 then $s else $s[:-1] + "." + ("00" + ($ms | tostring))[-3:] + "Z" end;'

# mtime MS: mt of MS.
mtime() {
	jq -rn --argjson t "$1" "$MT"' $t | mt'
}

# has_auth_failure: $stderr names AUTHENTICATION_FAILED.
has_auth_failure() {
	case $stderr in
	*AUTHENTICATION_FAILED*) ;;
	*) echo "stderr without AUTHENTICATION_FAILED: $stderr" >&2; return 1 ;;
	esac
}

# --- signing ----------------------------------------------------------------------

@test "a wrong key, an unknown key ID, a clock 10 minutes off: AUTHENTICATION_FAILED, exit 4, nothing on stdout, nothing written, no retry" {
	ck_seed Item it 0 3
	run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(printf '%s\n' "$output" | grep -c '"kind":"record"')" 3
	change create new '{"n":1}' > in
	before=$(ck_names)
	openssl ecparam -name prime256v1 -genkey -noout -out other.pem 2>/dev/null
	chmod 600 other.pem

	# try WHY: fetch and push each fail at their first request, for WHY.
	try() {
		ck_control DELETE log > /dev/null
		run -4 --separate-stderr recdelta-fetch -t Item "$T"
		assert_output ''
		has_auth_failure
		run -4 --separate-stderr recdelta-push "$T" < in
		assert_output ''
		has_auth_failure
		# Not retried: one request each, refused for WHY.
		assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .why]')" "[\"records/query\",401,\"$1\"]
[\"records/modify\",401,\"$1\"]"
		assert_equal "$(ck_names)" "$before"
	}
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/other.pem try 'bad signature'
	RECDELTA_CLOUDKIT_KEY_ID=otherkey try 'unknown key id'

	# The same key as PKCS#8 is accepted.
	openssl pkcs8 -topk8 -nocrypt -in "$CK_KEY_FILE" -out key8.pem
	chmod 600 key8.pem
	grep -q 'BEGIN PRIVATE KEY' key8.pem
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/key8.pem run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(printf '%s\n' "$output" | grep -c '"kind":"record"')" 3

	# An emulator whose clock is 10 minutes ahead, then behind: the
	# client signs with the real clock.  Within the ±300 s it allows
	# (2 minutes ahead), the same requests pass.
	for off in 600 -600 120; do
		[ "$CK_PID" = "$FILE_CK_PID" ] || ck_stop
		unset CK_KEYS_JSON
		ck_start --clock-offset "$off"
		chmod 600 "$CK_KEY_FILE"
		export RECDELTA_CLOUDKIT_URL=$CK_URL RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
		CK_DATE_OFFSET=$off ck_seed Item it 0 3
		before=$(ck_names)
		if [ "$off" = 120 ]; then
			run -0 --separate-stderr recdelta-fetch -t Item "$T"
			assert_equal "$(printf '%s\n' "$output" | grep -c '"kind":"record"')" 3
			run -0 --separate-stderr recdelta-push "$T" < in
			assert_equal "$(results)" '["create","new","ok"]'
		else
			try 'date outside allowed skew'
		fi
	done
}

# --- query paging and cursors --------------------------------------------------

@test "fetch pages 450 Items as 200, 200, 50 (resultsLimit 200), then 30 Others and an empty type, each record once, a cursor after every page; --resume starts at a marker or after a type" {
	ck_seed Item it 0 450
	ck_seed Other ot 0 30
	ck_control DELETE log > /dev/null
	px_start
	run -0 --separate-stderr recdelta-fetch -t Item -t Other -t Empty "$T"
	assert_stderr ''
	printf '%s\n' "$output" > out
	# Five queries, in -t order, 200 each, the marker each answer gave
	# sent back in the next.
	assert_equal "$(ck_log)" "$(printf '["records/query",200,1]\n%.0s' 1 2 3 4 5)"
	assert_equal "$(px_bodies records/query | jq -c '[.query.recordType, .resultsLimit, .continuationMarker]' |
	    sed -E 's/"[A-Za-z0-9+\/=]{8,}"/"M"/')" '["Item",200,null]
["Item",200,"M"]
["Item",200,"M"]
["Other",200,null]
["Empty",200,null]'
	# The markers of the first two answers.
	jq -r 'select(.path | endswith("/records/query")) | .response | fromjson | .continuationMarker' px.ndjson > markers
	m1=$(sed -n 1p markers) m2=$(sed -n 2p markers)
	assert_equal "$(px_bodies records/query | jq -r .continuationMarker)" "null
$m1
$m2
null
null"
	[ "$m1" != null ]
	[ "$m2" != null ]
	[ "$m1" != "$m2" ]

	expect_records Item > items
	expect_records Other > others
	assert_equal "$(wc -l < items) $(wc -l < others)" '450 30'
	{
		sed -n 1,200p items
		cursor "Item:$m1"
		sed -n 201,400p items
		cursor "Item:$m2"
		sed -n 401,450p items
		cursor "Item:"
		cat others
		cursor "Other:"
		cursor "Empty:"
	} > expected
	assert_equal "$(no_mtime < out)" "$(cat expected)"
	# Each record once.
	assert_equal "$(jq -r 'select(.kind == "record") | .type + "/" + .key' out | sort | uniq -d)" ''

	# Resuming at the second marker: the last 50 Items, then the rest.
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta-fetch -t Item -t Other -t Empty --resume "Item:$m2" "$T"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(sed -n '403,$p' expected)"
	assert_equal "$(ck_log | uniq -c | sed 's/^ *//')" '3 ["records/query",200,1]'
	# "Item:" is Item finished: Other and Empty only.
	run -0 --separate-stderr recdelta-fetch -t Item -t Other -t Empty --resume 'Item:' "$T"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(sed -n '454,$p' expected)"
	run -0 --separate-stderr recdelta-fetch -t Item -t Other -t Empty --resume 'Other:' "$T"
	assert_output "$(cursor 'Empty:')"
	run -0 --separate-stderr recdelta-fetch -t Item -t Other -t Empty --resume 'Empty:' "$T"
	assert_output ''

	# Every mtime is the record's modified timestamp.
	ck_records | jq -r "$MT"' [.recordName, (.modified.timestamp | mt)] | @tsv' | LC_ALL=C sort > want
	assert_equal "$(wc -l < want)" 480
	jq -r 'select(.kind == "record") | [.key, .mtime] | @tsv' out | LC_ALL=C sort > got
	assert_equal "$(cat got)" "$(cat want)"
}

@test "a fetch killed with -9 after a cursor resumes from the last cursor's value: the records before it and the resumed ones are the whole set, each once" {
	ck_seed Item it 0 1000
	# The third page is held until the test releases it, so that the kill
	# comes after two pages and their cursors.
	ck_control POST faults '{"path":"records/query","hold":true,"after":2}' > /dev/null
	recdelta-fetch -t Item "$T" > part 2> part.err 3>&- &
	pid=$!
	held() {
		[ "$(ck_control GET held | jq .held)" = 1 ]
	}
	wait_until held || fail "no page was held: $(cat part.err)"
	# (Whole lines only, as the last may be cut short by a kill.)
	whole() {
		head -n "$(wc -l < part)" part
	}
	kill -9 "$pid"
	status=0
	wait "$pid" || status=$?
	assert_equal "$status" 137
	assert_equal "$(ck_control POST release | jq .released)" 1
	ck_control DELETE faults > /dev/null

	n=$(whole | grep -n '"kind":"cursor"' | tail -n 1 | cut -d: -f1)
	[ -n "$n" ]
	v=$(sed -n "${n}p" part | jq -r .value)
	head -n "$n" part | jq -r 'select(.kind == "record") | .key' > before
	nb=$(wc -l < before)
	[ "$nb" -gt 0 ]
	[ "$nb" -lt 1000 ]
	[ $((nb % 200)) = 0 ]
	assert_equal "$nb" 400
	[[ $v == Item:?* ]]

	run -0 --separate-stderr recdelta-fetch -t Item --resume "$v" "$T"
	printf '%s\n' "$output" > rest
	jq -r 'select(.kind == "record") | .key' rest > after
	# Nothing before the cursor again, nothing twice, nothing missing.
	assert_equal "$(LC_ALL=C sort before after | uniq -d)" ''
	assert_equal "$(cat before after)" "$(seq -f 'it-%04g' 0 999)"
	# And exactly what an uninterrupted fetch writes from that point on.
	run -0 --separate-stderr recdelta-fetch -t Item "$T"
	printf '%s\n' "$output" > full
	assert_equal "$(head -n "$n" part)" "$(head -n "$n" full)"
	assert_equal "$(cat rest)" "$(tail -n "+$((n + 1))" full)"
	assert_equal "$(tail -n 1 rest)" "$(cursor 'Item:')"
}

# --- batches ----------------------------------------------------------------------

@test "push: 450 creates in one batch of -b 500 go as 3 requests of at most 200 operations; with the default batch too; results in input order, a cursor line in place" {
	# The keys in a scrambled order: k-(7i mod 450).
	for i in $(seq 0 449); do
		j=$(( (i * 7) % 450 ))
		printf -v k 'k-%04d' "$j"
		change create "$k" "{\"n\":$j,\"s\":\"v$j\"}"
		[ "$i" != 99 ] || printf '%s\n' '{"kind":"cursor","source":"x","name":"n","value":"after 100"}'
	done > in
	for b in 500 default; do
		ck_control POST reset > /dev/null
		if [ "$b" = default ]; then
			run -0 --separate-stderr recdelta-push "$T" < in
		else
			run -0 --separate-stderr recdelta-push -b "$b" "$T" < in
		fi
		assert_stderr "$(summary 450 0 0 0)"
		# Requests of at most 200 operations, 450 in all, all answered 200.
		run2=$(ck_control GET log | jq -c '[length, (map(select(.op != "records/modify" or .status != 200 or .ops > 200)) | length), (map(.ops) | add)]')
		if [ "$b" = 500 ]; then
			assert_equal "$run2" '[3,0,450]'
		else
			assert_equal "$(jq -c '.[1:]' <<<"$run2")" '[0,450]'
			[ "$(jq '.[0]' <<<"$run2")" -ge 3 ]
		fi
		ck_records | jq -s 'map({(.recordName): .recordChangeTag}) | add' > tags.json
		assert_equal "$(jq 'length' tags.json)" 450
		jq -c --slurpfile tags tags.json 'if .kind == "change" then
		    {kind:"result", op, type, key, status:"ok", rev:$tags[0][.key], fields} else . end' in > expected
		assert_equal "$output" "$(cat expected)"
		assert_equal "$(ck_records | jq -c 'select(.fields.s.value != "v" + (.fields.n.value | tostring))')" ''
	done
}

# --- the conflict loop ------------------------------------------------------------

@test "conflicts: an edit made on the server between diff and push is looked up and recomputed: retried with the new tag, now equal, recreated, or a create of an existing record made an update" {
	ck_modify '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{"n":{"value":1},"s":{"value":"x"}}}},
	    {"operationType":"create","record":{"recordName":"b","recordType":"Item","fields":{"n":{"value":1},"s":{"value":"x"}}}},
	    {"operationType":"create","record":{"recordName":"c","recordType":"Item","fields":{"n":{"value":1},"s":{"value":"x"}}}}]'
	ta=$(ck_tag a) tb=$(ck_tag b) tc=$(ck_tag c)
	for k in a b c d; do
		rec Item "$k" '{"n":2,"s":"x"}'
	done > L
	run -0 --separate-stderr recdelta-diff -t Item -l ndjson:L -r "$T" -o plan
	assert_equal "$(jq -c '[.op, .key, .rev, .changed]' plan | LC_ALL=C sort)" "[\"create\",\"d\",null,null]
[\"update\",\"a\",\"$ta\",[\"n\"]]
[\"update\",\"b\",\"$tb\",[\"n\"]]
[\"update\",\"c\",\"$tc\",[\"n\"]]"
	jq -cs 'sort_by(.key)[]' plan > p && mv p plan

	# Meanwhile another client moves a on, makes b what the plan wants,
	# deletes c and creates d.
	ck_modify '[{"operationType":"forceUpdate","record":{"recordName":"a","recordType":"Item","fields":{"n":{"value":3}}}},
	    {"operationType":"forceUpdate","record":{"recordName":"b","recordType":"Item","fields":{"n":{"value":2}}}},
	    {"operationType":"forceDelete","record":{"recordName":"c"}},
	    {"operationType":"create","record":{"recordName":"d","recordType":"Item","fields":{"n":{"value":5},"s":{"value":"y"}}}}]'
	tb2=$(ck_tag b)
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta-push --log plog "$T" < plan
	# a: the other client's edit overwritten, and said.
	assert_stderr "$(summary 1 2 1 0)
recdelta-push: overwrote 1 remote edit (see --log)"
	assert_output - <<EOF
{"kind":"result","op":"update","type":"Item","key":"a","status":"ok","rev":"$(ck_tag a)","fields":{"n":2,"s":"x"}}
{"kind":"result","op":"same","type":"Item","key":"b","status":"skipped","rev":"$tb2","fields":{"n":2,"s":"x"}}
{"kind":"result","op":"create","type":"Item","key":"c","status":"ok","rev":"$(ck_tag c)","fields":{"n":2,"s":"x"}}
{"kind":"result","op":"update","type":"Item","key":"d","status":"ok","rev":"$(ck_tag d)","fields":{"n":2,"s":"x"}}
EOF
	assert_equal "$(jq -r 'select(.msg | startswith("conflict")) | "\(.key): \(.msg)"' plog)" 'a: conflict
a: conflict resolved: retried
b: conflict
b: conflict resolved: now equal
c: conflict
c: conflict resolved: retried
d: conflict
d: conflict resolved: retried'
	# One modify of the batch; a lookup of each record alone; a retry of
	# each but b.
	assert_equal "$(ck_log | LC_ALL=C sort | uniq -c | sed 's/^ *//')" '4 ["records/lookup",200,1]
3 ["records/modify",200,1]
1 ["records/modify",200,4]'
	for k in a b c d; do
		assert_equal "$(ck_fields "$k")" '{"n":{"type":"INT64","value":2},"s":{"type":"STRING","value":"x"}}'
	done
	assert_equal "$(ck_tag b)" "$tb2"
	run -0 --separate-stderr recdelta-diff -t Item -l ndjson:L -r "$T" --exit-code
	assert_output ''

	# With --retries 0 a conflict stays one, and the other's edit stays.
	change update a '{"n":7,"s":"x"}' "$ta" > plan
	before=$(ck_fields a)
	run -6 --separate-stderr recdelta-push --retries 0 "$T" < plan
	assert_output '{"kind":"result","op":"update","type":"Item","key":"a","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
	assert_equal "$(ck_fields a)" "$before"
}

@test "a change tag longer than 48 bytes comes back whole and guards the next update; a reason longer than 256 bytes is kept whole in the result" {
	long=$(printf 'x%.0s' {1..80})
	ck_control POST options "{\"tagPrefix\":\"$long-\"}" > /dev/null
	change create a '{"n":1}' > plan
	run -0 --separate-stderr recdelta-push "$T" < plan
	tag=$(ck_tag a)
	[ "${#tag}" -gt 80 ]
	assert_output "{\"kind\":\"result\",\"op\":\"create\",\"type\":\"Item\",\"key\":\"a\",\"status\":\"ok\",\"rev\":\"$tag\",\"fields\":{\"n\":1}}"
	ck_control DELETE log > /dev/null
	change update a '{"n":2}' "$tag" > plan
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_stderr "$(summary 0 1 0 0)"
	tag2=$(ck_tag a)
	assert_output "{\"kind\":\"result\",\"op\":\"update\",\"type\":\"Item\",\"key\":\"a\",\"status\":\"ok\",\"rev\":\"$tag2\",\"fields\":{\"n\":2}}"
	# Guarded by the long tag and taken at once: no lookup, no retry.
	assert_equal "$(ck_log)" '["records/modify",200,1]'
	assert_equal "$(ck_fields a)" '{"n":{"type":"INT64","value":2}}'

	reason=$(printf 'r%.0s' {1..300})
	ck_control POST faults "{\"path\":\"records/modify\",\"recordName\":\"b\",\"count\":1,\"serverErrorCode\":\"BAD_REQUEST\",\"reason\":\"$reason\"}" > /dev/null
	change create b '{"n":1}' > plan
	run -6 --separate-stderr recdelta-push -q "$T" < plan
	assert_output "{\"kind\":\"result\",\"op\":\"create\",\"type\":\"Item\",\"key\":\"b\",\"status\":\"failed\",\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"$reason\"}}"
}

@test "conflicts reported top-level (HTTP 409 CONFLICT, and EXISTS for a create), and EXISTS per record, are resolved the same way" {
	ck_modify '[{"operationType":"create","record":{"recordName":"a","recordType":"Item","fields":{"n":{"value":1},"s":{"value":"x"}}}},
	    {"operationType":"create","record":{"recordName":"e","recordType":"Item","fields":{"n":{"value":7},"s":{"value":"x"}}}}]'
	ta=$(ck_tag a)
	ck_modify '[{"operationType":"forceUpdate","record":{"recordName":"a","recordType":"Item","fields":{"n":{"value":3}}}}]'
	ck_control POST options '{"conflictTopLevel":true,"createExistsCode":"EXISTS"}' > /dev/null
	ck_control DELETE log > /dev/null
	change update a '{"n":2,"s":"x"}' "$ta" > plan
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_output "{\"kind\":\"result\",\"op\":\"update\",\"type\":\"Item\",\"key\":\"a\",\"status\":\"ok\",\"rev\":\"$(ck_tag a)\",\"fields\":{\"n\":2,\"s\":\"x\"}}"
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .serverErrorCode]')" '["records/modify",409,"CONFLICT"]
["records/lookup",200,null]
["records/modify",200,null]'
	assert_equal "$(ck_fields a)" '{"n":{"type":"INT64","value":2},"s":{"type":"STRING","value":"x"}}'

	ck_control DELETE log > /dev/null
	change create e '{"n":2,"s":"x"}' > plan
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_output "{\"kind\":\"result\",\"op\":\"update\",\"type\":\"Item\",\"key\":\"e\",\"status\":\"ok\",\"rev\":\"$(ck_tag e)\",\"fields\":{\"n\":2,\"s\":\"x\"}}"
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .serverErrorCode]')" '["records/modify",409,"EXISTS"]
["records/lookup",200,null]
["records/modify",200,null]'
	assert_equal "$(ck_fields e)" '{"n":{"type":"INT64","value":2},"s":{"type":"STRING","value":"x"}}'

	# EXISTS inside an answer of 200, beside a create that succeeds.
	ck_control POST options '{"conflictTopLevel":false}' > /dev/null
	ck_control DELETE log > /dev/null
	{
		change create e '{"n":3,"s":"x"}'
		change create f '{"n":1}'
	} > plan
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_output - <<EOF
{"kind":"result","op":"update","type":"Item","key":"e","status":"ok","rev":"$(ck_tag e)","fields":{"n":3,"s":"x"}}
{"kind":"result","op":"create","type":"Item","key":"f","status":"ok","rev":"$(ck_tag f)","fields":{"n":1}}
EOF
	assert_equal "$(ck_log)" '["records/modify",200,2]
["records/lookup",200,1]
["records/modify",200,1]'
	assert_equal "$(ck_fields e)" '{"n":{"type":"INT64","value":3},"s":{"type":"STRING","value":"x"}}'
}

@test "deletes: orphans without --delete-orphans (nothing sent); with it, guarded by the tag, a stale one looked up and retried, one already gone skipped; --force sends forceDelete" {
	ck_seed Item d 1 6
	t1=$(ck_tag d-0001) t2=$(ck_tag d-0002) t3=$(ck_tag d-0003)
	ck_modify '[{"operationType":"forceUpdate","record":{"recordName":"d-0003","recordType":"Item","fields":{"n":{"value":33}}}},
	    {"operationType":"forceDelete","record":{"recordName":"d-0004"}}]'
	{
		change delete d-0001 '' "$t1"
		change delete d-0002 '' "$t2"
		change delete d-0003 '' "$t3"
		change delete d-0004 '' stale
	} > plan
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.op, .key, .status, .error.code]')" '["delete","d-0001","skipped","orphan"]
["delete","d-0002","skipped","orphan"]
["delete","d-0003","skipped","orphan"]
["delete","d-0004","skipped","orphan"]'
	assert_equal "$(ck_log)" ''
	assert_equal "$(ck_names | tr '\n' ' ')" 'd-0001 d-0002 d-0003 d-0005 '

	px_start
	run -0 --separate-stderr recdelta-push --delete-orphans "$T" < plan
	assert_stderr "$(summary 0 0 1 3)"
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.op, .key, .status, .error.code]')" '["delete","d-0001","ok",null]
["delete","d-0002","ok",null]
["delete","d-0003","ok",null]
["delete","d-0004","skipped","gone"]'
	assert_equal "$(ck_names)" d-0005
	# The batch with each tag; a lookup of each refused one; d-0003 again
	# with the tag it has now.
	assert_equal "$(px_bodies records/modify | jq -c '[.operations[] | [.operationType, .record.recordName, .record.recordChangeTag]]')" "[[\"delete\",\"d-0001\",\"$t1\"],[\"delete\",\"d-0002\",\"$t2\"],[\"delete\",\"d-0003\",\"$t3\"],[\"delete\",\"d-0004\",\"stale\"]]
[[\"delete\",\"d-0003\",\"$(jq -r '.records[0].recordChangeTag' mod.json)\"]]"
	assert_equal "$(px_bodies records/lookup | jq -c '[.records[].recordName]')" '["d-0003"]
["d-0004"]'

	: > px.ndjson
	change delete d-0005 '' stale > plan
	run -0 --separate-stderr recdelta-push --delete-orphans --force "$T" < plan
	assert_equal "$(results)" '["delete","d-0005","ok"]'
	assert_equal "$(px_bodies records/modify | jq -c '[.operations[] | [.operationType, .record.recordName, .record.recordChangeTag]]')" '[["forceDelete","d-0005",null]]'
	assert_equal "$(ck_names)" ''
}

# --- retries ----------------------------------------------------------------------

@test "THROTTLED with retryAfter 1 (in the body, or as a Retry-After header), TRY_AGAIN_LATER on a query: the retry comes at least 1 s later and succeeds" {
	change create a '{"n":1}' > in
	change create b '{"n":2}' >> in
	for f in '"retryAfter":1' '"retryAfterHeader":1'; do
		ck_control POST reset > /dev/null
		ck_control POST faults "{\"path\":\"records/modify\",\"count\":1,\"status\":429,\"serverErrorCode\":\"THROTTLED\",$f}" > /dev/null
		run -0 --separate-stderr recdelta-push "$T" < in
		assert_equal "$(results)" '["create","a","ok"]
["create","b","ok"]'
		assert_equal "${stderr_lines[-1]}" "$(summary 2 0 0 0)"
		assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .ops]')" '["records/modify",429,2]
["records/modify",200,2]'
		wait_ms=$(ck_control GET log | jq '.[1].ts - .[0].ts')
		echo "# $f: retried after $wait_ms ms" >&3
		[ "$wait_ms" -ge 1000 ]
		assert_equal "$(ck_names)" 'a
b'
	done
	ck_control POST faults '{"path":"records/query","count":1,"status":503,"retryAfter":1}' > /dev/null
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .serverErrorCode]')" '["records/query",503,"TRY_AGAIN_LATER"]
["records/query",200,null]'
	[ "$(ck_control GET log | jq '.[1].ts - .[0].ts')" -ge 1000 ]
}

@test "500 and 503 twice, 502, 504, a dropped connection and a timeout are retried: the push and the fetch succeed, the log shows each retry" {
	for s in 500 503; do
		ck_control POST reset > /dev/null
		ck_control POST faults "{\"path\":\"records/modify\",\"count\":2,\"status\":$s}" > /dev/null
		change create a '{"n":1}' > in
		run -0 --separate-stderr recdelta-push "$T" < in
		assert_output "{\"kind\":\"result\",\"op\":\"create\",\"type\":\"Item\",\"key\":\"a\",\"status\":\"ok\",\"rev\":\"$(ck_tag a)\",\"fields\":{\"n\":1}}"
		assert_equal "${stderr_lines[-1]}" "$(summary 1 0 0 0)"
		assert_equal "$(ck_log)" "[\"records/modify\",$s,1]
[\"records/modify\",$s,1]
[\"records/modify\",200,1]"
	done
	ck_control DELETE log > /dev/null
	ck_control POST faults '[{"path":"records/query","status":502},{"path":"records/query","status":504},{"path":"records/query","drop":true}]' > /dev/null
	run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .fault]')" '["records/query",502,"INTERNAL_ERROR"]
["records/query",504,"INTERNAL_ERROR"]
["records/query",0,"drop"]
["records/query",200,null]'

	# An answer slower than RECDELTA_HTTP_TIMEOUT is given up and asked
	# again: the first request is held until the test releases it.
	ck_control DELETE log > /dev/null
	ck_control POST faults '{"path":"records/query","hold":true}' > /dev/null
	RECDELTA_HTTP_TIMEOUT=1 run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
	# The retry's answer was the one used: the held one is not out yet.
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .fault]')" '["records/query",200,null]'
	assert_equal "$(ck_control POST release | jq .released)" 1
	logged() {
		[ "$(ck_control GET log | jq length)" -ge 2 ]
	}
	wait_until logged
	assert_equal "$(ck_control GET log | jq -c '.[] | [.op, .status, .fault]')" '["records/query",200,null]
["records/query",200,"delay"]'
}

@test "a store that stays unreachable: push exits 6, every change deferred, kept in the outbox; after the fault clears, replaying the outbox delivers them" {
	ck_modify '[{"operationType":"create","record":{"recordName":"u","recordType":"Item","fields":{"n":{"value":1}}}}]'
	tu=$(ck_tag u)
	{
		change create a '{"n":1}'
		change create b '{"n":2}'
		change update u '{"n":5}' "$tu"
	} > in
	ck_control POST faults '{"path":"records/modify","count":100,"status":503}' > /dev/null
	ck_control DELETE log > /dev/null
	RECDELTA_HTTP_RETRIES=2 run -6 --separate-stderr recdelta-push "$T" < in
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.op, .key, .status, .rev, .fields, .error.code]')" "[\"create\",\"a\",\"deferred\",null,{\"n\":1},\"unreachable\"]
[\"create\",\"b\",\"deferred\",null,{\"n\":2},\"unreachable\"]
[\"update\",\"u\",\"deferred\",\"$tu\",{\"n\":5},\"unreachable\"]"
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" | tail -n 2)" "$(summary 0 0 0 0)
Failed 0, Deferred 3 (kept for replay)"
	# The first attempt and 2 retries.
	assert_equal "$(ck_log)" "$(printf '["records/modify",503,3]\n%.0s' 1 2 3)"
	assert_equal "$(ck_names)" u
	assert_equal "$(ck_fields u)" '{"n":{"type":"INT64","value":1}}'

	printf '%s\n' "$output" | recdelta-checkpoint record --scope S > /dev/null
	run -0 --separate-stderr recdelta-checkpoint outbox
	assert_output - <<EOF
{"kind":"change","op":"create","type":"Item","key":"a","fields":{"n":1}}
{"kind":"change","op":"create","type":"Item","key":"b","fields":{"n":2}}
{"kind":"change","op":"update","type":"Item","key":"u","rev":"$tu","fields":{"n":5}}
EOF

	ck_control DELETE faults > /dev/null
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr bash -c 'set -o pipefail; recdelta-checkpoint outbox |
	    recdelta-push "$1" | recdelta-checkpoint record --scope S' _ "$T"
	assert_equal "$(results)" '["create","a","ok"]
["create","b","ok"]
["update","u","ok"]'
	assert_equal "$(ck_log)" '["records/modify",200,3]'
	run -0 --separate-stderr recdelta-checkpoint outbox
	assert_output ''
	assert_equal "$(ck_names)" 'a
b
u'
	assert_equal "$(ck_fields a)$(ck_fields b)$(ck_fields u)" '{"n":{"type":"INT64","value":1}}{"n":{"type":"INT64","value":2}}{"n":{"type":"INT64","value":5}}'
	[ "$(ck_tag u)" != "$tu" ]
}

@test "a batch split into two requests, the second refused to the end: the first 200 changes ok, the other 50 deferred, in input order; the replay delivers those" {
	for i in $(seq 0 249); do
		printf -v k 'k-%04d' "$i"
		change create "$k" "{\"n\":$i}"
	done > in
	# The first request goes through (a delay of 1 ms), every later one
	# is refused.
	ck_control POST faults '[{"path":"records/modify","delayMs":1},{"path":"records/modify","count":100,"status":503}]' > /dev/null
	RECDELTA_HTTP_RETRIES=1 run -6 --separate-stderr recdelta-push -b 500 "$T" < in
	assert_equal "$(ck_log)" '["records/modify",200,200]
["records/modify",503,50]
["records/modify",503,50]'
	assert_equal "$(printf '%s\n' "$output" | jq -r '.status' | uniq -c | sed 's/^ *//')" '200 ok
50 deferred'
	assert_equal "$(printf '%s\n' "$output" | jq -r .key)" "$(jq -r .key in)"
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" | tail -n 2)" "$(summary 200 0 0 0)
Failed 0, Deferred 50 (kept for replay)"
	assert_equal "$(ck_names | wc -l)" 200

	printf '%s\n' "$output" | recdelta-checkpoint record --scope S > /dev/null
	assert_equal "$(recdelta-checkpoint outbox)" "$(sed -n '201,$p' in)"
	ck_control DELETE faults > /dev/null
	run -0 --separate-stderr bash -c 'set -o pipefail; recdelta-checkpoint outbox |
	    recdelta-push "$1" | recdelta-checkpoint record --scope S' _ "$T"
	assert_equal "$(results | sort -u)" "$(sed -n '201,$p' in | jq -c '[.op, .key, "ok"]')"
	assert_equal "$(recdelta-checkpoint outbox)" ''
	assert_equal "$(ck_names)" "$(jq -r .key in)"
}

@test "smart-sync -t: a run that cannot deliver exits 6 with the changes in the outbox; the next run delivers them first, then finds nothing to do; diff-only -t reports per type" {
	for k in a b c; do
		rec Item "$k" "{\"n\":1,\"k\":\"$k\"}"
	done > L
	ck_control POST faults '{"path":"records/modify","count":100,"status":503}' > /dev/null
	RECDELTA_HTTP_RETRIES=1 run -6 --separate-stderr recdelta smart-sync -q -t Item -l ndjson:L -r "$T"
	assert_equal "$(recdelta-checkpoint outbox | jq -c '[.op, .key]')" '["create","a"]
["create","b"]
["create","c"]'
	assert_equal "$(ck_names)" ''

	ck_control DELETE faults > /dev/null
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta smart-sync -q -t Item -l ndjson:L -r "$T"
	assert_equal "$(recdelta-checkpoint outbox)" ''
	assert_equal "$(ck_names)" 'a
b
c'
	# Only the replay wrote: one modify of the three creates.
	assert_equal "$(ck_log | grep modify)" '["records/modify",200,3]'
	run -0 --separate-stderr recdelta diff-only -t Item -l ndjson:L -r "$T"
	assert_output 'Items: 3 unchanged, 0 new, 0 updated, 0 deleted'
}

# --- values -----------------------------------------------------------------------

@test "every field type: created on the wire, fetched in the stream form, pushed back (--force, and a diff's changed fields) unchanged on the wire; created from the stream in the wire form" {
	# Every type CloudKit has, as another client would write it.
	cat > wire.json <<'EOF'
{"s":{"value":"Zürich ☃ 𝄞 \"q\" \\ tab\t nl\n","type":"STRING"},
 "i":{"value":42,"type":"INT64"},
 "neg":{"value":-7,"type":"INT64"},
 "edge":{"value":9007199254740992,"type":"INT64"},
 "nedge":{"value":-9007199254740992,"type":"INT64"},
 "big":{"value":9007199254740993,"type":"INT64"},
 "max":{"value":9223372036854775807,"type":"INT64"},
 "min":{"value":-9223372036854775808,"type":"INT64"},
 "d":{"value":2.5,"type":"DOUBLE"},
 "dneg":{"value":-0.125,"type":"DOUBLE"},
 "ts":{"value":1714564800000,"type":"TIMESTAMP"},
 "tsms":{"value":1714564800123,"type":"TIMESTAMP"},
 "tsold":{"value":-1,"type":"TIMESTAMP"},
 "b":{"value":"AP8=","type":"BYTES"},
 "loc":{"value":{"latitude":33.5276,"longitude":-112.2626,"altitude":331.5,"horizontalAccuracy":5},"type":"LOCATION"},
 "ref":{"value":{"recordName":"team_ari","action":"NONE"},"type":"REFERENCE"},
 "refd":{"value":{"recordName":"team_sea","action":"DELETE_SELF"},"type":"REFERENCE"},
 "asset":{"value":{"fileChecksum":"AbC=","size":3,"downloadURL":"https://example.com/a"},"type":"ASSETID"},
 "sl":{"value":["a","Zürich ☃ 𝄞"],"type":"STRING_LIST"},
 "il":{"value":[1,9007199254740993,-9223372036854775808],"type":"INT64_LIST"},
 "dl":{"value":[1.5,-2.25],"type":"DOUBLE_LIST"},
 "tl":{"value":[0,1714564800123],"type":"TIMESTAMP_LIST"},
 "bl":{"value":["AP8=","aGk="],"type":"BYTES_LIST"},
 "ll":{"value":[{"latitude":1.5,"longitude":2.5},{"latitude":-1,"longitude":0,"speed":3}],"type":"LOCATION_LIST"},
 "rl":{"value":[{"recordName":"a","action":"NONE"},{"recordName":"b","action":"DELETE_SELF"}],"type":"REFERENCE_LIST"},
 "al":{"value":[{"fileChecksum":"x","size":1}],"type":"ASSETID_LIST"}}
EOF
	ck_request records/modify "{\"operations\":[{\"operationType\":\"create\",\"record\":{\"recordName\":\"all\",\"recordType\":\"Types\",\"fields\":$(tr -d '\n' < wire.json)}}]}" > r.json
	[ "$CK_STATUS" = 200 ]
	assert_equal "$(jq -r '.records[0].serverErrorCode // "ok"' r.json)" ok
	wire=$(ck_fields all)
	assert_equal "$wire" "$(canon < wire.json)"
	tag=$(ck_tag all)
	ms=$(ck_control GET state | jq '.dbs.public._defaultZone.records.all.modified.timestamp')

	run -0 --separate-stderr recdelta-fetch -t Types "$T"
	assert_stderr ''
	assert_equal "${#lines[@]}" 2
	assert_equal "${lines[1]}" "$(cursor 'Types:')"
	printf '%s\n' "${lines[0]}" > F
	cat > stream.json <<EOF
{"kind":"record","type":"Types","key":"all","rev":"$tag","mtime":"$(mtime "$ms")","fields":{
 "s":"Zürich ☃ 𝄞 \"q\" \\\\ tab\t nl\n",
 "i":42,"neg":-7,"edge":9007199254740992,"nedge":-9007199254740992,
 "big":{"\$int":"9007199254740993"},
 "max":{"\$int":"9223372036854775807"},
 "min":{"\$int":"-9223372036854775808"},
 "d":2.5,"dneg":-0.125,
 "ts":{"\$ts":"2024-05-01T12:00:00Z"},
 "tsms":{"\$ts":"2024-05-01T12:00:00.123Z"},
 "tsold":{"\$ts":"1969-12-31T23:59:59.999Z"},
 "b":{"\$bytes":"AP8="},
 "loc":{"\$loc":{"lat":33.5276,"lng":-112.2626,"altitude":331.5,"horizontalAccuracy":5}},
 "ref":{"\$ref":"team_ari"},
 "refd":{"\$ref":"team_sea","action":"DELETE_SELF"},
 "asset":{"\$asset":{"fileChecksum":"AbC=","size":3,"downloadURL":"https://example.com/a"}},
 "sl":["a","Zürich ☃ 𝄞"],
 "il":[1,{"\$int":"9007199254740993"},{"\$int":"-9223372036854775808"}],
 "dl":[1.5,-2.25],
 "tl":[{"\$ts":"1970-01-01T00:00:00Z"},{"\$ts":"2024-05-01T12:00:00.123Z"}],
 "bl":[{"\$bytes":"AP8="},{"\$bytes":"aGk="}],
 "ll":[{"\$loc":{"lat":1.5,"lng":2.5}},{"\$loc":{"lat":-1,"lng":0,"speed":3}}],
 "rl":[{"\$ref":"a"},{"\$ref":"b","action":"DELETE_SELF"}],
 "al":[{"\$asset":{"fileChecksum":"x","size":1}}]}}
EOF
	tr -d '\n' < stream.json > stream.line
	assert_equal "$(canon < F)" "$(canon < stream.line)"

	# Back, whole, with --force and a stale rev: one forceReplace, and the
	# wire form is what it was, field for field.
	sed -E 's/^\{"kind":"record",/{"kind":"change","op":"update",/; s/,"mtime":"[^"]*"//; s/"rev":"[^"]*"/"rev":"stale"/' F > plan
	ck_control DELETE log > /dev/null
	px_start
	run -0 --separate-stderr recdelta-push --force "$T" < plan
	assert_equal "$(results)" '["update","all","ok"]'
	assert_equal "$(ck_log)" '["records/modify",200,1]'
	assert_equal "$(px_bodies records/modify | jq -c '.operations[] | [.operationType, .record.recordName, .record.recordChangeTag]')" '["forceReplace","all",null]'
	[ "$(ck_tag all)" != "$tag" ]
	assert_equal "$(ck_fields all)" "$wire"

	# A local copy with i changed and b gone: the diff names just those,
	# the update sends them (b cleared), and the rest stays as it was.
	run -0 --separate-stderr recdelta-fetch -t Types "$T"
	printf '%s\n' "${lines[0]}" | node -e 'const fs=require("fs");
	    const t=fs.readFileSync(0,"utf8").replace(/"i":42([,}])/,"\"i\":43$1").replace(/"b":\{"\$bytes":"AP8="\},?/,"").replace(/,}/,"}");
	    process.stdout.write(t)' > L
	run -0 --separate-stderr recdelta-diff -t Types -l ndjson:L -r "$T" -o plan
	assert_equal "$(jq -c '[.op, .key, .rev, .changed]' plan)" "[\"update\",\"all\",\"$(ck_tag all)\",[\"b\",\"i\"]]"
	: > px.ndjson
	run -0 --separate-stderr recdelta-push "$T" < plan
	assert_equal "$(results)" '["update","all","ok"]'
	# Only the changed fields, b cleared, the number without a type.
	assert_equal "$(px_bodies records/modify | jq -c '.operations[] | [.operationType, .record.recordChangeTag, .record.fields]')" "[\"update\",\"$(jq -r .rev plan)\",{\"b\":{\"value\":null},\"i\":{\"value\":43}}]"
	assert_equal "$(ck_fields all)" "$(sed 's/"b":{"type":"BYTES","value":"AP8="},//; s/"i":{"type":"INT64","value":42}/"i":{"type":"INT64","value":43}/' <<<"$wire")"
	run -0 --separate-stderr recdelta-diff -t Types -l ndjson:L -r "$T" --exit-code
	assert_output ''

	# From the stream: a new record of a new type, each tagged value and
	# list; the wire form takes each type, and the record reads back equal.
	cat > new.ndjson <<'EOF'
{"kind":"record","type":"Fresh","key":"new","fields":{"s":"Zürich ☃ 𝄞","i":42,"d":2.5,"big":{"$int":"9007199254740993"},"max":{"$int":"9223372036854775807"},"min":{"$int":"-9223372036854775808"},"ts":{"$ts":"2024-05-01T12:00:00Z"},"tsms":{"$ts":"2024-05-01T13:00:00.5+01:00"},"b":{"$bytes":"AP8="},"loc":{"$loc":{"lat":33.5276,"lng":-112.2626,"altitude":331.5}},"ref":{"$ref":"team_ari"},"refd":{"$ref":"team_sea","action":"DELETE_SELF"},"asset":{"$asset":{"fileChecksum":"AbC=","size":3}},"sl":["a","b"],"il":[1,2],"bigl":[1,{"$int":"9007199254740993"}],"dl":[1.5,2.5],"tl":[{"$ts":"1970-01-01T00:00:00Z"}],"bl":[{"$bytes":"aGk="}],"ll":[{"$loc":{"lat":1.5,"lng":2.5}}],"rl":[{"$ref":"a"},{"$ref":"b","action":"DELETE_SELF"}],"al":[{"$asset":{"fileChecksum":"x"}}]}}
EOF
	run -0 --separate-stderr bash -c 'set -o pipefail; recdelta-diff -t Fresh -l ndjson:new.ndjson -r "$1" | recdelta-push "$1"' _ "$T"
	assert_equal "$(results)" '["create","new","ok"]'
	assert_equal "$(ck_fields new)" "$(canon <<'EOF'
{"s":{"value":"Zürich ☃ 𝄞","type":"STRING"},
 "i":{"value":42,"type":"INT64"},
 "d":{"value":2.5,"type":"DOUBLE"},
 "big":{"value":9007199254740993,"type":"INT64"},
 "max":{"value":9223372036854775807,"type":"INT64"},
 "min":{"value":-9223372036854775808,"type":"INT64"},
 "ts":{"value":1714564800000,"type":"TIMESTAMP"},
 "tsms":{"value":1714564800500,"type":"TIMESTAMP"},
 "b":{"value":"AP8=","type":"BYTES"},
 "loc":{"value":{"latitude":33.5276,"longitude":-112.2626,"altitude":331.5},"type":"LOCATION"},
 "ref":{"value":{"recordName":"team_ari","action":"NONE"},"type":"REFERENCE"},
 "refd":{"value":{"recordName":"team_sea","action":"DELETE_SELF"},"type":"REFERENCE"},
 "asset":{"value":{"fileChecksum":"AbC=","size":3},"type":"ASSETID"},
 "sl":{"value":["a","b"],"type":"STRING_LIST"},
 "il":{"value":[1,2],"type":"INT64_LIST"},
 "bigl":{"value":[1,9007199254740993],"type":"INT64_LIST"},
 "dl":{"value":[1.5,2.5],"type":"DOUBLE_LIST"},
 "tl":{"value":[0],"type":"TIMESTAMP_LIST"},
 "bl":{"value":["aGk="],"type":"BYTES_LIST"},
 "ll":{"value":[{"latitude":1.5,"longitude":2.5}],"type":"LOCATION_LIST"},
 "rl":{"value":[{"recordName":"a","action":"NONE"},{"recordName":"b","action":"DELETE_SELF"}],"type":"REFERENCE_LIST"},
 "al":{"value":[{"fileChecksum":"x"}],"type":"ASSETID_LIST"}}
EOF
)"
	run -0 --separate-stderr recdelta-diff -t Fresh -l ndjson:new.ndjson -r "$T" --exit-code
	assert_output ''

	# A plain number goes without a type, whatever its size: the schema
	# (INT64 here, from "big") decides, and every digit arrives.
	change create plain '{"big":9223372036854775807,"i":-9223372036854775808}' '' Fresh > in
	run -0 --separate-stderr recdelta-push "$T" < in
	assert_equal "$(results)" '["create","plain","ok"]'
	assert_equal "$(ck_fields plain)" '{"big":{"type":"INT64","value":9223372036854775807},"i":{"type":"INT64","value":-9223372036854775808}}'
	run -0 --separate-stderr recdelta-fetch -t Fresh "$T"
	assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.key == "plain") | .fields')" '{"big":{"$int":"9223372036854775807"},"i":{"$int":"-9223372036854775808"}}'
}

# --- refusals, credentials, store words ---------------------------------------

@test "refused per change: booleans, untagged objects, mixed lists, lists of lists (code type); keys CloudKit cannot hold (code key); nothing of them written or sent" {
	long=$(printf 'k%.0s' $(seq 1 255))
	{
		change create ok1 '{"n":1}'
		change create flag '{"f":true}'
		change create obj '{"o":{"x":1}}'
		change create mixed '{"m":[1,"a"]}'
		change create lol '{"l":[[1]]}'
		change create _hidden '{"n":1}'
		change create 'Zürich' '{"n":1}'
		change create 'a\u0001b' '{"n":1}'
		change create "${long}k" '{"n":1}'
		change create "$long" '{"n":1}'
		change create subms '{"t":{"$ts":"2024-05-01T12:00:00.1234Z"}}'
	} > in
	run -6 --separate-stderr recdelta-push "$T" < in
	assert_equal "$(printf '%s\n' "$output" | jq -c '[(.key | if length > 20 then length else . end), .status, .error.code]' | sed -n 1,10p)" '["ok1","ok",null]
["flag","failed","type"]
["obj","failed","type"]
["mixed","failed","type"]
["lol","failed","type"]
["_hidden","failed","key"]
["Zürich","failed","key"]
["a\u0001b","failed","key"]
[256,"failed","key"]
[255,"ok",null]'
	assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.key == "subms") | [.status, (.rev != null)]')" '["failed",false]'
	assert_equal "$(ck_names | sed "s/$long/LONG/")" 'LONG
ok1'
	# The refused ones never left: one request of the 2 others.
	assert_equal "$(ck_log)" '["records/modify",200,2]'
	assert_equal "$(printf '%s\n' "${stderr_lines[@]}" | tail -n 2)" "$(summary 2 0 0 0)
Failed 9, Deferred 0 (kept for replay)"
}

@test "credentials: a missing key ID or key file is exit 4 naming the variable; a config file serves when the environment does not; group/other access to it or the key file warns chmod 600; the key never appears in a message or log" {
	ck_seed Item it 0 2
	ck_control DELETE log > /dev/null
	change create new '{"n":1}' > in
	for v in RECDELTA_CLOUDKIT_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE; do
		run -4 --separate-stderr env -u "$v" recdelta-fetch -t Item "$T"
		assert_output ''
		[[ $stderr == *"$v"* ]]
		run -4 --separate-stderr env -u "$v" recdelta-push "$T" < in
		assert_output ''
		[[ $stderr == *"$v"* ]]
	done
	assert_equal "$(ck_log)" ''

	# A config file, by RECDELTA_CLOUDKIT_CONFIG or in its default place.
	mkdir -p config/recdelta
	cat > config/recdelta/cloudkit.conf <<EOF
# the test emulator
key_id = $CK_KEY_ID

key_file = $CK_KEY_FILE
url = $CK_URL
EOF
	chmod 600 config/recdelta/cloudkit.conf
	cp config/recdelta/cloudkit.conf ck.conf
	unset RECDELTA_CLOUDKIT_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE RECDELTA_CLOUDKIT_URL
	run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_stderr ''
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
	rm config/recdelta/cloudkit.conf
	RECDELTA_CLOUDKIT_CONFIG=$PWD/ck.conf run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_stderr ''
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
	# The environment comes first.
	RECDELTA_CLOUDKIT_CONFIG=$PWD/ck.conf RECDELTA_CLOUDKIT_KEY_ID=otherkey run -4 --separate-stderr recdelta-fetch -t Item "$T"
	has_auth_failure
	export RECDELTA_CLOUDKIT_CONFIG=$PWD/ck.conf

	# Readable or writable by others: a warning, and the run goes on.
	for m in 644 640 620; do
		chmod "$m" ck.conf
		run -0 --separate-stderr recdelta-fetch -t Item "$T"
		assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(expect_records Item; cursor 'Item:')"
		assert_equal "$(grep -c 'chmod 600' <<<"$stderr")" 1
		[[ $stderr == *"chmod 600 $PWD/ck.conf"* ]] || [[ $stderr == *"chmod 600 ck.conf"* ]]
	done
	chmod 600 ck.conf
	cp "$CK_KEY_FILE" key.pem
	chmod 644 key.pem
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/key.pem run -0 --separate-stderr recdelta-fetch -t Item "$T"
	assert_equal "$(grep -c 'chmod 600' <<<"$stderr")" 1
	[[ $stderr == *"$PWD/key.pem"* ]]

	# The key's text is in no message and no log line: a good run, a
	# refused one, a key file that is not a key.
	secret=$(sed -n 2p "$CK_KEY_FILE")
	[ ${#secret} -gt 20 ]
	openssl ecparam -name prime256v1 -genkey -noout -out other.pem 2>/dev/null
	chmod 600 other.pem
	other=$(sed -n 2p other.pem)
	printf '%s\n' '-----BEGIN EC PRIVATE KEY-----' 'SECRETSECRETSECRETnotbase64!!' '-----END EC PRIVATE KEY-----' > bad.pem
	chmod 600 bad.pem
	run -0 --separate-stderr recdelta-push --log plog "$T" < in
	all=$stderr
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/other.pem run -4 --separate-stderr recdelta-push --log plog "$T" < in
	all+=$stderr
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/bad.pem run -4 --separate-stderr recdelta-push --log plog "$T" < in
	assert_output ''
	all+=$stderr
	RECDELTA_CLOUDKIT_KEY_FILE=$PWD/bad.pem run -4 --separate-stderr recdelta-fetch -t Item "$T"
	all+=$stderr
	[ -s plog ]
	for s in "$secret" "$other" SECRETSECRET 'PRIVATE KEY'; do
		refute grep -qF -- "$s" plog
		[[ $all != *"$s"* ]]
	done
}

@test "store words: a bad container, environment or database, a missing part: exit 2 and no request; without -t, exit 2 naming -t" {
	for w in 'cloudkit:iCloud.com.example test/development/public' \
	    "cloudkit:$CK_CONTAINER/staging/public" "cloudkit:$CK_CONTAINER/development/secret" \
	    "cloudkit:$CK_CONTAINER/development" "cloudkit:$CK_CONTAINER" 'cloudkit:'; do
		run -2 --separate-stderr recdelta-fetch -t Item "$w"
		assert_output ''
		[ -n "$stderr" ]
		run -2 --separate-stderr recdelta-push "$w" < /dev/null
		assert_output ''
	done
	# A cursor of a type not named with -t.
	run -2 --separate-stderr recdelta-fetch -t Item --resume 'Other:' "$T"
	assert_output ''
	assert_equal "$(ck_log)" ''
	run -2 --separate-stderr recdelta-fetch "$T"
	assert_output ''
	[[ $stderr == *'name the record types with -t'* ]]
}

# --- the change feed of a private zone -------------------------------------------

@test "--changes on a private zone: everything in pages of 200 with a syncToken cursor after each; from the last token, only what changed since and a tombstone" {
	export CK_DATABASE=private
	ck_request zones/modify '{"operations":[{"operationType":"create","zone":{"zoneID":{"zoneName":"Sync"}}}]}' > r.json
	[ "$CK_STATUS" = 200 ]
	ck_seed Item it 0 250 Sync
	P=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/private/Sync
	# The tokens, as the feed gives them.
	ck_request records/changes '{"zoneID":{"zoneName":"Sync"},"resultsLimit":200}' > c1.json
	t1=$(jq -r .syncToken c1.json)
	ck_request records/changes "{\"zoneID\":{\"zoneName\":\"Sync\"},\"syncToken\":\"$t1\"}" > c2.json
	t2=$(jq -r .syncToken c2.json)
	assert_equal "$(jq -c '[(.records | length), .moreComing]' c1.json c2.json)" '[200,true]
[50,false]'

	ck_control DELETE log > /dev/null
	run -0 --separate-stderr recdelta-fetch --changes "$P"
	assert_stderr ''
	expect_records Item private Sync > all
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(sed -n 1,200p all
	    cursor "$t1" syncToken "$P"
	    sed -n '201,$p' all
	    cursor "$t2" syncToken "$P")"
	assert_equal "$(ck_log)" '["records/changes",200,1]
["records/changes",200,1]'

	# Edits, a create and a delete, in this order.
	ck_modify '[{"operationType":"forceUpdate","record":{"recordName":"it-0003","recordType":"Item","fields":{"n":{"value":103}}}}]' Sync
	ck_modify '[{"operationType":"forceDelete","record":{"recordName":"it-0005"}}]' Sync
	ck_modify '[{"operationType":"create","record":{"recordName":"new-0001","recordType":"Item","fields":{"n":{"value":1}}}}]' Sync
	ck_modify '[{"operationType":"forceUpdate","record":{"recordName":"it-0007","recordType":"Item","fields":{"n":{"value":107}}}}]' Sync
	ck_request zones/list > z.json
	t3=$(jq -r '.zones[] | select(.zoneID.zoneName == "Sync") | .syncToken' z.json)
	[ "$t3" != "$t2" ]
	expect_records Item private Sync > all
	run -0 --separate-stderr recdelta-fetch --changes --resume "$t2" "$P"
	assert_equal "$(printf '%s\n' "$output" | no_mtime)" "$(grep '"key":"it-0003"' all
	    printf '%s\n' '{"kind":"record","type":"*","key":"it-0005","deleted":true}'
	    grep '"key":"new-0001"' all
	    grep '"key":"it-0007"' all
	    cursor "$t3" syncToken "$P")"
	# Nothing since: the token alone.
	run -0 --separate-stderr recdelta-fetch --changes --resume "$t3" "$P"
	assert_output "$(cursor "$t3" syncToken "$P")"
}

@test "a LOCATION with a member lat or lng besides its coordinates is refused, not read as a record that would write back other coordinates" {
	ck_request records/modify '{"operations":[{"operationType":"create","record":{"recordName":"odd","recordType":"Place","fields":{"loc":{"value":{"latitude":1,"longitude":2,"lat":3},"type":"LOCATION"}}}}]}' > r.json
	[ "$CK_STATUS" = 200 ]
	run -3 --separate-stderr recdelta-fetch -t Place "$T"
	assert_output ''
	assert_stderr 'recdelta-fetch: cloudkit: records/query: Place/odd: field "loc": a LOCATION value that is ambiguous (a member lat or lng)'
}
