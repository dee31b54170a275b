#!/usr/bin/env bats
# The couchdb: store against a real pouchdb-server (tests/package.json),
# one server for the whole file, a database of its own for each test; and
# PouchDB's own client and replicator as the second opinion.  Requests are
# counted from the server's request log (helpers/couchdb.bash), by the
# test's database.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/couchdb

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	couch_start "$BATS_FILE_TMPDIR/couch"
}

teardown_file() {
	couch_stop
}

suite_setup() {
	DB=t$BATS_TEST_NUMBER
	couch_db "$DB"
	T=couchdb:$COUCH_URL/$DB
	export RECDELTA_HTTP_BACKOFF=0.05
	export COUCH_USER=admin COUCH_PASSWORD_FILE=$RECDELTA_COUCHDB_PASSWORD_FILE
}

# requests: this test's database's requests, "METHOD PATH" without query.
requests() {
	couch_requests | grep -E "^[A-Z]+ /$DB(/|\$|\?)" | sed 's/?.*//'
}

# live: the target's records, sorted, without revs.
live() {
	recdelta-fetch "$T" | grep '^{"kind":"record"' | sed -E 's/,"rev":"[^"]*"//' | LC_ALL=C sort
}

pouch() {
	node "$TOP/tests/helpers/couch-pouchdb.js" "$@"
}

@test "round trip: 64-bit integers, Unicode and every tagged value, fetch, diff, push, fetch" {
	cat > local.ndjson <<'EOF'
{"kind":"record","type":"Team","key":"ari","fields":{"big":9223372036854775807,"neg":-9223372036854775808,"edge":9007199254740993,"safe":9007199254740992,"tagged":{"$int":"12345678901234567890"},"small":{"$int":"7"},"pi":3.25,"tiny":1e-7}}
{"kind":"record","type":"Team","key":"nyg","fields":{"name":"Giants \u00e9\u2603\ud834\udd1e","nul":"a\u0000b","_under":true,"list":[1,{"$ref":"x"},null],"loc":{"$loc":{"lat":33.5276,"lng":-112.2626}},"ts":{"$ts":"2026-01-10T16:02:53.123456789Z"},"bytes":{"$bytes":"AAH/"},"asset":{"$asset":{"fileChecksum":"abc","size":12}},"ref":{"$ref":"team_ari","action":"DELETE_SELF"}}}
{"kind":"record","type":"Stadium","key":"s\u00fc\ud834\udd1e","fields":{}}
EOF
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	run -0 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_equal "$stderr" "Created 3, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	run -0 --separate-stderr recdelta-diff --exit-code -l ndjson:local.ndjson -r "$T"
	assert_output ""
	# Beyond 2^53 an integer is kept as {"$int"}; a tagged value, and all
	# else, byte for byte.
	run -0 --separate-stderr live
	assert_output - <<'EOF'
{"kind":"record","type":"Stadium","key":"sü𝄞","fields":{}}
{"kind":"record","type":"Team","key":"ari","fields":{"big":{"$int":"9223372036854775807"},"neg":{"$int":"-9223372036854775808"},"edge":{"$int":"9007199254740993"},"safe":9007199254740992,"tagged":{"$int":"12345678901234567890"},"small":{"$int":"7"},"pi":3.25,"tiny":1e-7}}
{"kind":"record","type":"Team","key":"nyg","fields":{"name":"Giants é☃𝄞","nul":"a\u0000b","_under":true,"list":[1,{"$ref":"x"},null],"loc":{"$loc":{"lat":33.5276,"lng":-112.2626}},"ts":{"$ts":"2026-01-10T16:02:53.123456789Z"},"bytes":{"$bytes":"AAH/"},"asset":{"$asset":{"fileChecksum":"abc","size":12}},"ref":{"$ref":"team_ari","action":"DELETE_SELF"}}}
EOF
	# The documents as the server keeps them: _id TYPE:KEY, the record's
	# type, key and fields.
	run -0 couch_curl GET "/$DB/Team%3Aari"
	assert_equal "$(sed -E 's/,"_rev":"1-[0-9a-f]{32}"//' <<<"$output")" \
	    '{"type":"Team","key":"ari","fields":{"big":{"$int":"9223372036854775807"},"neg":{"$int":"-9223372036854775808"},"edge":{"$int":"9007199254740993"},"safe":9007199254740992,"tagged":{"$int":"12345678901234567890"},"small":{"$int":"7"},"pi":3.25,"tiny":1e-7},"_id":"Team:ari"}'
	# A change of one field: one update, under the rev it read.
	sed -i 's/"pi":3.25/"pi":3.5/' local.ndjson
	rev=$(recdelta-fetch -t Team "$T" | jq -r 'select(.key == "ari") | .rev')
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	run -0 jq -r '[.op, .key, .rev] | @tsv' plan.ndjson
	assert_output "$(printf 'update\tari\t%s' "$rev")"
	run -0 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_equal "$stderr" "Created 0, Updated 1, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	assert_equal "$(jq -r .rev <<<"$output" | cut -d- -f1)" 2
	run -0 recdelta-diff --exit-code -l ndjson:local.ndjson -r "$T"
}

