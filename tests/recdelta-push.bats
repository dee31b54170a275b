#!/usr/bin/env bats
# recdelta-push: results per change, the rev guard and the conflict loop,
# orphans and the delete budget, dry runs, bad input refused before the first
# write, batches, pass-through lines, exact values, the log, and kill -9.
#
# Most checks run against both writable stores, a dir: folder and an sqlite:
# table, in a loop inside the test (starting a test costs about half a
# second, so related checks share one).  Each test works in an empty folder
# w, so "nothing written" can also be checked by listing it.
#
# The two stores number revs differently, and the tests say so exactly:
# dir: counts each record's versions 1, 2, 3... (a tombstone is one), while
# an sqlite: table hands out the next number of ONE sequence for the whole
# table on every create and update, never the same twice, even to a record
# deleted and created again.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/faultinject
load helpers/dirstore

suite_setup() {
	mkdir w && cd w || return 1
	DIRT=dir:S
	SQLT="sqlite:$PWD/t.db?table=t&key=id&type=T"
	TARGETS=("$DIRT" "$SQLT")
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# by_store TARGET DIR-VALUE SQLITE-VALUE: the value for the target's kind.
by_store() {
	case $1 in
	dir:*) printf '%s' "$2" ;;
	sqlite:*) printf '%s' "$3" ;;
	*) return 1 ;;
	esac
}

# summary CREATED UPDATED SKIPPED DELETED [CONFLICTS]: the summary line
# push writes on stderr.
summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' \
	    "$1" "$2" "$3" "$4" "${5:-0}"
}

# change OP KEY [FIELDS] [REV]: a change line of type T.
change() {
	printf '{"kind":"change","op":"%s","type":"T","key":"%s"' "$1" "$2"
	[ -z "${4:-}" ] || printf ',"rev":"%s"' "$4"
	[ -z "${3:-}" ] || printf ',"fields":%s' "$3"
	printf '}\n'
}

# snapshot TARGET: everything the target is made of, to check that a run
# left it byte-identical (or absent).
snapshot() {
	case $1 in
	dir:*)
		if [ -e S ]; then
			find S -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
			find S -type d | LC_ALL=C sort
		else
			echo absent
		fi
		;;
	sqlite:*)
		if [ -e t.db ]; then
			sha256sum t.db*
			sqlite3 t.db .dump
		else
			echo absent
		fi
		;;
	esac
}

# other_writer TARGET < changes: another process edits the target meanwhile.
other_writer() {
	recdelta-push -q --delete-orphans "$1" > other.out
	! grep -v '"status":"ok"' other.out
}

# seed TARGET KEY...: create records KEY {"n":1}, in one push: each at rev 1
# in dir:, at the next revs of the table's sequence in sqlite: (1, 2, 3...
# in a new table).
seed() {
	local t=$1 k
	shift
	for k in "$@"; do
		change create "$k" '{"n":1}'
	done | recdelta-push -q "$t" > /dev/null
}

# live TARGET: [key, rev, fields] of each live record, members sorted, a
# null field left out as an absent one (as the rules say), sorted by key.
live() {
	recdelta-fetch "$1" | jq -cS 'select(.deleted != true) |
	    [.key, .rev, (.fields | with_entries(select(.value != null)))]' |
	    LC_ALL=C sort
}

# live_keys TARGET: the keys of the live records.
live_keys() {
	live "$1" | jq -r '.[0]'
}

# results: op, key, status and rev of each result line of $output.
results() {
	printf '%s\n' "$output" | jq -c 'select(.kind == "result") | [.op, .key, .status, .rev]'
}

# --- creating, and writing nothing the second time ---------------------------

