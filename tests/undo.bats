#!/usr/bin/env bats
# Undo: the before-images a run keeps (recdelta-diff --before, through
# recdelta-push's result lines into recdelta-checkpoint record),
# recdelta-checkpoint undo's change lines, history and show, the retention
# (prune --runs), and the undo flow over a dir: target, an sqlite: target
# and a cloudkit: target (the emulator of tests/servers, started when a
# test first needs it): a smart-sync that deletes 100 records and updates
# 50 is taken back field for field, a record edited since is left as its
# editor made it and reported, undoing the undo gives the run's result
# again, --dry-run lists exactly what the real undo writes; killed at
# chosen points, the same undo run again converges.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit
load helpers/faultinject

teardown() {
	ck_stop
}

KINDS=${RECDELTA_TEST_KINDS:-dir sqlite cloudkit}

# games N: N records of type Game, with a 64-bit integer (tagged, as every
# store keeps it), an instant, a reference and a string of any Unicode.
games() {
	local i
	for ((i = 1; i <= $1; i++)); do
		printf '{"kind":"record","type":"Game","key":"g%03d","fields":{"big":{"$int":"%s"},"n":%d,"name":"Zürich 日本 %d","team":{"$ref":"t%d"},"when":{"$ts":"2026-01-%02dT10:00:00Z"}}}\n' \
		    "$i" "$((9223372036854775000 + i))" "$i" "$i" "$((i % 7))" "$((i % 28 + 1))"
	done
}

target_word() {
	case $1 in
	dir) printf 'dir:%s/remote' "$PWD" ;;
	sqlite) printf 'sqlite:%s/r.db?table=games&key=id&type=Game' "$PWD" ;;
	cloudkit) printf 'cloudkit:%s/%s/%s' "$CK_CONTAINER" "$CK_ENVIRONMENT" "$CK_DATABASE" ;;
	esac
}

# enter KIND: a folder of KIND's own, its own state, an empty target.
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
			ck_start || return 1
			chmod 600 "$CK_KEY_FILE"
			export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID
			export RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
			export RECDELTA_CLOUDKIT_URL=$CK_URL
			export RECDELTA_CLOUDKIT_CONFIG=$BATS_TEST_TMPDIR/ck/none.conf
			export RECDELTA_HTTP_BACKOFF=0.05
		fi
	fi
	T=$(target_word "$KIND")
	echo "--- $KIND"
}

sync() {
	recdelta smart-sync -q -t Game -l ndjson:local.ndjson -r "$T" "$@"
}

undo() {
	recdelta undo "$@" -r "$T"
}

# The target's live records, type, key and fields as the store gives them
# back, without rev and mtime, in key order.
live() {
	recdelta-fetch -t Game "$T" |
	    jq -c 'select(.kind == "record" and .deleted != true) | [.type, .key, .fields]' |
	    LC_ALL=C sort
}

# The target's bytes: every file of dir:, the sqlite: database, the
# emulator's records and tombstones.
target_digest() {
	case $KIND in
	dir) tree_digest remote ;;
	sqlite) cat r.db r.db-* 2>/dev/null | sha256sum | cut -d' ' -f1 ;;
	cloudkit) ck_control GET state | jq -cS '[.dbs[][] | {records, tombstones}]' |
	    sha256sum | cut -d' ' -f1 ;;
	esac
}

state_digest() {
	{ cat state.db state.db-wal 2>/dev/null | sha256sum; sqlite3 state.db .dump; } |
	    sha256sum | cut -d' ' -f1
}

# edit KEY: another writer changes one record of the target (its name).
edit() {
	recdelta-fetch -t Game "$T" | jq -c --arg k "$1" \
	    'select(.kind == "record" and .key == $k) |
	    {kind: "change", op: "update", type, key, rev, fields: (.fields + {name: "edited by someone"})}' |
	    if [ "$KIND" = cloudkit ]; then "$TOP/tests/helpers/ck-modify"; else
	    recdelta-push -q "$T"; fi > /dev/null
}

# seen FIELDS: the content hash of FIELDS, a change's "seen".
seen() {
	rec T x "$1" | "$TOP/tests/helpers/seenhash"
}

summary() {
	printf 'Restored %s, Removed %s, Recreated %s, Skipped %s changed since (see --log)' "$@"
}

