#!/usr/bin/env bats
# The smart-sync flow, one suite for every writable store: every test runs
# its scenario against a dir: target, an sqlite: target, a cloudkit:
# target (the emulator of tests/servers, one per test, started when the test
# first needs it), a couchdb: target (pouchdb-server, one for the file, a
# fresh database each time) and a webdav: target (Apache httpd with
# mod_dav, helpers/apache.bash, started once per test), each in a folder of
# its own with its own state
# ($PWD/state.db).  A concurrent writer is played through the flow's
# RECDELTA_HOOK_BEFORE_PUSH seam, which runs between the plan and the push.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore
load helpers/cloudkit
load helpers/couchdb
load helpers/apache
load helpers/faultinject

teardown() {
	ck_stop
	dav_stop
}

teardown_file() {
	couch_stop
}

# The data: games of examples/mksample, one type, since an sqlite: table
# holds one.  200 for most tests, 400 for the kill test.
setup_file() {
	sh "$TOP/examples/mksample" "$BATS_FILE_TMPDIR/sample" 2>/dev/null
	grep '"type":"Game"' "$BATS_FILE_TMPDIR/sample/local.ndjson" |
	    head -n 400 > "$BATS_FILE_TMPDIR/games400.ndjson"
	head -n 200 "$BATS_FILE_TMPDIR/games400.ndjson" > "$BATS_FILE_TMPDIR/games.ndjson"
	GAMES=$BATS_FILE_TMPDIR/games.ndjson
	GAMES400=$BATS_FILE_TMPDIR/games400.ndjson
	export GAMES GAMES400
	case " ${RECDELTA_TEST_KINDS:-couchdb} " in
	*" couchdb "*) couch_start "$BATS_FILE_TMPDIR/couch" ;;
	esac
}

# RECDELTA_TEST_KINDS=sqlite runs one kind only, when debugging.
KINDS=${RECDELTA_TEST_KINDS:-dir sqlite cloudkit couchdb webdav}

# target_word KIND: the store word of the test's target, in $PWD.
target_word() {
	case $1 in
	dir) printf 'dir:%s/remote' "$PWD" ;;
	sqlite) printf 'sqlite:%s/r.db?table=games&key=id&type=Game' "$PWD" ;;
	cloudkit) printf 'cloudkit:%s/%s/%s' "$CK_CONTAINER" "$CK_ENVIRONMENT" "$CK_DATABASE" ;;
	couchdb) printf 'couchdb:%s/%s' "$COUCH_URL" "$COUCH_DBNAME" ;;
	webdav) printf 'webdav:%s/remote/' "$DAV_URL" ;;
	*) return 1 ;;
	esac
}

# enter KIND: work in a folder of KIND's own, with its own state and
# temporary folder, and the 200 games as the local data.  cloudkit: an
# empty emulator; couchdb: a new empty database.
enter() {
	KIND=$1
	mkdir -p "$BATS_TEST_TMPDIR/$KIND/tmp"
	cd "$BATS_TEST_TMPDIR/$KIND" || return 1
	export RECDELTA_STATE=$PWD/state.db
	export TMPDIR=$PWD/tmp
	if [ "$KIND" = cloudkit ]; then
		if [ -n "${CK_PID:-}" ]; then
			ck_control POST reset > /dev/null || return 1
		else
			ck_begin || return 1
		fi
	fi
	if [ "$KIND" = couchdb ]; then
		COUCH_DBNAME=ss${BATS_TEST_NUMBER}
		couch_db "$COUCH_DBNAME" || return 1
		export RECDELTA_HTTP_BACKOFF=0.05
	fi
	if [ "$KIND" = webdav ]; then
		# Apache started once per test, its document root emptied.
		if [ -n "${DAV_PID:-}" ]; then
			rm -rf "${DAV_ROOT:?}/remote"
		else
			dav_start || return 1
			export RECDELTA_HTTP_BACKOFF=0.05
		fi
	fi
	T=$(target_word "$KIND")
	cp "$GAMES" local.ndjson
	echo "--- $KIND"
}

# ck_begin [EMULATOR-OPTION]...: start the emulator and point recdelta's
# client at it, with a key file only its owner reads (else a warning on
# stderr), no config file, and short waits between retries.
ck_begin() {
	ck_start "$@" || return 1
	chmod 600 "$CK_KEY_FILE"
	export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID
	export RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
	export RECDELTA_CLOUDKIT_URL=$CK_URL
	export RECDELTA_CLOUDKIT_CONFIG=$BATS_TEST_TMPDIR/ck/none.conf
	export RECDELTA_HTTP_BACKOFF=0.05
}

