#!/usr/bin/env bats
# smart-sync --incremental over a remote with a change feed: the feed read
# from the cursor the last run kept, folded into the base snapshot
# (recdelta-checkpoint fold), the plan a full run's.  Each test runs its
# scenario against the stores with a feed: couchdb: (pouchdb-server, one
# for the file, a fresh database each time), cloudkit: (the emulator, a
# custom zone of the private database), dir: (meta.json's generations) and
# webdav: (the same over Apache, started per test).  Each scenario runs on
# two targets side by side: one synced by full runs, one by incremental
# runs, and the two must end the same.  Requests are counted from the
# server's log (couchdb:, cloudkit:); of webdav:, the entity files read.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore
load helpers/cloudkit
load helpers/couchdb
load helpers/apache

KINDS=${RECDELTA_TEST_KINDS:-couchdb cloudkit dir webdav}

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	case " $KINDS " in
	*" couchdb "*) couch_start "$BATS_FILE_TMPDIR/couch" ;;
	esac
}

teardown_file() {
	couch_stop
}

teardown() {
	ck_stop
	dav_stop
}

# enter KIND: a folder of its own, two empty targets: F (full runs) and I
# (incremental runs), each with its state.
enter() {
	KIND=$1
	mkdir -p "$BATS_TEST_TMPDIR/$KIND"
	cd "$BATS_TEST_TMPDIR/$KIND" || return 1
	export RECDELTA_HTTP_BACKOFF=0.05
	case $KIND in
	couchdb)
		couch_db "f$BATS_TEST_NUMBER" && couch_db "i$BATS_TEST_NUMBER" || return 1
		F=couchdb:$COUCH_URL/f$BATS_TEST_NUMBER
		I=couchdb:$COUCH_URL/i$BATS_TEST_NUMBER
		;;
	cloudkit)
		ck_start --private-zones || return 1
		chmod 600 "$CK_KEY_FILE"
		export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID
		export RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
		export RECDELTA_CLOUDKIT_URL=$CK_URL
		export RECDELTA_CLOUDKIT_CONFIG=$BATS_TEST_TMPDIR/ck/none.conf
		export CK_DATABASE=private
		ck_request zones/modify '{"operations":[{"operationType":"create","zone":{"zoneID":{"zoneName":"F"}}},{"operationType":"create","zone":{"zoneID":{"zoneName":"I"}}}]}' > /dev/null
		[ "$CK_STATUS" = 200 ] || return 1
		F=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/private/F
		I=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/private/I
		;;
	dir)
		# Empty stores, as the servers' are.
		mkdir f i
		F=dir:$PWD/f
		I=dir:$PWD/i
		;;
	webdav)
		[ -n "${DAV_PID:-}" ] || dav_start || return 1
		mkdir "$DAV_ROOT/f" "$DAV_ROOT/i"
		chown --reference="$DAV_ROOT" "$DAV_ROOT/f" "$DAV_ROOT/i"
		F=webdav:$DAV_URL/f/
		I=webdav:$DAV_URL/i/
		;;
	esac
	seq 1 20 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	echo "--- $KIND"
}

# sync T [OPTION]...: the flow from local.ndjson to T, with T's state.
sync() {
	local t=$1
	shift
	RECDELTA_STATE=$PWD/state-$(statename "$t").db recdelta smart-sync -t G \
	    -l ndjson:local.ndjson -r "$t" "$@"
}

# checkpoint T ARG...: recdelta-checkpoint on T's state.
checkpoint() {
	local t=$1
	shift
	RECDELTA_STATE=$PWD/state-$(statename "$t").db recdelta-checkpoint "$@"
}

statename() {
	if [ "$1" = "$F" ]; then echo f; else echo i; fi
}

# live T: the target's records, sorted, without rev and mtime.
live() {
	recdelta-fetch -t G "$1" | jq -c 'select(.kind == "record" and .deleted != true) |
	    {type, key, fields}' | LC_ALL=C sort
}

# rev_of T KEY: the target's rev of a record.
rev_of() {
	recdelta-fetch -t G "$1" | jq -r --arg k "$2" 'select(.kind == "record" and .key == $k) | .rev'
}

