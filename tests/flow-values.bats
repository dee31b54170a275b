#!/usr/bin/env bats
# Option values are data in every flow: each value below goes through each
# option that takes one, and must neither run (no INJECTED file appears)
# nor change on the way (the record type, the field, the path it names is
# the one used; a bad value comes back in the program's own message, the
# same as when that program is given it directly).

bats_require_minimum_version 1.5.0

load helpers/common

VALUES=(
	'$(touch INJECTED)'
	'`touch INJECTED`'
	'x"y'
	"it's"
	'$'
	'a$b'
	$'two\nlines'
	' spaced  out '
	'-x'
	$'x"y $(touch INJECTED) `touch INJECTED` \'q\' a$b $\n-l -'
)

suite_setup() {
	export RECDELTA_STATE=$PWD/state.db
	unset RECDELTA_LOG
}

# No value ran as a command, here or in a folder below.
assert_nothing_ran() {
	assert_equal "$(find "$BATS_TEST_TMPDIR" -name INJECTED)" ""
}

# record TYPE KEY FIELDS-JSON: one record line, any TYPE.
record() {
	jq -cn --arg t "$1" --arg k "$2" --argjson f "$3" \
	    '{kind: "record", type: $t, key: $k, fields: $f}'
}

# fields NAME VALUE [JSON]: an object with NAME set to VALUE, plus JSON.
fields() {
	local o=${3:-}
	jq -cn --arg n "$1" --argjson v "$2" --argjson o "${o:-null}" '($o // {}) + {($n): $v}'
}

# json TEXT: TEXT as one JSON string, to compare values that hold newlines.
json() {
	jq -cn --arg v "$1" '$v'
}

# fill TARGET: push the records on stdin, as creates, into the store TARGET.
fill() {
	jq -c '.kind = "change" | .op = "create"' | recdelta-push -q -- "$1" > /dev/null
}

summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' "$@"
}

# quoted VALUE: VALUE as a message quotes it (\", \\, \x0a for a newline).
quoted() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	printf '%s' "${s//$'\n'/\\x0a}"
}

@test "the issue's cases: smart-sync -t '\$(touch INJECTED)', -i 'a\$b', -t 'x\"y' run nothing" {
	record A k '{"n":1}' > l.ndjson
	run -0 --separate-stderr recdelta smart-sync -n -l ndjson:l.ndjson -r dir:R -t '$(touch INJECTED)'
	assert_output ""
	assert_equal "$stderr" "Dry run: would create 0, update 0, delete 0; 0 unchanged; nothing written"
	run -0 --separate-stderr recdelta smart-sync -n -l ndjson:l.ndjson -r dir:R -i 'a$b'
	assert_equal "$stderr" "recdelta-push: \"dir:R\" does not exist: a push would create it
Dry run: would create 1, update 0, delete 0; 0 unchanged; nothing written"
	run -0 --separate-stderr recdelta smart-sync -n -l ndjson:l.ndjson -r dir:R -t 'x"y'
	assert_equal "$stderr" "Dry run: would create 0, update 0, delete 0; 0 unchanged; nothing written"
	run -2 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:R --tolerance '$(touch INJECTED)'
	assert_equal "$stderr" 'recdelta-diff: "$(touch INJECTED)": tolerance must be FIELD=EPS'
	assert_nothing_ran
	[ ! -e R ]
}

@test "smart-sync -t VALUE syncs the records of the type named VALUE, and only those" {
	for v in "${VALUES[@]}"; do
		rm -rf R state.db*
		{
			record "$v" k1 '{"n":1}'
			record Other k2 '{"n":2}'
			record "$v" k3 '{"n":3}'
		} > l.ndjson
		run -0 --separate-stderr recdelta smart-sync -t "$v" -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "recdelta-push: created \"dir:R\" (it did not exist)
$(summary 2 0 0 0 0)"
		assert_equal "$(recdelta-fetch dir:R | jq -c '[.type, .key]')" \
		    "$(printf '[%s,"k1"]\n[%s,"k3"]' "$(json "$v")" "$(json "$v")")"
		# The same with --type=VALUE: nothing left to do.
		run -0 --separate-stderr recdelta smart-sync "--type=$v" -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "$(summary 0 0 2 0 0)"
	done
	assert_nothing_ran
}

