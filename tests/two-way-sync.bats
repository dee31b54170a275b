#!/usr/bin/env bats
# The two-way-sync flow, case by case: a local SQLite table (edited with
# SQL, as other programs do, moving no rev) or NDJSON file, and a dir:
# remote (edited through recdelta-push, another writer).  A concurrent
# writer is played through the flow's RECDELTA_HOOK_BEFORE_PUSH seam,
# between the plan and the pushes; kills through helpers/faultinject.bash.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/faultinject

L='sqlite:l.db?table=items&key=id&type=Item'
R='dir:remote'

suite_setup() {
	export RECDELTA_STATE=$PWD/state.db
	mkdir -p tmp
	export TMPDIR=$PWD/tmp
	sqlite3 l.db 'CREATE TABLE items(id TEXT PRIMARY KEY, a INTEGER, b TEXT, c INTEGER)'
}

sync2() {
	recdelta two-way-sync -t Item -l "$L" -r "$R" "$@"
}

line() {
	printf 'Local: created %s, updated %s, deleted %s; Remote: created %s, updated %s, deleted %s; Merged %s; Conflicts %s' "$@"
}

# The live records of a side, as [key, a, b, c], sorted.
live() {
	recdelta-fetch -t Item "$1" |
	    jq -c 'select(.kind == "record" and .deleted != true) | [.key, .fields.a, .fields.b, .fields.c]' |
	    LC_ALL=C sort
}

# remote_put KEY A B C | remote_del KEY: another writer on the remote.
remote_rev() {
	recdelta-fetch -t Item "$R" | jq -r --arg k "$1" 'select(.key == $k) | .rev'
}
remote_put() {
	local rev
	rev=$(remote_rev "$1")
	printf '{"kind":"change","op":"update","type":"Item","key":"%s","rev":"%s","fields":{"a":%s,"b":"%s","c":%s}}\n' \
	    "$1" "$rev" "$2" "$3" "$4" | recdelta-push -q "$R" > /dev/null
}
remote_del() {
	printf '{"kind":"change","op":"delete","type":"Item","key":"%s","rev":"%s"}\n' \
	    "$1" "$(remote_rev "$1")" | recdelta-push -q --delete-orphans "$R" > /dev/null
}

# Three rows, in step on both sides.
three() {
	sqlite3 l.db "INSERT INTO items VALUES ('k1', 1, 'one', 10), ('k2', 2, 'two', 20), ('k3', 3, 'three', 30)"
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "recdelta-push: created \"dir:remote\" (it did not exist)
$(line 0 0 0 3 0 0 0 0)"
}

digests() {
	printf '%s %s %s\n' "$(sqlite3 l.db .dump | sha256sum | cut -c1-16)" \
	    "$(tree_digest remote | cut -c1-16)" \
	    "$( [ -e state.db ] && sqlite3 state.db .dump | sha256sum | cut -c1-16 || echo none)"
}

@test "two-way-sync: the first run copies the local table to a new remote, and a second run writes nothing" {
	three
	assert_equal "$(live "$R")" '["k1",1,"one",10]
["k2",2,"two",20]
["k3",3,"three",30]'
	assert_equal "$(live "$R")" "$(live "$L")"
	before=$(digests)
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "$(line 0 0 0 0 0 0 0 0)"
	assert_equal "$(digests | cut -d' ' -f1-2)" "$(echo "$before" | cut -d' ' -f1-2)"
	# The base holds what both sides hold.
	run -0 recdelta-checkpoint base
	assert_equal "$(jq -c '[.key, .fields]' <<<"$output")" '["k1",{"a":1,"b":"one","c":10}]
["k2",{"a":2,"b":"two","c":20}]
["k3",{"a":3,"b":"three","c":30}]'
}

