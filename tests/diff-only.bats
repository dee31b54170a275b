#!/usr/bin/env bats
# The diff-only flow: one report line per type, nothing written anywhere.

bats_require_minimum_version 1.5.0

load helpers/common

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# The sample of examples/mksample, made once; tests only read it, and
# check that they did.
setup_file() {
	SAMPLE=$BATS_FILE_TMPDIR/sample
	export SAMPLE
	sh "$TOP/examples/mksample" "$SAMPLE" 2>/dev/null
	SAMPLE_DIGEST=$(tree_digest "$SAMPLE")
	export SAMPLE_DIGEST
}

# Each test runs in an empty folder of its own, so "nothing written" can be
# checked by listing it (bats keeps its own files in $BATS_TEST_TMPDIR).
suite_setup() {
	mkdir w && cd w
}

# The flow wrote nothing: the sample is byte-identical, the folder empty.
assert_nothing_written() {
	assert_equal "$(tree_digest "$SAMPLE")" "$SAMPLE_DIGEST"
	assert_equal "$(ls -A)" "${1:-}"
}

GAMES="Games: 2862 unchanged, 5 new, 29 updated, 3 deleted"
STADIUMS="Stadiums: 30 unchanged, 0 new, 2 updated, 0 deleted"
TEAMS="Teams: 31 unchanged, 0 new, 1 updated, 0 deleted"

@test "diff-only on the sample prints the report of examples/README" {
	local_sha=$(sha256 "$SAMPLE/local.ndjson")
	remote_digest=$(tree_digest "$SAMPLE/remote")
	run -0 --separate-stderr recdelta diff-only \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$GAMES" "$STADIUMS" "$TEAMS")"
	# The README promises the same lines.
	for l in "$GAMES" "$STADIUMS" "$TEAMS"; do
		grep -qxF "  $l" "$TOP/examples/README"
	done
	assert_equal "$(sha256 "$SAMPLE/local.ndjson")" "$local_sha"
	assert_equal "$(tree_digest "$SAMPLE/remote")" "$remote_digest"
	assert_nothing_written
}

@test "diff-only --exit-code exits 1 when something differs" {
	run -1 --separate-stderr recdelta diff-only --exit-code \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$GAMES" "$STADIUMS" "$TEAMS")"
	assert_nothing_written
}

@test "diff-only --exit-code exits 0 when nothing differs" {
	recdelta-fetch "dir:$SAMPLE/remote" > remote.ndjson
	run -0 --separate-stderr recdelta diff-only --exit-code \
	    --local ndjson:remote.ndjson --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_output "$(printf '%s\n' \
	    "Games: 2894 unchanged, 0 new, 0 updated, 0 deleted" \
	    "Stadiums: 32 unchanged, 0 new, 0 updated, 0 deleted" \
	    "Teams: 32 unchanged, 0 new, 0 updated, 0 deleted")"
	assert_nothing_written remote.ndjson
}

@test "diff-only takes --local=SRC and --remote=SRC, and runs as the flow itself" {
	run -0 --separate-stderr "$TOP/pipelines/diff-only" \
	    "--remote=dir:$SAMPLE/remote" "--local=ndjson:$SAMPLE/local.ndjson"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$GAMES" "$STADIUMS" "$TEAMS")"
	assert_nothing_written
}

@test "diff-only -i FIELD passes through: ignored capacities are unchanged" {
	for opt in "-i capacity" "--ignore capacity" "--ignore=capacity"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr recdelta diff-only $opt \
		    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
		assert_stderr ""
		assert_equal "$output" "$(printf '%s\n' "$GAMES" \
		    "Stadiums: 32 unchanged, 0 new, 0 updated, 0 deleted" "$TEAMS")"
	done
	assert_nothing_written
}

@test "diff-only --tolerance passes through" {
	# stadium_gb is 0.00005 off: the same by default, not within 0.00001.
	run -0 --separate-stderr recdelta diff-only --tolerance location=0.00001 \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$GAMES" \
	    "Stadiums: 29 unchanged, 0 new, 3 updated, 0 deleted" "$TEAMS")"
	# The Games' scores differ by at least 1; a tolerance of 100 hides them.
	run -0 --separate-stderr recdelta diff-only --tolerance=home_score=100 \
	    --tolerance away_score=100 \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_equal "${lines[0]}" "Games: 2891 unchanged, 5 new, 0 updated, 3 deleted"
	assert_nothing_written
}

@test "diff-only --rules FILE passes through" {
	printf '%s\n' '# what the remote may keep' 'Stadium ignore capacity' \
	    'Team ignore name' > ../rules
	run -0 --separate-stderr recdelta diff-only --rules ../rules \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$GAMES" \
	    "Stadiums: 32 unchanged, 0 new, 0 updated, 0 deleted" \
	    "Teams: 32 unchanged, 0 new, 0 updated, 0 deleted")"
	assert_nothing_written
}