# save_target, restore_target: keep the target with the folder, so that a
# copy of the folder is a copy of the target, and bring it back after the
# folder was put back.  dir: and sqlite: targets live in the folder already;
# the emulator's records go to ck-state.json, and come back by a restart of
# the emulator from that file (keys and port are new, the records and their
# change tags as they were); the couchdb: database is replicated, revs and
# all, into a database of its own by PouchDB's replicator, and back into a
# new one.
save_target() {
	if [ "$KIND" = couchdb ]; then
		couch_db "${COUCH_DBNAME}saved" &&
		    couch_replicate "$COUCH_DBNAME" "${COUCH_DBNAME}saved"
		return
	fi
	if [ "$KIND" = webdav ]; then
		rm -rf dav-remote
		cp -a "$DAV_ROOT/remote" dav-remote
		return
	fi
	[ "$KIND" = cloudkit ] || return 0
	ck_control GET state > ck-state.json
}
restore_target() {
	if [ "$KIND" = couchdb ]; then
		couch_db "$COUCH_DBNAME" &&
		    couch_replicate "${COUCH_DBNAME}saved" "$COUCH_DBNAME"
		return
	fi
	if [ "$KIND" = webdav ]; then
		rm -rf "${DAV_ROOT:?}/remote"
		cp -a dav-remote "$DAV_ROOT/remote"
		return
	fi
	[ "$KIND" = cloudkit ] || return 0
	ck_stop
	cp ck-state.json "$BATS_TEST_TMPDIR/ck/state.json" || return 1
	unset CK_KEYS_JSON
	ck_begin --state-file "$BATS_TEST_TMPDIR/ck/state.json"
}

# created: the line of the first write into a target that did not exist
# (none for cloudkit: and couchdb:, whose zone or database is the server's).
created() {
	case $KIND in cloudkit|couchdb) return 0 ;; esac
	printf 'recdelta-push: created "%s" (it did not exist)\n' "$T"
}

# would_create: the line of a dry run into a target that does not exist.
would_create() {
	case $KIND in cloudkit|couchdb) return 0 ;; esac
	printf 'recdelta-push: "%s" does not exist: a push would create it\n' "$T"
}

# smart_sync [OPTION]...: the flow from local.ndjson to the target.
smart_sync() {
	recdelta smart-sync -t Game -l ndjson:local.ndjson -r "$T" "$@"
}

# The target's bytes: every file of the dir: store, the database file of
# the sqlite: one, stricter than its .dump ("absent" when there is none).
# cloudkit: the emulator's records and tombstones, and the number of write
# requests it received: a request that wrote nothing is still a write
# ("absent" when there were none and it holds nothing).
target_digest() {
	case $KIND in
	dir) if [ -e remote ]; then tree_digest remote; else echo absent; fi ;;
	webdav) if [ -e "$DAV_ROOT/remote" ]; then tree_digest "$DAV_ROOT/remote"; else echo absent; fi ;;
	sqlite) if [ -e r.db ]; then cat r.db r.db-* 2>/dev/null | sha256sum |
	    cut -d' ' -f1; else echo absent; fi ;;
	cloudkit)
		local recs
		recs=$(ck_control GET state | jq -cS '[.dbs[][] |
		    select((.records | length) + (.tombstones | length) > 0) |
		    {records, tombstones}]')
		if [ "$recs" = '[]' ] && [ "$(writes)" = 0 ]; then
			echo absent
		else
			printf '%s\n%s writes\n' "$recs" "$(writes)" | sha256sum | cut -d' ' -f1
		fi
		;;
	couchdb)
		# Every document and tombstone, with its rev, and the writes.
		local docs
		docs=$(couch_curl GET "/$COUCH_DBNAME/_changes?since=0&include_docs=true" |
		    jq -cS '[.results[] | {id, changes, deleted, doc}] | sort_by(.id)')
		if [ "$docs" = '[]' ] && [ "$(writes)" = 0 ]; then
			echo absent
		else
			printf '%s\n%s writes\n' "$docs" "$(writes)" | sha256sum | cut -d' ' -f1
		fi
		;;
	esac
}

# writes: a count of the target's writes, where it keeps one: dir:'s commit
# counter (meta.json's generation), the number of records/modify (and
# zones/modify) requests the emulator received for cloudkit:; sqlite: keeps
# none ("-").
writes() {
	case $KIND in
	dir) jq .generation remote/meta.json ;;
	webdav) jq .generation "$DAV_ROOT/remote/meta.json" ;;
	sqlite) echo - ;;
	cloudkit) ck_control GET 'log?format=ndjson' |
	    jq -s 'map(select(.op | strings | endswith("/modify"))) | length' ;;
	couchdb) couch_requests | grep -c "^POST /$COUCH_DBNAME/_bulk_docs\$" ;;
	esac
}

# The state's bytes, and its content as SQL (files first: sqlite3 may
# create and remove -wal and -shm files while it reads).
state_digest() {
	if [ ! -e state.db ]; then
		echo absent
		return
	fi
	{ cat state.db state.db-wal 2>/dev/null | sha256sum; sqlite3 state.db .dump; } |
	    sha256sum | cut -d' ' -f1
}

# The target's live records, without mtime (the time of the write).
fetch_live() {
	recdelta-fetch -t Game "$T" | grep '^{"kind":"record"' | grep -v '"deleted":true' |
	    sed -E 's/,"mtime":"[^"]*"//' | LC_ALL=C sort
}

# rev_of KEY: the target's rev of a record.
rev_of() {
	recdelta-fetch -t Game "$T" | grep -F "\"key\":\"$1\"" | sed -E 's/.*"rev":"([^"]*)".*/\1/'
}

