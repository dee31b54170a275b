#!/usr/bin/env bats
# recdelta: the dispatcher runs recdelta-NAME or the flow NAME.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# The dispatcher's own usage, as it prints it.
usage_text() {
	recdelta --help
}

@test "recdelta fetch ARGS runs recdelta-fetch ARGS" {
	{
		rec A k1 '{"x":1}'
		echo '{"kind":"cursor","name":"n","value":"v"}'
		rec B k2 '{"x":2}'
	} > 'in put.ndjson'
	run -0 --separate-stderr recdelta fetch -t A 'ndjson:in put.ndjson'
	assert_stderr ""
	assert_equal "$output" "$(recdelta-fetch -t A 'ndjson:in put.ndjson')"
	[ "${#lines[@]}" -eq 2 ]
}

@test "recdelta fetch passes standard input and the exit status through" {
	rec A k '{}' > in.ndjson
	run -0 --separate-stderr recdelta fetch - < in.ndjson
	assert_output "$(cat in.ndjson)"
	run -4 --separate-stderr recdelta fetch ndjson:nope.ndjson
	assert_output ""
	assert_stderr "recdelta-fetch: nope.ndjson: No such file or directory"
	: > empty.ndjson
	run -3 --separate-stderr recdelta fetch ndjson:empty.ndjson
	assert_stderr "recdelta-fetch: empty.ndjson: empty input (--allow-empty accepts it)"
}

@test "recdelta runs the programs beside it, whatever PATH says" {
	rec A k '{}' > in.ndjson
	run -0 --separate-stderr env PATH=/usr/bin:/bin "$TOP/bin/recdelta" fetch ndjson:in.ndjson
	assert_output "$(cat in.ndjson)"
	assert_stderr ""
}

@test "recdelta help and --help print the usage on stdout" {
	for a in help --help -h; do
		run -0 --separate-stderr recdelta "$a"
		assert_stderr ""
		assert_line --index 0 --regexp '^usage: recdelta '
		assert_output --partial "diff-only"
		assert_output --partial "fetch"
	done
	run -0 recdelta help
	assert_equal "$output" "$(recdelta --help)"
}

@test "recdelta help PROGRAM prints that program's help" {
	for p in fetch diff; do
		expected=$(recdelta-$p --help)
		run -0 --separate-stderr recdelta help "$p"
		assert_stderr ""
		assert_equal "$output" "$expected"
	done
}

@test "recdelta help FLOW prints the flow's help" {
	expected=$("$TOP/pipelines/diff-only" --help)
	run -0 --separate-stderr recdelta help diff-only
	assert_stderr ""
	assert_equal "$output" "$expected"
}

@test "recdelta NAME --help is the program's help" {
	run -0 --separate-stderr recdelta fetch --help
	assert_equal "$output" "$(recdelta-fetch --help)"
	run -0 --separate-stderr recdelta diff-only --help
	assert_line --index 0 --regexp '^usage: recdelta diff-only '
}

@test "recdelta with an unknown name is a usage error" {
	run -2 --separate-stderr recdelta bogus arg
	assert_output ""
	assert_equal "$(head -n 1 <<<"$stderr")" \
	    'recdelta: "bogus" is not a recdelta program or flow'
	assert_equal "$(tail -n +2 <<<"$stderr")" "$(usage_text)"
	run -2 --separate-stderr recdelta help bogus
	assert_output ""
	assert_equal "$(head -n 1 <<<"$stderr")" \
	    'recdelta: "bogus" is not a recdelta program or flow'
}

@test "recdelta with no name prints the usage on stderr and exits 2" {
	run -2 --separate-stderr recdelta
	assert_output ""
	assert_stderr "$(usage_text)"
}

@test "recdelta with an unknown option is a usage error" {
	run -2 --separate-stderr recdelta --bogus
	assert_output ""
	assert_equal "$(head -n 1 <<<"$stderr")" \
	    'recdelta: "--bogus" is not a recdelta program or flow'
}

@test "recdelta --version prints the version" {
	version=$(recdelta-fetch --version)
	version=${version#recdelta-fetch }
	[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]
	run -0 --separate-stderr recdelta --version
	assert_output "recdelta $version"
	assert_stderr ""
	run -0 --separate-stderr recdelta -V
	assert_output "recdelta $version"
}

@test "recdelta refuses names that are paths" {
	for name in ../bin/recdelta-fetch /bin/sh fetch/ ./fetch pipelines/diff-only \
	    ../pipelines/diff-only; do
		run -2 --separate-stderr recdelta "$name" --help
		assert_output ""
		assert_equal "$(head -n 1 <<<"$stderr")" \
		    "recdelta: \"$name\" is not a recdelta program or flow"
	done
}

@test "recdelta diff-only runs the flow" {
	{ rec A same '{"x":1}'; rec A changed '{"x":1}'; rec A gone '{}'; } |
	    make_dir_store S
	{ rec A same '{"x":1}'; rec A changed '{"x":2}'; rec A new '{}'; } > local.ndjson
	run -0 --separate-stderr recdelta diff-only --local ndjson:local.ndjson --remote dir:S
	assert_output "As: 1 unchanged, 1 new, 1 updated, 1 deleted"
	assert_stderr ""
	run -1 --separate-stderr recdelta diff-only --local ndjson:local.ndjson --remote dir:S --exit-code
	assert_output "As: 1 unchanged, 1 new, 1 updated, 1 deleted"
}

@test "recdelta finds its flows beside it, whatever PATH says" {
	rec A k '{"x":1}' | make_dir_store S
	rec A k '{"x":1}' > local.ndjson
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH=/usr/bin:/bin \
	    "$TOP/bin/recdelta" diff-only --local ndjson:local.ndjson --remote dir:S
	assert_output "As: 1 unchanged, 0 new, 0 updated, 0 deleted"
	assert_stderr ""
}

@test "recdelta says when a flow is not installed" {
	mkdir -p inst/bin empty
	cp "$TOP/bin/recdelta" inst/bin/
	run -4 --separate-stderr env RECDELTA_PIPELINES="$PWD/empty" inst/bin/recdelta diff-only --help
	assert_output ""
	assert_stderr 'recdelta: flow "diff-only" is not installed'
}

@test "recdelta help lists only the programs and flows that are installed" {
	run -0 --separate-stderr recdelta help
	assert_line 'programs: fetch, diff, merge, push, checkpoint'
	assert_line 'flows:    diff-only, smart-sync, two-way-sync, historical-import, undo'
	mkdir -p inst/bin inst/libexec/recdelta
	cp "$TOP/bin/recdelta" "$TOP/bin/recdelta-diff" inst/bin/
	cp "$TOP/pipelines/diff-only" inst/libexec/recdelta/
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH=/usr/bin:/bin inst/bin/recdelta --help
	assert_line 'programs: diff'
	assert_line 'flows:    diff-only'
	rm inst/bin/recdelta-diff inst/libexec/recdelta/diff-only
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH=/usr/bin:/bin inst/bin/recdelta help
	assert_line 'programs: none installed'
	assert_line 'flows:    none installed'
}