# The run of the issue: 200 records synced (run 1), then a local data set
# that lacks 100 of them, holds 50 changed and 10 new, synced with
# --delete-orphans (run 2).  S0 and S1: the target's records after each.
two_runs() {
	games 200 > local.ndjson
	run -0 --separate-stderr sync
	S0=$(live)
	{
		games 150 | sed -n '1,100d; p' | sed -E 's/"n":([0-9]+),/"n":\1000,/'
		games 200 | sed -n '151,200p'
		for i in 1 2 3 4 5 6 7 8 9 10; do
			printf '{"kind":"record","type":"Game","key":"new%02d","fields":{"big":{"$int":"-9223372036854775808"},"n":0,"name":"new","team":{"$ref":"t0"},"when":{"$ts":"2026-02-01T00:00:00Z"}}}\n' "$i"
		done
	} > local.ndjson
	run -0 --separate-stderr sync --delete-orphans
	assert_equal "$stderr" ""
	S1=$(live)
	assert_equal "$(wc -l <<<"$S1")" 110
}

# --- the flow over three stores ---------------------------------------------------------------------------

@test "undo takes back a run that deleted 100 records and updated 50, field for field; a record edited since is left and reported; --dry-run lists exactly what it writes; undoing the undo gives the run's result again" {
	for kind in $KINDS; do
		enter "$kind"
		two_runs
		run -0 recdelta-checkpoint history
		assert_line --index 1 --regexp $'^2\t.*\tsmart-sync\t160 ok, 50 skipped\tdone\tundoable$'
		edit g120
		edited=$(live | grep '"g120"')
		assert_equal "$(jq -r '.[2].name' <<<"$edited")" "edited by someone"

		# The dry run: writes nothing, lists the changes the undo makes.
		target=$(target_digest) state=$(state_digest)
		run -6 --separate-stderr undo 2 --dry-run
		assert_equal "$stderr" "Dry run: would restore 49, remove 10, recreate 100; skip 1 changed since; nothing written"
		planned=$(jq -r '[.op, .key] | @tsv' <<<"$output" | LC_ALL=C sort)
		assert_equal "$(wc -l <<<"$planned")" 159
		assert_equal "$(target_digest)" "$target"
		assert_equal "$(state_digest)" "$state"

		run -6 --separate-stderr undo 2 --log log.ndjson
		assert_output ""
		assert_equal "$stderr" "$(summary 49 10 100 1)"
		# The target as before run 2, but for the record edited since.
		assert_equal "$(live)" "$( (grep -v '"g120"' <<<"$S0"; echo "$edited") | LC_ALL=C sort)"
		run -0 jq -r 'select(.msg == "conflict: not retried") | .key' log.ndjson
		assert_output g120
		# Values never go to the log.
		run -1 grep -c 'Zürich' log.ndjson
		# Exactly what the dry run listed was written.
		run -0 recdelta-checkpoint show --json 3
		assert_equal "$(jq -r 'select(.status == "ok") | [.op, .key] | @tsv' <<<"$output" |
		    LC_ALL=C sort)" "$planned"
		run -0 recdelta-checkpoint history
		assert_line --index 1 --regexp $'^2\t.*\tsmart-sync\t160 ok, 50 skipped\tdone\tundone by 3, undoable$'
		assert_line --index 2 --regexp $'^3\t.*\tundo\t159 ok, 1 conflict\tpartial\tundoes 2, undoable$'

		# Undoing the undo: run 2's result again, the edit still kept.
		run -0 --separate-stderr undo 3
		assert_equal "$stderr" "$(summary 49 100 10 0)"
		assert_equal "$(live)" "$( (grep -v '"g120"' <<<"$S1"; echo "$edited") | LC_ALL=C sort)"
		# The same undo again finds everything as it wants it.
		run -0 --separate-stderr undo 3
		assert_equal "$stderr" "$(summary 0 0 0 0)"
	done
}

# Two-way: a local sqlite: table (edited with SQL, moving no rev) and a
# dir: remote (edited through recdelta-push).  tw_live SIDE: its live
# records as the store gives them back, without rev and mtime, in key order.
tw_live() {
	recdelta-fetch -t Item "$1" | grep -v '"deleted":true' |
	    sed -E 's/"rev":"[^"]*",//; s/"mtime":"[^"]*",//' | LC_ALL=C sort
}
tw_remote() {
	recdelta-fetch -t Item dir:remote | jq -c --arg k "$2" --arg op "$1" --argjson f "${3:-null}" \
	    'select(.key == $k) | {kind: "change", op: $op, type, key, rev} +
	    (if $f then {fields: $f} else {} end)' |
	    recdelta-push -q --delete-orphans dir:remote > /dev/null
}