# has_feed: whether the target has a change feed that --incremental reads
# (the emulator's public database has none; sqlite: none).
has_feed() {
	case $KIND in couchdb|dir|webdav) return 0 ;; esac
	return 1
}

# rev_order REV: a number that orders a record's revs by the time of their
# write.  dir: and sqlite: revs are such numbers; the emulator's change tags
# are its global write counter in base 36 (real CloudKit tags are opaque).
rev_order() {
	case $KIND in
	cloudkit) echo $((36#$1)) ;;
	couchdb) echo "${1%%-*}" ;;
	*) echo "$1" ;;
	esac
}

# rev_regexp: what a rev looks like (an extended regular expression).
rev_regexp() {
	case $KIND in
	cloudkit) echo '[0-9a-z]+' ;;
	couchdb) echo '[0-9]+-[0-9a-f]+' ;;
	*) echo '[0-9]+' ;;
	esac
}

# writer: the command line, for sh, of another writer that applies the
# change lines on its stdin to the target and prints a result line for each:
# recdelta-push for dir: and sqlite:; for cloudkit: helpers/ck-modify, a
# client of its own that signs with openssl (it finds the emulator through
# what ck_start exported).  other_writer: run it.
writer() {
	case $KIND in
	cloudkit) printf "'%s/tests/helpers/ck-modify'" "$TOP" ;;
	couchdb) printf "'%s/tests/helpers/couch-modify' '%s/%s'" "$TOP" "$COUCH_URL" "$COUCH_DBNAME" ;;
	*) printf "recdelta-push -q --delete-orphans '%s'" "$T" ;;
	esac
}
other_writer() {
	eval "$(writer)"
}

# The base snapshot as "type key rev" lines, and the target's live records
# the same way: after a run they must agree.
base_keys() {
	recdelta-checkpoint base | jq -r '[.type, .key, .rev] | @tsv' | LC_ALL=C sort
}
target_keys() {
	recdelta-fetch -t Game "$T" |
	    jq -r 'select(.kind == "record" and .deleted != true) | [.type, .key, .rev] | @tsv' |
	    LC_ALL=C sort
}

# set_score KEY N: change one local record's home score.
set_score() {
	sed -i -E "/\"key\":\"$1\"/s/\"home_score\":[0-9]+/\"home_score\":$2/" local.ndjson
	grep -qF "\"home_score\":$2," <(grep -F "\"key\":\"$1\"" local.ndjson)
}

# An empty diff between the local data and the target.
assert_in_step() {
	run -0 --separate-stderr recdelta-diff --exit-code -t Game -l ndjson:local.ndjson -r "$T"
	assert_output ""
	assert_equal "$(fetch_live | wc -l)" "$(wc -l < local.ndjson)"
}

summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' "$@"
}

# The key of the Nth local record.
key_at() {
	sed -n "$1p" local.ndjson | sed -E 's/.*"key":"([^"]*)".*/\1/'
}

@test "smart-sync fills an empty target, and a second run writes nothing" {
	for kind in $KINDS; do
		enter "$kind"
		assert_equal "$(target_digest)" absent
		run -0 --separate-stderr smart_sync
		assert_output ""
		assert_equal "$stderr" "$(created; summary 200 0 0 0 0)"
		assert_in_step
		# The state holds what the target holds, version for version.
		assert_equal "$(base_keys)" "$(target_keys)"
		gen=$(writes)
		before=$(target_digest)
		run -0 --separate-stderr smart_sync
		assert_output ""
		assert_equal "$stderr" "$(summary 0 0 200 0 0)"
		assert_equal "$(target_digest)" "$before"
		assert_equal "$(writes)" "$gen"
		assert_equal "$(base_keys)" "$(target_keys)"
		run -0 recdelta-checkpoint history --json
		assert_equal "$(jq -r .status <<<"$output" | tr '\n' ' ')" "done done "
	done
}

@test "a record edited remotely between plan and push is recomputed and retried under its new rev" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		k=$(key_at 17)
		r0=$(rev_of "$k")
		set_score "$k" 99
		# Another writer changes the record after the plan was made,
		# through its own guard: the plan's rev is then stale.
		recdelta-fetch -t Game "$T" | grep -F "\"key\":\"$k\"" |
		    sed -E -e 's/"kind":"record"/"kind":"change","op":"update"/' \
		    -e 's/,"mtime":"[^"]*"//' -e 's/"attendance":[0-9]+/"attendance":1/' \
		    > edit.ndjson
		RECDELTA_HOOK_BEFORE_PUSH="$(writer) < '$PWD/edit.ndjson' > '$PWD/hook.ndjson'" \
		    run -0 --separate-stderr smart_sync --log "$PWD/log.ndjson"
		assert_output ""
		# The other writer's attendance is overwritten, and that is said.
		assert_equal "$stderr" "$(summary 0 1 199 0 0)