@test "a first push into a missing target creates every record (dir: rev 1 each, sqlite: 1, 2 from the table's sequence); a plan of same lines then writes nothing" {
	cat > L <<'EOF'
{"kind":"record","type":"T","key":"a","fields":{"n":1,"s":"x"}}
{"kind":"record","type":"T","key":"b","fields":{"n":2}}
EOF
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		# dir: a new record is at rev 1; sqlite: the creates take the
		# table's next revs, one after the other.
		rb=$(by_store "$t" 1 2) rc=$(by_store "$t" 1 3)
		recdelta-diff --allow-missing-remote --all -l ndjson:L -r "$t" -o plan
		run -0 --separate-stderr recdelta-push "$t" < plan
		assert_stderr "recdelta-push: created \"$t\" (it did not exist)
$(summary 2 0 0 0)"
		assert_output - <<EOF
{"kind":"result","op":"create","type":"T","key":"a","status":"ok","rev":"1","fields":{"n":1,"s":"x"}}
{"kind":"result","op":"create","type":"T","key":"b","status":"ok","rev":"$rb","fields":{"n":2}}
EOF
		assert_equal "$(live "$t")" "[\"a\",\"1\",{\"n\":1,\"s\":\"x\"}]
[\"b\",\"$rb\",{\"n\":2}]"
		run -0 --separate-stderr recdelta-diff -l ndjson:L -r "$t" --exit-code
		assert_output ''

		# Everything in step: same lines, skipped, nothing written.
		before=$(snapshot "$t")
		recdelta-diff --all -l ndjson:L -r "$t" -o plan
		run -0 --separate-stderr recdelta-push "$t" < plan
		assert_stderr "$(summary 0 0 2 0)"
		assert_equal "$(results)" "[\"same\",\"a\",\"skipped\",\"1\"]
[\"same\",\"b\",\"skipped\",\"$rb\"]"
		# A same result carries the same line's fields.
		assert_equal "$(printf '%s\n' "$output" | jq -c .fields)" "$(jq -c .fields plan)"
		assert_equal "$(snapshot "$t")" "$before"

		# Equal under the rules though written otherwise (1.0 for 1, a
		# null field for an absent one): the same line carries the
		# remote's fields, and so does its result; nothing is written.
		# (A table reads back b's missing column "s" as null.)
		bf=$(by_store "$t" '{"n":2}' '{"n":2,"s":null}')
		printf '%s\n' '{"kind":"record","type":"T","key":"a","fields":{"s":"x","z":null,"n":1.0}}' \
		    "$(rec T b '{"n":2}')" > L2
		recdelta-diff --all -l ndjson:L2 -r "$t" -o plan
		assert_equal "$(cat plan)" "{\"kind\":\"change\",\"op\":\"same\",\"type\":\"T\",\"key\":\"a\",\"rev\":\"1\",\"fields\":{\"n\":1,\"s\":\"x\"}}
{\"kind\":\"change\",\"op\":\"same\",\"type\":\"T\",\"key\":\"b\",\"rev\":\"$rb\",\"fields\":$bf}"
		run -0 --separate-stderr recdelta-push "$t" < plan
		assert_stderr "$(summary 0 0 2 0)"
		assert_output - <<EOF
{"kind":"result","op":"same","type":"T","key":"a","status":"skipped","rev":"1","fields":{"n":1,"s":"x"}}
{"kind":"result","op":"same","type":"T","key":"b","status":"skipped","rev":"$rb","fields":$bf}
EOF
		assert_equal "$(snapshot "$t")" "$before"

		# One new record among same ones: only it is written.
		rec T c '{"n":3}' >> L
		recdelta-diff --all -l ndjson:L -r "$t" -o plan
		run -0 --separate-stderr recdelta-push "$t" < plan
		assert_stderr "$(summary 1 0 2 0)"
		assert_equal "$(results)" "[\"same\",\"a\",\"skipped\",\"1\"]
[\"same\",\"b\",\"skipped\",\"$rb\"]
[\"create\",\"c\",\"ok\",\"$rc\"]"
		head -n 2 L > L.new && mv L.new L
	done
}

# --- the rev guard and the conflict loop ----------------------------------------

@test "an update with the current rev is applied; a stale one is re-fetched and recomputed: retried, now equal, recreated, or created over" {
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		# Seeded at rev 1 each in dir:, at the table's 1 to 4 in sqlite:.
		rmoved=$(by_store "$t" 1 2) requal=$(by_store "$t" 1 3) rgone=$(by_store "$t" 1 4)
		seed "$t" fresh moved equal gone
		cat > L <<'EOF'
{"kind":"record","type":"T","key":"fresh","fields":{"n":2}}
{"kind":"record","type":"T","key":"moved","fields":{"n":2,"m":1}}
{"kind":"record","type":"T","key":"equal","fields":{"n":2}}
{"kind":"record","type":"T","key":"gone","fields":{"n":2}}
{"kind":"record","type":"T","key":"born","fields":{"n":2}}
{"kind":"record","type":"T","key":"born2","fields":{"n":2}}
EOF
		recdelta-diff --all -l ndjson:L -r "$t" -o plan
		assert_equal "$(jq -c '[.op, .key, .rev]' plan)" "[\"update\",\"fresh\",\"1\"]
[\"update\",\"moved\",\"$rmoved\"]
[\"update\",\"equal\",\"$requal\"]
[\"update\",\"gone\",\"$rgone\"]
[\"create\",\"born\",null]
[\"create\",\"born2\",null]"
		# Between the plan and the push, someone else writes (sqlite:
		# moved 5, equal 6, born 7, born2 8).
		other_writer "$t" <<-EOF
		$(change update moved '{"n":1,"other":"x"}' "$rmoved")
		$(change update equal '{"n":2}' "$requal")
		$(change delete gone '' "$rgone")
		$(change create born '{"n":2}')
		$(change create born2 '{"n":3}')
		EOF
		assert_equal "$(jq -c '[.key, .rev]' other.out)" "$(by_store "$t" \
		    '["moved","2"] ["equal","2"] ["gone","2"] ["born","1"] ["born2","1"]' \
		    '["moved","5"] ["equal","6"] ["gone",null] ["born","7"] ["born2","8"]' | tr ' ' '\n')"
		rm -f log
		run -0 --separate-stderr recdelta-push --log log "$t" < plan
		# moved: the other writer's edit overwritten, and said.
		assert_stderr "$(summary 1 3 2 0)
recdelta-push: overwrote 1 remote edit (see --log)"
		assert_equal "$(jq -c 'select(.msg == "overwrote a remote edit") | [.key, .fields]' log)" \
		    '["moved",["m","n","other"]]'
		# Not silently: each conflict is logged, and how it was resolved.
		assert_equal "$(jq -r 'select(.msg | startswith("conflict")) | "\(.key): \(.msg)"' log)" 'moved: conflict
moved: conflict resolved: retried
equal: conflict
equal: conflict resolved: now equal
gone: conflict
gone: conflict resolved: retried
born: conflict
born: conflict resolved: now equal
born2: conflict
born2: conflict resolved: retried'
		# dir: fresh 2; moved rebased on the concurrent edit's rev 2, so
		# 3; gone created again over its tombstone (rev 2), so 3.
		# sqlite: fresh 9, then each retry in input order: moved 10,
		# gone 11, born2 12; the skipped ones are at the other's revs.
		if [ "$t" = "$DIRT" ]; then
			rfresh=2 rmoved=3 requal=2 rgone=3 rborn=1 rborn2=2
		else
			rfresh=9 rmoved=10 requal=6 rgone=11 rborn=7 rborn2=12
		fi
		# A same result carries the record as it now is: in a table,
		# with the columns it does not fill as null.
		sf=$(by_store "$t" '{"n":2}' '{"n":2,"other":null,"m":null}')
		assert_output - <<EOF
{"kind":"result","op":"update","type":"T","key":"fresh","status":"ok","rev":"$rfresh","fields":{"n":2}}
{"kind":"result","op":"update","type":"T","key":"moved","status":"ok","rev":"$rmoved","fields":{"n":2,"m":1}}
{"kind":"result","op":"same","type":"T","key":"equal","status":"skipped","rev":"$requal","fields":$sf}
{"kind":"result","op":"create","type":"T","key":"gone","status":"ok","rev":"$rgone","fields":{"n":2}}
{"kind":"result","op":"same","type":"T","key":"born","status":"skipped","rev":"$rborn","fields":$sf}
{"kind":"result","op":"update","type":"T","key":"born2","status":"ok","rev":"$rborn2","fields":{"n":2}}
EOF
		# The same results carry the record as it now is.
		for i in 2 4; do
			k=$(jq -r .key <<<"${lines[$i]}")
			assert_equal "$(jq -cS '.fields | with_entries(select(.value != null))' <<<"${lines[$i]}")" \
			    "$(live "$t" | jq -c --arg k "$k" 'select(.[0] == $k) | .[2]')"
		done
		# The remote holds the desired fields, at the revs the results say.
		run -0 --separate-stderr recdelta-diff -l ndjson:L -r "$t" --exit-code
		assert_output ''
		assert_equal "$(live "$t")" "[\"born\",\"$rborn\",{\"n\":2}]
[\"born2\",\"$rborn2\",{\"n\":2}]
[\"equal\",\"$requal\",{\"n\":2}]
[\"fresh\",\"$rfresh\",{\"n\":2}]
[\"gone\",\"$rgone\",{\"n\":2}]
[\"moved\",\"$rmoved\",{\"m\":1,\"n\":2}]"

		# With --retries 0 a conflict stays one: exit 6, and the
		# concurrent edit is left as it is (dir: at 4, sqlite: 13).
		change update moved '{"n":3}' "$rmoved" > plan
		other_writer "$t" <<<"$(change update moved '{"n":9,"who":"other"}' "$rmoved")"
		run -6 --separate-stderr recdelta-push --retries 0 "$t" < plan
		assert_stderr "$(summary 0 0 0 0 1)"
		assert_output '{"kind":"result","op":"update","type":"T","key":"moved","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
		assert_equal "$(live "$t" | grep '^\["moved"')" "[\"moved\",\"$(by_store "$t" 4 13)\",{\"n\":9,\"who\":\"other\"}]"
	done
}

@test "a stale update of a record deleted and created again meanwhile is a conflict, not an overwrite" {
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		seed "$t" x
		change update x '{"n":2}' 1 > plan
		# Someone deletes the record the plan saw, someone creates a
		# new one under its key.
		other_writer "$t" <<<"$(change delete x '' 1)"
		other_writer "$t" <<<"$(change create x '{"n":5,"by":"other"}')"
		# The new record's rev is not the one the plan saw: dir: counts
		# on from the tombstone (2), sqlite: takes the table's next, 2.
		rx=$(by_store "$t" 3 2)
		assert_equal "$(jq -c '[.op, .key, .status, .rev]' other.out)" "[\"create\",\"x\",\"ok\",\"$rx\"]"
		run -6 --separate-stderr recdelta-push --retries 0 "$t" < plan
		assert_output '{"kind":"result","op":"update","type":"T","key":"x","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
		assert_stderr "$(summary 0 0 0 0 1)"
		assert_equal "$(live "$t")" "[\"x\",\"$rx\",{\"by\":\"other\",\"n\":5}]"
	done
}

@test "sqlite: one rev sequence per table: a record deleted and created again gets a new rev, so an update from before the delete conflicts; revs never repeat" {
	# push_rec [OPTION]...: push stdin to $SQLT, and note each rev it hands
	# out, in order, in revs.
	push_rec() {
		run -0 --separate-stderr recdelta-push "$@" "$SQLT"
		printf '%s\n' "$output" | jq -r 'select(.kind == "result" and .status == "ok" and .rev != null) | .rev' >> revs
	}
	: > revs
	# create x, delete x, create x again.
	push_rec < <(change create x '{"n":1}')
	assert_output '{"kind":"result","op":"create","type":"T","key":"x","status":"ok","rev":"1","fields":{"n":1}}'
	push_rec --delete-orphans < <(change delete x '' 1)
	assert_output '{"kind":"result","op":"delete","type":"T","key":"x","status":"ok"}'
	assert_equal "$(sqlite3 t.db 'SELECT count(*) FROM t')" 0
	push_rec < <(change create x '{"n":5,"by":"other"}')
	# Not rev 1 again: the table's sequence goes on.
	assert_output '{"kind":"result","op":"create","type":"T","key":"x","status":"ok","rev":"2","fields":{"n":5,"by":"other"}}'
	assert_equal "$(sqlite3 t.db 'SELECT name, rev FROM recdelta_revs')" 't|2'

	# An update computed with x's first rev is a conflict, not an
	# overwrite of the new record; so is a delete.  Nothing is written.
	before=$(snapshot "$SQLT")
	change update x '{"n":2}' 1 > plan
	run -6 --separate-stderr recdelta-push --retries 0 "$SQLT" < plan
	assert_output '{"kind":"result","op":"update","type":"T","key":"x","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
	assert_stderr "$(summary 0 0 0 0 1)"
	change delete x '' 1 > plan
	run -6 --separate-stderr recdelta-push --retries 0 --delete-orphans "$SQLT" < plan
	assert_output '{"kind":"result","op":"delete","type":"T","key":"x","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
	assert_stderr "$(summary 0 0 0 0 1)"
	assert_equal "$(snapshot "$SQLT")" "$before"
	assert_equal "$(live "$SQLT")" '["x","2",{"by":"other","n":5}]'
	assert_equal "$(sqlite3 t.db 'SELECT id, rev, n, by FROM t')" 'x|2|5|other'

	# A run of creates, updates and deletes: every create and update
	# takes the next number, whatever the record; a batch takes them in
	# input order.
	{
		change create a '{"n":1}'
		change create b '{"n":1}'
		change create c '{"n":1}'
	} > in
	push_rec < in
	assert_equal "$(results)" '["create","a","ok","3"]
["create","b","ok","4"]
["create","c","ok","5"]'
	{
		change update a '{"n":2}' 3
		change delete b '' 4
		change update x '{"n":6}' 2
	} > in
	push_rec --delete-orphans < in
	assert_equal "$(results)" '["update","a","ok","6"]
["delete","b","ok",null]
["update","x","ok","7"]'
	{
		change create b '{"n":3}'
		change update c '{"n":2}' 5
	} > in
	push_rec < in
	assert_equal "$(results)" '["create","b","ok","8"]
["update","c","ok","9"]'
	# The table emptied: its sequence is kept all the same.
	{
		change delete a '' 6
		change delete b '' 8
		change delete c '' 9
		change delete x '' 7
	} > in
	push_rec --delete-orphans < in
	assert_stderr "$(summary 0 0 0 4)"
	assert_equal "$(sqlite3 t.db 'SELECT count(*) FROM t')" 0
	{
		change create a '{"n":1}'
		change create x '{"n":1}'
	} > in
	push_rec < in
	assert_equal "$(results)" '["create","a","ok","10"]
["create","x","ok","11"]'
	# A stale update of x from any earlier life conflicts.
	before=$(snapshot "$SQLT")
	for r in 1 2 7; do
		change update x '{"n":0}' "$r" > plan
		run -6 --separate-stderr recdelta-push --retries 0 "$SQLT" < plan
		assert_output '{"kind":"result","op":"update","type":"T","key":"x","status":"conflict","error":{"code":"conflict","message":"the record kept changing; retries exhausted"}}'
	done
	assert_equal "$(snapshot "$SQLT")" "$before"
	push_rec < <(change update a '{"n":2}' 10)
	assert_equal "$(results)" '["update","a","ok","12"]'
	# Every rev handed out, in order: 1 to 12, none twice.
	assert_equal "$(cat revs)" "$(seq 1 12)"
	assert_equal "$(sort revs | uniq -d)" ''
	assert_equal "$(sqlite3 t.db 'SELECT name, rev FROM recdelta_revs')" 't|12'
	assert_equal "$(live "$SQLT")" '["a","12",{"n":2}]
["x","11",{"n":1}]'

	# Another table of the same database has a sequence of its own.
	U="sqlite:$PWD/t.db?table=u&key=id&type=T"
	printf '%s\n' "$(change create a '{"n":1}')" "$(change create b '{"n":1}')" > in
	run -0 --separate-stderr recdelta-push "$U" < in
	assert_equal "$(results)" '["create","a","ok","1"]
["create","b","ok","2"]'
	run -0 --separate-stderr recdelta-push "$SQLT" < <(change create z '{"n":1}')
	assert_equal "$(results)" '["create","z","ok","13"]'
	assert_equal "$(sqlite3 t.db 'SELECT name, rev FROM recdelta_revs ORDER BY name')" 't|13
u|2'

	# A table made elsewhere: the revs its rows hold are not handed out
	# again; the sequence starts after the greatest.
	sqlite3 t.db 'CREATE TABLE v (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, n);
	    INSERT INTO v VALUES ('"'k'"', 7, 1), ('"'j'"', 3, 1);'
	V="sqlite:$PWD/t.db?table=v&key=id&type=T"
	{
		change create new '{"n":1}'
		change update j '{"n":2}' 3
		change update k '{"n":2}' 7
	} > in
	run -0 --separate-stderr recdelta-push "$V" < in
	assert_equal "$(results)" '["create","new","ok","8"]
["update","j","ok","9"]
["update","k","ok","10"]'
	assert_equal "$(live "$V")" '["j","9",{"n":2}]
["k","10",{"n":2}]
["new","8",{"n":1}]'
}

# --- deletes ---------------------------------------------------------------------

@test "deletes are orphans, skipped and counted, without --delete-orphans; applied with it (dir: keeps a tombstone); gone already is skipped" {
	rec T a '{"n":1}' > L
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		seed "$t" a b c
		# b and c are at rev 1 in dir:, at 2 and 3 in the table.
		rb=$(by_store "$t" 1 2) rc=$(by_store "$t" 1 3)
		recdelta-diff -l ndjson:L -r "$t" -o plan
		before=$(snapshot "$t")
		run -0 --separate-stderr recdelta-push "$t" < plan
		assert_output - <<EOF
{"kind":"result","op":"delete","type":"T","key":"b","status":"skipped","rev":"$rb","error":{"code":"orphan","message":"not deleted without --delete-orphans"}}
{"kind":"result","op":"delete","type":"T","key":"c","status":"skipped","rev":"$rc","error":{"code":"orphan","message":"not deleted without --delete-orphans"}}
EOF
		assert_stderr "$(summary 0 0 0 0)
Would delete 2 orphan records (use --delete-orphans to confirm)"
		assert_equal "$(snapshot "$t")" "$before"

		run -0 --separate-stderr recdelta-push --delete-orphans "$t" < plan
		assert_stderr "$(summary 0 0 0 2)"
		assert_equal "$(results)" "$(if [ "$t" = "$DIRT" ]; then
			printf '%s\n' '["delete","b","ok","2"]' '["delete","c","ok","2"]'
		else
			printf '%s\n' '["delete","b","ok",null]' '["delete","c","ok",null]'
		fi)"
		assert_equal "$(live "$t")" '["a","1",{"n":1}]'

		# Again: someone else was first, nothing left to do.
		run -0 --separate-stderr recdelta-push --delete-orphans "$t" < plan
		assert_stderr "$(summary 0 0 2 0)"
		assert_output - <<'EOF'
{"kind":"result","op":"delete","type":"T","key":"b","status":"skipped","error":{"code":"gone","message":"already deleted"}}
{"kind":"result","op":"delete","type":"T","key":"c","status":"skipped","error":{"code":"gone","message":"already deleted"}}
EOF
	done
	# dir: the entries are tombstones at v 2, their files removed.
	assert_equal "$(store_entities S | jq -c '.T.b | del(.mtime)')" '{"deleted":true,"g":2,"v":2}'
	assert_equal "$(store_entities S | jq -c '.T.c | del(.mtime)')" '{"deleted":true,"g":2,"v":2}'
	assert_equal "$(ls S/T)" 'a~1.json'
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.deleted) | [.key, .rev]')" '["b","2"]
["c","2"]'
}

@test "--max-delete N and N% of the live records: over budget, exit 5 and nothing written; within it, the deletes are applied" {
	printf '%s\n' "$(rec T a '{"n":1}')" "$(rec T b '{"n":1}')" > L
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		seed "$t" a b c d
		recdelta-diff -l ndjson:L -r "$t" -o plan
		before=$(snapshot "$t")
		run -5 --separate-stderr recdelta-push --delete-orphans --max-delete 1 "$t" < plan
		assert_output ''
		assert_stderr 'recdelta-push: refused: 2 deletes exceed the budget of 1 (--max-delete 1)
recdelta-push: nothing was written; to allow them, raise --max-delete or check the local data'
		# 49% of 4 records is 1, rounded down.
		run -5 --separate-stderr recdelta-push --delete-orphans --max-delete 49% "$t" < plan
		assert_output ''
		assert_stderr 'recdelta-push: refused: 2 deletes exceed the budget of 1 (--max-delete 49%)
recdelta-push: nothing was written; to allow them, raise --max-delete or check the local data'
		# Checked in a dry run too, and not at all without --delete-orphans.
		run -5 --separate-stderr recdelta-push -n --delete-orphans --max-delete 1 "$t" < plan
		assert_output ''
		run -0 --separate-stderr recdelta-push --max-delete 1 "$t" < plan
		assert_equal "$(snapshot "$t")" "$before"
		# Which a warning says, even with -q (which quiets the summary and
		# its orphan line; smart-sync -q says that line itself).
		assert_equal "${stderr_lines[0]}" \
		    'recdelta-push: warning: --max-delete has no effect without --delete-orphans'
		assert_equal "${stderr_lines[2]}" \
		    'Would delete 2 orphan records (use --delete-orphans to confirm)'
		run -0 --separate-stderr recdelta-push -q --max-delete=1 "$t" < plan
		assert_stderr 'recdelta-push: warning: --max-delete has no effect without --delete-orphans'
		assert_equal "$(snapshot "$t")" "$before"

		run -0 --separate-stderr recdelta-push --delete-orphans --max-delete 50% "$t" < plan
		assert_stderr "$(summary 0 0 0 2)"
		assert_equal "$(live_keys "$t")" 'a
b'
		# The budget counts live records: 2 now (dir: holds 2 tombstones
		# too), and 49% of 2 is 0.
		rec T a '{"n":1}' > L1
		recdelta-diff -l ndjson:L1 -r "$t" -o plan1
		before=$(snapshot "$t")
		run -5 --separate-stderr recdelta-push --delete-orphans --max-delete 49% "$t" < plan1
		assert_stderr 'recdelta-push: refused: 1 delete exceeds the budget of 0 (--max-delete 49%)
recdelta-push: nothing was written; to allow them, raise --max-delete or check the local data'
		assert_equal "$(snapshot "$t")" "$before"
		run -0 --separate-stderr recdelta-push --delete-orphans --max-delete 1 "$t" < plan1
		assert_equal "$(live_keys "$t")" a
	done
}

# --- dry run ---------------------------------------------------------------------

@test "--dry-run writes nothing, creates no target, and plans, op for op and key for key, what the real run then does" {
	printf '%s\n' "$(rec T a '{"n":1}')" "$(rec T new '{"n":1}')" > L
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		recdelta-diff --allow-missing-remote --all -l ndjson:L -r "$t" -o plan
		run -0 --separate-stderr recdelta-push -n --delete-orphans --max-delete 50% "$t" < plan
		assert_output - <<'EOF'
{"kind":"result","op":"create","type":"T","key":"a","status":"planned","fields":{"n":1}}
{"kind":"result","op":"create","type":"T","key":"new","status":"planned","fields":{"n":1}}
EOF
		assert_stderr "recdelta-push: \"$t\" does not exist: a push would create it
Dry run: would create 2, update 0, delete 0; 0 unchanged; nothing written"
		assert_equal "$(snapshot "$t")" absent

		seed "$t" a b c
		# b and c are at rev 1 in dir:, at 2 and 3 in the table.
		rb=$(by_store "$t" 1 2) rc=$(by_store "$t" 1 3)
		rec T b '{"n":2}' >> L
		recdelta-diff --all -l ndjson:L -r "$t" -o plan
		sed -i '2i {"kind":"cursor","value":"c1"}' plan
		before=$(snapshot "$t")
		run -0 --separate-stderr recdelta-push -n --delete-orphans "$t" < plan
		assert_output - <<EOF
{"kind":"result","op":"same","type":"T","key":"a","status":"skipped","rev":"1","fields":{"n":1}}
{"kind":"cursor","value":"c1"}
{"kind":"result","op":"create","type":"T","key":"new","status":"planned","fields":{"n":1}}
{"kind":"result","op":"update","type":"T","key":"b","status":"planned","rev":"$rb","fields":{"n":2}}
{"kind":"result","op":"delete","type":"T","key":"c","status":"planned","rev":"$rc"}
EOF
		assert_stderr 'Dry run: would create 1, update 1, delete 1; 1 unchanged; nothing written'
		planned=$(printf '%s\n' "$output" | jq -c 'select(.kind == "result") | [.op, .type, .key]')
		# Without --delete-orphans the delete is an orphan in the plan too.
		run -0 --separate-stderr recdelta-push -n "$t" < plan
		assert_line --index 4 "{\"kind\":\"result\",\"op\":\"delete\",\"type\":\"T\",\"key\":\"c\",\"status\":\"skipped\",\"rev\":\"$rc\",\"error\":{\"code\":\"orphan\",\"message\":\"not deleted without --delete-orphans\"}}"
		assert_stderr 'Dry run: would create 1, update 1, delete 0; 1 unchanged; nothing written
Would delete 1 orphan records (use --delete-orphans to confirm)'
		assert_equal "$(snapshot "$t")" "$before"

		run -0 --separate-stderr recdelta-push --delete-orphans "$t" < plan
		assert_stderr "$(summary 1 1 1 1)"
		assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.kind == "result") | [.op, .type, .key]')" "$planned"
		refute_output --partial '"planned"'
		# dir: new at 1, b at 2; sqlite: new and b the table's 4 and 5.
		assert_equal "$(results)" "[\"same\",\"a\",\"skipped\",\"1\"]
[\"create\",\"new\",\"ok\",\"$(by_store "$t" 1 4)\"]
[\"update\",\"b\",\"ok\",\"$(by_store "$t" 2 5)\"]
[\"delete\",\"c\",\"ok\",$(by_store "$t" '"2"' null)]"
		head -n 2 L > L.new && mv L.new L
	done
}

# --- bad input and usage -------------------------------------------------------------

@test "bad input: exit 3 naming the line, and nothing written although lines 1 and 2 were valid" {
	cat > bad <<'EOF'
{"kind":"change","op":"create","type":"T","key":"x","fields":{"n":1}|unterminated object
{"kind":"change","op":"create","type":"T","fields":{"n":1}}|missing "key"
{"kind":"change","op":"update","type":"T","key":"x","fields":{"n":1}}|missing "rev"
{"kind":"change","op":"bogus","type":"T","key":"x","fields":{"n":1}}|"op" is not create, update, delete or same
{"kind":"change","op":"delete","type":"T","key":"x"}|missing "rev"
{"kind":"change","op":"create","type":"T","key":"x"}|missing "fields"
{"type":"T","key":"x","fields":{}}|missing "kind"
EOF
	# try_bad TARGET [N]: each bad line (or the first N) at line 3 of an
	# input, after two good changes, each batch of one line.
	try_bad() {
		local line msg n=0
		while IFS='|' read -r line msg <&4 && [ "$n" -lt "${2:-99}" ]; do
			n=$((n + 1))
			{
				change create a '{"n":1}'
				change create b '{"n":1}'
				printf '%s\n' "$line"
				change create c '{"n":1}'
			} > in
			run -3 --separate-stderr recdelta-push -b 1 --delete-orphans "$1" < in
			assert_output ''
			assert_stderr "recdelta-push: <stdin>:3: $msg"
		done 4< bad
	}
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		# A target that does not exist is not created...
		try_bad "$t" 2
		assert_equal "$(snapshot "$t")" absent
		# ...and one that exists is left as it was.
		seed "$t" z
		before=$(snapshot "$t")
		try_bad "$t"
		assert_equal "$(snapshot "$t")" "$before"
	done
}

@test "an update or delete guarded by \"seen\" alone: exit 3 naming the line, nothing written, on a store without a content guard (dir:); sqlite: applies it" {
	S64=$(printf '%064d' 0)
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		seed "$t" z
		before=$(snapshot "$t")
		for op in update delete; do
			{
				change create a '{"n":1}'
				printf '{"kind":"change","op":"%s","type":"T","key":"z","seen":"%s","fields":{"n":2}}\n' "$op" "$S64"
			} > in
			if [ "$t" = "$DIRT" ]; then
				run -3 --separate-stderr recdelta-push --delete-orphans "$t" < in
				assert_output ''
				assert_stderr 'recdelta-push: <stdin>:2: no "rev" to guard the write: the dir: store needs one'
				assert_equal "$(snapshot "$t")" "$before"
			else
				# Read and guarded by its content: not z's, a conflict.
				run -6 --separate-stderr recdelta-push --retries 0 --delete-orphans "$t" < in
				assert_equal "$(printf '%s\n' "$output" | jq -c '[.op, .key, .status]')" \
				    "$(printf '%s\n' '["create","a","ok"]' "[\"$op\",\"z\",\"conflict\"]")"
				sqlite3 t.db "DELETE FROM t WHERE id = 'a'"
			fi
		done
	done
}

@test "bad input: a malformed tagged value is refused, as recdelta-diff refuses it, and nothing is written" {
	# Each malformed value, and the message that names its field.
	cat > bad <<'EOF'
{"t":{"$ts":"bad"}}|field "t": bad $ts value: not an ISO-8601 date and time
{"n":1,"t":{"$ts":"2026-13-01T00:00:00Z"}}|field "t": bad $ts value: not an ISO-8601 date and time
{"t":{"$ts":1}}|field "t": bad $ts value: not an ISO-8601 date and time
{"t":{"$ts":"2026-01-10T16:02:53Z","x":1}}|field "t": bad $ts value: members beside the tag
{"i":{"$int":"1.5"}}|field "i": bad $int value: not a string of decimal digits
{"b":{"$bytes":"AP8"}}|field "b": bad $bytes value: not padded standard base64
{"r":{"$ref":""}}|field "r": bad $ref value: not a non-empty string
{"at":{"$loc":{"lat":"x","lng":1}}}|field "at": bad $loc value: needs numbers "lat" and "lng"
{"a":{"$asset":1}}|field "a": bad $asset value: not an object
{"n":1,"o":{"x":[{"$int":"1.5"}]}}|field "o": field "x": bad $int value: not a string of decimal digits
EOF
	# try_tagged TARGET: each malformed value alone at line 1, in a
	# create, then in an update at line 3 after two good changes, each
	# batch of one line: exit 3, no result, nothing written.
	try_tagged() {
		local f msg
		while IFS='|' read -r f msg <&4; do
			change create x "$f" > in
			run -3 --separate-stderr recdelta-push "$1" < in
			assert_output ''
			assert_stderr "recdelta-push: <stdin>:1: $msg"
			{
				change create a '{"n":1}'
				change create b '{"n":1}'
				change update z "$f" 1
				change create c '{"n":1}'
			} > in
			run -3 --separate-stderr recdelta-push -b 1 --delete-orphans "$1" < in
			assert_output ''
			assert_stderr "recdelta-push: <stdin>:3: $msg"
		done 4< bad
	}
	# recdelta-diff refuses such a value in a local record the same way.
	change create x '{"t":{"$ts":"bad"}}' | jq -c '.kind = "record" | del(.op)' > L
	run -3 --separate-stderr recdelta-diff --allow-missing-remote -l ndjson:L -r dir:S
	assert_output ''
	assert_stderr 'recdelta-diff: L:1: field "t": bad $ts value: not an ISO-8601 date and time'
	rm L
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		# A target that does not exist is not created...
		try_tagged "$t"
		assert_equal "$(snapshot "$t")" absent
		# ...and one that exists is left as it was.
		seed "$t" z
		before=$(snapshot "$t")
		try_tagged "$t"
		{
			change create a '{"n":1}'
			change create b '{"t":{"$ts":"yesterday"}}'
		} > in
		run -3 --separate-stderr recdelta-push "$t" < in
		assert_output ''
		assert_stderr 'recdelta-push: <stdin>:2: field "t": bad $ts value: not an ISO-8601 date and time'
		assert_equal "$(snapshot "$t")" "$before"
		# Had it been written, no diff against the store would work.
		rec T z '{"n":1}' > L
		run -0 --separate-stderr recdelta-diff -l ndjson:L -r "$t" --exit-code
		rm -rf S t.db
	done
}

@test "usage: an unknown option, no TARGET, two, a store word that names no store or a store that cannot be written; bad option values" {
	U='usage: recdelta-push [-n] [-b N] [--delete-orphans] [--max-delete N[%]]'
	change create a '{"n":1}' > in
	run -2 --separate-stderr recdelta-push --bogus dir:S < in
	assert_output ''
	assert_equal "${stderr_lines[0]}" "recdelta-push: unrecognized option '--bogus'"
	assert_equal "${stderr_lines[1]}" "$U"
	run -2 --separate-stderr recdelta-push < in
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-push: missing TARGET'
	assert_equal "${stderr_lines[1]}" "$U"
	run -2 --separate-stderr recdelta-push dir:S dir:T < in
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-push: too many arguments'
	assert_equal "${stderr_lines[1]}" "$U"
	run -2 --separate-stderr recdelta-push ndjson:- < in
	assert_output ''
	assert_stderr 'recdelta-push: ndjson:-: the ndjson: store cannot be written'
	run -2 --separate-stderr recdelta-push - < in
	assert_stderr 'recdelta-push: -: the ndjson: store cannot be written'
	run -2 --separate-stderr recdelta-push foo:bar < in
	assert_stderr 'recdelta-push: "foo:bar": unknown store scheme "foo"'
	run -2 --separate-stderr recdelta-push 'sqlite:t.db?table=t' < in
	assert_stderr 'recdelta-push: "sqlite:t.db?table=t": table= and key= are required'
	for v in abc -1 101% 5x '' 50%% 1.5 %; do
		run -2 --separate-stderr recdelta-push --delete-orphans --max-delete "$v" dir:S < in
		assert_output ''
		assert_stderr "recdelta-push: --max-delete: \"$v\": expected N or N%"
	done
	for v in 0 -1 x 100001; do
		run -2 --separate-stderr recdelta-push -b "$v" dir:S < in
		assert_stderr "recdelta-push: --batch: \"$v\": expected 1 to 100000"
	done
	for v in -1 x 101; do
		run -2 --separate-stderr recdelta-push --retries "$v" dir:S < in
		assert_stderr "recdelta-push: --retries: \"$v\": expected 0 to 100"
	done
	assert_equal "$(ls -A)" in
	run -0 --separate-stderr recdelta-push -h
	assert_line --index 0 "$U"
	assert_stderr ''
}

# --- a store that cannot be written -------------------------------------------------

@test "a local store that cannot be written at all: exit 4 with the reason, no result for the batch, nothing deferred; a full stdout is exit 4" {
	{
		change create a '{"n":1}'
		change update b '{"n":2}' 3
	} > in
	# (A writer takes its lock on S/.lock, a file that may stay.)
	mkdir S
	echo garbage > S/meta.json
	: > S/.lock
	echo garbage > t.db
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		before=$(snapshot "$t")
		run -4 --separate-stderr recdelta-push "$t" < in
		case $t in
		dir:*) msg='S/meta.json: damaged store: unexpected character' ;;
		*) msg="$PWD/t.db: file is not a database" ;;
		esac
		assert_output ''
		assert_stderr "recdelta-push: $msg"
		assert_equal "$(snapshot "$t")" "$before"
	done
	[ -w /dev/full ] || skip "no /dev/full"
	rm -rf S
	run -4 --separate-stderr bash -c 'recdelta-push dir:S < in > /dev/full'
	assert_stderr 'recdelta-push: created "dir:S" (it did not exist)
recdelta-push: write error: No space left on device'
}

# --- batches and the stream ------------------------------------------------------------

@test "batches: -b 2 commits 5 creates in 3 writes of meta.json; a batch with nothing to write commits nothing" {
	seed dir:S z
	assert_equal "$(jq .generation S/meta.json)" 1
	for k in a b c d e; do
		change create "$k" "{\"k\":\"$k\"}"
	done > in
	run -0 --separate-stderr recdelta-push -b 2 dir:S < in
	assert_stderr "$(summary 5 0 0 0)"
	assert_equal "$(results | sort -u)" "$(printf '["create","%s","ok","1"]\n' a b c d e)"
	assert_equal "$(jq .generation S/meta.json)" 4
	# Every change conflicts and resolves as equal: nothing to commit.
	before=$(snapshot dir:S)
	run -0 --separate-stderr recdelta-push -b 2 dir:S < in
	assert_stderr "$(summary 0 0 5 0)"
	assert_equal "$(snapshot dir:S)" "$before"
}

@test "lines of other kinds pass through unchanged and in place, in every batch size" {
	{
		printf '%s\n' '{ "kind" : "cursor", "source":"x",  "value":"\u0041" }'
		change create a '{"n":1}'
		printf '%s\n' '{"kind":"future-thing","x":[1, 2.50 ,"\u00e9"]}'
		change create b '{"n":2}'
		change create c '{"n":3}'
		printf '%s\n' '{"kind":"cursor","value":"end"}'
	} > in
	for t in "${TARGETS[@]}"; do
		echo "target $t"
		# dir: each at rev 1; sqlite: the table's 1, 2, 3, whatever the
		# batches.
		rb=$(by_store "$t" 1 2) rc=$(by_store "$t" 1 3)
		for b in 1 2 1000; do
			rm -rf S t.db
			run -0 --separate-stderr recdelta-push -b "$b" "$t" < in
			# (Quoted, the here-document keeps its backslashes.)
			assert_output "$(sed "s/@RB@/$rb/; s/@RC@/$rc/" <<'EOF'
{ "kind" : "cursor", "source":"x",  "value":"\u0041" }
{"kind":"result","op":"create","type":"T","key":"a","status":"ok","rev":"1","fields":{"n":1}}
{"kind":"future-thing","x":[1, 2.50 ,"\u00e9"]}
{"kind":"result","op":"create","type":"T","key":"b","status":"ok","rev":"@RB@","fields":{"n":2}}
{"kind":"result","op":"create","type":"T","key":"c","status":"ok","rev":"@RC@","fields":{"n":3}}
{"kind":"cursor","value":"end"}
EOF
			)"
		done
	done
}

# --- values ----------------------------------------------------------------------------------

@test "values into dir:: 64-bit and larger integers exact, any Unicode, keys with / .. and spaces inside the folder, tagged values; a round trip leaves nothing to diff" {
	cp "$FIXTURES/recdelta-push/values.ndjson" L
	rec '../up' '../../k' '{"n":5}' >> L
	recdelta-diff --allow-missing-remote --all -l ndjson:L -r dir:S -o plan
	run -0 --separate-stderr recdelta-push dir:S < plan
	assert_stderr "recdelta-push: created \"dir:S\" (it did not exist)
$(summary 9 0 0 0)"
	assert_equal "$(results | grep -vc '"ok","1"\]$' || true)" 0
	# Every file is inside the store, one level down; nothing else was made.
	assert_equal "$(ls -A)" "$(printf '%s\n' L S plan)"
	[ -z "$(find S -mindepth 3)" ]
	assert_equal "$(find S -mindepth 2 -type f -not -path 'S/meta.idx/*' | wc -l)" 9
	[ -f 'S/T/%2E.%2F..%2Fescape~1.json' ]
	[ -f 'S/T/%2E.~1.json' ]
	[ -f 'S/%2E.%2Fup/%2E.%2F..%2Fk~1.json' ]
	recdelta-fetch dir:S > F
	grep -qF '"fields":{"n":9223372036854775807,"neg":-9223372036854775808}}' F
	grep -qF '"fields":{"n":12345678901234567890}}' F
	grep -qF '"fields":{"s":"é 日本 😀 \"quoted\" back\\slash tab\t nl\n \u0001"}}' F
	grep -qF '"i":{"$int":"123456789012345678901234"}' F
	grep -qF '"o":{"x":[1.50,null,true]}' F
	# fetch -> diff -> push -> fetch leaves nothing to diff.
	run -0 --separate-stderr recdelta-diff -l ndjson:L -r dir:S --exit-code
	assert_output ''
	run -0 --separate-stderr recdelta-diff -l ndjson:F -r dir:S --exit-code
	assert_output ''
	run -0 --separate-stderr recdelta-diff -l ndjson:L -r ndjson:F --exit-code
	assert_output ''
}

@test "values into sqlite:: an integer beyond 64 bits fails inexact (exit 6) and the rest of its batch is written; the others round-trip exactly" {
	cp "$FIXTURES/recdelta-push/values.ndjson" L
	recdelta-diff --allow-missing-remote --all -l ndjson:L -r "$SQLT" -o plan
	run -6 --separate-stderr recdelta-push "$SQLT" < plan
	assert_stderr "recdelta-push: created \"$SQLT\" (it did not exist)
$(summary 7 0 0 0)
Failed 1, Deferred 0 (kept for replay)"
	assert_line --index 1 '{"kind":"result","op":"create","type":"T","key":"big","status":"failed","error":{"code":"inexact","message":"value of \"n\" cannot be stored exactly in column \"n\""}}'
	# The others take the table's revs in input order; the failed change
	# takes none.
	assert_equal "$(results)" '["create","max","ok","1"]
["create","big","failed",null]
["create","text","ok","2"]
["create","../../escape","ok","3"]
["create","a/b c/..","ok","4"]
["create","..","ok","5"]
["create",".hidden~1.json","ok","6"]
["create","tagged","ok","7"]'
	assert_equal "$(ls -A)" "$(printf '%s\n' L plan t.db)"
	recdelta-fetch "$SQLT" > F
	grep -qF '"key":"max","rev":"1","fields":{"n":9223372036854775807,"neg":-9223372036854775808' F
	grep -qF '"s":"é 日本 😀 \"quoted\" back\\slash tab\t nl\n \u0001"' F
	grep -qF '"i":{"$int":"123456789012345678901234"}' F
	refute grep -q '"key":"big"' F
	assert_equal "$(sqlite3 t.db "SELECT count(*) FROM t")" 7
	# The failed record is still to create; the rest leaves nothing to diff.
	run -0 --separate-stderr recdelta-diff -l ndjson:L -r "$SQLT"
	assert_output '{"kind":"change","op":"create","type":"T","key":"big","fields":{"n":12345678901234567890}}'
	grep -v '"key":"big"' L > L2
	run -0 --separate-stderr recdelta-diff -l ndjson:L2 -r "$SQLT" --exit-code
	assert_output ''
	run -0 --separate-stderr recdelta-diff -l ndjson:F -r "$SQLT" --exit-code
	assert_output ''
	# As {"$int":...} it fits a JSON column of its own.
	printf '%s\n' "$(change create big2 '{"m":{"$int":"12345678901234567890"}}')" > in
	run -0 --separate-stderr recdelta-push "$SQLT" < in
	assert_output '{"kind":"result","op":"create","type":"T","key":"big2","status":"ok","rev":"8","fields":{"m":{"$int":"12345678901234567890"}}}'
	run -0 --separate-stderr recdelta-fetch "$SQLT"
	assert_output --partial '"m":{"$int":"12345678901234567890"}}}'
}

# --- the log ---------------------------------------------------------------------------------

@test "--log FILE and RECDELTA_LOG: one JSON object a line with ts, level, prog, msg; no field value; mode 0600" {
	change create a '{"secret":"VALUE-1"}' > in
	run -0 --separate-stderr recdelta-push --log log dir:S < in
	change update a '{"secret":"VALUE-2"}' 7 > in
	RECDELTA_LOG=log run -0 --separate-stderr recdelta-push dir:S < in
	assert_stderr "$(summary 0 1 0 0)
recdelta-push: overwrote 1 remote edit (see --log)"
	assert_output '{"kind":"result","op":"update","type":"T","key":"a","status":"ok","rev":"2","fields":{"secret":"VALUE-2"}}'
	assert_equal "$(stat -c %a log)" 600
	while IFS= read -r l; do
		jq -e '(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
		    (.level | type == "string") and .prog == "recdelta-push" and
		    (.pid | type == "number") and (.msg | type == "string")' <<<"$l" > /dev/null
	done < log
	assert_equal "$(jq -r .msg log)" 'push start
push done
push start
conflict
conflict resolved: retried
overwrote a remote edit
push done'
	assert_equal "$(jq -c 'select(.msg == "conflict") | [.type, .key]' log)" '["T","a"]'
	assert_equal "$(jq -c 'select(.msg == "push done") | [.created, .updated]' log)" '[1,0]
[0,1]'
	refute grep -q VALUE log
	run -4 --separate-stderr recdelta-push --log no/such/dir/log dir:S < in
	assert_output ''
	assert_stderr 'recdelta-push: no/such/dir/log: No such file or directory'
}

# --- kill -9 -----------------------------------------------------------------------------------

# gen_local IT: the local data of version IT: records k0001..k3000, a third
# of them changed by each version (v is the last version j <= IT with
# j = k mod 3), and 50 more records for each version so far.
gen_local() {
	awk -v it="$1" 'BEGIN {
		for (k = 1; k <= 3000; k++) {
			j = it - ((it - k % 3) % 3 + 3) % 3
			if (j < 1) j = 0
			printf "{\"kind\":\"record\",\"type\":\"Item\",\"key\":\"k%04d\",\"fields\":{\"n\":%d,\"v\":%d,\"s\":\"item %d\"}}\n", k, k, j, k
		}
		for (j = 1; j <= it; j++)
			for (i = 1; i <= 50; i++)
				printf "{\"kind\":\"record\",\"type\":\"Item\",\"key\":\"x%02d_%02d\",\"fields\":{\"n\":%d}}\n", j, i, j
	}'
}

# converge: push the plan made against the target to the end, as a rerun
# does; then nothing is left to do, and each record is there once.
converge() {
	recdelta-diff -l ndjson:L -r dir:S -o plan
	run -0 --separate-stderr recdelta-push -q -b 50 dir:S < plan
	assert_stderr ''
	refute_output --partial '"status":"conflict"'
	refute_output --partial '"status":"failed"'
	run -0 --separate-stderr recdelta-diff -l ndjson:L -r dir:S --exit-code
	assert_output ''
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_stderr ''
	assert_equal "${#lines[@]}" "$(wc -l < L)"
	assert_equal "$(printf '%s\n' "$output" | grep -o '"key":"[^"]*"' | sort -u | wc -l)" "$(wc -l < L)"
}

@test "kill -9 at chosen points: the store is never damaged, holds each record old or new, and a rerun converges with nothing lost or duplicated" {
	# Each round recomputes the plan against the target, as a rerun
	# does, pushes it in batches of 50 and kills the push where it
	# stopped before its Nth file-system call (helpers/faultinject.bash):
	# N a quarter, a half, three quarters or all of the plan's lines,
	# and a dir: push makes more than one call a record, so each push is
	# killed midway.  After 4 kills a rerun goes to the end, and the local
	# data moves on to its next version: the first plan is 3000 creates,
	# the next ones 1000 updates and 50 creates.
	: > L.old
	gen_local 0 > L
	# An empty store to begin with: a reader finds one even before the
	# first write that a kill lets through.
	mkdir S
	version=0 kills=0 vkills=0 round=0
	while [ "$kills" -lt 10 ] && [ "$round" -lt 60 ]; do
		round=$((round + 1))
		recdelta-diff --allow-missing-remote -l ndjson:L -r dir:S -o plan
		if [ ! -s plan ] || [ "$vkills" -ge 4 ]; then
			converge
			version=$((version + 1)) vkills=0
			mv L L.old
			gen_local "$version" > L
			continue
		fi
		n=$((1 + $(wc -l < plan) * (round % 4 + 1) / 4))
		paused "$n" recdelta-push -q -b 50 dir:S < plan > /dev/null 2> push.err
		wait_paused || fail "round $round: the push ended before call $n: status $PAUSED_STATUS: $(cat push.err)"
		kill_paused
		assert_equal "$PAUSED_STATUS" 137
		kills=$((kills + 1)) vkills=$((vkills + 1))

		# What a reader sees: a whole store, each record as it was or as
		# it is to be, none neither, none twice.
		run -0 --separate-stderr recdelta-fetch dir:S
		assert_stderr ''
		printf '%s\n' "$output" | grep . > F || true
		assert_equal "$(grep -o '"key":"[^"]*"' F | sort | uniq -d)" ''
		recdelta-diff -l ndjson:L -r ndjson:F --allow-empty | grep -o '"key":"[^"]*"' | sort > not_new || true
		recdelta-diff -l ndjson:L.old -r ndjson:F --allow-empty | grep -o '"key":"[^"]*"' | sort > not_old || true
		assert_equal "$(comm -12 not_new not_old)" ''
	done
	echo "# $kills kills in $round rounds, local data at version $version" >&3
	[ "$kills" -eq 10 ]
	[ "$version" -ge 2 ]
	converge
}

@test "dir: a writer killed between commit and collect leaves superseded files that the next writer removes, and nothing else" {
	mkdir outside && echo keep > outside/victim.json
	printf '%s\n' '{"kind":"change","op":"create","type":"T","key":"a","fields":{"n":1}}' | recdelta-push -q dir:S > /dev/null
	printf '%s\n' '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2}}' | recdelta-push -q dir:S > /dev/null
	# As a writer killed after renaming meta.json would leave it: the old
	# version still there, the journal naming it and the bucket file the
	# commit wrote (which holds its entry), and (tampered) lines that must
	# never be acted on.
	echo '{"fields":{"n":1},"key":"a","type":"T"}' > S/T/a~1.json
	bucket=$(jq -r '.buckets | to_entries[] | select(.value > 0) | "meta.idx/\(.key)~\(.value).json"' S/meta.json)
	[ -f "S/$bucket" ]
	printf '%s\n' 'T/a~1.json' 'T/a~2.json' "$bucket" '../outside/victim.json' 'T/../../outside/victim.json' \
	    'meta.idx/../../outside/victim.json' 'meta.idx/00~2.json' > S/.collect
	printf '%s\n' '{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":3}}' | recdelta-push -q dir:S > /dev/null
	assert_equal "$(cd S/T && ls | tr '\n' ' ')" 'a~2.json b~1.json '
	[ ! -e S/.collect ]
	assert_equal "$(cat outside/victim.json)" keep
	assert_equal "$(store_entities S | jq -c '[.T[] | .v]')" '[2,1]'
	run -0 recdelta-diff -l dir:S -r dir:S --exit-code
}
