#!/usr/bin/env bats
# Scopes: one scope per store, one state per scope by default.  Every word
# that names a store spells one scope (recdelta-checkpoint scope); a flow
# run without --state keeps its state in the scope's own database under
# .recdelta/, so that flows on two stores, started from one folder, never
# refuse each other, even at once; a state made before, .recdelta/state.db,
# goes on serving the store it belongs to.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	unset RECDELTA_STATE RECDELTA_LOG RECDELTA_HOOK_BEFORE_PUSH
	export TMPDIR=$BATS_TEST_TMPDIR
}

# scope_of WORD [ARG]...: the scope recdelta-checkpoint scope gives WORD.
scope_of() {
	local w=$1
	shift
	recdelta-checkpoint scope "$@" -- "$w" | sed -n 1p
}

# state_of WORD [ARG]...: the state it gives WORD.
state_of() {
	local w=$1
	shift
	recdelta-checkpoint scope "$@" -- "$w" | sed -n 2p
}

# same_scope WORD...: every WORD gives the scope and the state of the first.
same_scope() {
	local want w
	want=$(recdelta-checkpoint scope -- "$1")
	for w in "$@"; do
		assert_equal "$(recdelta-checkpoint scope -- "$w")" "$want"
	done
}

summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' "$@"
}

# two games of the local data, in l.ndjson.
local_data() {
	{ rec Game g1 '{"n":1}'; rec Game g2 '{"n":2}'; } > l.ndjson
}


# The line of a push whose first write made its target.
created() {
	printf 'recdelta-push: created "%s" (it did not exist)\n' "$1"
}
@test "scope: dir: spelt relative, ./, with a trailing slash, through .. or absolute is one scope and one state, before and after the store exists" {
	mkdir sub real
	ln -s real link
	here=$(pwd -P)
	run -0 --separate-stderr recdelta-checkpoint scope dir:remote
	assert_equal "${lines[0]}" "dir:$here/remote"
	[[ ${lines[1]} =~ ^\.recdelta/[A-Za-z0-9._-]+-[0-9a-f]{16}\.db$ ]] || fail "${lines[1]}"
	assert_equal "${#lines[@]}" 2
	same_scope dir:remote dir:./remote dir:remote/ "dir:$PWD/remote" "dir:$here/remote" \
	    dir:sub/../remote dir:./sub/../remote//
	mkdir remote
	same_scope dir:remote dir:./remote dir:remote/ "dir:$here/remote" dir:sub/../remote
	assert_equal "$(scope_of dir:remote)" "dir:$here/remote"
	# The folders of the path are resolved, symbolic links too.
	same_scope dir:link/r dir:real/r "dir:$here/real/r"
	assert_equal "$(scope_of dir:link/r)" "dir:$here/real/r"
	# A path whose folders do not exist yet, nor ever did.
	assert_equal "$(scope_of dir:a/b/../c)" "dir:$here/a/c"
	assert_equal "$(scope_of dir:.)" "dir:$here"
	# Two stores, two scopes, two states.
	[ "$(state_of dir:remote)" != "$(state_of dir:remote2)" ]
	[ "$(state_of dir:remote)" != "$(state_of dir:sub/remote)" ]
	# Nothing was made.
	[ ! -e .recdelta ]
}

