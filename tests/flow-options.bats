#!/usr/bin/env bats
# What every flow and program owes its command line: a long option takes
# its value as the next word or after "=", alike; and usage is checked
# before state, so that a bad store word or option value is a usage error
# (exit 2), never hidden behind a refusal of the state (exit 5).

bats_require_minimum_version 1.5.0

load helpers/common

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# Each test: its own state and temporary folder; a local file of 3 games
# and 1 team, dated for historical-import.
suite_setup() {
	mkdir tmp
	export TMPDIR=$PWD/tmp
	export RECDELTA_STATE=$PWD/state.db
	{
		rec Game g1 '{"day":"2024-01-01","score":1}'
		rec Game g2 '{"day":"2024-01-02","score":2}'
		rec Game g3 '{"day":"2024-01-02","score":3}'
		rec Team t1 '{"day":"2024-01-01","name":"One"}'
	} > local.ndjson
	printf 'Game ignore score\n' > rules
}

# The live records of a store, without rev and mtime, sorted.
live() {
	recdelta-fetch "$1" | jq -c 'select(.kind == "record" and .deleted != true) |
	    [.type, .key, .fields]' | LC_ALL=C sort
}

# The state's bytes and content (absent when there is none).
state_digest() {
	[ -e "${1:-state.db}" ] || { echo absent; return; }
	{ cat "${1:-state.db}" "${1:-state.db}-wal" 2>/dev/null; sqlite3 "${1:-state.db}" .dump; } |
	    sha256sum | cut -d' ' -f1
}

# A state that belongs to the scope "dir:$PWD/other": every flow run
# against another scope is refused by it (exit 5).
foreign_state() {
	recdelta smart-sync -q -l ndjson:local.ndjson -r "dir:$PWD/other" || return 1
	[ -e state.db ]
}

NOSUCH='recdelta-diff: "nosuch:x": unknown store scheme "nosuch"'

@test "diff-only: --opt=value and --opt value give the same report" {
	recdelta smart-sync -q -l ndjson:local.ndjson -r "dir:$PWD/r"
	sed -i 's/"score":1/"score":9/; s/"One"/"Uno"/' local.ndjson
	run -0 --separate-stderr recdelta diff-only --local ndjson:local.ndjson \
	    --remote "dir:$PWD/r" --type Game --type Team --ignore name \
	    --tolerance score=0.5 --rules rules
	assert_stderr ""
	assert_output "Games: 3 unchanged, 0 new, 0 updated, 0 deleted
Teams: 1 unchanged, 0 new, 0 updated, 0 deleted"
	spaced=$output
	run -0 --separate-stderr recdelta diff-only --local=ndjson:local.ndjson \
	    --remote="dir:$PWD/r" --type=Game --type=Team --ignore=name \
	    --tolerance=score=0.5 --rules=rules
	assert_stderr ""
	assert_output "$spaced"
	# And the values count: without the rules, both differ.
	run -0 --separate-stderr recdelta diff-only --local=ndjson:local.ndjson \
	    --remote="dir:$PWD/r" --type=Game
	assert_output "Games: 2 unchanged, 0 new, 1 updated, 0 deleted"
}

@test "smart-sync: --opt=value and --opt value do the same run" {
	mkdir a b
	(cd a && recdelta smart-sync --local "ndjson:$OLDPWD/local.ndjson" \
	    --remote "dir:$PWD/r" --state "$PWD/s.db" --scope here --batch 1 \
	    --retries 2 --type Game --ignore score --tolerance score=1 \
	    --rules "$OLDPWD/rules" --log "$PWD/log" --max-delete 5 --delete-orphans \
	    2> err)
	run -0 --separate-stderr bash -c 'cd b && recdelta smart-sync \
	    --local="ndjson:$OLDPWD/local.ndjson" --remote="dir:$PWD/r" \
	    --state="$PWD/s.db" --scope=here --batch=1 --retries=2 --type=Game \
	    --ignore=score --tolerance=score=1 --rules="$OLDPWD/rules" \
	    --log="$PWD/log" --max-delete=5 --delete-orphans'
	assert_output ""
	# The same but for the folder's name in the line of the target made.
	assert_stderr "$(sed 's|/a/r"|/b/r"|' a/err)"
	assert_stderr "recdelta-push: created \"dir:$PWD/b/r\" (it did not exist)
Created 3, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	assert_equal "$(live "dir:$PWD/b/r")" "$(live "dir:$PWD/a/r")"
	assert_equal "$(live "dir:$PWD/b/r" | jq -r '.[0]' | sort -u)" Game
	for d in a b; do
		run -0 recdelta-checkpoint --state "$d/s.db" status --json
		[ "$(jq -r .scope <<<"$output")" = here ]
		grep -q '"prog":"recdelta-push"' "$d/log"
	done
	[ ! -e state.db ]
}

