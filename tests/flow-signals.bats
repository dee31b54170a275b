#!/usr/bin/env bats
# A flow stopped by a signal (Ctrl-C, kill, a closed pipe) says in one line
# where it stopped, releases the lock, leaves its temporary folder behind
# nowhere, and a rerun finishes the work.  The signal is sent from inside
# the flow, at a point it reached (the hook before the push, the n-th
# --auth-cmd), never after a delay.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	mkdir -p tmp
	export TMPDIR=$PWD/tmp
	export RECDELTA_STATE=$PWD/state.db
	for k in a b c; do
		rec Item "$k" "{\"n\":1,\"day\":\"2024-01-0${k/a/1}\"}"
	done | sed 's/0b/02/; s/0c/03/' > local.ndjson
}

lock_holder() {
	recdelta-checkpoint status --json | jq -c .lock
}

@test "smart-sync stopped by SIGINT or SIGTERM before its push: one line, exit 130 or 143, lock released, a rerun syncs" {
	for sig in INT:130 TERM:143; do
		name=${sig%:*} code=${sig#*:}
		rm -rf remote state.db
		run --separate-stderr env RECDELTA_HOOK_BEFORE_PUSH="kill -$name \$PPID" \
		    recdelta smart-sync -l ndjson:local.ndjson -r dir:remote
		[ "$status" -eq "$code" ] || fail "SIG$name: status $status: $stderr"
		assert_equal "$stderr" "recdelta-smart-sync: stopped by SIG$name while about to push to dir:remote (nothing written yet); run the same command again to resume"
		assert_equal "$(lock_holder)" null
		assert_equal "$(ls tmp)" ""
		[ ! -e remote/Item ] || fail "SIG$name: the flow wrote after the signal"
		run -0 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r dir:remote
		assert_equal "$stderr" "recdelta-push: created \"dir:remote\" (it did not exist)
Created 3, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	done
}

@test "historical-import stopped by SIGINT in its third window: says which, releases the lock, a rerun finishes" {
	: > calls
	# --auth-cmd runs before each window: the third call stops the flow.
	run --separate-stderr recdelta historical-import --source ndjson:local.ndjson \
	    --target dir:remote --from 2024-01-01 --to 2024-01-05 --window-field day \
	    --auth-cmd 'echo >> calls; [ "$(wc -l < calls)" -ne 3 ] || kill -INT $PPID'
	assert_equal "$status" 130
	assert_equal "${stderr_lines[-1]}" "recdelta-historical-import: stopped by SIGINT while importing the window 2024-01-03 (2 done in this run); run the same command again to resume"
	assert_equal "$(lock_holder)" null
	assert_equal "$(ls tmp)" ""
	run -0 recdelta-checkpoint windows pending
	assert_output $'2024-01-03\n2024-01-04\n2024-01-05'
	run -0 --separate-stderr recdelta historical-import --source ndjson:local.ndjson \
	    --target dir:remote --from 2024-01-01 --to 2024-01-05 --window-field day -q
	run -0 recdelta-fetch dir:remote
	assert_equal "${#lines[@]}" 3
}