@test "scope: sqlite: is the database's path and the table; ndjson: the file's path; cloudkit: container, environment, database and zone" {
	here=$(pwd -P)
	same_scope 'sqlite:r.db?table=t&key=id' 'sqlite:./r.db?key=k&table=t' \
	    "sqlite:$here/r.db?table=t&key=id&rev=v&type=T" 'sqlite:sub/../r.db?table=t&key=id'
	assert_equal "$(scope_of 'sqlite:r.db?table=t&key=id')" "sqlite:$here/r.db?table=t"
	[ "$(scope_of 'sqlite:r.db?table=t&key=id')" != "$(scope_of 'sqlite:r.db?table=u&key=id')" ]
	assert_equal "$(scope_of 'sqlite:r.db?table=a%26b&key=id')" "sqlite:$here/r.db?table=a%26b"
	same_scope ndjson:l.ndjson ndjson:./l.ndjson "ndjson:$here/l.ndjson"
	assert_equal "$(scope_of ndjson:l.ndjson)" "ndjson:$here/l.ndjson"
	same_scope - ndjson:-
	assert_equal "$(scope_of -)" ndjson:-
	# No credential is needed to name a CloudKit database.
	unset RECDELTA_CLOUDKIT_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE RECDELTA_CLOUDKIT_URL
	export HOME=$BATS_TEST_TMPDIR
	same_scope cloudkit:iCloud.com.example.app/development/public \
	    cloudkit:iCloud.com.example.app/development/public/_defaultZone
	assert_equal "$(scope_of cloudkit:iCloud.com.example.app/development/public)" \
	    cloudkit:iCloud.com.example.app/development/public/_defaultZone
	a=$(scope_of cloudkit:iCloud.com.example.app/development/private/Z)
	assert_equal "$a" cloudkit:iCloud.com.example.app/development/private/Z
	[ "$a" != "$(scope_of cloudkit:iCloud.com.example.app/production/private/Z)" ]
	[ "$a" != "$(scope_of cloudkit:iCloud.com.example.app/development/private/Y)" ]
	# A word that names no store is kept as written.
	assert_equal "$(scope_of 'not a store')" 'not a store'
	assert_equal "$(scope_of cloudkit:bad/word)" cloudkit:bad/word
	[ ! -e .recdelta ]
}

@test "scope: --source joins the source's scope; --scope is kept; --state and RECDELTA_STATE choose the state; -z ends values with NUL" {
	here=$(pwd -P)
	run -0 --separate-stderr recdelta-checkpoint scope --source ndjson:./l.ndjson dir:T
	assert_equal "${lines[0]}" "dir:$here/T <- ndjson:$here/l.ndjson"
	assert_equal "$(scope_of "dir:$here/T" --source "ndjson:$here/l.ndjson")" "${lines[0]}"
	# A scope named, and its own state.
	run -0 --separate-stderr recdelta-checkpoint --scope "it's x" scope dir:T
	assert_equal "${lines[0]}" "it's x"
	[[ ${lines[1]} =~ ^\.recdelta/it_s_x-[0-9a-f]{16}\.db$ ]] || fail "${lines[1]}"
	assert_equal "$(recdelta-checkpoint --scope dir:./T scope dir:other | sed -n 1p)" "dir:$here/T"
	assert_equal "$(state_of dir:T --state s.db)" s.db
	assert_equal "$(RECDELTA_STATE=e.db state_of dir:T)" e.db
	assert_equal "$(RECDELTA_STATE=e.db recdelta-checkpoint --state s.db scope dir:T | sed -n 2p)" s.db
	recdelta-checkpoint scope -z --state $'two\nlines' dir:T > out
	assert_equal "$(tr '\0' '|' < out)" "dir:$here/T|two"$'\n'"lines|"
	run -2 --separate-stderr recdelta-checkpoint scope
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: missing TARGET'
	run -2 --separate-stderr recdelta-checkpoint scope ''
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: empty store'
	run -2 --separate-stderr recdelta-checkpoint scope --json dir:T
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: option "--json" does not go with this subcommand'
	[ ! -e .recdelta ]
}

