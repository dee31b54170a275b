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

SHIM="$TOP/tests/helpers/faultinject.so"

suite_setup() {
	[ -f "$SHIM" ] || fail "$SHIM: missing; make check builds it"
}

# The programs under valgrind take a second each: walk every 7th point only.
STEP=1
[ "${RECDELTA_VALGRIND:-}" = 1 ] && STEP=7

# faulty CMD...: run CMD (a recdelta program) with the shim, configured by
# the RECDELTA_FAULT_* variables set around the call.  The shim counts in
# the program's process alone, not in a wrapper around it; a sanitizer
# build wants its runtime first, but the shim may go before it.
faulty() {
	LD_PRELOAD="$SHIM${LD_PRELOAD:+ $LD_PRELOAD}" \
	    RECDELTA_FAULT_PROG="${1##*/}" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	    "$@"
}

# count_calls CMD...: run CMD without a fault and set CALLS to the number of
# calls it made that the shim can fail; trace lists them, one a line.
count_calls() {
	rm -f count trace
	RECDELTA_FAULT_COUNT=$PWD/count RECDELTA_FAULT_TRACE=$PWD/trace faulty "$@"
	CALLS=$(cat count)
	[ "$CALLS" -gt 10 ] || fail "only ${CALLS:-no} calls counted"
}

# at N: what the Nth call was, for a message.
at() {
	sed -n "$1{s/^[0-9]* //;p;q}" trace
}

# strerror ERRNO-NAME: the message of an errno, as strerror(3) gives it.
strerror() {
	case $1 in
	ENOSPC) echo 'No space left on device' ;;
	EIO) echo 'Input/output error' ;;
	EACCES) echo 'Permission denied' ;;
	esac
}

# The modes of a walk: an errno, and "once" or "from" (every call from the
# Nth on fails, as on a disk that stays full).
MODES=(ENOSPC:once EIO:once EACCES:once ENOSPC:from)

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

# One push at fault point $n in mode $mode; $before, $after, $results and
# $files hold what a run of plan without the fault starts from and gives.
push_point() {
	local err=${mode%:*} state what
	what="$mode at $n/$CALLS ($(at "$n"))"
	rm -rf R
	cp -a R0 R
	RECDELTA_FAULT_AT=$n RECDELTA_FAULT_ERRNO=$err \
	    RECDELTA_FAULT_REPEAT=$([ "${mode#*:}" = from ] && echo 1) \
	    run --separate-stderr faulty recdelta-push -q --delete-orphans dir:R < plan
	state=$(dirstate) || fail "$what: the store does not read"
	case $status in
	0)
		[ "$state" = "$after" ] ||
		    fail "$what: exit 0, but the store is not the new state"
		[ "$output" = "$results" ] ||
		    fail "$what: exit 0, but other results: $output"
		[ -z "$stderr" ] || fail "$what: exit 0 with a message: $stderr"
		;;
	4 | 6)
		[ "$state" = "$before" ] || [ "$state" = "$after" ] ||
		    fail "$what: exit $status, and the store is neither the old state nor the new one"
		[[ $stderr == "recdelta-push: "*"$(strerror "$err")"* ]] ||
		    fail "$what: exit $status without the reason: $stderr"
		;;
	*)
		fail "$what: exit $status: $stderr"
		;;
	esac
	# Again without the fault: the new state, and nothing left over.
	run -0 --separate-stderr recdelta-push -q --delete-orphans dir:R < plan
	[ -z "$stderr" ] || fail "$what: the rerun says: $stderr"
	[ "$(dirstate)" = "$after" ] || fail "$what: the rerun did not converge"
	[ "$(dirfiles)" = "$files" ] ||
	    fail "$what: files after the rerun: $(dirfiles | tr '\n' ' ')"
}

@test "push to dir: with a failure at every call: the old state or the new one, exit 0 or 4, and a rerun converges" {
	# Three types in the store, four in the plan: creates (one of a new
	# type), updates and deletes of each type.
	{
		for i in 1 2 3 4; do rec Team "t$i" "{\"name\":\"team $i\",\"n\":$i}"; done
		for i in 1 2 3; do rec Player "p$i" "{\"name\":\"p $i\",\"team\":{\"\$ref\":\"t$i\"}}"; done
		rec Stadium s1 '{"cap":100}'
		rec Stadium s2 '{"cap":200}' 3
	} | make_dir_store R0
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
	    jq -r '.entities | to_entries[] | .key as $t | .value | to_entries[] |
		select(.value.deleted != true) |
		"R/\($t)", "R/\($t)/\(.key)~\(.value.v).json"' R/meta.json
	    echo R/meta.json; } | LC_ALL=C sort -u)" # no name here needs encoding
	assert_equal "$(jq -r .status results | sort -u)" ok
	run -0 recdelta-diff -l ndjson:L -r dir:R
	assert_output ''
	[ "$after" != "$before" ]
	[[ $after != *mtime* ]]

	for mode in "${MODES[@]}"; do
		for ((n = 1; n <= CALLS; n += STEP)); do
			push_point
		done
	done
	echo "# push: $CALLS calls, ${#MODES[@]} modes" >&3
}