@test "two-way-sync: edits of different fields of one record on both sides are merged, each side gets the other's" {
	three
	sqlite3 l.db "UPDATE items SET a = 100 WHERE id = 'k1'"
	remote_put k1 1 ONE 10
	sqlite3 l.db "INSERT INTO items VALUES ('k4', 4, 'four', 40)"
	remote_put k2 2 two 200
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "$(line 0 2 0 1 1 0 1 0)"
	assert_output ""
	expected='["k1",100,"ONE",10]
["k2",2,"two",200]
["k3",3,"three",30]
["k4",4,"four",40]'
	assert_equal "$(live "$L")" "$expected"
	assert_equal "$(live "$R")" "$expected"
	# The history says which side each change went to.
	run -0 recdelta-checkpoint show --json 2
	assert_equal "$(jq -r 'select(.status == "ok") | [.key, .op, .target] | @tsv' <<<"$output" | LC_ALL=C sort)" \
	    "$(printf 'k1\tupdate\tlocal\nk1\tupdate\tremote\nk2\tupdate\tlocal\nk4\tcreate\tremote')"
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "$(line 0 0 0 0 0 0 0 0)"
}

@test "two-way-sync: one field changed differently on both sides: --prefer decides, and the losing value is kept" {
	three
	sqlite3 l.db "UPDATE items SET b = 'local-b' WHERE id = 'k1'"
	remote_put k1 1 remote-b 10
	run -0 --separate-stderr sync2
	# No mtime on either side: the local side wins, and says why.
	assert_equal "$stderr" "$(line 0 0 0 0 1 0 0 1)"
	assert_equal "$(live "$R")" "$(live "$L")"
	assert_equal "$(live "$R" | head -n 1)" '["k1",1,"local-b",10]'
	run -0 recdelta-checkpoint conflicts --json
	assert_equal "$(jq -c '[.key, .field, .base, .local, .remote, .winner]' <<<"$output")" \
	    '["k1","b","one","local-b","remote-b","local"]'
	id=$(jq -r .id <<<"$output")

	# --prefer remote: the remote's value wins.
	sqlite3 l.db "UPDATE items SET c = 11 WHERE id = 'k2'"
	remote_put k2 2 two 12
	run -0 --separate-stderr sync2 --prefer remote
	assert_equal "$stderr" "$(line 0 1 0 0 0 0 0 1)"
	assert_equal "$(live "$L" | sed -n 2p)" '["k2",2,"two",12]'
	run -0 recdelta-checkpoint conflicts --json
	assert_equal "$(jq -c '[.key, .field, .local, .remote, .winner]' <<<"$output")" \
	    '["k1","b","local-b","remote-b","local"]
["k2","c",11,12,"remote"]'

	# Reviewed, a conflict leaves the list but not the state.
	run -0 recdelta-checkpoint conflicts review "$id"
	run -0 recdelta-checkpoint conflicts --json
	assert_equal "$(jq -r .key <<<"$output")" k2
	run -0 recdelta-checkpoint conflicts --all --json
	assert_equal "$(jq -r .key <<<"$output" | tr '\n' ' ')" "k1 k2 "
}

@test "two-way-sync: a delete goes to the other side; a delete against an edit keeps the edit and the conflict" {
	three
	sqlite3 l.db "DELETE FROM items WHERE id = 'k1'"
	remote_del k2
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "$(line 0 0 1 0 0 1 0 0)"
	assert_equal "$(live "$L")" '["k3",3,"three",30]'
	assert_equal "$(live "$R")" '["k3",3,"three",30]'
	# Deleted on both: nothing to write, the base forgets them.
	run -0 recdelta-checkpoint base
	assert_equal "$(jq -r .key <<<"$output")" k3

	# Deleted locally, edited remotely: the edit survives.
	sqlite3 l.db "DELETE FROM items WHERE id = 'k3'"
	remote_put k3 3 three 33
	# (The local table is empty now: that is meant.)
	run -0 --separate-stderr sync2 --allow-empty
	assert_equal "$stderr" "$(line 1 0 0 0 0 0 0 1)"
	assert_equal "$(live "$L")" '["k3",3,"three",33]'
	assert_equal "$(live "$R")" '["k3",3,"three",33]'
	run -0 recdelta-checkpoint conflicts --json
	assert_equal "$(jq -c '[.key, .field, .local, .remote, .winner]' <<<"$output")" \
	    '["k3",null,null,{"a":3,"b":"three","c":33},"remote"]'

	# --no-delete: the delete waits, counted, the record stays remotely.
	sqlite3 l.db "DELETE FROM items WHERE id = 'k3'"
	run -0 --separate-stderr sync2 --no-delete
	assert_equal "$stderr" "$(line 0 0 0 0 0 0 0 0)"
	assert_equal "$(live "$R")" '["k3",3,"three",33]'
}

