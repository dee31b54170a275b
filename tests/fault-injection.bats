#!/usr/bin/env bats
# Fault injection: tests/helpers/faultinject.so (built by make check) makes
# the Nth file-system call of a program fail.  Each test counts the calls of
# a whole run without a fault, then walks N over every one of them: whatever
# call fails, the store or state is left as it was or as the run makes it,
# never anything else; the program either absorbs the fault (exit 0, the
# same results as without it) or says why it failed (exit 4, or 6 for a
# dir: batch that push still defers); and a rerun without the fault ends in
# the state a run without the fault gives.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore
load helpers/faultinject

suite_setup() {
	[ -f "$SHIM" ] || fail "$SHIM: missing; make check builds it"
}

# count_calls CMD...: run CMD without a fault and set CALLS to the number of
# calls it made that the shim can fail; the file trace lists them.
count_calls() {
	rm -f count trace
	RECDELTA_FAULT_COUNT=$PWD/count RECDELTA_FAULT_TRACE=$PWD/trace faulty "$@"
	CALLS=$(cat count)
	[ "$CALLS" -gt 10 ] || fail "only ${CALLS:-no} calls counted"
	mapfile -t TRACE < trace
}

# The modes of a walk, ERRNO:HOW:EVERY: the errno, "once" (the Nth call
# fails) or "from" (every call from the Nth on fails, as on a disk that
# stays full), and every how many points (so that the suite stays short).
# Under valgrind, a program takes a second: every 7th of those.
MODES=(ENOSPC:once:1 EIO:once:3 EACCES:once:5 ENOSPC:from:5)
STEP=1
[ "${RECDELTA_VALGRIND:-}" = 1 ] && STEP=7

# walk POINT: call the function POINT at each fault point n of each mode,
# with n, err (the errno's name), repeat (1 in a "from" mode) and what (the
# point, for messages) set.  The loop runs in a subshell without bats' traps,
# which slow a long loop down; POINT notes what it finds wrong with problem,
# and the test fails at the end with the whole list.
walk() {
	local point=$1 m every
	PROBLEMS=$BATS_TEST_TMPDIR/problems
	: > "$PROBLEMS"
	(
		trap - DEBUG ERR RETURN
		set +eET
		for m in "${MODES[@]}"; do
			every=$((${m##*:} * STEP))
			for ((n = 1; n <= CALLS; n += every)); do
				err=${m%%:*}
				repeat=$([[ $m == *:from:* ]] && echo 1)
				what="${m%:*} at $n/$CALLS (${TRACE[n - 1]#* })"
				"$point"
			done
			echo "# $point ${m%:*}: $(((CALLS + every - 1) / every)) points" >&3
		done
	)
	[ ! -s "$PROBLEMS" ] ||
	    fail "$(printf '%s points failed:\n' "$(wc -l < "$PROBLEMS")"; cat "$PROBLEMS")"
}

# problem MESSAGE: what is wrong at the point being walked.
problem() {
	printf '%s: %s\n' "$what" "$1" >> "$PROBLEMS"
}

# at_fault CMD...: run CMD with the fault of the point being walked; its
# status in status, its output in the files out and err.
at_fault() {
	RECDELTA_FAULT_AT=$n RECDELTA_FAULT_ERRNO=$err RECDELTA_FAULT_REPEAT=$repeat \
	    faulty "$@" > out 2> err
	status=$?
	return "$status"
}

# strerror ERRNO-NAME: the message of an errno, as strerror(3) gives it.
strerror() {
	case $1 in
	ENOSPC) echo 'No space left on device' ;;
	EIO) echo 'Input/output error' ;;
	EACCES) echo 'Permission denied' ;;
	esac
}

# failed_with PREFIX [REASON]...: the run at fault said why it failed: its
# message starts with PREFIX and ends with strerror's message, or one of the
# REASONs; else problem.
failed_with() {
	local msg reason
	msg=$(< err)
	for reason in "$(strerror "$err")" "${@:2}"; do
		[[ $msg == "$1"* && ${msg%$'\n'} == *"$reason" ]] && return
	done
	problem "exit $status without the reason: $msg"
}

# --- push to dir: ----------------------------------------------------------