recdelta-push: overwrote 1 remote edit (see --log)"
		run -0 jq -c 'select(.msg == "overwrote a remote edit") | [.key, .fields]' log.ndjson
		assert_output "[\"$k\",[\"attendance\",\"home_score\"]]"
		# The stale write was refused, the record looked up, the update
		# retried on the other writer's version: a version after theirs.
		run -0 jq -r 'select(.prog == "recdelta-push" and (.msg | startswith("conflict"))) |
		    [.msg, .key] | @tsv' log.ndjson
		assert_output "$(printf 'conflict\t%s\nconflict resolved: retried\t%s' "$k" "$k")"
		r1=$(jq -r 'select(.status == "ok") | .rev' hook.ndjson)
		[ "$(rev_order "$r1")" -gt "$(rev_order "$r0")" ] &&
		    [ "$(rev_order "$(rev_of "$k")")" -gt "$(rev_order "$r1")" ] ||
		    fail "revs: $r0 before, $r1 the other writer's, $(rev_of "$k") after"
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"

		# Another writer that makes the record what the local data wants:
		# the conflict resolves as unchanged, with no write of ours.
		set_score "$k" 77
		recdelta-fetch -t Game "$T" | grep -F "\"key\":\"$k\"" |
		    sed -E -e 's/"kind":"record"/"kind":"change","op":"update"/' \
		    -e 's/,"mtime":"[^"]*"//' -e 's/"home_score":[0-9]+/"home_score":77/' \
		    > edit.ndjson
		: > log.ndjson
		RECDELTA_HOOK_BEFORE_PUSH="$(writer) < '$PWD/edit.ndjson' > '$PWD/hook.ndjson'" \
		    run -0 --separate-stderr smart_sync --log "$PWD/log.ndjson"
		assert_equal "$stderr" "$(summary 0 0 200 0 0)"
		run -0 jq -r 'select(.prog == "recdelta-push" and (.msg | startswith("conflict"))) |
		    [.msg, .key] | @tsv' log.ndjson
		assert_output "$(printf 'conflict\t%s\nconflict resolved: now equal\t%s' "$k" "$k")"
		assert_equal "$(rev_of "$k")" "$(jq -r 'select(.status == "ok") | .rev' hook.ndjson)"
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"
	done
}

@test "a record deleted remotely between plan and push is created again" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		k=$(key_at 42)
		set_score "$k" 99
		printf '{"kind":"change","op":"delete","type":"Game","key":"%s","rev":"%s"}\n' \
		    "$k" "$(rev_of "$k")" > delete.ndjson
		RECDELTA_HOOK_BEFORE_PUSH="$(writer) < '$PWD/delete.ndjson' > /dev/null" \
		    run -0 --separate-stderr smart_sync --log "$PWD/log.ndjson"
		assert_output ""
		assert_equal "$stderr" "$(summary 1 0 199 0 0)"
		run -0 jq -r 'select(.prog == "recdelta-push" and (.msg | startswith("conflict"))) |
		    [.msg, .key] | @tsv' log.ndjson
		assert_output "$(printf 'conflict\t%s\nconflict resolved: retried\t%s' "$k" "$k")"
		assert_in_step
		grep -qF "\"home_score\":99," <(fetch_live | grep -F "\"key\":\"$k\"")
		assert_equal "$(base_keys)" "$(target_keys)"
	done
}

@test "orphans are counted and kept, and deleted only with --delete-orphans" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		sed -i '5d;50d;150d' local.ndjson
		before=$(target_digest)
		run -0 --separate-stderr smart_sync
		assert_output ""
		assert_equal "$stderr" "$(summary 0 0 197 0 0)
Would delete 3 orphan records (use --delete-orphans to confirm)"
		assert_equal "$(target_digest)" "$before"
		assert_equal "$(fetch_live | wc -l)" 200

		run -0 --separate-stderr smart_sync --delete-orphans
		assert_output ""
		assert_equal "$stderr" "$(summary 0 0 197 3 0)"
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"
	done
}

@test "-q never hides the orphan line; --max-delete without --delete-orphans warns" {
	orphans="Would delete 3 orphan records (use --delete-orphans to confirm)"
	nodelete="recdelta-push: warning: --max-delete has no effect without --delete-orphans"
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		sed -i '5d;50d;150d' local.ndjson
		before=$(target_digest)
		run -0 --separate-stderr smart_sync -q
		assert_output ""
		assert_equal "$stderr" "$orphans"
		run -0 --separate-stderr smart_sync -q --dry-run
		assert_output ""
		assert_equal "$stderr" "$orphans"
		run -0 --separate-stderr smart_sync --max-delete 1
		assert_equal "$stderr" "$nodelete
$(summary 0 0 197 0 0)
$orphans"
		run -0 --separate-stderr smart_sync -q --max-delete=1
		assert_equal "$stderr" "$nodelete
$orphans"
		assert_equal "$(target_digest)" "$before"
		assert_equal "$(fetch_live | wc -l)" 200
		run -0 --separate-stderr smart_sync -q --delete-orphans --max-delete 3
		assert_output ""
		assert_equal "$stderr" ""
		assert_in_step
	done
}

@test "--max-delete refuses more deletes, leaving target and state as they were" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		sed -i '5d;50d;150d' local.ndjson
		target=$(target_digest)
		state=$(state_digest)
		for budget in 2 1%; do
			run -5 --separate-stderr smart_sync --delete-orphans --max-delete "$budget"
			assert_output ""
			assert_equal "$stderr" "recdelta-push: refused: 3 deletes exceed the budget of 2 (--max-delete $budget)