@test "a number no double holds is refused for its record alone, nothing altered" {
	{
		rec T a '{"x":0.30000000000000001}'
		rec T b '{"x":0.3}'
		rec T c '{"x":1e400}'
	} > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	run -6 --separate-stderr recdelta-push "$T" < plan.ndjson
	output=$(sed -E 's/"rev":"1-[0-9a-f]{32}"/"rev":"1-R"/' <<<"$output")
	assert_output - <<'EOF'
{"kind":"result","op":"create","type":"T","key":"a","status":"failed","error":{"code":"inexact","message":"0.30000000000000001 is not the value of a double, which the store would keep instead"}}
{"kind":"result","op":"create","type":"T","key":"b","status":"ok","rev":"1-R","fields":{"x":0.3}}
{"kind":"result","op":"create","type":"T","key":"c","status":"failed","error":{"code":"inexact","message":"1e400 is not the value of a double, which the store would keep instead"}}
EOF
	run -0 live
	assert_output '{"kind":"record","type":"T","key":"b","fields":{"x":0.3}}'
}

@test "hostile keys round-trip and address no other document or database" {
	couch_db "${DB}x"
	couch_curl PUT "/${DB}x/keep" '{"v":1}' > /dev/null
	couch_curl PUT "/$DB/_design/x" '{"views":{}}' > /dev/null
	keys=('/' '..' '../..' "../${DB}x/keep" '_design/x' '_local/y' '?' '#' 'a?b#c' '%2F' '%' ' ' '_leading' 'ü𝄞' 'a/b' 'x:y' '"' '\')
	for k in "${keys[@]}"; do
		jq -cn --arg k "$k" '{kind:"record",type:"K",key:$k,fields:{k:$k}}'
	done > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	run -0 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_equal "$stderr" "Created 18, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	run -0 recdelta-diff --exit-code -l ndjson:local.ndjson -r "$T"
	# One document each, K:KEY, beside the design document; the other
	# database as it was.
	run -0 couch_curl GET "/$DB/_all_docs"
	assert_equal "$(jq -r '.rows[].id' <<<"$output" | LC_ALL=C sort)" \
	    "$( (echo _design/x; printf 'K:%s\n' "${keys[@]}") | LC_ALL=C sort)"
	run -0 couch_curl GET "/${DB}x/_all_docs?include_docs=true"
	assert_equal "$(jq -c '[.rows[].doc | del(._rev)]' <<<"$output")" '[{"v":1,"_id":"keep"}]'
	# Changed and deleted, each key alone.
	sed -i 's/"fields":{"k":/"fields":{"v":2,"k":/' local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	run -0 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_equal "$stderr" "Created 0, Updated 18, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	: > empty.ndjson
	recdelta-diff --allow-empty -l ndjson:empty.ndjson -r "$T" > plan.ndjson
	run -0 --separate-stderr recdelta-push --delete-orphans "$T" < plan.ndjson
	assert_equal "$stderr" "Created 0, Updated 0, Skipped 0 unchanged, Deleted 18, Conflicts 0"
	run -0 couch_curl GET "/$DB/_all_docs"
	assert_equal "$(jq -r '.rows[].id' <<<"$output")" _design/x
	run -0 couch_curl GET "/${DB}x/_all_docs?include_docs=true"
	assert_equal "$(jq -c '[.rows[].doc | del(._rev)]' <<<"$output")" '[{"v":1,"_id":"keep"}]'
	# Every request went to this database's _all_docs and _bulk_docs: no
	# key ever went into a path.
	run -0 requests
	assert_equal "$(sort -u <<<"$output" | grep -v "^GET /$DB/_all_docs\$" | grep -v "^POST /$DB/_bulk_docs\$" | grep -v "^GET /$DB\$" | grep -v "^PUT /$DB/_design/x\$" | grep -v "^[A-Z]* /$DB\$")" ""
	# A type with ":" or a leading "_" is refused: its _id would be ambiguous.
	{ rec 'a:b' k '{}'; rec _T k '{}'; } > bad.ndjson
	recdelta-diff -l ndjson:bad.ndjson -r "$T" > plan.ndjson
	run -6 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_output - <<'EOF'
{"kind":"result","op":"create","type":"a:b","key":"k","status":"failed","error":{"code":"type","message":"a CouchDB record type holds no \":\" and does not start with \"_\""}}
{"kind":"result","op":"create","type":"_T","key":"k","status":"failed","error":{"code":"type","message":"a CouchDB record type holds no \":\" and does not start with \"_\""}}
EOF
}

@test "listing: pages of 500 by startkey, a cursor after each, --resume goes on after it, -t reads one range a type" {
	seq 1 1201 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	rec H h1 '{}' >> local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	recdelta-push -q "$T" < plan.ndjson > /dev/null
	: > "$COUCH_DIR/requests.log"
	run -0 --separate-stderr recdelta-fetch "$T"
	assert_equal "$(grep -c '"kind":"record"' <<<"$output")" 1202
	# In _id order, G:g1 G:g10 G:g100 G:g1000 ...: the 500th and the 1000th.
	c1=$(printf 'G:g%s\n' $(seq 1 1201) | LC_ALL=C sort | sed -n 500p)
	c2=$(printf 'G:g%s\n' $(seq 1 1201) | LC_ALL=C sort | sed -n 1000p)
	first=$(printf 'g%s\n' $(seq 1 1201) | LC_ALL=C sort | sed -n 501p)
	run -0 jq -r 'select(.kind == "cursor") | [.name, .value] | @tsv' <<<"$output"
	assert_output "$(printf 'startkey\t%s\nstartkey\t%s\nstartkey\tH:h1' "$c1" "$c2")"
	assert_equal "$(requests | sort | uniq -c | sed 's/^ *//')" "3 GET /$DB/_all_docs"
	# Resumed from the first cursor: the records after it, none twice.
	run -0 --separate-stderr recdelta-fetch --resume "$c1" "$T"
	assert_equal "$(grep -c '"kind":"record"' <<<"$output")" 702
	assert_equal "$(grep '"kind":"record"' <<<"$output" | head -n 1 | jq -r .key)" "$first"
	# By type: H alone, one request; then G and H, resumed in G.
	: > "$COUCH_DIR/requests.log"
	run -0 --separate-stderr recdelta-fetch -t H "$T"
	assert_output - <<EOF
$(recdelta-fetch -t H "$T" | head -n 1)
{"kind":"cursor","source":"$T","name":"startkey","value":"H:h1"}
EOF
	assert_equal "$(jq -r .key <<<"${lines[0]}")" h1
	run -0 --separate-stderr recdelta-fetch -t G -t H --resume "$c2" "$T"
	assert_equal "$(grep -c '"kind":"record"' <<<"$output")" 202
	run -2 --separate-stderr recdelta-fetch -t G --resume H:h1 "$T"
	assert_equal "$stderr" 'recdelta-fetch: --resume "H:h1": expected the value of a startkey cursor, TYPE:KEY, TYPE one of the -t types'
}

@test "--changes reads the feed since a last_seq, tombstones with their type; smart-sync --incremental costs one read of the feed and its writes" {
	seq 1 20 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	export RECDELTA_STATE=$PWD/state.db
	run -0 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "$T"
	assert_equal "$stderr" "Created 20, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	run -0 --separate-stderr recdelta-fetch --changes "$T"
	assert_equal "${lines[20]}" "{\"kind\":\"cursor\",\"source\":\"$T\",\"name\":\"last_seq\",\"value\":20}"
	# Three local changes: an incremental run reads the feed (whole, the
	# first time: no cursor kept yet), and writes them in one request.
	sed -i -E 's/"n":(3|5|7)\}/"n":0}/' local.ndjson
	: > "$COUCH_DIR/requests.log"
	run -0 --separate-stderr recdelta smart-sync --incremental -l ndjson:local.ndjson -r "$T"
	assert_equal "$stderr" "Created 0, Updated 3, Skipped 17 unchanged, Deleted 0, Conflicts 0"
	run -0 requests
	assert_output "GET /$DB/_changes
POST /$DB/_bulk_docs"
	run -0 recdelta-checkpoint cursor get feed
	assert_output 20
	# Another writer edits one record and deletes another: the feed since
	# the last_seq says so in one request, a tombstone of type G.
	rev=$(recdelta-fetch -t G "$T" | jq -r 'select(.key == "g9") | .rev')
	rev2=$(recdelta-fetch -t G "$T" | jq -r 'select(.key == "g10") | .rev')
	pouch put "$COUCH_URL/$DB" <<EOF
{"_id":"G:g9","_rev":"$rev","type":"G","key":"g9","fields":{"n":99}}
{"_id":"G:g10","_rev":"$rev2","_deleted":true}
EOF
	: > "$COUCH_DIR/requests.log"
	run -0 --separate-stderr recdelta-fetch --changes --resume 23 "$T"
	assert_equal "${#lines[@]}" 3
	assert_equal "$(jq -c 'del(.rev)' <<<"${lines[0]}")" '{"kind":"record","type":"G","key":"g9","fields":{"n":99}}'
	assert_equal "$(jq -c 'del(.rev)' <<<"${lines[1]}")" '{"kind":"record","type":"G","key":"g10","deleted":true}'
	assert_equal "$(jq -r .rev <<<"${lines[1]}" | cut -d- -f1)" 2
	assert_equal "${lines[2]}" "{\"kind\":\"cursor\",\"source\":\"$T\",\"name\":\"last_seq\",\"value\":25}"
	run -0 requests
	assert_output "GET /$DB/_changes"
	# The cursor, kept by the checkpoint, is the next --resume.
	recdelta-fetch --changes --resume 23 "$T" |
	    recdelta-checkpoint --state "$PWD/feed.db" record --scope feed > /dev/null
	run -0 recdelta-checkpoint --state "$PWD/feed.db" cursor get "$T/last_seq"
	assert_output 25
	run -0 --separate-stderr recdelta-fetch --changes --resume 25 "$T"
	assert_output "{\"kind\":\"cursor\",\"source\":\"$T\",\"name\":\"last_seq\",\"value\":25}"
	# -t selects in the feed too, tombstones included.
	run -0 --separate-stderr recdelta-fetch --changes -t H --resume 23 "$T"
	assert_equal "${#lines[@]}" 1
}

@test "PouchDB's replicator: a database recdelta wrote replicates to one that reads the same; a database PouchDB wrote reads as PouchDB wrote it" {
	couch_db "${DB}r"
	{
		seq 1 300 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:., s:("é" * (. % 3))}}'
		rec Team ari '{"big":{"$int":"9223372036854775807"},"loc":{"$loc":{"lat":1.5,"lng":2}}}'
		rec Team 'ü𝄞/..' '{"ts":{"$ts":"2026-01-10T16:02:53Z"}}'
	} > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	recdelta-push -q "$T" < plan.ndjson > /dev/null
	run -0 pouch replicate "$COUCH_URL/$DB" "$COUCH_URL/${DB}r"
	assert_output '{"docs_written":302}'
	# Every document there, revs included, is what recdelta reads here.
	recdelta-fetch "$T" | grep '"kind":"record"' | LC_ALL=C sort > here.ndjson
	recdelta-fetch "couchdb:$COUCH_URL/${DB}r" | grep '"kind":"record"' | LC_ALL=C sort > there.ndjson
	assert_equal "$(wc -l < there.ndjson)" 302
	cmp here.ndjson there.ndjson
	# And what PouchDB reads there is what recdelta wrote.
	pouch dump "$COUCH_URL/${DB}r" | jq -cS '{type, key, fields}' | LC_ALL=C sort > pouch.ndjson
	jq -cS '{type, key, fields}' local.ndjson | LC_ALL=C sort > want.ndjson
	cmp pouch.ndjson want.ndjson

	# A database that only PouchDB wrote.
	couch_db "${DB}p"
	{
		seq 1 50 | jq -c '{_id:("P:p" + tostring), type:"P", key:("p" + tostring), fields:{n:., f:(. / 4), u:"\u2603"}}'
		jq -cn '{_id:"P:_x/y", type:"P", key:"_x/y", fields:{list:[1,"a",{b:null}]}}'
	} > pouchdocs.ndjson
	run -0 pouch put "$COUCH_URL/${DB}p" < pouchdocs.ndjson
	assert_equal "$(grep -c ' ok$' <<<"$output")" 51
	recdelta-fetch "couchdb:$COUCH_URL/${DB}p" | grep '"kind":"record"' |
	    jq -cS '{_id: (.type + ":" + .key), type, key, fields}' | LC_ALL=C sort > read.ndjson
	pouch dump "$COUCH_URL/${DB}p" | jq -cS . | LC_ALL=C sort > wrote.ndjson
	assert_equal "$(wc -l < read.ndjson)" 51
	cmp read.ndjson wrote.ndjson
	jq -cS . pouchdocs.ndjson | LC_ALL=C sort | cmp - read.ndjson
}