# dirstate: the records of dir:R as fetch reads them, without the mtimes
# (the time of the run), and the generation of its index.
dirstate() {
	local - meta
	set -o pipefail
	recdelta-fetch dir:R | sed 's/,"mtime":"[^"]*"//' || return 1
	meta=$(< R/meta.json)
	echo "${meta##*\"generation\":}"
}

# dirfiles: every file and folder of dir:R but its lock (run it in $(...):
# it sets shell options).
dirfiles() {
	local LC_ALL=C f
	shopt -s dotglob nullglob
	for f in R/* R/*/*; do
		[ "$f" = R/.lock ] || echo "$f"
	done
}

# The push of plan at one fault point.  A run without the fault starts from
# $before and gives $after, the result lines $results and the files $files.
push_point() {
	local state
	rm -rf R
	cp -a R0 R
	at_fault recdelta-push -q --delete-orphans dir:R < plan
	state=$(dirstate) || { problem "the store does not read"; return; }
	case $status in
	0)
		[ "$state" = "$after" ] ||
		    { problem "exit 0, but the store is not the new state"; return; }
		[ "$(< out)" = "$results" ] ||
		    { problem "exit 0, but other results: $(< out)"; return; }
		[ ! -s err ] || { problem "exit 0 with a message: $(< err)"; return; }
		;;
	# 6: push defers a batch dir: could not write (issue 10 makes it 4).
	4 | 6)
		[ "$state" = "$before" ] || [ "$state" = "$after" ] || {
			problem "exit $status, and the store is neither the old state nor the new one"
			return
		}
		failed_with "recdelta-push: R"
		;;
	*)
		problem "exit $status: $(< err)"
		return
		;;
	esac
	# Again without the fault: the new state, and nothing left over.
	recdelta-push -q --delete-orphans dir:R < plan > out 2> err
	status=$?
	[ "$status" = 0 ] && [ ! -s err ] ||
	    { problem "the rerun: exit $status: $(< err)"; return; }
	[ "$(dirstate)" = "$after" ] || { problem "the rerun did not converge"; return; }
	[ "$(dirfiles)" = "$files" ] ||
	    problem "files after the rerun: $(dirfiles | tr '\n' ' ')"
}

@test "push to dir: with a failure at every call: the old state or the new one, exit 0 or 4, and a rerun converges" {
	# Three types in the store, four in the plan: creates (one of a new
	# type), updates and deletes of each type.  The store was left by a
	# writer that committed and stopped before it collected t1's old
	# version: its journal still lists it.
	{
		rec Team t1 '{"name":"team 1","n":1}' 2
		for i in 2 3 4; do rec Team "t$i" "{\"name\":\"team $i\",\"n\":$i}"; done
		for i in 1 2 3; do rec Player "p$i" "{\"name\":\"p $i\",\"team\":{\"\$ref\":\"t$i\"}}"; done
		rec Stadium s1 '{"cap":100}'
		rec Stadium s2 '{"cap":200}' 3
	} | make_dir_store R0
	cp R0/Team/t1~2.json R0/Team/t1~1.json
	echo 'Team/t1~1.json' > R0/.collect
	{
		rec Team t1 '{"name":"team 1","n":1}'
		rec Team t2 '{"name":"team two","n":2}'
		rec Team t3 '{"name":"team 3","n":33}'
		rec Team t5 '{"name":"team 5","n":5}'
		rec Team t6 '{"name":"team 6","n":6}'
		rec Player p1 '{"name":"p 1","team":{"$ref":"t1"}}'
		rec Player p2 '{"name":"p 2b","team":{"$ref":"t1"}}'
		rec Player p4 '{"name":"p 4","team":{"$ref":"t5"}}'
		rec Stadium s1 '{"cap":150}'
		rec Coach c1 '{"name":"c"}'
		rec Coach c2 '{"name":"d","since":{"$date":"2020-01-01T00:00:00Z"}}'
	} > L
	recdelta-diff -l ndjson:L -r dir:R0 -o plan
	assert_equal "$(jq -r .op plan | sort | uniq -c | tr -s ' ')" \
	    " 5 create
 3 delete
 4 update"

	# What a run without a fault starts from and gives; its files are
	# exactly those its index names, and nothing is left to diff.
	rm -rf R
	cp -a R0 R
	before=$(dirstate)
	count_calls recdelta-push -q --delete-orphans dir:R < plan > results
	results=$(cat results)
	after=$(dirstate)
	files=$(dirfiles)
	assert_equal "$(LC_ALL=C sort <<< "$files")" "$({
	    store_entities R | jq -r 'to_entries[] | .key as $t | .value | to_entries[] |
		select(.value.deleted != true) |
		"R/\($t)", "R/\($t)/\(.key)~\(.value.v).json"'
	    bucket_files R | sed 's|^\./|R/|'
	    echo R/meta.idx; echo R/meta.json; } | LC_ALL=C sort -u)" # no name here needs encoding
	assert_equal "$(jq -r .status results | sort -u)" ok
	run -0 recdelta-diff -l ndjson:L -r dir:R
	assert_output ''
	[ "$after" != "$before" ]
	[[ $after != *mtime* ]]

	walk push_point
}