@test "historical-import: --opt=value and --opt value do the same run" {
	mkdir a b
	for d in a b; do
		cp local.ndjson "$d/src.ndjson"
	done
	(cd a && recdelta historical-import --source ndjson:src.ndjson \
	    --target "dir:$PWD/t" --from 2024-01-01 --to 2024-01-02 \
	    --window-field day --step 1d --type Game --state "$PWD/s.db" \
	    --scope here --ignore score --tolerance score=1 --rules "$OLDPWD/rules" \
	    --log "$PWD/log" -q)
	run -0 --separate-stderr bash -c 'cd b && recdelta historical-import \
	    --source=ndjson:src.ndjson --target="dir:$PWD/t" --from=2024-01-01 \
	    --to=2024-01-02 --window-field=day --step=1d --type=Game \
	    --state="$PWD/s.db" --scope=here --ignore=score --tolerance=score=1 \
	    --rules="$OLDPWD/rules" --log="$PWD/log" -q'
	assert_output ""
	assert_stderr "recdelta-push: created \"dir:$PWD/b/t\" (it did not exist)"
	assert_equal "$(live "dir:$PWD/b/t")" "$(live "dir:$PWD/a/t")"
	assert_equal "$(live "dir:$PWD/b/t" | wc -l)" 3
	for d in a b; do
		run -0 recdelta-checkpoint --state "$d/s.db" windows coverage --json
		[ "$(jq -r .coverage.percent <<<"$output")" = 100 ]
		grep -q '"msg":"import done"' "$d/log"
	done
	[ ! -e state.db ]
}

@test "smart-sync: a bad store word or option value is exit 2 before the state refuses the scope" {
	foreign_state
	before=$(state_digest)
	# The reference: a good word of another scope is refused by the state.
	run -5 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "dir:$PWD/r"
	[ ! -e r ]
	for args in "-r nosuch:x" "--remote=nosuch:x"; do
		# shellcheck disable=SC2086
		run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson $args
		assert_output ""
		assert_stderr "$NOSUCH"
	done
	run -2 --separate-stderr recdelta smart-sync -l nosuch:x -r "dir:$PWD/r"
	assert_stderr "$NOSUCH"
	run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r 'sqlite:r.db'
	assert_stderr 'recdelta-diff: "sqlite:r.db": expected sqlite:DB?table=T&key=COL'
	run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r ndjson:- < /dev/null
	assert_stderr "recdelta-push: ndjson:-: the ndjson: store cannot be written"
	run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "dir:$PWD/r" --batch=0
	assert_stderr 'recdelta-push: --batch: "0": expected 1 to 100000'
	run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "dir:$PWD/r" \
	    --max-delete 5x --delete-orphans
	assert_stderr 'recdelta-push: --max-delete: "5x": expected N or N%'
	run -2 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "dir:$PWD/r" \
	    --tolerance=cap
	assert_stderr 'recdelta-diff: "cap": tolerance must be FIELD=EPS'
	assert_equal "$(state_digest)" "$before"
	[ ! -e r ]
	[ -z "$(ls -A tmp)" ]
}