@test "a two-way-sync run is undone on both sides, each back to what it held before the run, field for field; a record edited since is left and reported; --dry-run writes nothing; --local is required" {
	mkdir -p tw/tmp
	cd tw
	export RECDELTA_STATE=$PWD/state.db TMPDIR=$PWD/tmp
	L='sqlite:l.db?table=items&key=id&type=Item' R=dir:remote
	sqlite3 l.db 'CREATE TABLE items(id TEXT PRIMARY KEY, a INTEGER, b TEXT, c INTEGER)'
	sqlite3 l.db "INSERT INTO items VALUES ('k1', 9223372036854775807, 'Zürich 日本', 10),
	    ('k2', -9223372036854775808, 'two', 20), ('k3', 3, 'three', 30)"
	run -0 recdelta two-way-sync -q -t Item -l "$L" -r "$R"
	# Run 2: an edit on each side, a create on the local, a delete on the
	# remote.
	sqlite3 l.db "UPDATE items SET a = 100 WHERE id = 'k1';
	    INSERT INTO items VALUES ('k4', 9223372036854775806, 'four ✓', 40)"
	tw_remote update k2 '{"a":{"$int":"-9223372036854775808"},"b":"remote b","c":20}'
	tw_remote delete k3
	L0=$(tw_live "$L") R0=$(tw_live "$R")
	run -0 --separate-stderr recdelta two-way-sync -t Item -l "$L" -r "$R"
	assert_equal "$stderr" "Local: created 0, updated 1, deleted 1; Remote: created 1, updated 1, deleted 0; Merged 0; Conflicts 0"
	L1=$(tw_live "$L") R1=$(tw_live "$R")
	assert_equal "$(grep '"k2"' <<<"$L1")" '{"kind":"record","type":"Item","key":"k2","fields":{"a":-9223372036854775808,"b":"remote b","c":20}}'
	assert_equal "$(grep '"k4"' <<<"$R1")" '{"kind":"record","type":"Item","key":"k4","fields":{"a":9223372036854775806,"b":"four ✓","c":40}}'
	run -1 grep '"k3"' <<<"$L1"
	run -0 recdelta-checkpoint history
	assert_line --index 1 --regexp $'^2\t.*\ttwo-way-sync\t4 ok, 3 skipped; 2 to local, 2 to remote\tdone\tundoable$'
	# Each change's before-image is the side's record as the merge read it.
	run -0 recdelta-checkpoint show --values --json 2
	assert_equal "$(jq -r 'select(.key == "k2") | [.target, .before_rev] | @tsv' <<<"$output")" $'local\t0'

	# Without the local store: a usage error, not the scope's refusal.
	run -2 --separate-stderr recdelta undo 2 -r "$R"
	assert_equal "${stderr_lines[0]}" "recdelta-undo: run 2 is a two-way run: --local is required, with its local store"

	# Someone edits k2 on the local side after the run.
	sqlite3 l.db "UPDATE items SET c = 99 WHERE id = 'k2'"
	edited=$(tw_live "$L" | grep '"k2"')
	# The dry run writes nothing and lists what the undo writes, each side.
	ld=$(sha256sum < l.db) rd=$(tree_digest remote) sd=$(sha256sum < state.db)
	run -6 --separate-stderr recdelta undo 2 -r "$R" -l "$L" --dry-run
	assert_equal "$stderr" "Dry run: would restore 1, remove 1, recreate 1; skip 1 changed since; nothing written"
	planned=$(jq -r '[.target, .op, .key] | @tsv' <<<"$output")
	assert_equal "$planned" $'remote\tupdate\tk1\nlocal\tcreate\tk3\nremote\tdelete\tk4'
	assert_equal "$(sha256sum < l.db)" "$ld"
	assert_equal "$(tree_digest remote)" "$rd"
	assert_equal "$(sha256sum < state.db)" "$sd"

	run -6 --separate-stderr recdelta undo 2 -r "$R" -l "$L" --log log.ndjson
	assert_equal "$stderr" "$(summary 1 1 1 1)"
	# Both sides as before run 2, field for field, but for the record
	# edited since, left as its editor made it.
	assert_equal "$(tw_live "$R")" "$R0"
	assert_equal "$(tw_live "$L")" "$( (grep -v '"k2"' <<<"$L0"; echo "$edited") | LC_ALL=C sort)"
	run -0 jq -r 'select(.msg == "conflict: not retried") | .key' log.ndjson
	assert_output k2
	run -0 recdelta-checkpoint show --json 3
	assert_equal "$(jq -r 'select(.status == "ok") | [.target, .op, .key] | @tsv' <<<"$output")" "$planned"
	run -0 recdelta-checkpoint history
	assert_line --index 1 --regexp $'^2\t.*\ttwo-way-sync\t.*\tdone\tundone by 3, undoable$'
	assert_line --index 2 --regexp $'^3\t.*\tundo\t3 ok, 1 conflict; 2 to local, 2 to remote\tpartial\tundoes 2, undoable$'

	# Undoing the undo: run 2's result again on both sides, the edit kept.
	run -0 --separate-stderr recdelta undo 3 -r "$R" -l "$L"
	assert_equal "$stderr" "$(summary 1 1 1 0)"
	assert_equal "$(tw_live "$R")" "$R1"
	assert_equal "$(tw_live "$L")" "$( (grep -v '"k2"' <<<"$L1"; echo "$edited") | LC_ALL=C sort)"
	# The undo's writes moved the base back: the next sync sends the edit
	# made since, and nothing else.
	run -0 --separate-stderr recdelta two-way-sync -t Item -l "$L" -r "$R"
	assert_equal "$stderr" "Local: created 0, updated 0, deleted 0; Remote: created 0, updated 1, deleted 0; Merged 0; Conflicts 0"
	assert_equal "$(tw_live "$R" | grep '"k2"')" '{"kind":"record","type":"Item","key":"k2","fields":{"a":-9223372036854775808,"b":"remote b","c":99}}'
	# --local goes only with a two-way run.
	run -2 --separate-stderr recdelta undo 1 -r "$R" -l "$L" --source x
	assert_equal "${stderr_lines[0]}" "recdelta-undo: --local and --source cannot go together"
}