# --- checkpoint record -------------------------------------------------------

# ckstate: the state as the checkpoint shows it (its base), then what the
# other tables hold but the times and process ids of runs and changes; a
# database not made yet, or without its tables, holds nothing.
ckstate() {
	local db=$RECDELTA_STATE tables
	recdelta-checkpoint base || return 1
	[ -s "$db" ] || return 0
	tables=$(sqlite3 "$db" "SELECT count(*) FROM sqlite_master WHERE name = 'runs'") ||
	    return 1
	[ "$tables" = 0 ] ||
	    sqlite3 "$db" 'SELECT * FROM meta' 'SELECT name, value FROM cursors' \
		'SELECT type, key, op, line FROM outbox ORDER BY type, key' \
		'SELECT id, scope, flow, status, ok, skipped, conflict, deferred,
		    failed, planned FROM runs ORDER BY id' \
		'SELECT * FROM changes ORDER BY run, seq' 'SELECT * FROM windows' \
		'SELECT scope FROM lock'
}

# whole: the state database, if there is one, passes sqlite3's check.
whole() {
	local r
	[ -e "$RECDELTA_STATE" ] || return 0
	r=$(sqlite3 "$RECDELTA_STATE" 'PRAGMA integrity_check' 2>&1)
	[ "$r" = ok ] || { problem "integrity check: $r"; return 1; }
}

# The record of in into $RECDELTA_STATE at one fault point.  A run without
# the fault starts from $before and gives $after.
record_point() {
	local state
	rm -rf st
	cp -a st0 st
	at_fault recdelta-checkpoint record --scope S < in
	whole || return
	state=$(ckstate 2>&1) || { problem "the state does not read: $state"; return; }
	case $status in
	0)
		[ "$state" = "$after" ] ||
		    { problem "exit 0, but the state is not the new one"; return; }
		cmp -s in out || { problem "exit 0, but not every line written on"; return; }
		[ ! -s err ] || { problem "exit 0 with a message: $(< err)"; return; }
		;;
	4)
		[ "$state" = "$before" ] || [ "$state" = "$after" ] || {
			problem "exit 4, and the state is neither the old one nor the new one"
			return
		}
		# SQLite's messages: it keeps the errno to itself.  (A database
		# it could not open for writing, it opens read-only.)
		failed_with "recdelta-checkpoint: st/.recdelta" \
		    'database or disk is full' 'disk I/O error' \
		    'unable to open database file' \
		    'attempt to write a readonly database'
		# Again without the fault, unless the run was recorded.
		[ "$state" = "$before" ] || return
		recdelta-checkpoint record --scope S < in > out 2> err
		status=$?
		[ "$status" = 0 ] && [ ! -s err ] ||
		    { problem "the rerun: exit $status: $(< err)"; return; }
		whole || return
		[ "$(ckstate 2>&1)" = "$after" ] || problem "the rerun did not converge"
		;;
	*)
		problem "exit $status: $(< err)"
		;;
	esac
}