@test "smart-sync: two stores from one folder without --state: each its own state, both succeed" {
	local_data
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:a
	assert_equal "$stderr" "$(created "dir:a"; summary 2 0 0 0 0)"
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:b
	assert_equal "$stderr" "$(created "dir:b"; summary 2 0 0 0 0)"
	sa=$(state_of dir:a) sb=$(state_of dir:b)
	[ "$sa" != "$sb" ]
	[ -f "$sa" ] && [ -f "$sb" ] && [ ! -e .recdelta/state.db ]
	assert_equal "$(ls .recdelta | grep -c '\.db$')" 2
	assert_equal "$(recdelta-checkpoint --state "$sa" status --json | jq -r .scope)" "dir:$(pwd -P)/a"
	assert_equal "$(recdelta-checkpoint --state "$sb" status --json | jq -r .scope)" "dir:$(pwd -P)/b"
	# The same store spelt otherwise is the same scope: its base, its state.
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r "dir:$PWD/a/" --incremental
	assert_equal "$stderr" "$(summary 0 0 2 0 0)"
	assert_equal "$(recdelta-checkpoint --state "$sa" history | wc -l)" 2
	assert_equal "$(ls .recdelta | grep -c '\.db$')" 2
}

@test "smart-sync: two stores from one folder at once, without --state: both hold their locks together, neither refuses the other" {
	local_data
	mkfifo gate_a gate_b
	# Each waits, between plan and push with its lock held, for the other
	# to be there too: a rendezvous of two fifos.
	RECDELTA_HOOK_BEFORE_PUSH='read x < gate_a && echo a > gate_b' \
	    timeout -k 10 120 recdelta smart-sync -l ndjson:l.ndjson -r dir:a > out_a 2> err_a 3>&- &
	pa=$!
	RECDELTA_HOOK_BEFORE_PUSH='echo b > gate_a && read x < gate_b' \
	    timeout -k 10 120 recdelta smart-sync -l ndjson:l.ndjson -r dir:./b > out_b 2> err_b 3>&- &
	pb=$!
	ra=0 rb=0
	wait "$pa" || ra=$?
	wait "$pb" || rb=$?
	assert_equal "$ra $rb" "0 0"
	assert_equal "$(cat err_a)" "$(created "dir:a"; summary 2 0 0 0 0)"
	assert_equal "$(cat err_b)" "$(created "dir:./b"; summary 2 0 0 0 0)"
	assert_equal "$(recdelta-fetch dir:a | jq -r .key)" "$(printf 'g1\ng2')"
	assert_equal "$(recdelta-fetch dir:b | jq -r .key)" "$(printf 'g1\ng2')"
	for w in dir:a dir:b; do
		assert_equal "$(recdelta-checkpoint --state "$(state_of "$w")" status --json |
		    jq -c '[.last_run.status, .lock]')" '["done",null]'
	done
}

@test "smart-sync: one store spelt two ways is one lock: the second refused, its fix naming the scope's state" {
	local_data
	here=$(pwd -P)
	st=$(state_of dir:remote)
	RECDELTA_HOOK_BEFORE_PUSH='env -u RECDELTA_STATE -u RECDELTA_HOOK_BEFORE_PUSH recdelta smart-sync -l ndjson:l.ndjson -r dir:./remote/ > inner.out 2> inner.err; echo $? > inner.rc' \
	    run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:remote
	assert_equal "$stderr" "$(created "dir:remote"; summary 2 0 0 0 0)"
	assert_equal "$(cat inner.rc)" 5
	assert_equal "$(sed -n 1p inner.err)" "recdelta-checkpoint: refused: another run holds the lock of scope \"dir:$here/remote\""
	assert_equal "$(sed -n 3p inner.err)" "  wait for it, or if it is gone: recdelta-checkpoint --state $st unlock --force"
	assert_equal "$(wc -l < inner.err)" 3
	# The command it gives finds the lock.
	recdelta-checkpoint --state "$st" lock --scope "dir:$here/remote" --pid "$BASHPID"
	run -0 --separate-stderr recdelta-checkpoint --state "$st" unlock --force
	assert_equal "$(recdelta-checkpoint --state "$st" status --json | jq -c .lock)" null
}