# other T: another client (a push of its own, no state) edits g9, deletes
# g10 and creates g21 on T.
other() {
	{
		printf '{"kind":"change","op":"update","type":"G","key":"g9","rev":"%s","fields":{"n":99},"changed":["n"]}\n' "$(rev_of "$1" g9)"
		printf '{"kind":"change","op":"delete","type":"G","key":"g10","rev":"%s"}\n' "$(rev_of "$1" g10)"
		printf '{"kind":"change","op":"create","type":"G","key":"g21","fields":{"n":21}}\n'
	} | recdelta-push -q --delete-orphans "$1" > other.ndjson
	[ "$(jq -r .status other.ndjson | sort -u)" = ok ]
}

# reset_log, requests: the requests the target I received since reset_log
# (compared sorted), one "METHOD PATH" (couchdb:) or operation (cloudkit:)
# a line; webdav:
# its reads alone, "GET PATH", entity files by the count of them ("GET
# N files"); dir: none.
reset_log() {
	case $KIND in
	couchdb) : > "$COUCH_DIR/requests.log" ;;
	cloudkit) ck_control DELETE log > /dev/null ;;
	webdav) : > "$DAV_RUN/access.log" ;;
	esac
}
requests() {
	case $KIND in
	couchdb) couch_requests | grep -E "^[A-Z]+ /i$BATS_TEST_NUMBER(/|\$|\?)" | sed 's/?.*//' ;;
	cloudkit) ck_control GET 'log?format=ndjson' | jq -r '.op' ;;
	webdav)
		dav_requests | grep '^GET /i/meta.json ' | cut -d' ' -f1,2
		n=$(dav_requests | grep -c '^GET /i/G/.*~[0-9]*\.json ')
		[ "$n" -eq 0 ] || echo "GET $n files"
		;;
	esac
}
# feed_read [N], write_req: what reading the feed (of N changed records, on
# webdav:) and one batch of writes are.
feed_read() {
	case $KIND in
	couchdb) echo "GET /i$BATS_TEST_NUMBER/_changes" ;;
	cloudkit) echo records/changes ;;
	webdav) echo "GET /i/meta.json"; [ "${1:-0}" -eq 0 ] || echo "GET $1 files" ;;
	esac
}
write_req() {
	case $KIND in
	couchdb) echo "POST /i$BATS_TEST_NUMBER/_bulk_docs" ;;
	cloudkit) echo records/modify ;;
	webdav) echo "GET /i/meta.json" ;;
	esac
}

@test "fetch --check-args --changes: exit 0 for a store with a change feed, 2 with the reason for one without" {
	for kind in $KINDS; do
		enter "$kind"
		run -0 --separate-stderr recdelta-fetch --check-args --changes "$I"
		assert_output ""
		assert_equal "$stderr" ""
	done
	run -2 --separate-stderr recdelta-fetch --check-args --changes "ndjson:$PWD/local.ndjson"
	assert_equal "$stderr" "recdelta-fetch: ndjson:$PWD/local.ndjson: the ndjson: store has no change feed (--changes)"
	if [ "$KIND" = cloudkit ]; then
		run -2 --separate-stderr recdelta-fetch --check-args --changes "cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/public"
		assert_equal "$stderr" "recdelta-fetch: cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/public: the change feed needs a custom zone (cloudkit:CONTAINER/ENV/private/ZONE)"
	fi
}