@test "smart-sync -i VALUE: a change in the field named VALUE is no update" {
	for v in "${VALUES[@]}"; do
		rm -rf R state.db*
		record T k "$(fields "$v" 1 '{"n":1}')" > l.ndjson
		recdelta smart-sync -q -l ndjson:l.ndjson -r dir:R
		record T k "$(fields "$v" 2 '{"n":1}')" > l.ndjson
		run -0 --separate-stderr recdelta smart-sync -i "$v" -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "$(summary 0 0 1 0 0)"
		run -0 --separate-stderr recdelta smart-sync -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "$(summary 0 1 0 0 0)"
	done
	assert_nothing_ran
}

@test "smart-sync --tolerance VALUE=EPS applies to the field named VALUE; a bad one gets recdelta-diff's message" {
	for v in "${VALUES[@]}"; do
		rm -rf R state.db*
		record T k "$(fields "$v" 1)" > l.ndjson
		recdelta smart-sync -q -l ndjson:l.ndjson -r dir:R
		record T k "$(fields "$v" 1.25)" > l.ndjson
		run -0 --separate-stderr recdelta smart-sync --tolerance "$v=0.5" -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "$(summary 0 0 1 0 0)"
		run -0 --separate-stderr recdelta smart-sync --tolerance "$v=0.1" -l ndjson:l.ndjson -r dir:R
		assert_equal "$stderr" "$(summary 0 1 0 0 0)"
		run -2 --separate-stderr recdelta-diff --tolerance "$v" -l ndjson:l.ndjson -r dir:R
		direct=$stderr
		[[ $direct == *"$v"* ]] || fail "the message does not quote the value: $direct"
		run -2 --separate-stderr recdelta smart-sync --tolerance "$v" -l ndjson:l.ndjson -r dir:R
		assert_output ""
		assert_equal "$stderr" "$direct"
	done
	assert_nothing_ran
}

@test "smart-sync -b, --retries, --max-delete with a bad VALUE: recdelta-push's own message" {
	record T k '{"n":1}' > l.ndjson
	for v in "${VALUES[@]}"; do
		for opt in -b --retries --max-delete; do
			run -2 --separate-stderr recdelta-push "$opt" "$v" -- dir:R < /dev/null
			direct=$stderr
			[[ $direct == *"$v"* ]] || fail "the message does not quote the value: $direct"
			run -2 --separate-stderr recdelta smart-sync "$opt" "$v" -l ndjson:l.ndjson -r dir:R
			assert_output ""
			assert_equal "$stderr" "$direct"
		done
	done
	[ ! -e R ]
	assert_nothing_ran
}

@test "smart-sync --local, --remote, --scope, --state, --log and --rules under a folder named VALUE" {
	for v in "${VALUES[@]}"; do
		mkdir -- "$v"
		record T k '{"n":1,"m":1}' > "$v/l.ndjson"
		echo 'T ignore m' > "$v/rules"
		run -0 --separate-stderr recdelta smart-sync -l "ndjson:$v/l.ndjson" -r "dir:$v/R" \
		    --scope "$v" --state "$v/state.db" --log "$v/log" --rules "$v/rules"
		assert_equal "$stderr" "recdelta-push: created \"$(quoted "dir:$v/R")\" (it did not exist)
$(summary 1 0 0 0 0)"
		assert_equal "$(recdelta-fetch "dir:$v/R" | jq -c '[.type, .key]')" '["T","k"]'
		assert_equal "$(recdelta-checkpoint --state "$v/state.db" status --json | jq -c .scope)" \
		    "$(json "$v")"
		assert_equal "$(stat -c %a -- "$v/log")" 600
		assert_equal "$(jq -r 'select(.prog == "recdelta-smart-sync") | .msg' < "$v/log")" \
		    "$(printf 'smart-sync start\nfull: the change feed stands at 0\nsmart-sync done')"
		# The rules of the file: m is ignored.
		record T k '{"n":1,"m":2}' > "$v/l.ndjson"
		run -0 --separate-stderr recdelta smart-sync -l "ndjson:$v/l.ndjson" -r "dir:$v/R" \
		    --scope "$v" --state "$v/state.db" --rules "$v/rules"
		assert_equal "$stderr" "$(summary 0 0 1 0 0)"
	done
	[ ! -e state.db ]
	assert_nothing_ran
}

