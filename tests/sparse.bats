#!/usr/bin/env bats
# Sparse plans: recdelta-diff --sparse (a same line only where it tells the
# base something, the counts last), recdelta-push's summary from such a
# plan, recdelta-checkpoint prune --sparse, and smart-sync --incremental,
# which plans and prunes so, ending every run where full runs end.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/couchdb

KINDS=${RECDELTA_TEST_KINDS:-dir couchdb sqlite}

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	case " $KINDS " in
	*" couchdb "*) couch_start "$BATS_FILE_TMPDIR/couch" ;;
	esac
}

teardown_file() {
	couch_stop
}

# The small case: a in step at the base's rev, b in step at a rev the base
# does not have, c new, d updated, e only remote; f in step at the base's
# rev with an ignored field the base holds otherwise.
small() {
	{
		rec T a '{"n":1}'
		rec T b '{"n":2}'
		rec T c '{"n":3}'
		rec T d '{"n":40}'
		rec T f '{"n":6,"at":2}'
	} > local.ndjson
	{
		rec T a '{"n":1}' 1
		rec T b '{"n":2}' 2
		rec T d '{"n":4}' 1
		rec T e '{"n":5}' 1
		rec T f '{"n":6,"at":2}' 1
	} > remote.ndjson
	{
		rec T a '{"n":1}' 1
		rec T b '{"n":2}' 1
		rec T d '{"n":4}' 1
		rec T f '{"n":6,"at":1}' 1
	} > base.ndjson
}

@test "diff --sparse: a same line only where the base does not hold the remote's record as it is; the summary line last; none without --base" {
	small
	run -0 --separate-stderr recdelta-diff --sparse -i at -l local.ndjson -r remote.ndjson --base ndjson:base.ndjson
	assert_equal "$stderr" ""
	assert_output '{"kind":"change","op":"same","type":"T","key":"b","rev":"2","fields":{"n":2}}
{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"update","type":"T","key":"d","rev":"1","fields":{"n":40},"changed":["n"]}
{"kind":"change","op":"same","type":"T","key":"f","rev":"1","fields":{"n":6,"at":2}}
{"kind":"change","op":"delete","type":"T","key":"e","rev":"1"}
{"kind":"summary","stage":"diff","counts":{"T":{"same":3,"create":1,"update":1,"delete":1}}}'
	# --all writes a same line for each of the three.
	run -0 recdelta-diff --all -i at -l local.ndjson -r remote.ndjson --base ndjson:base.ndjson
	assert_equal "$(grep -c '"op":"same"' <<< "$output")" 3
	run -0 --separate-stderr recdelta-diff --all --sparse -i at -l local.ndjson -r remote.ndjson
	assert_output '{"kind":"change","op":"create","type":"T","key":"c","fields":{"n":3}}
{"kind":"change","op":"update","type":"T","key":"d","rev":"1","fields":{"n":40},"changed":["n"]}
{"kind":"change","op":"delete","type":"T","key":"e","rev":"1"}
{"kind":"summary","stage":"diff","counts":{"T":{"same":3,"create":1,"update":1,"delete":1}}}'
	# Into a file with -o, the same lines.
	run -0 recdelta-diff --sparse -i at -l local.ndjson -r remote.ndjson -o plan.ndjson
	assert_output ''
	assert_equal "$(cat plan.ndjson)" "$(recdelta-diff --sparse -i at -l local.ndjson -r remote.ndjson)"
}

@test "push: the summary of a sparse plan is the --all plan's; the summary line is passed on; a malformed one is bad input" {
	small
	for plan in --all --sparse; do
		cp remote.ndjson r$plan.ndjson
		recdelta-diff $plan -l local.ndjson -r remote.ndjson --base ndjson:base.ndjson > plan$plan
		run -0 --separate-stderr recdelta-push ndjson:r$plan.ndjson < plan$plan
		assert_equal "$stderr" "Created 1, Updated 1, Skipped 3 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)"
		run -0 --separate-stderr recdelta-push -n ndjson:r$plan.ndjson < plan$plan
		assert_equal "$stderr" "Dry run: would create 1, update 1, delete 0; 3 unchanged; nothing written
Would delete 1 orphan records (use --delete-orphans to confirm)"
	done
	assert_equal "$(cat r--sparse.ndjson)" "$(cat r--all.ndjson)"
	cp remote.ndjson r.ndjson
	run -0 --separate-stderr recdelta-push ndjson:r.ndjson < plan--sparse
	assert_equal "${lines[-1]}" '{"kind":"summary","stage":"diff","counts":{"T":{"same":3,"create":1,"update":1,"delete":1}}}'
	printf '%s\n' '{"kind":"summary","stage":"diff","counts":{"T":{"same":"x"}}}' > bad
	run -3 --separate-stderr recdelta-push ndjson:r--sparse.ndjson < bad
	assert_output ''
	assert_equal "$stderr" 'recdelta-push: <stdin>:1: counts "T": "same" is not a count'
	# Another stage's summary passes unread.
	printf '%s\n' '{"kind":"summary","stage":"merge","counts":{}}' > other
	run -0 --separate-stderr recdelta-push ndjson:r--sparse.ndjson < other
	assert_output '{"kind":"summary","stage":"merge","counts":{}}'
	assert_equal "$stderr" "Created 0, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
}