@test "--incremental reads the change feed, not a listing: one read plus the writes; another client's edit, delete and create are seen as a full run sees them" {
	for kind in $KINDS; do
		enter "$kind"
		run -0 --separate-stderr sync "$F"
		assert_equal "$stderr" "Created 20, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
		# No base, no cursor: the whole feed, read once; the cursor kept.
		reset_log
		run -0 --separate-stderr sync "$I" --incremental
		assert_equal "$stderr" "recdelta-smart-sync: no base snapshot yet: reading the whole remote
Created 20, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
		assert_equal "$(requests | LC_ALL=C sort)" "$({ feed_read; write_req; } | LC_ALL=C sort)"
		run -0 checkpoint "$I" cursor get "feed -t G"
		[ -n "$output" ]

		# Another client edits g9, deletes g10, creates g21 on both; the
		# local data changes g3.
		other "$F"
		other "$I"
		sed -i 's/"n":3}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$F" --keep-remote-edits
		full=$stderr
		assert_equal "$full" "Created 1, Updated 1, Skipped 17 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		reset_log
		run -0 --separate-stderr sync "$I" --incremental --keep-remote-edits
		assert_equal "$stderr" "$full"
		# The feed once (what changed since the cursor: the last run's
		# writes and the other client's), one write.
		assert_equal "$(requests | LC_ALL=C sort)" "$({ feed_read 20; write_req; } | LC_ALL=C sort)"
		assert_equal "$(live "$I")" "$(live "$F")"
		assert_equal "$(live "$I" | grep -c '"key":"g9","fields":{"n":99}')" 1
		# The base is where a full run leaves it: the next incremental
		# run plans what a full run plans, and writes nothing.
		run -0 --separate-stderr sync "$F" --keep-remote-edits
		full=$stderr
		reset_log
		run -0 --separate-stderr sync "$I" --incremental --keep-remote-edits
		assert_equal "$stderr" "$full"
		assert_equal "$(requests | LC_ALL=C sort)" "$({ feed_read 2; } | LC_ALL=C sort)"
	done
}

@test "--incremental killed by SIGKILL after the push, before the cursor is kept: the cursor stays, the rerun reads the same changes again and converges" {
	for kind in $KINDS; do
		enter "$kind"
		sync "$I" --incremental -q
		sync "$F" -q
		other "$I"
		other "$F"
		run -0 checkpoint "$I" cursor get "feed -t G"
		cursor=$output
		sed -i -E 's/"n":(4|5)}/"n":0}/' local.ndjson
		RECDELTA_HOOK_BEFORE_PRUNE='kill -9 $PPID' run -137 sync "$I" --incremental -q
		# The writes went through; the cursor did not move.
		assert_equal "$(live "$I" | grep -c '"fields":{"n":0}')" 2
		run -0 checkpoint "$I" cursor get "feed -t G"
		assert_equal "$output" "$cursor"
		# The rerun takes the dead run's lock back and ends where a full
		# run ends; the one after reads the feed and writes nothing.
		run -0 --separate-stderr sync "$I" --incremental --delete-orphans
		assert_equal "${stderr##*$'\n'}" "Created 0, Updated 0, Skipped 20 unchanged, Deleted 1, Conflicts 0"
		run -0 --separate-stderr sync "$F" --delete-orphans
		assert_equal "$stderr" "Created 1, Updated 3, Skipped 16 unchanged, Deleted 1, Conflicts 0
recdelta-push: overwrote 1 remote edit (see --log)"
		assert_equal "$(live "$I")" "$(live "$F")"
		assert_equal "$(live "$I")" "$(jq -c "{type, key, fields}" local.ndjson | LC_ALL=C sort)"
		run -0 checkpoint "$I" cursor get "feed -t G"
		[ "$output" != "$cursor" ]
		reset_log
		run -0 --separate-stderr sync "$I" --incremental
		assert_equal "$stderr" "Created 0, Updated 0, Skipped 20 unchanged, Deleted 0, Conflicts 0"
		assert_equal "$(requests | LC_ALL=C sort)" "$({ feed_read; } | LC_ALL=C sort)"
	done
}