@test "a historical-import run is undone alone: the runs before it stay" {
	enter dir
	games 60 > src.ndjson
	import() {
		recdelta historical-import -q --source ndjson:src.ndjson --target "$T" \
		    -t Game --window-field when "$@"
	}
	run -0 --separate-stderr import --from 2026-01-01 --to 2026-01-04
	first=$(live)
	assert_equal "$(wc -l <<<"$first")" 11
	run -0 --separate-stderr import --from 2026-01-05 --to 2026-01-08
	assert_equal "$(live | wc -l)" 20
	run -0 recdelta-checkpoint history
	assert_line --index 1 --regexp $'^2\t.*\thistorical-import\t9 ok\tdone\tundoable$'
	run -5 --separate-stderr undo 2
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: refused: the state $RECDELTA_STATE belongs to scope \"$T <- ndjson:$PWD/src.ndjson\", not \"$T\""
	run -0 --separate-stderr undo 2 --source ndjson:src.ndjson
	assert_equal "$stderr" "$(summary 0 9 0 0)"
	assert_equal "$(live)" "$first"
}

@test "--max-delete bounds an undo's deletes: refused, nothing written" {
	enter dir
	two_runs
	target=$(target_digest)
	run -5 --separate-stderr undo 2 --max-delete 9
	assert_equal "${stderr_lines[0]}" "recdelta-push: refused: 10 deletes exceed the budget of 9 (--max-delete 9)"
	assert_equal "$(target_digest)" "$target"
	run -0 recdelta-checkpoint history
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr undo 2 --max-delete 10
	assert_equal "$stderr" "$(summary 50 10 100 0)"
	assert_equal "$(live)" "$S0"
}