@test "two-way-sync: a writer between plan and push, on either side, is a conflict: nothing overwritten, the next run merges it" {
	three
	sqlite3 l.db "UPDATE items SET a = 111 WHERE id = 'k1'"
	remote_put k2 2 two 222
	# While the flow is between plan and push: SQL on the local row the
	# plan will update (no rev moves), and a remote write to the record
	# the plan will update there.
	RECDELTA_HOOK_BEFORE_PUSH="sqlite3 l.db \"UPDATE items SET b = 'sql' WHERE id = 'k2'\" &&
	    printf '%s\n' '{\"kind\":\"change\",\"op\":\"update\",\"type\":\"Item\",\"key\":\"k1\",\"rev\":\"$(remote_rev k1)\",\"fields\":{\"a\":1,\"b\":\"one\",\"c\":1000}}' |
	    recdelta-push -q dir:remote > /dev/null" \
	    run -6 --separate-stderr sync2
	# Neither stale write went through: each side keeps the other writer's.
	assert_equal "$(live "$L" | sed -n 2p)" '["k2",2,"sql",20]'
	assert_equal "$(live "$R" | sed -n 1p)" '["k1",1,"one",1000]'
	run -0 --separate-stderr sync2
	assert_equal "$(live "$L")" '["k1",111,"one",1000]
["k2",2,"sql",222]
["k3",3,"three",30]'
	assert_equal "$(live "$R")" "$(live "$L")"
}

@test "two-way-sync --dry-run writes nothing to either side or the state" {
	three
	sqlite3 l.db "UPDATE items SET a = 9 WHERE id = 'k1'"
	remote_put k2 2 two 99
	before=$(digests)
	run -0 --separate-stderr sync2 --dry-run
	assert_output ""
	assert_equal "$stderr" "Items: 1 to local, 1 to remote, 0 merged, 0 conflicts, 1 unchanged
Dry run: nothing written"
	assert_equal "$(digests)" "$before"
}

@test "two-way-sync --max-delete holds on each side before the first write on either; an empty side is refused" {
	three
	sqlite3 l.db "DELETE FROM items WHERE id IN ('k1', 'k2'); UPDATE items SET a = 5 WHERE id = 'k3'"
	before=$(digests)
	run -5 --separate-stderr sync2 --max-delete 1
	assert_equal "$stderr" 'recdelta-push: refused: 2 deletes exceed the budget of 1 (--max-delete 1)
recdelta-push: nothing was written; to allow them, raise --max-delete or check the local data'
	assert_equal "$(digests)" "$before"
	sqlite3 l.db "DELETE FROM items"
	run -5 --separate-stderr sync2
	assert_equal "$stderr" "recdelta-two-way-sync: refused: $L holds no record, where the base of the last sync holds 3
recdelta-two-way-sync: nothing was written; if it is meant to be empty, run the same command with --allow-empty"
	assert_equal "$(digests | cut -d' ' -f2-)" "$(echo "$before" | cut -d' ' -f2-)"
	run -0 --separate-stderr sync2 --allow-empty
	assert_equal "$stderr" "$(line 0 0 0 0 0 3 0 0)"
	assert_equal "$(live "$R")" ""
}

@test "two-way-sync: an ndjson: local file is rewritten whole and atomically, other lines byte for byte" {
	L=ndjson:local.ndjson
	{
		rec Item k1 '{"a":1,"b":"one","c":9223372036854775807}'
		rec Item k2 '{"a":2,"b":"tw\u00f6","c":{"$int":"-9223372036854775808"}}'
	} > local.ndjson
	run -0 --separate-stderr sync2
	line2=$(sed -n 2p local.ndjson)
	remote_put k1 1 ONE 1
	run -0 --separate-stderr sync2
	assert_equal "$stderr" "$(line 0 1 0 0 0 0 0 0)"
	assert_equal "$(sed -n 2p local.ndjson)" "$line2"
	assert_equal "$(live "$L")" "$(live "$R")"
	assert_equal "$(sed -n 1p local.ndjson | jq -c .fields)" '{"a":1,"b":"ONE","c":1}'
}