@test "diff-only: -l, -r, --rules under a folder named VALUE, -t, -i and --tolerance naming VALUE" {
	for v in "${VALUES[@]}"; do
		mkdir -- "$v"
		{ record "$v" k "$(fields "$v" 1 '{"n":1}')"; record Other k '{"n":1}'; } | fill "dir:$v/R"
		{ record "$v" k "$(fields "$v" 2 '{"n":1}')"; record Other k '{"n":2}'; } > "$v/l.ndjson"
		echo 'Other ignore n' > "$v/rules"
		set -- -l "ndjson:$v/l.ndjson" -r "dir:$v/R"
		run -0 --separate-stderr recdelta diff-only "$@" -t "$v" --rules "$v/rules"
		assert_equal "$stderr" ""
		[[ $output == *": 0 unchanged, 0 new, 1 updated, 0 deleted" ]] || fail "$output"
		[[ $output != *Other* ]] || fail "$output"
		assert_equal "$output" "$(recdelta-diff --summary "$@" -t "$v")"
		run -0 --separate-stderr recdelta diff-only "$@" "--type=$v" -i "$v"
		[[ $output == *": 1 unchanged, 0 new, 0 updated, 0 deleted" ]] || fail "$output"
		run -0 --separate-stderr recdelta diff-only "$@" "--type=$v" --tolerance "$v=1"
		[[ $output == *": 1 unchanged, 0 new, 0 updated, 0 deleted" ]] || fail "$output"
		# Both types; the rules file makes Other unchanged.
		run -0 --separate-stderr recdelta diff-only "$@" --rules "$v/rules" -i "$v"
		assert_equal "$(grep -c ': 1 unchanged, 0 new, 0 updated, 0 deleted$' <<<"$output")" 2
		run -2 --separate-stderr recdelta-diff --summary "$@" --tolerance "$v"
		direct=$stderr
		run -2 --separate-stderr recdelta diff-only "$@" --tolerance "$v"
		assert_output ""
		assert_equal "$stderr" "$direct"
	done
	assert_nothing_ran
}

@test "historical-import: --source, --target, --scope, --state, --log under a folder named VALUE; -t and --window-field naming VALUE" {
	for v in "${VALUES[@]}"; do
		mkdir -- "$v"
		{
			record "$v" k1 "$(fields "$v" '"2024-01-01"' '{"n":1}')"
			record "$v" k2 "$(fields "$v" '"2024-01-02"' '{"n":2}')"
			record "$v" k3 "$(fields "$v" '"2025-01-01"' '{"n":3}')"
			record Other k4 "$(fields "$v" '"2024-01-01"' '{"n":4}')"
		} > "$v/src.ndjson"
		run -0 --separate-stderr "$TOP/pipelines/historical-import" -q \
		    --source "ndjson:$v/src.ndjson" --target "dir:$v/T" -t "$v" \
		    --window-field "$v" --from 2024-01-01 --to 2024-01-02 \
		    --scope "$v" --state "$v/state.db" --log "$v/log"
		assert_equal "$stderr" "recdelta-push: created \"$(quoted "dir:$v/T")\" (it did not exist)"
		assert_equal "$(recdelta-fetch "dir:$v/T" | jq -c '[.type, .key]')" \
		    "$(printf '[%s,"k1"]\n[%s,"k2"]' "$(json "$v")" "$(json "$v")")"
		assert_equal "$(recdelta-checkpoint --state "$v/state.db" status --json | jq -c .scope)" \
		    "$(json "$v")"
		assert_equal "$(jq -r 'select(.msg == "window done") | .window' < "$v/log")" \
		    "$(printf '2024-01-01\n2024-01-02')"
	done
	[ ! -e state.db ]
	assert_nothing_ran
}

