#!/usr/bin/env bats
# completion/recdelta.bash: what a TAB offers, read from the programs'
# own --help, in the installed layout (make install).

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	# Readline's own word breaks, ":" among them.
	COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'
	source "$TOP/completion/recdelta.bash"
}

# comp LINE: the completions of LINE, the cursor at its end, one a line.
comp() {
	COMP_LINE=$1
	COMP_POINT=${#1}
	COMPREPLY=()
	_recdelta 2>/dev/null
	printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
}

@test "names: the installed programs and flows, and help" {
	run -0 comp 'recdelta '
	assert_output "$(printf '%s\n' checkpoint diff diff-only fetch help historical-import merge push smart-sync two-way-sync | LC_ALL=C sort)"
	run -0 comp 'recdelta sm'
	assert_output smart-sync
}

@test "options of a program and of a flow, from their --help" {
	run -0 comp 'recdelta-push --de'
	assert_output --delete-orphans
	run -0 comp 'recdelta smart-sync --lo'
	assert_output $'--local\n--log'
	run -0 comp 'recdelta-diff --sum'
	assert_output --summary
}

@test "a store word: the schemes the program takes, then paths after a file scheme" {
	mkdir -p data/sub
	: > data/games.ndjson
	run -0 comp 'recdelta-fetch '
	assert_output $'-\ncloudkit:\ndir:\njson:\nndjson:\nsqlite:\nwebdav:'
	# diff reads every store fetch reads, and its help says so.
	run -0 comp 'recdelta-diff -r '
	assert_output $'-\ncloudkit:\ndir:\njson:\nndjson:\nsqlite:\nwebdav:'
	run -0 comp 'recdelta smart-sync --remote d'
	assert_output dir:
	# After "dir:" bash's word is what follows the colon.
	run -0 comp 'recdelta smart-sync --local ndjson:data/g'
	assert_output data/games.ndjson
	run -0 comp 'recdelta-push dir:data/s'
	assert_output data/sub/
}

@test "a file argument gets paths; checkpoint gets its subcommands" {
	: > rules.txt
	run -0 comp 'recdelta-diff --rules ru'
	assert_output rules.txt
	run -0 comp 'recdelta-checkpoint w'
	assert_output windows
	run -0 comp 'recdelta checkpoint s'
	assert_output $'scope\nshow\nstatus'
	run -0 comp 'recdelta-diff -t '
	assert_output ''
}

@test "make install ships the completion for recdelta and each program" {
	d=$BATS_TEST_TMPDIR/dest
	run -0 make -s -C "$TOP" install DESTDIR="$d" PREFIX=/usr
	c=$d/usr/share/bash-completion/completions
	[ -f "$c/recdelta" ]
	for p in recdelta-fetch recdelta-diff recdelta-merge recdelta-push recdelta-checkpoint; do
		[ "$(readlink "$c/$p")" = recdelta ] || fail "no completion link for $p"
	done
	run -0 bash -c 'source "$1" && complete -p recdelta-diff' _ "$c/recdelta"
	assert_output 'complete -F _recdelta recdelta-diff'
}