@test "a document changed by another client between diff and push is a conflict, looked up and recomputed; deleted only with --delete-orphans" {
	seq 1 5 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:., m:0}}' > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	recdelta-push -q "$T" < plan.ndjson > /dev/null
	sed -i -E 's/"n":2,"m":0/"n":20,"m":0/; s/"n":3,"m":0/"n":30,"m":0/' local.ndjson
	sed -i '/"g5"/d' local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	# Another client: g2 its m, g3 what the local data wants, g5 its m.
	for k in g2 g3 g5; do
		couch_curl GET "/$DB/G%3A$k"
	done | jq -c 'if .key == "g3" then .fields.n = 30 else .fields.m = 1 end' > other.ndjson
	pouch put "$COUCH_URL/$DB" < other.ndjson > /dev/null
	run -0 --separate-stderr recdelta-push --keep-remote-edits --log "$PWD/log" "$T" < plan.ndjson
	assert_equal "$stderr" "Created 0, Updated 0, Skipped 1 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
	run -0 jq -r '[.op, .key, .status, (.error.code // "")] | @tsv' <<<"$output"
	assert_output "$(printf 'update\tg2\tskipped\tremote_edit\nsame\tg3\tskipped\t\ndelete\tg5\tskipped\torphan')"
	# Nothing of the other client's was overwritten.
	run -0 jq -r 'select(.msg | startswith("conflict")) | [.msg, .key] | @tsv' log
	assert_output "$(printf 'conflict\tg2\nconflict\tg3\nconflict resolved: now equal\tg3')"
	run -0 live
	assert_line --partial '"key":"g2","fields":{"n":2,"m":1}'
	assert_line --partial '"key":"g5","fields":{"n":5,"m":1}'
	# Without --keep-remote-edits the update is recomputed on the new rev
	# and said; the delete waits for --delete-orphans, and then is
	# guarded by the rev the plan read: a conflict, looked up, retried.
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan2.ndjson
	run -0 --separate-stderr recdelta-push --delete-orphans "$T" < plan2.ndjson
	assert_equal "$stderr" "Created 0, Updated 1, Skipped 0 unchanged, Deleted 1, Conflicts 0"
	run -0 live
	assert_output - <<'EOF'
{"kind":"record","type":"G","key":"g1","fields":{"n":1,"m":0}}
{"kind":"record","type":"G","key":"g2","fields":{"n":20,"m":0}}
{"kind":"record","type":"G","key":"g3","fields":{"n":30,"m":0}}
{"kind":"record","type":"G","key":"g4","fields":{"n":4,"m":0}}
EOF
}