@test "smart-sync: a --state named for two stores refuses the second, naming --state and --scope" {
	local_data
	here=$(pwd -P)
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:a --state shared.db
	run -5 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:b --state shared.db
	assert_output ""
	assert_equal "$stderr" "recdelta-checkpoint: refused: the state shared.db belongs to scope \"dir:$here/a\", not \"dir:$here/b\"
  give each scope a state of its own: recdelta-checkpoint --state FILE preflight --scope dir:$here/b"
	[ ! -e b ]
	# Without --state, b has a state of its own.
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:b
	assert_equal "$stderr" "$(created "dir:b"; summary 2 0 0 0 0)"
}

@test "a state made before each scope had its own: .recdelta/state.db goes on serving its store, in its spelling; another store gets its own" {
	local_data
	# As a flow of the last version left it: the target word as written.
	res create Game g1 ok 1 '{"n":1}' > in
	recdelta-checkpoint record --scope dir:remote --flow smart-sync < in > /dev/null
	recdelta-checkpoint --state other.db record --scope dir:./remote < in > /dev/null
	assert_equal "$(recdelta-checkpoint scope dir:./remote)" "$(printf 'dir:remote\n.recdelta/state.db')"
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r "dir:$PWD/remote"
	assert_equal "$stderr" "$(created "dir:$PWD/remote"; summary 2 0 0 0 0)"
	assert_equal "$(recdelta-checkpoint history | wc -l)" 2
	assert_equal "$(recdelta-checkpoint status --json | jq -c '[.scope, .last_run.scope]')" '["dir:remote","dir:remote"]'
	assert_equal "$(ls .recdelta | grep -c '\.db$')" 1
	# A state named with --state, made with another spelling: not refused.
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:remote --state other.db
	assert_equal "$(recdelta-checkpoint --state other.db status --json | jq -r .last_run.scope)" dir:./remote
	# Another store: a state of its own, the old one left as it was.
	before=$(sqlite3 .recdelta/state.db .dump)
	run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:b
	assert_equal "$(ls .recdelta | grep -c '\.db$')" 2
	assert_equal "$(sqlite3 .recdelta/state.db .dump)" "$before"
}

@test "historical-import: two targets from one folder without --state, one while the other holds its lock: each its own state, scope TARGET <- SOURCE" {
	here=$(pwd -P)
	{
		rec Game g1 '{"day":"2024-01-01"}'
		rec Game g2 '{"day":"2024-01-02"}'
	} > src.ndjson
	# The second import runs whole inside the first's --auth-cmd, before
	# its first window, while the first holds its lock.
	run -0 --separate-stderr "$TOP/pipelines/historical-import" -q --source ndjson:src.ndjson \
	    --target dir:a --window-field day --from 2024-01-01 --to 2024-01-02 \
	    --auth-cmd '[ -e b.rc ] || { env -u RECDELTA_STATE "$TOP/pipelines/historical-import" -q \
		--source ndjson:./src.ndjson --target dir:./b --window-field day \
		--from 2024-01-01 --to 2024-01-02 > b.out 2> b.err; echo $? > b.rc; }'
	assert_equal "$stderr" "$(created dir:a)"
	assert_equal "$(cat b.rc b.err)" "0
$(created dir:./b)"
	sa=$(state_of dir:a --source ndjson:src.ndjson)
	sb=$(state_of dir:b --source "ndjson:$here/src.ndjson")
	[ "$sa" != "$sb" ] && [ -f "$sa" ] && [ -f "$sb" ] && [ ! -e .recdelta/state.db ]
	assert_equal "$(recdelta-checkpoint --state "$sa" status --json | jq -r .scope)" \
	    "dir:$here/a <- ndjson:$here/src.ndjson"
	assert_equal "$(recdelta-checkpoint --state "$sb" status --json | jq -r .scope)" \
	    "dir:$here/b <- ndjson:$here/src.ndjson"
	for st in "$sa" "$sb"; do
		assert_equal "$(recdelta-checkpoint --state "$st" windows pending --json)" ""
	done
	assert_equal "$(recdelta-fetch dir:a | jq -r .key)" "$(printf 'g1\ng2')"
	assert_equal "$(recdelta-fetch dir:b | jq -r .key)" "$(printf 'g1\ng2')"
}