@test "dir: --changes: the entries changed after the generation resumed from, each with its g; a store an older writer rewrote (no \"feed\", no \"g\") reads whole" {
	KIND=dir
	mkdir s
	rec A a '{"n":1}' > l.ndjson
	rec A b '{"n":2}' >> l.ndjson
	rec A c '{"n":3}' >> l.ndjson
	recdelta-diff -l ndjson:l.ndjson -r dir:s | recdelta-push -q dir:s > /dev/null
	printf '{"kind":"change","op":"update","type":"A","key":"b","rev":"1","fields":{"n":20}}\n{"kind":"change","op":"delete","type":"A","key":"c","rev":"1"}\n' |
	    recdelta-push -q --delete-orphans dir:s > /dev/null
	assert_equal "$(jq -c --argjson e "$(store_entities s)" '[.feed, .generation, ($e.A | map_values(.g))]' s/meta.json)" '[1,2,{"a":1,"b":2,"c":2}]'
	run -0 --separate-stderr recdelta-fetch --changes --resume 1 dir:s
	assert_equal "$(jq -c 'del(.mtime)' <<<"$output")" '{"kind":"record","type":"A","key":"b","rev":"2","fields":{"n":20}}
{"kind":"record","type":"A","key":"c","rev":"2","deleted":true}
{"kind":"cursor","source":"dir:s","name":"generation","value":2}'
	run -0 --separate-stderr recdelta-fetch --changes --resume 2 dir:s
	assert_output '{"kind":"cursor","source":"dir:s","name":"generation","value":2}'
	# From no generation: everything, tombstones included.
	run -0 --separate-stderr recdelta-fetch --changes dir:s
	assert_equal "${#lines[@]}" 4
	# An older writer keeps neither "feed" nor "g" (and writes the whole
	# index in meta.json, recdelta-store/1): the next writer's commit
	# starts the feed again, and a cursor from before it reads all.
	jq -c --argjson e "$(store_entities s)" '{format: "recdelta-store/1", generation,
	    entities: ($e | .A |= map_values(del(.g)))}' s/meta.json > s/meta.json.new
	rm -r s/meta.idx
	mv s/meta.json.new s/meta.json
	printf '{"kind":"change","op":"update","type":"A","key":"a","rev":"1","fields":{"n":10}}\n' |
	    recdelta-push -q dir:s > /dev/null
	assert_equal "$(jq -c --argjson e "$(store_entities s)" '[.format, .feed, .generation, ($e.A | map_values(.g))]' s/meta.json)" '["recdelta-store/2",3,3,{"a":3,"b":null,"c":null}]'
	run -0 --separate-stderr recdelta-fetch --changes --resume 1 dir:s
	assert_equal "${#lines[@]}" 4
	run -0 --separate-stderr recdelta-fetch --changes --resume 2 dir:s
	assert_equal "$(jq -c 'del(.mtime)' <<<"$output")" '{"kind":"record","type":"A","key":"a","rev":"2","fields":{"n":10}}
{"kind":"cursor","source":"dir:s","name":"generation","value":3}'
	# A cursor that is no generation; --resume without --changes.
	run -2 --separate-stderr recdelta-fetch --changes --resume x dir:s
	assert_equal "$stderr" 'recdelta-fetch: --resume "x": expected the value of a generation cursor, a number'
	run -2 --separate-stderr recdelta-fetch --resume 2 dir:s
	assert_equal "$stderr" 'recdelta-fetch: --resume "2": this store resumes only its change feed (--changes)'
}

# hook T: a script for RECDELTA_HOOK_BEFORE_PUSH that plays another client
# (other, above) on T, between the plan's read of T and the push.
hook() {
	cat > hook.sh <<HOOK
set -e
g9=\$(recdelta-fetch -t G '$1' | jq -r 'select(.kind == "record" and .key == "g9") | .rev')
g10=\$(recdelta-fetch -t G '$1' | jq -r 'select(.kind == "record" and .key == "g10") | .rev')
{
	printf '{"kind":"change","op":"update","type":"G","key":"g9","rev":"%s","fields":{"n":99},"changed":["n"]}\n' "\$g9"
	printf '{"kind":"change","op":"delete","type":"G","key":"g10","rev":"%s"}\n' "\$g10"
	printf '{"kind":"change","op":"create","type":"G","key":"g21","fields":{"n":21}}\n'
} | recdelta-push -q --delete-orphans '$1' > hooked.ndjson
[ "\$(jq -r .status hooked.ndjson | sort -u)" = ok ]
HOOK
	echo "sh $PWD/hook.sh"
}