@test "checkpoint record: a sparse plan's summary line alone passes through and makes a run that counts nothing" {
	export RECDELTA_STATE=$PWD/st.db
	line='{"kind":"summary","stage":"diff","counts":{"T":{"same":3,"create":0,"update":0,"delete":0}}}'
	run -0 --separate-stderr recdelta-checkpoint record --scope s --flow smart-sync <<< "$line"
	assert_output "$line"
	run -0 recdelta-checkpoint history --json
	assert_equal "$(jq -c '{flow, status, counts}' <<< "$output")" '{"flow":"smart-sync","status":"done","counts":{"ok":0,"skipped":0,"conflict":0,"deferred":0,"failed":0,"planned":0}}'
}

@test "checkpoint prune --sparse: rows no result names stay; a feed tombstone no result names goes, of every type for \"*\"; one a result names stays; feed_seen as without --sparse" {
	export RECDELTA_STATE=$PWD/st.db
	{
		for k in a b c d; do res create T "$k" ok 1 '{"n":1}'; done
		res create U c ok 1 '{"n":1}'
		res create U x ok 1 '{"n":1}'
	} | recdelta-checkpoint record --scope s > /dev/null
	{
		# d: deleted remotely, created again from the local data (prune
		# records nothing: the base row is record's).
		res create T d ok 2 '{"n":1}'
		# e: an orphan the feed told of; f: a record the feed told of,
		# settled by a same line; g: one that is not named at all.
		res delete T e skipped 1 '' ',"error":{"code":"orphan","message":"not deleted without --delete-orphans"}'
		res same T f skipped 3 '{"n":3}'
		echo '{"kind":"summary","stage":"diff","counts":{"T":{"same":2,"create":1,"update":0,"delete":1}}}'
		echo '{"kind":"record","type":"T","key":"b","rev":"2","deleted":true}'
		echo '{"kind":"record","type":"*","key":"c","deleted":true}'
		echo '{"kind":"record","type":"T","key":"d","deleted":true}'
		# x: deleted, then back, as the feed told it.
		echo '{"kind":"record","type":"U","key":"x","deleted":true}'
		rec U x '{"n":2}' 2
		rec T e '{"n":5}' 1
		rec T f '{"n":3}' 3
		# g: in step and left out of the plan, so named by no result.
		rec T g '{"n":7}' 2
		echo '{"kind":"cursor","source":"s","name":"since","value":"7"}'
	} > results.ndjson
	run -0 --separate-stderr recdelta-checkpoint prune --sparse --cursor feed < results.ndjson
	assert_output ''
	assert_equal "$stderr" ''
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"a","rev":"1","fields":{"n":1}}
{"kind":"record","type":"T","key":"d","rev":"1","fields":{"n":1}}
{"kind":"record","type":"U","key":"x","rev":"1","fields":{"n":1}}'
	assert_equal "$(sqlite3 st.db 'SELECT type, key FROM feed_seen ORDER BY 1, 2')" 'T|e'
	run -0 recdelta-checkpoint cursor get feed
	assert_output 7
	# Without --sparse the rows no result names go.
	run -0 recdelta-checkpoint prune < results.ndjson
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"d","rev":"1","fields":{"n":1}}'
	run -2 --separate-stderr recdelta-checkpoint prune --sparse --runs 3
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --runs and --sparse: one or the other'
}

# enter KIND: a folder of its own, two empty targets: F (full runs) and I
# (incremental runs), each with its state; local.ndjson, 12 records.
enter() {
	KIND=$1
	mkdir -p "$BATS_TEST_TMPDIR/$KIND"
	cd "$BATS_TEST_TMPDIR/$KIND" || return 1
	case $KIND in
	couchdb)
		couch_db "f$BATS_TEST_NUMBER" && couch_db "i$BATS_TEST_NUMBER" || return 1
		F=couchdb:$COUCH_URL/f$BATS_TEST_NUMBER
		I=couchdb:$COUCH_URL/i$BATS_TEST_NUMBER
		;;
	dir)
		mkdir f i
		F=dir:$PWD/f
		I=dir:$PWD/i
		;;
	sqlite)
		F="sqlite:$PWD/f.db?table=G&key=key"
		I="sqlite:$PWD/i.db?table=G&key=key"
		;;
	esac
	seq 1 12 | jq -c '{kind:"record",type:"G",key:("g" + tostring),fields:{n:.}}' > local.ndjson
	echo "--- $KIND"
}