@test "pouchdb-server stopped mid-push: the rest deferred into the outbox, exit 6; restarted, the next run replays and converges" {
	seq 1 30 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	export RECDELTA_STATE=$PWD/state.db RECDELTA_HTTP_RETRIES=1
	# The third _bulk_docs request of batches of 10 stops the service.
	couch_stop_after _bulk_docs 2
	run -6 --separate-stderr recdelta smart-sync -b 10 -l ndjson:local.ndjson -r "$T"
	assert_equal "$stderr" "recdelta-push: G \"g21\" deferred: unreachable: couchdb: _bulk_docs: $COUCH_URL: Failed to connect to 127.0.0.1 port ${COUCH_URL##*:} after 0 ms: Couldn't connect to server; gave up after 2 attempts
Created 20, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0
Failed 0, Deferred 10 (kept for replay)"
	run -0 --separate-stderr recdelta-checkpoint outbox
	assert_equal "$(grep -c '"kind":"change"' <<<"$output")" 10
	couch_restart
	run -0 --separate-stderr recdelta smart-sync -b 10 -l ndjson:local.ndjson -r "$T"
	assert_equal "$stderr" "recdelta-smart-sync: delivering 10 change(s) an earlier run deferred
Created 10, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0
Created 0, Updated 0, Skipped 30 unchanged, Deleted 0, Conflicts 0"
	run -0 recdelta-diff --exit-code -l ndjson:local.ndjson -r "$T"
	assert_equal "$(live | wc -l)" 30
	# Each record written once: rev 1 everywhere.
	assert_equal "$(recdelta-fetch "$T" | jq -r 'select(.kind == "record") | .rev' | cut -d- -f1 | sort -u)" 1
	run -0 recdelta-checkpoint outbox
	assert_output ""
}