recdelta-push: nothing was written; to allow them, raise --max-delete or check the local data"
			assert_equal "$(target_digest)" "$target"
			assert_equal "$(state_digest)" "$state"
		done
		# 3 and 2% (4 of 200) are enough.
		run -0 --separate-stderr smart_sync --delete-orphans --max-delete 2%
		assert_equal "$stderr" "$(summary 0 0 197 3 0)"
		assert_in_step
	done
}

# The flow keeps its push results to itself, so a shim recdelta-push first
# on PATH copies them to $RESULTS: the planned results are those of the
# flow's own dry run, and the results compared with them those of the flow's
# own real run, which the state's change log must confirm.  The flow is run
# as itself, since recdelta(1) would put its own directory before the shim.
@test "--dry-run writes nothing and plans exactly what the real run then does" {
	real=$(command -v recdelta-push)
	mkdir shim
	cat > shim/recdelta-push <<SHIM
#!/usr/bin/env bash
set -o pipefail
"$real" "\$@" | tee -a "\$RESULTS"
SHIM
	chmod +x shim/recdelta-push
	PATH=$PWD/shim:$PATH
	for kind in $KINDS; do
		enter "$kind"
		# Into nothing: neither a target nor a state is made.
		run -0 --separate-stderr smart_sync -n
		assert_equal "$stderr" "$(would_create; echo 'Dry run: would create 200, update 0, delete 0; 0 unchanged; nothing written')"
		assert_equal "$(target_digest)" absent
		assert_equal "$(state_digest)" absent
		# The target holds games 1-180, 5 of them older: the run that
		# follows has 20 creates, 5 updates and 10 deletes.
		head -n 180 "$GAMES" > local.ndjson
		smart_sync -q
		sed -n '11,200p' "$GAMES" > local.ndjson
		for n in 3 30 60 90 120; do
			set_score "$(key_at "$n")" 99
		done
		target=$(target_digest)
		state=$(state_digest)
		RESULTS=$PWD/planned.ndjson run -0 --separate-stderr "$RECDELTA_PIPELINES/smart-sync" \
		    -t Game -l ndjson:local.ndjson -r "$T" -n --delete-orphans
		assert_output ""
		assert_equal "$stderr" "Dry run: would create 20, update 5, delete 10; 165 unchanged; nothing written"
		assert_equal "$(target_digest)" "$target"
		assert_equal "$(state_digest)" "$state"
		run -0 jq -r 'select(.status != "skipped") | [.status, .op, .type, .key] | @tsv' planned.ndjson
		planned=$(sed 's/^planned\t//' <<<"$output" | LC_ALL=C sort)
		assert_equal "$(wc -l <<<"$planned")" 35
		refute_output --regexp $'^[^p]'

		RESULTS=$PWD/results.ndjson run -0 --separate-stderr "$RECDELTA_PIPELINES/smart-sync" \
		    -t Game -l ndjson:local.ndjson -r "$T" --delete-orphans
		assert_equal "$stderr" "$(summary 20 5 165 10 0)"
		run -0 jq -r 'select(.status != "skipped") | [.status, .op, .type, .key] | @tsv' results.ndjson
		refute_output --regexp $'^[^o]'
		assert_equal "$(sed 's/^ok\t//' <<<"$output" | LC_ALL=C sort)" "$planned"
		# What the state recorded of the run says the same.
		run -0 recdelta-checkpoint show --json 2
		assert_equal "$(jq -r '[.op, .type, .key] | @tsv' <<<"$output" | LC_ALL=C sort)" "$planned"
		assert_in_step
	done
}

@test "--incremental sends only what changed since the last run and ends where a full run ends" {
	for kind in $KINDS; do
		enter "$kind"
		# No base yet: the whole remote is read.
		run -0 --separate-stderr smart_sync --incremental
		assert_equal "$stderr" "recdelta-smart-sync: no base snapshot yet: reading the whole remote
$(created; summary 200 0 0 0 0)"
		gen=$(writes)
		before=$(target_digest)
		run -0 --separate-stderr smart_sync --incremental --log "$PWD/log.ndjson"
		assert_equal "$stderr" "$(summary 0 0 200 0 0)"
		if has_feed; then
			grep -qF '"msg":"incremental: reading the change feed from ' log.ndjson
		else
			grep -qF '"msg":"incremental: diff against the base snapshot"' log.ndjson
		fi
		assert_equal "$(target_digest)" "$before"
		assert_equal "$(writes)" "$gen"

		# One change: one write, and the same end as a full run.
		k=$(key_at 100)
		set_score "$k" 99
		revs=$(target_keys)
		save_target
		cp -a . ../"$KIND.bak"
		run -0 --separate-stderr smart_sync --incremental
		assert_equal "$stderr" "$(summary 0 1 199 0 0)"
		run -1 diff <(echo "$revs") <(target_keys)
		assert_equal "$(grep -c '^[<>]' <<<"$output")" 2
		assert_line --regexp "^< Game	$k	$(rev_regexp)\$"
		assert_line --regexp "^> Game	$k	$(rev_regexp)\$"
		[ "$gen" = - ] || assert_equal "$(writes)" "$((gen + 1))"
		incremental=$(fetch_live)
		assert_in_step
		cd .. && rm -rf "$KIND" && mv "$KIND.bak" "$KIND" && cd "$KIND"
		restore_target
		run -0 --separate-stderr smart_sync
		assert_equal "$stderr" "$(summary 0 1 199 0 0)"
		assert_equal "$(fetch_live)" "$incremental"

		# A record deleted by another writer is seen by the change feed,
		# where the target has one; else only by a full read.
		k=$(key_at 7)
		printf '{"kind":"change","op":"delete","type":"Game","key":"%s","rev":"%s"}\n' \
		    "$k" "$(rev_of "$k")" | other_writer > /dev/null
		if has_feed; then
			run -0 --separate-stderr smart_sync --incremental
			assert_equal "$stderr" "$(summary 1 0 199 0 0)"
			assert_equal "$(fetch_live | wc -l)" 200
		else
			run -0 --separate-stderr smart_sync --incremental
			assert_equal "$stderr" "$(summary 0 0 200 0 0)"
			assert_equal "$(fetch_live | wc -l)" 199
			run -0 --separate-stderr smart_sync --incremental --verify
			assert_equal "$stderr" "$(summary 1 0 199 0 0)"
		fi
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"
	done
}