@test "two-way-sync: usage errors are status 2, before any state" {
	run -2 --separate-stderr recdelta two-way-sync -l "$L"
	assert_equal "${stderr_lines[0]}" "recdelta-two-way-sync: both --local and --remote are required"
	run -2 --separate-stderr recdelta two-way-sync -l "$L" -r "$R" --prefer older
	run -2 --separate-stderr recdelta two-way-sync -l "$L" -r "$R" --no-delete --max-delete 3
	[ ! -e state.db ]
	run -0 recdelta two-way-sync --help
	assert_line --index 0 --regexp '^usage: recdelta two-way-sync'
}

# Kill the whole flow with SIGKILL at a point the test chose (never after a
# delay), then run it again: both sides must end as an uninterrupted run
# leaves them, and every conflict be in the state with its losing value.
# The points (helpers/faultinject.bash), STAGE:N:M, M the pauses let go on
# before the kill: in the hook before the pushes; in a recdelta-push before
# its Nth file-system call, N a fifth, two, three and four fifths of the
# most a push of this run makes (a traced run on a copy counts them: the
# remote's push gets there first, the local's waiting for its input), and
# at 5 and 10, where either may, with M 1 the other one next; in a
# recdelta-checkpoint, counted in its opens, syncs, truncates and unlinks
# but not its pwrites: checkpoint record commits whenever its input falls
# idle, each commit writing its pages to the WAL again, so how many
# pwrites it makes depends on how fast the stages before it ran (a
# sanitizer build's record was seen making 37, 47 and 57 calls in all),
# and a point counted in them may never come.  Those calls the
# checkpoints of a run make one after another, the same in every run: at
# half the most one makes (before its first commit's WAL sync), at three
# quarters (before the sync of a commit's frames) and two before the end
# (before the database's sync after the WAL is copied in), M 4, 1 and 3
# so as to reach the fifth, second and fourth of them to get there.
# RECDELTA_KILL_ITERATIONS=N for more than 10.
@test "kill -9 of the flow at chosen points: the rerun converges, no edit and no losing value lost" {
	local i it n=40
	for ((i = 1; i <= n; i++)); do
		printf "INSERT INTO items VALUES ('k%02d', %d, 'b%d', %d);\n" "$i" "$i" "$i" "$((i * 10))"
	done | sqlite3 l.db
	run -0 sync2 -q
	# Edits on both sides: different fields, the same field (conflicts),
	# deletes, delete against edit, creates on both sides.
	sqlite3 l.db "UPDATE items SET a = a + 1000 WHERE id <= 'k12';
	    UPDATE items SET b = 'L' || b WHERE id BETWEEN 'k10' AND 'k15';
	    DELETE FROM items WHERE id IN ('k20', 'k21');
	    INSERT INTO items VALUES ('n1', 1, 'new', 1), ('both', 1, 'local', 1)"
	{
		for k in k05 k06 k10 k11 k21 k22 k23; do
			rev=$(remote_rev "$k")
			printf '{"kind":"change","op":"update","type":"Item","key":"%s","rev":"%s","fields":{"a":%s,"b":"R%s","c":7}}\n' \
			    "$k" "$rev" "$((10#${k#k}))" "$k"
		done
		printf '{"kind":"change","op":"delete","type":"Item","key":"k30","rev":"%s"}\n' "$(remote_rev k30)"
		printf '{"kind":"change","op":"create","type":"Item","key":"both","fields":{"a":1,"b":"remote","c":2}}\n'
		printf '{"kind":"change","op":"create","type":"Item","key":"n2","fields":{"a":2,"b":"new","c":2}}\n'
	} | recdelta-push -q --delete-orphans "$R" > /dev/null
	mkdir start
	cp -a remote l.db state.db* start/
	# How many file-system calls the busiest process of each stage makes
	# in this run (their number depends on the build: the sanitizers'
	# differs), from a run on a copy with the shim tracing them.
	ckcalls=open,fsync,fdatasync,syncfs,ftruncate,unlink,rename,mkdir,write
	most_calls() {
		rm -rf remote l.db l.db-* state.db state.db-* trace
		cp -a start/. .
		RECDELTA_FAULT_CALLS=${2:-} RECDELTA_FAULT_PROG=$1 RECDELTA_FAULT_TRACE=$PWD/trace \
		    faulty recdelta two-way-sync -q -t Item -l "$L" -r "$R" -b 4 > /dev/null 2>&1
		awk '{ print $1 }' trace | sort -n | tail -n 1
	}
	pc=$(most_calls recdelta-push)
	cc=$(most_calls recdelta-checkpoint "$ckcalls")
	# Enough that the fractions below are distinct points past the start
	# (13 of checkpoint's are seen, in either build).
	[ "$pc" -ge 25 ] && [ "$cc" -ge 12 ] || fail "too few calls to choose from: push $pc, checkpoint $cc"
	rm -rf remote l.db l.db-* state.db state.db-* trace
	cp -a start/. .
	# The end an uninterrupted run reaches.
	run -0 --separate-stderr sync2 -b 4
	expected=$(live "$L")
	assert_equal "$(live "$R")" "$expected"
	conflicts=$(recdelta-checkpoint conflicts --json | jq -c '[.key, .field, .local, .remote]' | LC_ALL=C sort)
	[ "$(wc -l <<<"$conflicts")" -ge 5 ] || fail "too few conflicts to test: $conflicts"

	points=(hook push:$((pc / 5)):0 checkpoint:$((cc / 2)):4 push:$((2 * pc / 5)):0
	    checkpoint:$((3 * cc / 4)):1 push:$((3 * pc / 5)):0 checkpoint:$((cc - 2)):3
	    push:$((4 * pc / 5)):0 push:10:1 push:5:0)
	iterations=${RECDELTA_KILL_ITERATIONS:-10}
	for ((it = 0; it < iterations; it++)); do
		rm -rf remote l.db l.db-* state.db state.db-* tmp/* hooked
		cp -a start/. .
		point=${points[it % ${#points[@]}]}
		if [ "$point" = hook ]; then
			RECDELTA_HOOK_BEFORE_PUSH='echo > hooked; kill -STOP $$' \
			    paused 0 recdelta two-way-sync -t Item -l "$L" -r "$R" -b 4 \
			    > /dev/null 2> "killed.$it"
			wait_for hooked
		else
			prog=recdelta-${point%%:*} at=${point#*:} at=${at%:*} go=${point##*:}
			calls=
			[ "$prog" != recdelta-checkpoint ] || calls=$ckcalls
			RECDELTA_FAULT_CALLS=$calls RECDELTA_FAULT_PROG=$prog paused "$at" recdelta two-way-sync -t Item \
			    -l "$L" -r "$R" -b 4 > /dev/null 2> "killed.$it"
			for r in $(seq 0 "$go"); do
				wait_paused || fail "iteration $it: the flow ended before pause $r at $point: $(cat "killed.$it")"
				[ "$r" -eq "$go" ] || resume
			done
		fi
		kill_paused
		[ "$PAUSED_STATUS" = 137 ] || fail "iteration $it ($point): status $PAUSED_STATUS, not killed"
		run --separate-stderr sync2 -b 4
		[ "$status" -eq 0 ] || [ "$status" -eq 6 ] ||
		    fail "iteration $it (killed at $point): status $status: $stderr"
		# A run may leave records changed during it for the next.
		[ "$status" -eq 0 ] || run -0 --separate-stderr sync2 -b 4
		[ "$(live "$L")" = "$expected" ] ||
		    fail "iteration $it (killed at $point): local differs from an uninterrupted run's: $(diff <(live "$L") <(echo "$expected"))"
		[ "$(live "$R")" = "$expected" ] ||
		    fail "iteration $it (killed at $point): remote differs from an uninterrupted run's"
		got=$(recdelta-checkpoint conflicts --all --json | jq -c '[.key, .field, .local, .remote]' | LC_ALL=C sort -u)
		[ "$got" = "$conflicts" ] ||
		    fail "iteration $it (killed at $point): conflicts $got, expected $conflicts"
		run -0 --separate-stderr sync2 -b 4
		assert_equal "$stderr" "$(line 0 0 0 0 0 0 0 0)"
	done
}