@test "diff-only -t TYPE reports only that type" {
	run -0 --separate-stderr recdelta diff-only -t Team --type=Stadium \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_stderr ""
	assert_equal "$output" "$(printf '%s\n' "$STADIUMS" "$TEAMS")"
}

@test "diff-only: a type named two ways warns on stderr, the report as usual" {
	grep '"type":"Team"' "$SAMPLE/local.ndjson" |
	    jq -c '.fields = {name: .fields.name}' > teams.ndjson
	jq -r '[.key, .fields.name] | @tsv' teams.ndjson > teams.tsv
	sqlite3 t.db "CREATE TABLE teams(id TEXT PRIMARY KEY, name TEXT);" \
	    ".mode tabs" ".import teams.tsv teams"
	run -0 --separate-stderr recdelta diff-only --local ndjson:teams.ndjson \
	    --remote 'sqlite:t.db?table=teams&key=id'
	assert_stderr 'recdelta-diff: warning: the two sides share no type ("Team" vs "teams")'
	assert_output "Teams: 0 unchanged, 32 new, 0 updated, 0 deleted
teams: 0 unchanged, 0 new, 0 updated, 32 deleted"
	run -0 --separate-stderr recdelta diff-only --local ndjson:teams.ndjson \
	    --remote 'sqlite:t.db?table=teams&key=id&type=Team'
	assert_stderr ""
	assert_output "Teams: 32 unchanged, 0 new, 0 updated, 0 deleted"
	# -t selects: a type the table does not hold reads none of it.
	run -0 --separate-stderr recdelta diff-only -t Stadium --local ndjson:teams.ndjson \
	    --remote 'sqlite:t.db?table=teams&key=id&type=Team'
	assert_stderr 'recdelta-diff: warning: sqlite:t.db?table=teams&key=id&type=Team: its records are of type "Team", which no -t names: none read (a table'"'"'s type is named by type=)'
	assert_output ""
	rm t.db teams.ndjson teams.tsv
	assert_nothing_written
}

@test "diff-only: bad local input is bad data, and no report is printed" {
	cp "$SAMPLE/local.ndjson" ../bad.ndjson
	echo '{"kind":"record","type":"Game","fields":{}}' >> ../bad.ndjson
	rec Game last '{}' >> ../bad.ndjson
	run -3 --separate-stderr recdelta diff-only \
	    --local ndjson:../bad.ndjson --remote "dir:$SAMPLE/remote"
	assert_output ""
	assert_stderr 'recdelta-diff: ../bad.ndjson:2961: missing "key"'
	assert_nothing_written
}

@test "diff-only: a damaged remote is a runtime failure, and no report is printed" {
	cp -R "$SAMPLE/remote" ../remote
	echo '{"fields":{},"key":"team_ari","type":"Team"}' > ../remote/Team/team_ari~1.json
	run -4 --separate-stderr recdelta diff-only \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote dir:../remote
	assert_output ""
	assert_stderr "recdelta-diff: ../remote/Team/team_ari~1.json: damaged store: sha256 does not match the index"
	assert_nothing_written
}

@test "diff-only without --remote is a usage error" {
	usage=$(recdelta diff-only --help)
	run -2 --separate-stderr recdelta diff-only --local "ndjson:$SAMPLE/local.ndjson"
	assert_output ""
	assert_stderr "recdelta-diff-only: both --local and --remote are required
$usage"
	run -2 --separate-stderr recdelta diff-only --remote "dir:$SAMPLE/remote"
	assert_output ""
	assert_equal "$(head -n 1 <<<"$stderr")" \
	    "recdelta-diff-only: both --local and --remote are required"
	run -2 --separate-stderr recdelta diff-only --local "ndjson:$SAMPLE/local.ndjson" --remote
	assert_output ""
	assert_stderr "recdelta-diff-only: option --remote needs an argument
$usage"
	assert_nothing_written
}

@test "diff-only with an unknown option is a usage error" {
	usage=$(recdelta diff-only --help)
	for opt in --frob -x --summary -o; do
		run -2 --separate-stderr recdelta diff-only "$opt" \
		    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
		assert_output ""
		assert_stderr "recdelta-diff-only: unknown option \"$opt\"
$usage"
	done
	run -2 --separate-stderr recdelta diff-only extra \
	    --local "ndjson:$SAMPLE/local.ndjson" --remote "dir:$SAMPLE/remote"
	assert_output ""
	assert_equal "$(head -n 1 <<<"$stderr")" 'recdelta-diff-only: unknown option "extra"'
	assert_nothing_written
}

@test "diff-only --help prints the usage on stdout and exits 0" {
	for opt in --help -h; do
		run -0 --separate-stderr recdelta diff-only "$opt"
		assert_stderr ""
		assert_line --index 0 --regexp '^usage: recdelta diff-only '
	done
	# --help wins wherever it is, and nothing is compared.
	run -0 --separate-stderr recdelta diff-only --local ndjson:nope.ndjson --help
	assert_line --index 0 --regexp '^usage: recdelta diff-only '
	assert_nothing_written
}