# msgs FILE: the messages of a flow's log.
msgs() {
	jq -r .msg "$1"
}

# state_of T: T's base and the last run's change log, without the revs
# and times a store gives each target its own of.
state_of() {
	checkpoint "$1" base | jq -c 'del(.rev, .mtime)'
	checkpoint "$1" show --json "$(checkpoint "$1" history --json | tail -n 1 | jq .id)" |
	    jq -c 'del(.run, .rev, .before_rev)' | LC_ALL=C sort
}

@test "a full run keeps the feed's cursor of before its read: the next --incremental reads from it, not the whole feed, and loses nothing another client changed during the full run" {
	for kind in $KINDS; do
		enter "$kind"
		# where the feed stands: one cursor line, no record.
		run -0 --separate-stderr recdelta-fetch --changes --cursor-only -t G "$I"
		assert_equal "${#lines[@]}" 1
		assert_equal "$(jq -r .kind <<<"$output")" cursor
		run -0 --separate-stderr sync "$F" -q
		run -0 --separate-stderr sync "$I" -q --log full1.log
		run -0 checkpoint "$I" cursor get "feed -t G"
		first=$output
		assert_equal "$(msgs full1.log | grep '^full: ')" "full: the change feed stands at $first"
		# A second full run, during which (between its read and its
		# push) another client edits g9, deletes g10, creates g21; the
		# local data changes g3.
		sed -i 's/"n":3}/"n":0}/' local.ndjson
		RECDELTA_HOOK_BEFORE_PUSH=$(hook "$F") run -0 --separate-stderr sync "$F"
		assert_equal "$stderr" "Created 0, Updated 1, Skipped 19 unchanged, Deleted 0, Conflicts 0"
		RECDELTA_HOOK_BEFORE_PUSH=$(hook "$I") run -0 --separate-stderr sync "$I" --log full2.log
		assert_equal "$stderr" "Created 0, Updated 1, Skipped 19 unchanged, Deleted 0, Conflicts 0"
		# The cursor kept is where the feed stood before the read: the
		# first run's, moved by that run's writes only.
		run -0 checkpoint "$I" cursor get "feed -t G"
		second=$output
		[ "$second" != "$first" ]
		assert_equal "$(msgs full2.log | grep -c '^full: the change feed stands at ')" 1
		# One more local change; the incremental run reads the feed from
		# that cursor and plans as a full run: the other client's edit
		# overwritten, g10 made again, g21 an orphan.
		sed -i 's/"n":4}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$F"
		full=$stderr
		assert_equal "$full" "Created 1, Updated 2, Skipped 17 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: overwrote 1 remote edit (see --log)"
		run -0 --separate-stderr sync "$I" --incremental --log incr.log
		assert_equal "$stderr" "$full"
		assert_equal "$(msgs incr.log | grep '^incremental: ')" "incremental: reading the change feed from $second"
		assert_equal "$(live "$I")" "$(live "$F")"
		assert_equal "$(state_of "$I")" "$(state_of "$F")"
		# And the runs after end alike, the orphan deleted.
		run -0 --separate-stderr sync "$F" --delete-orphans
		full=$stderr
		run -0 --separate-stderr sync "$I" --incremental --delete-orphans
		assert_equal "$stderr" "$full"
		assert_equal "$(live "$I")" "$(live "$F")"
		assert_equal "$(live "$I")" "$(jq -c "{type, key, fields}" local.ndjson | LC_ALL=C sort)"
		assert_equal "$(state_of "$I")" "$(state_of "$F")"
	done
}