@test "historical-import: a bad store word or option value is exit 2 before the state refuses the scope" {
	foreign_state
	before=$(state_digest)
	hi() {
		recdelta historical-import --from 2024-01-01 --to 2024-01-02 \
		    --window-field day "$@"
	}
	run -5 --separate-stderr hi --source ndjson:local.ndjson --target "dir:$PWD/t"
	[ ! -e t ]
	run -2 --separate-stderr hi --source ndjson:local.ndjson --target=nosuch:x
	assert_output ""
	assert_stderr "$NOSUCH"
	run -2 --separate-stderr hi --source=nosuch:x --target "dir:$PWD/t"
	assert_stderr "$NOSUCH"
	run -2 --separate-stderr hi --source ndjson:local.ndjson --target "dir:$PWD/t" \
	    --tolerance=score=-1
	assert_stderr 'recdelta-diff: "score=-1": tolerance is not a non-negative number'
	for opt in --from=2024-13-01 --to=x --step=1x; do
		run -2 --separate-stderr hi --source ndjson:local.ndjson --target "dir:$PWD/t" "$opt"
		assert_output ""
		[[ ${stderr%%$'\n'*} == "recdelta-checkpoint: ${opt%%=*}: \"${opt#*=}\""* ]]
	done
	assert_equal "$(state_digest)" "$before"
	[ ! -e t ]
}

@test "diff-only: a bad store word is exit 2, with nothing written" {
	foreign_state
	before=$(state_digest)
	run -2 --separate-stderr recdelta diff-only -l ndjson:local.ndjson --remote=nosuch:x
	assert_output ""
	assert_stderr "$NOSUCH"
	run -2 --separate-stderr recdelta diff-only --local=nosuch:x -r "dir:$PWD/other"
	assert_stderr "$NOSUCH"
	assert_equal "$(state_digest)" "$before"
}

@test "programs: a bad store word is exit 2, before anything is read" {
	foreign_state
	before=$(state_digest)
	run -2 --separate-stderr recdelta-fetch nosuch:x
	assert_output ""
	assert_stderr 'recdelta-fetch: "nosuch:x": unknown store scheme "nosuch"'
	run -2 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r nosuch:x
	assert_output ""
	assert_stderr "$NOSUCH"
	# push reads its input only after its target's word is checked.
	run -2 --separate-stderr recdelta-push nosuch:x <<<'not a stream line'
	assert_output ""
	assert_stderr 'recdelta-push: "nosuch:x": unknown store scheme "nosuch"'
	# checkpoint takes no store word; its usage too comes before the state.
	run -2 --separate-stderr recdelta-checkpoint preflight --scope ''
	assert_output ""
	[[ ${stderr%%$'\n'*} == "recdelta-checkpoint: --scope: empty scope" ]]
	assert_equal "$(state_digest)" "$before"
}

@test "--check-args: diff and push check their words and options, reading and writing nothing" {
	run -0 --separate-stderr recdelta-diff --check-args -l - -r "dir:$PWD/r" \
	    -t Game --tolerance score=1 <<<'not a stream line'
	assert_output ""
	assert_stderr ""
	run -0 --separate-stderr recdelta-push --check-args --batch 5 "dir:$PWD/r" \
	    <<<'not a stream line'
	assert_output ""
	assert_stderr ""
	[ ! -e r ]
	run -0 --separate-stderr recdelta-push --check-args "sqlite:$PWD/r.db?table=t&key=k"
	[ ! -e r.db ]
	run -2 --separate-stderr recdelta-diff --check-args -l - -r -
	assert_stderr "recdelta-diff: --local and --remote cannot both be standard input"
	run -2 --separate-stderr recdelta-push --check-args --force "dir:$PWD/r"
	assert_stderr "recdelta-push: --force: dir:$PWD/r: the dir: store has no forced writes"
}

@test "every flow's usage has the options of its synopsis in recdelta-flows(7)" {
	for f in diff-only smart-sync historical-import undo; do
		usage=$(recdelta "$f" --help | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | LC_ALL=C sort -u)
		synopsis=$(mandoc -Tascii -Owidth=1000 "$TOP/man/man7/recdelta-flows.7" | col -bx |
		    awk '/^SYNOPSIS/ { on = 1; next } /^[A-Z]/ { on = 0 } on' |
		    grep -E "^ *recdelta $f " | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | LC_ALL=C sort -u)
		[ -n "$usage" ] && [ -n "$synopsis" ]
		assert_equal "$usage" "$synopsis"
	done
}