# Kill the undo with SIGKILL at points the test chose, counted in the
# calls of its recdelta-push and recdelta-checkpoint (a traced run on a copy
# counts them), never after a delay; the same undo run again must leave the
# target as an uninterrupted undo does.
@test "kill -9 during an undo at 6 chosen points: the rerun of the same undo converges" {
	enter dir
	two_runs
	mkdir start
	cp -a remote state.db* start/
	# The checkpoint's calls counted without its pwrites, whose number
	# depends on how often its input fell idle (two-way-sync.bats).
	ckcalls=open,fsync,fdatasync,syncfs,ftruncate,unlink,rename,mkdir,write
	most_calls() {
		rm -rf remote state.db state.db-* trace
		cp -a start/. .
		RECDELTA_FAULT_CALLS=${2:-} RECDELTA_FAULT_PROG=$1 RECDELTA_FAULT_TRACE=$PWD/trace \
		    faulty recdelta undo 2 -r "$T" -b 20 > /dev/null 2>&1
		awk '{ print $1 }' trace | sort -n | tail -n 1
	}
	pc=$(most_calls recdelta-push)
	cc=$(most_calls recdelta-checkpoint "$ckcalls")
	[ "$pc" -ge 20 ] && [ "$cc" -ge 12 ] || fail "too few calls to choose from: push $pc, checkpoint $cc"
	points=(push:$((pc / 4)) push:$((pc / 2)) push:$((3 * pc / 4))
	    checkpoint:$((cc / 4)) checkpoint:$((cc / 2)) checkpoint:$((3 * cc / 4)))
	for point in "${points[@]}"; do
		rm -rf remote state.db state.db-* tmp/*
		cp -a start/. .
		prog=recdelta-${point%%:*} at=${point#*:}
		calls=
		[ "$prog" != recdelta-checkpoint ] || calls=$ckcalls
		RECDELTA_FAULT_CALLS=$calls RECDELTA_FAULT_PROG=$prog paused "$at" recdelta undo 2 -r "$T" -b 20 \
		    > /dev/null 2> killed
		wait_paused || fail "$point: the undo ended before the pause: $(cat killed)"
		kill_paused
		[ "$PAUSED_STATUS" = 137 ] || fail "$point: status $PAUSED_STATUS, not killed"
		run -0 --separate-stderr undo 2 -b 20
		[ "$(live)" = "$S0" ] || fail "killed at $point: the target differs from before run 2"
		run -0 --separate-stderr undo 2 -b 20
		assert_equal "$stderr" "$(summary 0 0 0 0)"
	done
}

# --- recdelta-checkpoint ---------------------------------------------------------------------------------

@test "checkpoint undo: a create becomes a guarded delete, an update an update to the before-fields, a delete a create; marked with the run" {
	export RECDELTA_STATE=$PWD/state.db
	{
		res create T c ok 5 '{"n":1}'
		res update T u ok 7 '{"n":2,"s":"new"}' ',"changed":["n"],"before":{"rev":"6","fields":{"n":{"$int":"9223372036854775807"},"s":"old"}}'
		res delete T d ok '' '' ',"before":{"rev":"3","fields":{"x":"é"}}'
		res update T s skipped 1 '' ',"error":{"code":"remote_edit","message":"kept"}'
	} | recdelta-checkpoint record --scope S > /dev/null
	run -0 --separate-stderr recdelta-checkpoint undo --scope S 1
	assert_equal "$stderr" ""
	hc=$(seen '{"n":1}')
	hu=$(seen '{"n":2,"s":"new"}')
	assert_output - <<EOF
{"kind":"change","op":"delete","type":"T","key":"c","rev":"5","seen":"$hc","before":{"rev":"5","fields":{"n":1}},"undoes":1}
{"kind":"change","op":"create","type":"T","key":"d","fields":{"x":"é"},"undoes":1}
{"kind":"change","op":"update","type":"T","key":"u","rev":"7","fields":{"n":{"\$int":"9223372036854775807"},"s":"old"},"changed":["n","s"],"seen":"$hu","before":{"rev":"7","fields":{"n":2,"s":"new"}},"undoes":1}
EOF
	run -0 recdelta-checkpoint show 1
	assert_output - <<'EOF'
ok create T c rev 5 (new record)
ok update T u rev 7 changed: n (was rev 6)
ok delete T d (was rev 3)
EOF
	run -0 recdelta-checkpoint show --values 1
	assert_output - <<'EOF'
ok create T c rev 5 (new record)
  after: {"n":1}
ok update T u rev 7 changed: n (was rev 6)
  before: {"n":{"$int":"9223372036854775807"},"s":"old"}
  after: {"n":2,"s":"new"}
ok delete T d (was rev 3)
  before: {"x":"é"}
EOF
	run -0 recdelta-checkpoint show --json --values 1
	assert_line --index 1 '{"kind":"logentry","run":1,"op":"update","type":"T","key":"u","status":"ok","rev":"7","changed":["n"],"before_rev":"6","before":{"n":{"$int":"9223372036854775807"},"s":"old"},"after":{"n":2,"s":"new"}}'
	run -0 recdelta-checkpoint history --json
	assert_output --regexp '"undoable":true\}$'
	# A state of another scope, a run that does not exist.
	run -5 --separate-stderr recdelta-checkpoint undo --scope other 1
	assert_output ""
	assert_equal "$stderr" "recdelta-checkpoint: refused: $RECDELTA_STATE belongs to scope \"S\", not \"other\""
	run -2 --separate-stderr recdelta-checkpoint undo 9
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: undo: no run 9; see: recdelta-checkpoint history"
}

@test "checkpoint undo: a record changed twice in a run is taken back once, to what its first change found" {
	export RECDELTA_STATE=$PWD/state.db
	{
		res update T a ok 2 '{"n":2}' ',"before":{"rev":"1","fields":{"n":1}}'
		res update T a ok 3 '{"n":3}' ',"before":{"rev":"2","fields":{"n":2}}'
		res create T b ok 1 '{"n":1}'
		res delete T b ok '' '' ',"before":{"rev":"1","fields":{"n":1}}'
		res update T c ok 5 '{"n":5}' ',"before":{"rev":"4","fields":{"n":5}}'
	} | recdelta-checkpoint record --scope S > /dev/null
	run -0 recdelta-checkpoint undo 1
	assert_output "{\"kind\":\"change\",\"op\":\"update\",\"type\":\"T\",\"key\":\"a\",\"rev\":\"3\",\"fields\":{\"n\":1},\"changed\":[\"n\"],\"seen\":\"$(seen '{"n":3}')\",\"before\":{\"rev\":\"3\",\"fields\":{\"n\":3}},\"undoes\":1}"
}

@test "a run without its before-images cannot be undone: refused, nothing written; history says which runs can be" {
	export RECDELTA_STATE=$PWD/state.db
	# An update recorded without a before-image (a flow that plans
	# without them), then a run that applied nothing.
	res update T a ok 2 '{"n":2}' | recdelta-checkpoint record --scope S > /dev/null
	res update T a skipped 2 | recdelta-checkpoint record --scope S > /dev/null
	run -5 --separate-stderr recdelta-checkpoint undo 1
	assert_output ""
	assert_equal "$stderr" "recdelta-checkpoint: refused: run 1: 1 record without its before-image (recorded without one, or beyond the retention: prune --runs); nothing written"
	run -0 recdelta-checkpoint history
	assert_line --index 0 --regexp $'^1\t.*\t1 ok\tdone$'
	assert_line --index 1 --regexp $'^2\t.*\t1 skipped\tdone$'
}

@test "prune --runs N keeps the before-images of the newest N runs, and record holds to it; 50 by default" {
	export RECDELTA_STATE=$PWD/state.db
	for i in $(seq 1 53); do
		res update T "k$i" ok 2 '{"n":2}' ',"before":{"rev":"1","fields":{"n":1}}' |
		    recdelta-checkpoint record --scope S > /dev/null
	done
	run -0 sqlite3 "$RECDELTA_STATE" "SELECT group_concat(id) FROM runs WHERE images = 0;
	    SELECT count(*), min(run) FROM images"
	assert_output $'1,2,3\n50|4'
	run -5 --separate-stderr recdelta-checkpoint undo 3
	run -0 --separate-stderr recdelta-checkpoint undo 4
	recdelta-checkpoint prune --runs 2
	run -0 sqlite3 "$RECDELTA_STATE" "SELECT group_concat(id) FROM runs WHERE images = 1;
	    SELECT count(*) FROM images;
	    SELECT value FROM meta WHERE key = 'keep_images'"
	assert_output $'52,53\n2\n2'
	res update T x ok 2 '{"n":2}' ',"before":{"rev":"1","fields":{"n":1}}' |
	    recdelta-checkpoint record --scope S > /dev/null
	run -0 sqlite3 "$RECDELTA_STATE" "SELECT group_concat(id) FROM runs WHERE images = 1"
	assert_output '53,54'
	run -0 recdelta-checkpoint history
	assert_line --index 51 --regexp $'\t1 ok\tdone$'
	assert_line --index 53 --regexp $'\t1 ok\tdone\tundoable$'
	recdelta-checkpoint prune --runs 0
	run -0 sqlite3 "$RECDELTA_STATE" "SELECT count(*) FROM runs WHERE images = 1;
	    SELECT count(*) FROM images"
	assert_output $'0\n0'
	run -2 --separate-stderr recdelta-checkpoint prune --runs x
}

@test "a state of schema 2 is migrated: its runs keep no images and are not undoable, new runs are" {
	export RECDELTA_STATE=$PWD/state.db
	sqlite3 state.db < "$FIXTURES/checkpoint-two-way/state-v1.sql"
	run -0 recdelta-checkpoint history
	assert_output $'1\t2026-11-30T10:00:00Z\t2026-11-30T10:00:01Z\tsmart-sync\t2 ok, 1 conflict\tpartial'
	run -0 sqlite3 state.db 'PRAGMA user_version; SELECT images FROM runs'
	assert_output $'5\n0'
	run -5 --separate-stderr recdelta-checkpoint undo 1
	res create T n ok 1 '{"n":1}' | recdelta-checkpoint record --scope S > /dev/null
	run -0 recdelta-checkpoint undo 2
	assert_output --regexp '^\{"kind":"change","op":"delete","type":"T","key":"n","rev":"1",'
}

# --- recdelta-push --no-retry ----------------------------------------------------------------------------

@test "push --no-retry: a conflict is never recomputed into a write; found as wanted, it is skipped" {
	games 3 > l.ndjson
	recdelta-push -q "dir:$PWD/r" < <(jq -c '.kind = "change" | .op = "create"' l.ndjson) > /dev/null
	rev=$(recdelta-fetch "dir:$PWD/r" | jq -r 'select(.key == "g001") | .rev')
	{
		# Stale rev, other fields: a conflict, not written.
		printf '{"kind":"change","op":"update","type":"Game","key":"g001","rev":"99","fields":{"n":5}}\n'
		# Stale rev, the fields it holds: skipped as same.
		jq -c 'select(.key == "g002") | {kind: "change", op: "update", type, key, rev: "99", fields}' l.ndjson
		# A create over a record that exists with other fields.
		printf '{"kind":"change","op":"create","type":"Game","key":"g003","fields":{"n":5}}\n'
		# A delete of a record that is gone.
		printf '{"kind":"change","op":"delete","type":"Game","key":"nope","rev":"1"}\n'
	} > plan
	before=$(tree_digest r)
	run -6 --separate-stderr recdelta-push --no-retry --delete-orphans --dry-run "dir:$PWD/r" < plan
	assert_equal "$(jq -r '[.op, .key, .status, .error.code // ""] | @tsv' <<<"$output")" \
	    "$(printf 'update\tg001\tconflict\tchanged\nsame\tg002\tskipped\t\ncreate\tg003\tconflict\tchanged\ndelete\tnope\tskipped\tgone')"
	assert_equal "$(tree_digest r)" "$before"
	run -6 --separate-stderr recdelta-push --no-retry --delete-orphans "dir:$PWD/r" < plan
	assert_equal "$(jq -r '[.op, .key, .status, .error.code // ""] | @tsv' <<<"$output")" \
	    "$(printf 'update\tg001\tconflict\tchanged\nsame\tg002\tskipped\t\ncreate\tg003\tconflict\tchanged\ndelete\tnope\tskipped\tgone')"
	assert_equal "$stderr" "Created 0, Updated 0, Skipped 2 unchanged, Deleted 0, Conflicts 2"
	assert_equal "$(recdelta-fetch "dir:$PWD/r" | jq -r 'select(.key == "g001") | .rev')" "$rev"
	# With the right rev, the dry run plans it, and the run writes it.
	sed -i "1s/\"rev\":\"99\"/\"rev\":\"$rev\"/" plan
	run -6 --separate-stderr recdelta-push --no-retry --delete-orphans --dry-run "dir:$PWD/r" < plan
	assert_line --index 0 '{"kind":"result","op":"update","type":"Game","key":"g001","status":"planned","rev":"'"$rev"'","fields":{"n":5}}'
}