# record_walk: the walk over recording in into the state in st0.
record_walk() {
	export RECDELTA_STATE=st/.recdelta/state.db
	rm -rf st
	cp -a st0 st
	before=$(ckstate) || fail "the state before does not read: $before"
	count_calls recdelta-checkpoint record --scope S < in > out
	cmp in out
	after=$(ckstate)
	[ "$after" != "$before" ]
	walk record_point
}

RESULTS=(
	"$(res update T k1 ok 2 '{"n":11}')"
	"$(res delete T k2 ok)"
	"$(res create T k6 ok 1 '{"n":6}')"
	"$(res update T k9 ok 4 '{"n":9}')"
	"$(res update T k3 deferred 1 '{"n":33}' ',"changed":["n"]')"
	"$(res delete T k4 conflict 1 '' ',"error":{"code":"conflict","message":"changed meanwhile"}')"
	"$(res same T k5 skipped 1 '{"n":5}')"
	"$(res create U u1 ok 1 '{"a":[1,2],"s":"\u00e9"}')"
	'{"kind":"cursor","name":"seq","value":"20"}'
	'{"kind":"summary","stage":"push","counts":{}}'
)

@test "checkpoint record into a state with a failure at every call: whole, the old state or the new one, exit 0 or 4, and a rerun converges" {
	{
		for i in 1 2 3 4 5; do res create T "k$i" ok 1 "{\"n\":$i}"; done
		res update T k9 deferred 3 '{"n":9}'
		printf '%s\n' '{"kind":"cursor","name":"seq","value":"10"}'
	} > in0
	mkdir st0
	RECDELTA_STATE=st0/.recdelta/state.db recdelta-checkpoint record --scope S < in0 > /dev/null
	printf '%s\n' "${RESULTS[@]}" > in
	record_walk
}

@test "checkpoint record into a new state with a failure at every call: none or the new one, exit 0 or 4, and a rerun converges" {
	mkdir st0
	printf '%s\n' "${RESULTS[@]}" > in
	MODES=(ENOSPC:once:1 EIO:once:6)
	record_walk
}

# --- what the walks found ----------------------------------------------------

@test "dir: a superseded version whose removal fails stays in the journal, after a commit or a recovery, until a writer removes it" {
	rec T a '{"n":1}' | make_dir_store R
	printf '%s\n' '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2}}' > plan
	RECDELTA_FAULT_CALLS=unlink RECDELTA_FAULT_AT=1 RECDELTA_FAULT_ERRNO=EIO \
	    run -0 --separate-stderr faulty recdelta-push -q dir:R < plan
	assert_equal "$stderr" ''
	assert_equal "$(cd R/T && echo *)" 'a~1.json a~2.json'
	# The journal names the bucket file the commit wrote too, which stays.
	assert_equal "$(grep . R/.collect)" "T/a~1.json
$(bucket_files R | sed 's|^\./||')"

	# The next writer's recovery fails the same way: it stops before
	# writing anything, and the journal keeps the line.
	printf '%s\n' '{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"n":3}}' > plan
	RECDELTA_FAULT_CALLS=unlink RECDELTA_FAULT_AT=1 RECDELTA_FAULT_ERRNO=EACCES \
	    run -4 --separate-stderr faulty recdelta-push -q dir:R < plan
	assert_output ''
	assert_equal "$stderr" 'recdelta-push: R/T/a~1.json: Permission denied'
	assert_equal "$(cd R/T && echo *)" 'a~1.json a~2.json'
	# The journal names the bucket file the commit wrote too, which stays.
	assert_equal "$(grep . R/.collect)" "T/a~1.json
$(bucket_files R | sed 's|^\./||')"

	run -0 --separate-stderr recdelta-push -q dir:R < plan
	assert_equal "$(cd R/T && echo *)" 'a~3.json'
	[ ! -e R/.collect ]
	assert_equal "$(cd R && find meta.idx -type f)" "$(bucket_files R | sed 's|^\./||')"

	printf '%s\n' '{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":1}}' |
	    recdelta-push -q dir:R > /dev/null
	assert_equal "$(cd R/T && echo *)" 'a~3.json b~1.json'
	[ ! -e R/.collect ]
	run -0 recdelta-fetch dir:R
	assert_output --partial '"key":"a","rev":"3",'
}