@test "a record gone from both sides leaves the base too" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		# Another writer deletes a record that the local data drops too:
		# no side has it, so the base must not keep it either.
		k=$(key_at 9)
		printf '{"kind":"change","op":"delete","type":"Game","key":"%s","rev":"%s"}\n' \
		    "$k" "$(rev_of "$k")" | other_writer > /dev/null
		sed -i 9d local.ndjson
		run -0 --separate-stderr smart_sync
		assert_equal "$stderr" "$(summary 0 0 199 0 0)"
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"
		# Else an incremental run finds an orphan that is nowhere.
		run -0 --separate-stderr smart_sync --incremental
		assert_equal "$stderr" "$(summary 0 0 199 0 0)"
	done
}

@test "bad local input: exit 3, the line named, nothing written" {
	for kind in $KINDS; do
		enter "$kind"
		sed -i '57s/.*/{"kind":"record","type":"Game","key":/' local.ndjson
		run -3 --separate-stderr smart_sync
		assert_output ""
		assert_equal "$stderr" "recdelta-diff: local.ndjson:57: unexpected end of input"
		assert_equal "$(target_digest)" absent

		# Into a target and state that exist: both left as they were.
		cp "$GAMES" local.ndjson
		smart_sync -q
		set_score "$(key_at 3)" 99
		sed -i '57s/.*/{"kind":"record","type":"Game","key":/' local.ndjson
		target=$(target_digest)
		state=$(state_digest)
		for opt in --verify --incremental; do
			run -3 --separate-stderr smart_sync "$opt"
			assert_output ""
			assert_equal "$stderr" "recdelta-diff: local.ndjson:57: unexpected end of input"
			assert_equal "$(target_digest)" "$target"
			assert_equal "$(state_digest)" "$state"
		done
	done
}

@test "an empty local file is read (--allow-empty): every remote record is an orphan, kept without --delete-orphans" {
	for kind in $KINDS; do
		enter "$kind"
		smart_sync -q
		: > local.ndjson
		before=$(target_digest)
		run -0 --separate-stderr smart_sync
		assert_output ""
		assert_equal "$stderr" "$(summary 0 0 0 0 0)
Would delete 200 orphan records (use --delete-orphans to confirm)"
		assert_equal "$(target_digest)" "$before"
		run -5 --separate-stderr smart_sync --delete-orphans --max-delete 10%
		assert_equal "$(target_digest)" "$before"
	done
}

# crash_mid_commit: leave the target as a writer killed in the middle of a
# commit leaves it.  dir: the files of a version that meta.json never came
# to name, and a half-written meta.json.tmp.  sqlite: a hot journal, from an
# sqlite3 killed inside a transaction that had already changed the file.
crash_mid_commit() {
	local k=$1 pid

	case $KIND in
	dir)
		echo '{"fields":{"half":' > "remote/Game/$k~2.json"
		echo '{"entities":{' > remote/meta.json.tmp
		;;
	webdav)
		# A version meta.json never named, and the writers' lock of a
		# writer that is gone.
		echo '{"fields":{"half":' > "$DAV_ROOT/remote/Game/$k~2.json"
		mkdir "$DAV_ROOT/remote/.recdelta-lock"
		printf '%s %s %s\n' "$(hostname)" "$(sh -c 'echo $$')" "$(date +%s)" \
		    > "$DAV_ROOT/remote/.recdelta-lock/owner"
		[ "$(id -u)" != 0 ] || chown -R www-data: "$DAV_ROOT/remote"
		;;
	sqlite)
		mkfifo sql.fifo
		sqlite3 r.db < sql.fifo > sql.out 2>&1 3>&- &
		pid=$!
		exec 4> sql.fifo
		printf '%s\n' 'PRAGMA cache_size = 1;' 'BEGIN IMMEDIATE;' \
		    'UPDATE games SET week = week + 100, rev = rev + 1;' \
		    "SELECT 'changed';" >&4
		wait_until grep -q changed sql.out || return 1
		kill -9 "$pid"
		{ wait "$pid"; } 2>/dev/null || true
		exec 4>&-
		rm sql.fifo sql.out
		[ -s r.db-journal ]
		;;
	esac
}

