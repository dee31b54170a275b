#!/usr/bin/env bats
# A source that does not exist is an error, never an empty store: a
# misspelt database, table or dir: folder stops every flow with exit 4 and
# a message naming it, and nothing is deleted, written or created.  A
# target may not exist yet: the first write creates it and says so; a
# write that creates nothing (only updates and deletes) makes no store.
# An empty source where the base snapshot is not empty is refused before
# any delete (exit 5) unless --allow-empty.

bats_require_minimum_version 1.5.0

load helpers/common

# The data: five games in src.db (table games, with a day for windows),
# the same in a dir: store "local", synced into the dir: target "remote";
# in a folder of their own, where bats leaves no file.
suite_setup() {
	mkdir w && cd w || return 1
	export RECDELTA_STATE=$PWD/state.db
	unset RECDELTA_LOG
	{
		echo "CREATE TABLE games(id TEXT PRIMARY KEY, day TEXT, score INTEGER);"
		for n in 1 2 3 4 5; do
			echo "INSERT INTO games VALUES('g$n', '2025-01-0$n', $n);"
		done
	} | sqlite3 src.db
	SRC='sqlite:src.db?table=games&key=id&type=Game'
	mkdir local
	recdelta-fetch "$SRC" | recdelta-diff --all -l - -r dir:local |
	    recdelta-push dir:local > /dev/null 2>&1
	recdelta smart-sync -q -l "$SRC" -r dir:remote 2> /dev/null
	[ "$(recdelta-fetch dir:remote | wc -l)" -eq 5 ]
}

# The misspelt sources, each with the message that names it:
# WORD|MESSAGE, one a line.
misspelt() {
	cat <<'EOF'
sqlite:gmaes.db?table=games&key=id&type=Game|recdelta-diff: gmaes.db: No such file or directory
sqlite:src.db?table=game&key=id&type=Game|recdelta-diff: src.db: no table "game"
dir:locla|recdelta-diff: locla: No such file or directory
EOF
}

# tables DB: the names of its tables, in order, on one line.
tables() {
	sqlite3 "$1" "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)"
}

# What a run must leave alone: the target, the sources, the state, and
# what is in the folder (nothing created by reading).
snapshot() {
	tree_digest remote
	sha256 src.db
	tree_digest local
	sha256 state.db
	ls -A
}

@test "smart-sync: a misspelt database, table or dir: source is exit 4 naming it, with or without --delete-orphans and -q; nothing deleted or created" {
	before=$(snapshot)
	while IFS='|' read -r src msg; do
		for opts in "" "--delete-orphans" "-q" "--delete-orphans -q" \
		    "--delete-orphans --incremental" "--delete-orphans --dry-run"; do
			# shellcheck disable=SC2086 # the options are words
			run -4 --separate-stderr recdelta smart-sync $opts -l "$src" -r dir:remote
			assert_output ''
			assert_equal "$stderr" "$msg"
			assert_equal "$(snapshot)" "$before"
		done
	done < <(misspelt)
	assert_equal "$(recdelta-fetch dir:remote | wc -l)" 5
}

@test "diff-only: a misspelt source on either side is exit 4 naming it, no report, nothing created" {
	before=$(snapshot)
	while IFS='|' read -r src msg; do
		run -4 --separate-stderr recdelta diff-only -l "$src" -r dir:remote
		assert_output ''
		assert_equal "$stderr" "$msg"
		run -4 --separate-stderr recdelta diff-only -l "$SRC" -r "$src"
		assert_output ''
		assert_equal "$stderr" "$msg"
		assert_equal "$(snapshot)" "$before"
	done < <(misspelt)
	run -4 --separate-stderr recdelta diff-only -l dir:local -r dir:remot
	assert_equal "$stderr" 'recdelta-diff: remot: No such file or directory'
	[ ! -e remot ]
}