@test "after a full run that left records unsettled (a remote edit kept, an orphan), the --incremental run from its cursor still sees them as the full run read them" {
	for kind in $KINDS; do
		enter "$kind"
		sync "$F" -q
		sync "$I" -q
		# Another client edits g9, deletes g10, creates g21, before
		# the full runs; g3 changes locally.
		other "$F"
		other "$I"
		sed -i 's/"n":3}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$F" --keep-remote-edits
		full=$stderr
		assert_equal "$full" "Created 1, Updated 1, Skipped 17 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		run -0 --separate-stderr sync "$I" --keep-remote-edits
		assert_equal "$stderr" "$full"
		run -0 checkpoint "$I" cursor get "feed -t G"
		cursor=$output
		# The feed from the cursor says nothing of g9 and g21, changed
		# before it: the full run kept them as it read them.
		sed -i 's/"n":4}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$F" --keep-remote-edits
		full=$stderr
		assert_equal "$full" "Created 0, Updated 1, Skipped 18 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		run -0 --separate-stderr sync "$I" --incremental --keep-remote-edits --log incr.log
		assert_equal "$stderr" "$full"
		assert_equal "$(msgs incr.log | grep '^incremental: ')" "incremental: reading the change feed from $cursor"
		assert_equal "$(live "$I")" "$(live "$F")"
		assert_equal "$(state_of "$I")" "$(state_of "$F")"
		# Then the edit overwritten and the orphan deleted, alike.
		run -0 --separate-stderr sync "$F" --delete-orphans
		full=$stderr
		assert_equal "$full" "Created 0, Updated 1, Skipped 19 unchanged, Deleted 1, Conflicts 0
recdelta-push: overwrote 1 remote edit (see --log)"
		run -0 --separate-stderr sync "$I" --incremental --delete-orphans
		assert_equal "$stderr" "$full"
		assert_equal "$(live "$I")" "$(jq -c "{type, key, fields}" local.ndjson | LC_ALL=C sort)"
		assert_equal "$(state_of "$I")" "$(state_of "$F")"
	done
}

# feed_since T: the feed of T from the cursor its state keeps.
feed_since() {
	recdelta-fetch --changes -t G --resume "$(checkpoint "$1" cursor get "feed -t G")" "$1"
}

@test "fold --check: a feed of the last run's own writes leaves the base as it is (0), and the plan reads the base alone; another client's edit, delete or create, or what a run left unsettled, changes it (1)" {
	for kind in $KINDS; do
		enter "$kind"
		sync "$I" -q --incremental
		# Since the cursor: this run's 20 creates, as the base holds them.
		feed_since "$I" > feed.ndjson
		assert_equal "$(grep -c '^{"kind":"record",' feed.ndjson)" 20
		run -0 --separate-stderr checkpoint "$I" fold --check < feed.ndjson
		assert_output ''
		assert_equal "$stderr" ''
		sed -i 's/"n":3}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$I" --incremental --log keeps.log
		assert_equal "$stderr" "Created 0, Updated 1, Skipped 19 unchanged, Deleted 0, Conflicts 0"
		assert_equal "$(msgs keeps.log | grep -c '^incremental: the change feed leaves the base as it is$')" 1
		# Another client edits g9, deletes g10, creates g21: each line
		# of the feed alone changes the base.
		other "$I"
		feed_since "$I" > feed.ndjson
		for k in g9 g10 g21; do
			grep -F "\"key\":\"$k\"" feed.ndjson > one.ndjson
			assert_equal "$(wc -l < one.ndjson)" 1
			run -1 --separate-stderr checkpoint "$I" fold --check < one.ndjson
			assert_output ''
			assert_equal "$stderr" ''
		done
		# The run folds them in and plans as a full run would; what it
		# leaves unsettled (g9's edit kept, the orphan g21) is kept for
		# the next fold, and so changes the base for an empty feed too.
		sed -i 's/"n":4}/"n":0}/' local.ndjson
		run -0 --separate-stderr sync "$I" --incremental --keep-remote-edits --log folds.log
		assert_equal "$stderr" "Created 1, Updated 1, Skipped 17 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		assert_equal "$(msgs folds.log | grep -c 'leaves the base as it is')" 0
		run -1 --separate-stderr checkpoint "$I" fold --check < /dev/null
		assert_equal "$stderr" ''
	done
}