@test "a writer killed in the middle of a commit: the next run reads the target and repairs it" {
	skipped=
	for kind in $KINDS; do
		if [ "$kind" = cloudkit ] || [ "$kind" = couchdb ]; then
			skipped="cloudkit:, couchdb: no client-side commit to interrupt: the server"
			skipped+=" applies each operation of a records/modify, each document of a"
			skipped+=" _bulk_docs, whole or not at"
			skipped+=" all, so a killed writer leaves no half-written files or hot"
			skipped+=" journal (a push killed mid-request is in the kill -9 test)"
			continue
		fi
		enter "$kind"
		smart_sync -q
		k=$(key_at 12)
		set_score "$k" 99
		crash_mid_commit "$k"
		run -0 --separate-stderr smart_sync
		if [ "$KIND" = webdav ]; then
			assert_equal "$(sed 's/ of writer [0-9]* on .*,/ of writer N on H,/' <<<"$stderr")" \
			    "recdelta-push: webdav: $DAV_URL/remote/.recdelta-lock/: removed the lock of writer N on H, which did not finish
$(summary 0 1 199 0 0)"
		else
			assert_equal "$stderr" "$(summary 0 1 199 0 0)"
		fi
		assert_in_step
		assert_equal "$(base_keys)" "$(target_keys)"
		if [ "$KIND" = dir ] || [ "$KIND" = webdav ]; then
			r=remote
			[ "$KIND" = dir ] || r=$DAV_ROOT/remote
			assert_equal "$(rev_of "$k")" 2
			# One file per live record, and the index: no debris.
			assert_equal "$(cd "$r" && find . ! -name .lock ! -name . ! -name Game ! -name meta.idx | LC_ALL=C sort)" \
			    "$({ echo ./meta.json; bucket_files "$r"; store_entities "$r" | jq -r '.Game | keys[] | "./Game/\(.)~1.json"' |
			    sed "s|/$k~1.json|/$k~2.json|"; } | LC_ALL=C sort)"
		fi
	done
	# The kinds that ran have passed; say which one did not run, and why.
	[ -z "$skipped" ] || skip "$skipped"
}