statename() {
	if [ "$1" = "$F" ]; then echo f; else echo i; fi
}

# sync T [OPTION]...: the flow from local.ndjson to T, with T's state; its
# stderr with the target's word as T, into $stderr.
sync() {
	local t=$1
	shift
	RECDELTA_STATE=$PWD/state-$(statename "$t").db run --separate-stderr \
	    recdelta smart-sync -l ndjson:local.ndjson -r "$t" "$@"
	stderr=${stderr//"$t"/T}
}

checkpoint() {
	local t=$1
	shift
	RECDELTA_STATE=$PWD/state-$(statename "$t").db recdelta-checkpoint "$@"
}

# live T: the target's records, sorted, without rev and mtime.
live() {
	recdelta-fetch -t G "$1" | jq -c 'select(.kind == "record" and .deleted != true) |
	    {type, key, fields}' | LC_ALL=C sort
}

rev_of() {
	recdelta-fetch -t G "$1" | jq -r --arg k "$2" 'select(.kind == "record" and .key == $k) | .rev'
}

# other T: another client (a push of its own, no state) edits g9, deletes
# g10 and g11.
other() {
	{
		printf '{"kind":"change","op":"update","type":"G","key":"g9","rev":"%s","fields":{"n":99},"changed":["n"]}\n' "$(rev_of "$1" g9)"
		printf '{"kind":"change","op":"delete","type":"G","key":"g10","rev":"%s"}\n' "$(rev_of "$1" g10)"
		printf '{"kind":"change","op":"delete","type":"G","key":"g11","rev":"%s"}\n' "$(rev_of "$1" g11)"
	} | recdelta-push -q --delete-orphans "$1" > other.ndjson
	[ "$(jq -r .status other.ndjson | sort -u)" = ok ]
}

# same_state: both targets hold the same records, both states the same
# base (revs aside: each store gives its own) and the same history but for
# the skipped counts, which a sparse plan's records in step are not in.
same_state() {
	assert_equal "$(live "$I")" "$(live "$F")"
	assert_equal "$(checkpoint "$I" base | jq -c 'del(.rev)')" \
	    "$(checkpoint "$F" base | jq -c 'del(.rev)')"
	assert_equal "$(checkpoint "$I" history --json | jq -c '{flow, status, counts: (.counts | del(.skipped))}')" \
	    "$(checkpoint "$F" history --json | jq -c '{flow, status, counts: (.counts | del(.skipped))}')"
}

@test "smart-sync --incremental (sparse plans) ends every run where full runs end: stores, base, history, messages" {
	for kind in $KINDS; do
		enter "$kind"
		created=
		[ "$kind" != sqlite ] || created='recdelta-push: created "T" (it did not exist)
'
		sync "$F"
		assert_equal "$stderr" "${created}Created 12, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
		sync "$I" --incremental
		assert_equal "$stderr" "recdelta-smart-sync: no base snapshot yet: reading the whole remote
${created}Created 12, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
		same_state

		# Nothing changed: the plan of the incremental run is its last
		# line alone (the hook copies it from the flow's folder).
		sync "$F"
		full=$stderr
		assert_equal "$full" "Created 0, Updated 0, Skipped 12 unchanged, Deleted 0, Conflicts 0"
		mkdir tmp
		TMPDIR=$PWD/tmp RECDELTA_HOOK_BEFORE_PUSH='cat "$TMPDIR"/recdelta-sync.*/plan.ndjson > plan.copy' \
		    sync "$I" --incremental
		assert_equal "$stderr" "$full"
		assert_equal "$(cat plan.copy)" '{"kind":"summary","stage":"diff","counts":{"G":{"same":12,"create":0,"update":0,"delete":0}}}'
		same_state

		# Local edits (g3, g9, g10) and deletes (g4, g11); another
		# client edits g9 (a remote edit, kept), deletes g10 (created
		# again) and g11 (gone from both sides).
		other "$F"
		other "$I"
		sed -i -e 's/"n":3}/"n":30}/' -e 's/"n":9}/"n":90}/' -e 's/"n":10}/"n":100}/' \
		    -e '/"g4"/d' -e '/"g11"/d' local.ndjson
		sync "$F" --keep-remote-edits --delete-orphans
		full=$stderr
		assert_equal "$full" "Created 1, Updated 1, Skipped 7 unchanged, Deleted 1, Conflicts 0
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		sync "$I" --incremental --keep-remote-edits --delete-orphans
		if [ "$kind" = sqlite ]; then
			# No feed: g11, gone from the remote unseen, is a delete
			# found done.
			assert_equal "$stderr" "Created 1, Updated 1, Skipped 8 unchanged, Deleted 1, Conflicts 0
recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
		else
			assert_equal "$stderr" "$full"
		fi
		same_state
		assert_equal "$(checkpoint "$I" base | jq -r .key | tr '\n' ' ')" "g1 g10 g12 g2 g3 g5 g6 g7 g8 g9 "

		# g11 is back locally; g9's local edit now overwrites the remote's.
		rec G g11 '{"n":11}' >> local.ndjson
		sync "$F"
		full=$stderr
		assert_equal "$full" "Created 1, Updated 1, Skipped 9 unchanged, Deleted 0, Conflicts 0
recdelta-push: overwrote 1 remote edit (see --log)"
		sync "$I" --incremental
		assert_equal "$stderr" "$full"
		same_state

		sync "$F"
		full=$stderr
		assert_equal "$full" "Created 0, Updated 0, Skipped 11 unchanged, Deleted 0, Conflicts 0"
		sync "$I" --incremental
		assert_equal "$stderr" "$full"
		same_state
		run -0 --separate-stderr recdelta diff-only -l ndjson:local.ndjson -r "$I"
		assert_output "Gs: 11 unchanged, 0 new, 0 updated, 0 deleted"
		assert_equal "$stderr" ""
	done
}

@test "smart-sync --incremental: an empty local source over a base is refused from the sparse plan's counts, exit 5, nothing written" {
	for kind in $KINDS; do
		enter "$kind"
		sync "$I" --incremental -q
		sync "$I" --incremental -q
		assert_equal "$stderr" ""
		: > empty.ndjson
		before=$(live "$I")
		for opts in --delete-orphans "--delete-orphans -q" "--delete-orphans --dry-run"; do
			# shellcheck disable=SC2086 # the options are words
			RECDELTA_STATE=$PWD/state-i.db run -5 --separate-stderr recdelta smart-sync \
			    --incremental $opts -l ndjson:empty.ndjson -r "$I"
			assert_output ''
			assert_equal "$stderr" "recdelta-smart-sync: refused: ndjson:empty.ndjson holds no record, where the base snapshot of the last sync holds 12
recdelta-smart-sync: nothing was written; if the local data is meant to be empty, run the same command with --allow-empty"
		done
		assert_equal "$(live "$I")" "$before"
		# Records in step, none written: no refusal.
		RECDELTA_STATE=$PWD/state-i.db run -0 --separate-stderr recdelta smart-sync --incremental \
		    --delete-orphans -l ndjson:local.ndjson -r "$I"
		assert_equal "$stderr" "Created 0, Updated 0, Skipped 12 unchanged, Deleted 0, Conflicts 0"
	done
}

@test "smart-sync -t: a full run of some types prunes only their base rows; the other types' rows stay as they were" {
	for kind in $KINDS; do
		# A table holds one type.
		[ "$kind" != sqlite ] || continue
		enter "$kind"
		rec H h1 '{"n":1}' >> local.ndjson
		rec H h2 '{"n":2}' >> local.ndjson
		sync "$F" -t G -t H
		assert_equal "$stderr" "Created 14, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
		checkpoint "$F" base -t H > h.before
		assert_equal "$(jq -r .key h.before | tr '\n' ' ')" "h1 h2 "
		# g12 gone locally (kept on the remote: its base row stays, the
		# result names it); g11 gone from both sides (its row goes); h2
		# gone locally too, but no run of H says so.
		g11=$(rev_of "$F" g11)
		printf '{"kind":"change","op":"delete","type":"G","key":"g11","rev":"%s"}\n' "$g11" |
		    recdelta-push -q --delete-orphans "$F" > /dev/null
		sed -i -e '/"g11"/d' -e '/"g12"/d' -e '/"h2"/d' local.ndjson
		for opts in "" "--incremental --verify"; do
			sync "$F" -t G $opts
			assert_equal "$stderr" "Created 0, Updated 0, Skipped 10 unchanged, Deleted 0, Conflicts 0
Would delete 1 orphan records (use --delete-orphans to confirm)"
			assert_equal "$(checkpoint "$F" base -t H)" "$(cat h.before)"
			assert_equal "$(checkpoint "$F" base -t G | jq -r .key | tr '\n' ' ')" "g1 g10 g12 g2 g3 g4 g5 g6 g7 g8 g9 "
		done
		# A run of every type prunes H too: h2 stays (an orphan), as G's.
		sync "$F"
		assert_equal "$(checkpoint "$F" base -t H | jq -r .key | tr '\n' ' ')" "h1 h2 "
		rec H h2 '{"n":2}' >> local.ndjson
		sync "$F" --delete-orphans
		assert_equal "$(checkpoint "$F" base | jq -r .key | tr '\n' ' ')" "g1 g10 g2 g3 g4 g5 g6 g7 g8 g9 h1 h2 "
	done
}