@test "historical-import: a misspelt source fails every window, said once, exit 6; the target is not touched, nothing created" {
	mkdir st
	export RECDELTA_STATE=$PWD/st/import.db
	while IFS='|' read -r src msg; do
		for q in "" -q; do
			rm -f st/*
			before=$(snapshot)
			run -6 --separate-stderr recdelta historical-import $q --source "$src" \
			    --target dir:remote --from 2025-01-01 --to 2025-01-05 --window-field day
			assert_output ''
			assert_equal "${stderr_lines[0]}" "$msg"
			assert_equal "$(grep -cxF "$msg" <<< "$stderr")" 1
			[ -n "$q" ] || grep -qxF "failed: 2025-01-05: $msg" <<< "$stderr"
			assert_equal "$(recdelta-checkpoint windows pending | wc -l)" 5
			assert_equal "$(snapshot)" "$before"
		done
	done < <(misspelt)
}

@test "recdelta-fetch and recdelta-diff: a missing store is exit 4 and creates nothing; diff --allow-missing-remote reads a missing remote as empty" {
	mkdir sub && cd sub
	run -4 --separate-stderr recdelta-fetch 'sqlite:gmaes.db?table=games&key=id'
	assert_equal "$stderr" 'recdelta-fetch: gmaes.db: No such file or directory'
	run -4 --separate-stderr recdelta-fetch 'sqlite:../src.db?table=nope&key=id'
	assert_equal "$stderr" 'recdelta-fetch: ../src.db: no table "nope"'
	run -4 --separate-stderr recdelta-fetch dir:remot
	assert_equal "$stderr" 'recdelta-fetch: remot: No such file or directory'
	run -4 --separate-stderr recdelta-diff -l dir:../local -r 'sqlite:r.db?table=games&key=id'
	assert_output ''
	assert_equal "$stderr" 'recdelta-diff: r.db: No such file or directory'
	[ -z "$(ls -A)" ]
	for t in 'sqlite:r.db?table=games&key=id&type=Game' dir:remot 'sqlite:../src.db?table=other&key=id&type=Game'; do
		run -0 --separate-stderr recdelta-diff --allow-missing-remote --summary -l dir:../local -r "$t"
		assert_output 'Games: 0 unchanged, 5 new, 0 updated, 0 deleted'
		assert_equal "$stderr" ''
	done
	[ -z "$(ls -A)" ]
	# The local side must exist even so.
	run -4 --separate-stderr recdelta-diff --allow-missing-remote -l dir:locla -r dir:../remote
	assert_equal "$stderr" 'recdelta-diff: locla: No such file or directory'
	assert_equal "$(tables ../src.db)" games
}

@test "push into a missing target: the first write creates it and says so once, even with -q; a dry run says it would" {
	recdelta-diff --all --allow-missing-remote -l dir:local -r dir:new > plan
	for t in dir:new 'sqlite:new.db?table=games&key=id&type=Game' \
	    'sqlite:src.db?table=copy&key=id&type=Game'; do
		run -0 --separate-stderr recdelta-push --dry-run "$t" < plan
		assert_equal "${stderr_lines[0]}" "recdelta-push: \"$t\" does not exist: a push would create it"
		run -4 recdelta-fetch "$t"
		run -0 --separate-stderr recdelta-push -q -b 2 "$t" < plan
		assert_equal "$stderr" "recdelta-push: created \"$t\" (it did not exist)"
		assert_equal "$(recdelta-fetch "$t" | jq -r .key | sort | tr '\n' ' ')" 'g1 g2 g3 g4 g5 '
		# Once there, it is no news.
		run -0 --separate-stderr recdelta-push --dry-run "$t" < plan
		refute_line --partial 'does not exist'
		run -0 --separate-stderr recdelta-push "$t" < plan
		refute_line --partial 'created'
	done
	assert_equal "$(tables src.db)" 'copy games recdelta_revs'
}

@test "push of deletes into a missing target creates nothing: no folder, no .lock, no database, no table" {
	{
		printf '%s\n' '{"kind":"change","op":"delete","type":"Game","key":"g1","rev":"1"}'
		printf '%s\n' '{"kind":"change","op":"delete","type":"Game","key":"g2","rev":"3"}'
	} > plan
	before=$(sha256 src.db)
	for t in dir:remot 'sqlite:r.db?table=games&key=id&type=Game' \
	    'sqlite:src.db?table=game&key=id&type=Game'; do
		run -0 --separate-stderr recdelta-push --delete-orphans "$t" < plan
		assert_equal "$(jq -r .status <<< "$output" | sort -u)" skipped
		refute_line --partial created
		[ ! -e remot ] && [ ! -e r.db ]
		assert_equal "$(sha256 src.db)" "$before"
	done
}

@test "smart-sync into a missing target creates it and says so; with -q too" {
	run -0 --separate-stderr recdelta smart-sync -q -l "$SRC" -r dir:fresh --state s2.db
	assert_equal "$stderr" 'recdelta-push: created "dir:fresh" (it did not exist)'
	run -0 --separate-stderr recdelta smart-sync -q -l "$SRC" -r dir:fresh --state s2.db
	assert_equal "$stderr" ''
	run -0 --separate-stderr recdelta smart-sync --dry-run -l "$SRC" -r dir:other --state s3.db
	assert_equal "${stderr_lines[0]}" 'recdelta-push: "dir:other" does not exist: a push would create it'
	[ ! -e other ]
}

@test "smart-sync: an empty source where the base is not is refused before any delete, exit 5, nothing written; --allow-empty deletes" {
	sqlite3 src.db 'CREATE TABLE none(id TEXT PRIMARY KEY, day TEXT, score INTEGER)'
	mkdir emptydir
	: > empty.ndjson
	for src in 'sqlite:src.db?table=none&key=id&type=Game' dir:emptydir ndjson:empty.ndjson; do
		for opts in "--delete-orphans" "--delete-orphans -q" "--delete-orphans --incremental" \
		    "--delete-orphans --dry-run"; do
			before=$(snapshot)
			# shellcheck disable=SC2086 # the options are words
			run -5 --separate-stderr recdelta smart-sync $opts -l "$src" -r dir:remote
			assert_output ''
			assert_equal "$stderr" "recdelta-smart-sync: refused: $src holds no record, where the base snapshot of the last sync holds 5
recdelta-smart-sync: nothing was written; if the local data is meant to be empty, run the same command with --allow-empty"
			assert_equal "$(snapshot)" "$before"
		done
		# Without --delete-orphans nothing would be deleted: no refusal.
		run -0 --separate-stderr recdelta smart-sync -l "$src" -r dir:remote
		assert_equal "${stderr_lines[-1]}" 'Would delete 5 orphan records (use --delete-orphans to confirm)'
	done
	run -0 --separate-stderr recdelta smart-sync --delete-orphans --allow-empty -l dir:emptydir -r dir:remote
	assert_equal "$stderr" 'Created 0, Updated 0, Skipped 0 unchanged, Deleted 5, Conflicts 0'
	assert_equal "$(recdelta-fetch dir:remote | jq -c 'select(.deleted | not)')" ''
	# The base is empty now: an empty source is no news.
	run -0 --separate-stderr recdelta smart-sync --delete-orphans -l dir:emptydir -r dir:remote
}