@test "credentials: a wrong password is exit 4 with a clear message, nothing written, no secret shown; netrc; plain http only to this machine" {
	rec T a '{}' > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" > plan.ndjson
	echo wrong-secret > pw
	chmod 600 pw
	for prog in fetch push; do
		if [ $prog = fetch ]; then
			RECDELTA_COUCHDB_PASSWORD_FILE=$PWD/pw run -4 --separate-stderr recdelta-fetch "$T"
			what=_all_docs
		else
			RECDELTA_COUCHDB_PASSWORD_FILE=$PWD/pw run -4 --separate-stderr recdelta-push --log "$PWD/log" "$T" < plan.ndjson
			what=_bulk_docs
		fi
		assert_output ""
		assert_equal "$stderr" "recdelta-$prog: couchdb: $COUCH_URL/$DB: $what: HTTP 401 (unauthorized): Name or password is incorrect.; check the user name and password: RECDELTA_COUCHDB_USER and RECDELTA_COUCHDB_PASSWORD_FILE, or the netrc file"
	done
	run -0 couch_curl GET "/$DB/_all_docs"
	assert_equal "$(jq .total_rows <<<"$output")" 0
	run grep -c -e wrong-secret -e "$(cat "$RECDELTA_COUCHDB_PASSWORD_FILE")" log
	assert_output 0
	# The netrc file, for this host, where the database admits its
	# members alone.
	couch_curl PUT "/$DB/_security" '{"admins":{"names":["admin"]},"members":{"names":["admin"]}}' > /dev/null
	unset RECDELTA_COUCHDB_USER RECDELTA_COUCHDB_PASSWORD_FILE
	run -4 --separate-stderr recdelta-fetch "$T"
	assert_equal "$stderr" "recdelta-fetch: couchdb: $COUCH_URL/$DB: _all_docs: HTTP 401 (unauthorized): You are not authorized to access this db.; check the user name and password: RECDELTA_COUCHDB_USER and RECDELTA_COUCHDB_PASSWORD_FILE, or the netrc file"
	# pouchdb-server refuses each document of an anonymous _bulk_docs.
	run -6 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_output '{"kind":"result","op":"create","type":"T","key":"a","status":"failed","error":{"code":"unauthorized","message":"You are not authorized to access this db."}}'
	RECDELTA_NETRC=$COUCH_DIR/netrc run -0 --separate-stderr recdelta-push "$T" < plan.ndjson
	assert_equal "$stderr" "Created 1, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	RECDELTA_NETRC=$COUCH_DIR/netrc run -0 recdelta-diff --exit-code -l ndjson:local.ndjson -r "$T"
	# A user without a password is a usage error.
	RECDELTA_COUCHDB_USER=admin run -2 --separate-stderr recdelta-fetch "$T"
	assert_equal "$stderr" "recdelta-fetch: couchdb: RECDELTA_COUCHDB_USER is set but neither RECDELTA_COUCHDB_PASSWORD_FILE nor the netrc file gives a password"
	# Plain http to another host only with --insecure-http, and a warning.
	run -2 --separate-stderr recdelta-push --check-args couchdb:http://db.example/x
	assert_equal "$stderr" 'recdelta-push: "couchdb:http://db.example/x": the URL must start with https:// (http:// only to localhost, 127.0.0.0/8 or [::1])'
	run -0 --separate-stderr recdelta-push --insecure-http --check-args couchdb:http://db.example/x
	assert_equal "$stderr" "recdelta-push: warning: http://db.example/x: plain http to a host that is not this machine: the password and the records can be read on the way (--insecure-http)"
	# A database that does not exist.
	RECDELTA_NETRC=$COUCH_DIR/netrc run -4 --separate-stderr recdelta-fetch "couchdb:$COUCH_URL/nodb"
	assert_equal "$stderr" "recdelta-fetch: couchdb: $COUCH_URL/nodb: no such database (HTTP 404); create it first: recdelta creates none"
}

@test "the count of a delete budget leaves design documents out" {
	seq 1 4 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$T" | recdelta-push -q "$T" > /dev/null
	for d in a b c d; do
		couch_curl PUT "/$DB/_design/$d" '{"views":{}}' > /dev/null
		[ "$COUCH_STATUS" = 201 ]
	done
	# 8 documents, 4 of them records: 3 deletes are more than 50%.
	head -n 1 local.ndjson > one.ndjson
	recdelta-diff -l ndjson:one.ndjson -r "$T" > plan.ndjson
	run -5 --separate-stderr recdelta-push --delete-orphans --max-delete 50% "$T" < plan.ndjson
	assert_output ""
	assert_equal "${stderr%%$'\n'*}" "recdelta-push: refused: 3 deletes exceed the budget of 2 (--max-delete 50%)"
	run -0 --separate-stderr recdelta-push -q --delete-orphans --max-delete 75% "$T" < plan.ndjson
	assert_equal "$(live | wc -l)" 1
}