@test "fold --check: the same rev with other content changes the base; a tombstone of a key the base does not hold does not; bad input is exit 3, --full or -t a usage error" {
	KIND=dir
	mkdir s
	export RECDELTA_STATE=$PWD/state.db
	seq 1 3 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	recdelta smart-sync -q -l ndjson:local.ndjson -r dir:s
	recdelta-fetch --changes dir:s > feed.ndjson
	run -0 recdelta-checkpoint fold --check < feed.ndjson
	# g2 at its rev, n changed; g2 gone; a key never synced gone, of G
	# and of any type.
	grep '"key":"g2"' feed.ndjson | sed 's/"n":2/"n":20/' > other.ndjson
	run -1 recdelta-checkpoint fold --check < other.ndjson
	grep '"key":"g2"' feed.ndjson | jq -c '{kind, type, key, rev, deleted: true}' > gone.ndjson
	run -1 recdelta-checkpoint fold --check < gone.ndjson
	printf '{"kind":"record","type":"G","key":"g9","deleted":true}\n{"kind":"record","type":"*","key":"g8","deleted":true}\n' > none.ndjson
	run -0 recdelta-checkpoint fold --check < none.ndjson
	printf '{"kind":"record","type":"*","key":"g1","deleted":true}\n' > any.ndjson
	run -1 recdelta-checkpoint fold --check < any.ndjson
	# Every line is read: bad input after a change is still an error.
	{ cat other.ndjson; echo '{"kind":"record",'; } > bad.ndjson
	run -3 --separate-stderr recdelta-checkpoint fold --check < bad.ndjson
	assert_output ''
	assert_equal "${stderr%%:*}" "recdelta-checkpoint"
	[[ $stderr == *"<stdin>:2: "* ]] || fail "$stderr"
	run -2 --separate-stderr recdelta-checkpoint fold --check --full < feed.ndjson
	assert_equal "${stderr%%$'\n'*}" "recdelta-checkpoint: fold: --check takes neither --full nor -t"
	run -2 --separate-stderr recdelta-checkpoint fold --check -t G < feed.ndjson
	assert_equal "${stderr%%$'\n'*}" "recdelta-checkpoint: fold: --check takes neither --full nor -t"
}

@test "fetch --changes --cursor-only: where the feed stands, no record read; with --resume, --flat or without --changes, a usage error" {
	KIND=dir
	mkdir s
	rec A a '{"n":1}' > l.ndjson
	rec A b '{"n":2}' >> l.ndjson
	run -0 --separate-stderr recdelta-fetch --changes --cursor-only dir:s
	assert_output '{"kind":"cursor","source":"dir:s","name":"generation","value":0}'
	run -0 --separate-stderr recdelta-fetch --changes --cursor-only --allow-missing dir:none
	assert_output '{"kind":"cursor","source":"dir:none","name":"generation","value":0}'
	recdelta-diff -l ndjson:l.ndjson -r dir:s | recdelta-push -q dir:s > /dev/null
	printf '{"kind":"change","op":"update","type":"A","key":"b","rev":"1","fields":{"n":20}}\n' |
	    recdelta-push -q dir:s > /dev/null
	run -0 --separate-stderr recdelta-fetch --changes --cursor-only -t A --shard 1/2 dir:s
	assert_output '{"kind":"cursor","source":"dir:s","name":"generation","value":2}'
	assert_equal "$stderr" ''
	run -0 --separate-stderr recdelta-fetch --check-args --changes --cursor-only dir:s
	assert_output ''
	run -2 --separate-stderr recdelta-fetch --cursor-only dir:s
	assert_equal "$stderr" 'recdelta-fetch: --cursor-only: only with --changes'
	run -2 --separate-stderr recdelta-fetch --changes --cursor-only --resume 1 dir:s
	assert_equal "$stderr" 'recdelta-fetch: --cursor-only and --resume: one or the other'
	run -2 --separate-stderr recdelta-fetch --changes --cursor-only --flat dir:s
	assert_equal "$stderr" 'recdelta-fetch: --cursor-only and --flat: one or the other'
	run -2 --separate-stderr recdelta-fetch --check-args --changes --cursor-only ndjson:l.ndjson
	assert_equal "$stderr" 'recdelta-fetch: ndjson:l.ndjson: the ndjson: store has no change feed (--changes)'
}