@test "historical-import: -i and --tolerance naming VALUE; a bad --tolerance, --from, --to, --step or --since VALUE in the program's own message" {
	usage=$("$TOP/pipelines/historical-import" --help)
	for v in "${VALUES[@]}"; do
		rm -rf T T2 ./*.db*
		# The target has 0 in the field named VALUE, the source 1: ignored,
		# or within the tolerance, the target keeps 0; compared, it gets 1.
		record A k "$(fields "$v" 0 '{"day":"2024-01-01"}')" | fill dir:T
		record A k "$(fields "$v" 0 '{"day":"2024-01-01"}')" | fill dir:T2
		record A k "$(fields "$v" 1 '{"day":"2024-01-01"}')" > src.ndjson
		set -- -q --source ndjson:src.ndjson --window-field day --from 2024-01-01 --to 2024-01-01
		run -0 --separate-stderr "$TOP/pipelines/historical-import" "$@" --target dir:T \
		    -i "$v" --state i.db
		assert_equal "$(recdelta-fetch dir:T | jq -c --arg v "$v" '.fields[$v]')" 0
		run -0 --separate-stderr "$TOP/pipelines/historical-import" "$@" --target dir:T2 \
		    --tolerance "$v=4" --state t.db
		assert_equal "$(recdelta-fetch dir:T2 | jq -c --arg v "$v" '.fields[$v]')" 0
		run -0 --separate-stderr "$TOP/pipelines/historical-import" "$@" --target dir:T \
		    --state all.db
		assert_equal "$(recdelta-fetch dir:T | jq -c --arg v "$v" '.fields[$v]')" 1
		run -2 --separate-stderr recdelta-diff --tolerance "$v" -l ndjson:src.ndjson -r dir:T
		direct=$stderr
		# A usage error before any state (flow-options.bats): 2, not a
		# window failed for each window (6).
		run -2 --separate-stderr "$TOP/pipelines/historical-import" "$@" --target dir:T \
		    --tolerance "$v" --scope "bad $v" --state bad.db
		assert_equal "$stderr" "$direct"
		[ ! -e bad.db ]
		for opt in --from --to --step; do
			run -2 --separate-stderr recdelta-checkpoint --state nowhere.db windows plan \
			    --from 2024-01-01 --to 2024-01-01 "$opt" "$v"
			direct=$stderr
			run -2 --separate-stderr "$TOP/pipelines/historical-import" "$@" --target dir:T \
			    "$opt" "$v" --scope "$opt $v" --state "plan.db"
			assert_equal "$stderr" "$direct"
			rm -f plan.db*
		done
		[ ! -e nowhere.db ]
		run -2 --separate-stderr "$TOP/pipelines/historical-import" --source ndjson:src.ndjson \
		    --target dir:T --window-field day --since "$v"
		assert_equal "$stderr" "recdelta-historical-import: --since: \"$v\": expected Nd, e.g. 7d
$usage"
	done
	assert_nothing_ran
}

@test "historical-import --auth-cmd is run by sh as given, once per window" {
	record A k '{"day":"2024-01-01"}' > src.ndjson
	run -0 --separate-stderr "$TOP/pipelines/historical-import" -q --source ndjson:src.ndjson \
	    --target dir:T --window-field day --from 2024-01-01 --to 2024-01-03 \
	    --auth-cmd "printf '%s\n' 'x\"y \$(touch INJECTED) \`touch INJECTED\` a\$b' >> calls"
	assert_equal "$(cat calls)" "$(printf '%s\n' 'x"y $(touch INJECTED) `touch INJECTED` a$b' \
	    'x"y $(touch INJECTED) `touch INJECTED` a$b' 'x"y $(touch INJECTED) `touch INJECTED` a$b')"
	assert_nothing_ran
}

@test "the flows' setup file is no flow, and an installed flow finds it beside itself" {
	run -2 --separate-stderr recdelta recdelta-sh-setup
	assert_equal "${stderr_lines[0]}" 'recdelta: "recdelta-sh-setup" is not a recdelta program or flow'
	[ ! -x "$TOP/pipelines/recdelta-sh-setup" ]
	# make install copies, and builds nothing: the programs are up to date.
	# (Not the jobserver of a make that runs the suite.)
	unset MAKEFLAGS MFLAGS MAKELEVEL
	make -q -C "$TOP" all || fail "the programs are not up to date"
	make -s -C "$TOP" install DESTDIR="$PWD/inst" PREFIX=/usr > /dev/null
	[ -e inst/usr/libexec/recdelta/recdelta-sh-setup ]
	record A k '{"n":1}' > l.ndjson
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH=/usr/bin:/bin \
	    inst/usr/bin/recdelta smart-sync -l ndjson:l.ndjson -r dir:R -t '$(touch INJECTED)'
	assert_equal "$stderr" "$(summary 0 0 0 0 0)"
	# Nothing was written, so no store was made: an empty one to compare
	# with, since a remote that does not exist is an error.
	mkdir R
	run -0 --separate-stderr env -u RECDELTA_PIPELINES PATH=/usr/bin:/bin \
	    inst/usr/bin/recdelta diff-only -l ndjson:l.ndjson -r dir:R
	assert_output "As: 0 unchanged, 1 new, 0 updated, 0 deleted"
	assert_nothing_ran
}