# Kill the whole flow, every stage of it, with SIGKILL at a point the test
# chose, then run it again: the target must end as an uninterrupted run
# leaves it, and the state agree with it.  Five kills for dir: and sqlite:,
# three for cloudkit: and couchdb: (each start again restarts the emulator
# from its saved records, or replicates the saved database back; the server
# itself outlives the kills, as a remote server does),
# the first while the flow surely holds its lock; RECDELTA_KILL_ITERATIONS=N
# for more.  The points (helpers/faultinject.bash): in the hook before the
# push; in recdelta-checkpoint record, before its 10th file-system call (the
# 4th checkpoint of the run to make 10) and its 40th (the first); in the
# push, before its 60th and 120th call (dir: and sqlite: make more than 120)
# or, for cloudkit: and couchdb:, while the server holds its first or
# second records/modify or _bulk_docs request (handled once released, after
# the kill).  A point is STAGE:N:M, M the number of pauses let go on before
# the kill; for the push, the records/modify or _bulk_docs requests let by.
@test "kill -9 at chosen points: the next run converges, nothing lost or doubled" {
	points=(checkpoint:10:3 push:60:0 checkpoint:40:0 push:120:1)
	for kind in $KINDS; do
		iterations=${RECDELTA_KILL_ITERATIONS:-5}
		case $kind in cloudkit|couchdb) iterations=${RECDELTA_KILL_ITERATIONS:-3} ;; esac
		enter "$kind"
		# The start: an older copy of 400 games, without the last 40,
		# with 20 that are no longer local, and 40 other scores.
		cp "$GAMES400" new.ndjson
		{ head -n 360 new.ndjson; head -n 20 new.ndjson | sed 's/"key":"/"key":"old_/'; } > local.ndjson
		smart_sync -q
		awk 'NR % 9 == 5 && NR <= 360 { sub(/"home_score":[0-9]+/, "\"home_score\":99") } 1' \
		    new.ndjson > local.ndjson
		mkdir start
		save_target
		cp -a remote r.db ck-state.json dav-remote state.db* start/ 2>/dev/null || true
		# The end an uninterrupted run reaches.
		run -0 --separate-stderr smart_sync --delete-orphans -b 50
		assert_equal "$stderr" "$(summary 40 40 320 20 0)"
		expected=$(fetch_live)
		reclaimed=0
		for i in $(seq "$iterations"); do
			rm -rf remote r.db r.db-* ck-state.json dav-remote state.db state.db-* tmp/* hooked
			cp -a start/. .
			restore_target
			point=${points[(i + 2) % 4]}
			prog=recdelta-${point%%:*} n=${point#*:} n=${n%:*} go=${point##*:}
			[ "$i" != 1 ] || point=hook
			if [ "$point" = hook ]; then
				# Once with the lock surely held: in the hook, which
				# stops itself until the kill.
				RECDELTA_HOOK_BEFORE_PUSH='echo > hooked; kill -STOP $$' \
				    paused 0 recdelta smart-sync -t Game -l ndjson:local.ndjson -r "$T" \
				    --delete-orphans -b 50 > /dev/null 2> "killed.$i"
				wait_for hooked
			elif [ "$prog" = recdelta-push ] && [ "$KIND" = cloudkit ]; then
				point="records/modify:$go"
				ck_control POST faults "{\"path\":\"records/modify\",\"hold\":true,\"after\":$go}" > /dev/null
				paused 0 recdelta smart-sync -t Game -l ndjson:local.ndjson -r "$T" \
				    --delete-orphans -b 50 > /dev/null 2> "killed.$i"
				held_or_ended() {
					[ "$(ck_control GET held | jq .held)" = 1 ] || ! kill -0 "$PAUSED_PID" 2> /dev/null
				}
				wait_until held_or_ended
				[ "$(ck_control GET held | jq .held)" = 1 ] ||
				    fail "iteration $i: the flow ended before request $((go + 1)) of records/modify: $(cat "killed.$i")"
			elif [ "$prog" = recdelta-push ] && [ "$KIND" = couchdb ]; then
				point="_bulk_docs:$go"
				couch_hold _bulk_docs "$go"
				paused 0 recdelta smart-sync -t Game -l ndjson:local.ndjson -r "$T" \
				    --delete-orphans -b 50 > /dev/null 2> "killed.$i"
				couch_held_or_ended() {
					[ "$(couch_held)" = 1 ] || ! kill -0 "$PAUSED_PID" 2> /dev/null
				}
				wait_until couch_held_or_ended
				[ "$(couch_held)" = 1 ] ||
				    fail "iteration $i: the flow ended before request $((go + 1)) of _bulk_docs: $(cat "killed.$i")"
			else
				[ "$prog" != recdelta-push ] || go=0
				# webdav: push's points are requests sent.
				calls=
				[ "$prog $KIND" != "recdelta-push webdav" ] || calls=send
				RECDELTA_FAULT_CALLS=$calls RECDELTA_FAULT_PROG=$prog paused "$n" recdelta smart-sync -t Game \
				    -l ndjson:local.ndjson -r "$T" --delete-orphans -b 50 > /dev/null 2> "killed.$i"
				for r in $(seq 0 "$go"); do
					wait_paused || fail "iteration $i: the flow ended before pause $r at $point: $(cat "killed.$i")"
					[ "$r" -eq "$go" ] || resume
				done
			fi
			kill_paused
			[ "$PAUSED_STATUS" = 137 ] || fail "iteration $i ($point): status $PAUSED_STATUS, not killed"
			[ "$KIND" != cloudkit ] || ck_control POST release > /dev/null
			[ "$KIND" != couchdb ] || couch_release
			unset RECDELTA_HOOK_BEFORE_PUSH
			owner=$(sqlite3 state.db 'SELECT pid FROM lock' 2>/dev/null || true)
			run --separate-stderr smart_sync --delete-orphans -b 50
			[ "$status" -eq 0 ] ||
			    fail "iteration $i (killed at $point): status $status: $stderr"
			if [ -n "$owner" ]; then
				grep -q "^recdelta-checkpoint: reclaimed the orphan lock of pid $owner " <<<"$stderr" ||
				    fail "iteration $i: the lock of pid $owner was not reclaimed: $stderr"
				reclaimed=$((reclaimed + 1))
			fi
			[ "$(fetch_live)" = "$expected" ] ||
			    fail "iteration $i (killed at $point): the target differs from an uninterrupted run's"
			assert_in_step
			assert_equal "$(base_keys)" "$(target_keys)"
		done
		[ "$reclaimed" -ge 1 ] || fail "no run was killed while it held the lock"
	done
}

@test "--log: every stage of the flow appends NDJSON lines to one private log" {
	for kind in $KINDS; do
		enter "$kind"
		run -0 --separate-stderr smart_sync -q --log "$PWD/run.log"
		assert_equal "$(stat -c %a run.log)" 600
		# Each line is one JSON object with ts, level, prog and msg.
		run -0 jq -e -s 'all(.[]; (.ts|type) == "string" and (.level|type) == "string" and (.prog|type) == "string" and (.msg|type) == "string")' run.log
		assert_equal "$(jq -r .prog run.log | sort -u | tr '\n' ' ')" \
		    'recdelta-checkpoint recdelta-diff recdelta-push recdelta-smart-sync '
		assert_equal "$(jq -r 'select(.msg == "push done") | .created' run.log)" 200
		# No field value reaches the log, nor a line of the private key.
		run grep -c '"\$ref"' run.log
		assert_output 0
		if [ "$KIND" = cloudkit ]; then
			run grep -cFf <(grep -v -- '-----' "$CK_KEY_FILE") run.log
			assert_output 0
		fi
		if [ "$KIND" = couchdb ]; then
			run grep -cF "$(cat "$RECDELTA_COUCHDB_PASSWORD_FILE")" run.log
			assert_output 0
		fi
	done
}
