#!/usr/bin/env bats
# The historical-import flow: a date range backfilled window by window from
# an sqlite: source into a dir: target, with the windows in the checkpoint
# ($PWD/state.db).  The source: 120 games over the 35 days from 2024-01-01
# to 2024-02-04, one window a day.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit
load helpers/faultinject

teardown() {
	ck_stop
}

FROM=2024-01-01
TO=2024-02-04

# mksource DB [EXTRA-DAY]: the 120 games, plus one dated EXTRA-DAY.
mksource() {
	{
		echo "create table games(id text primary key, day text, score integer);"
		echo "begin;"
		for n in $(seq 0 119); do
			printf "insert into games values('g%03d','%s',%d);\n" "$n" \
			    "$(date -u -d "$FROM + $((n * 35 / 120)) days" +%F)" "$n"
		done
		[ -z "${2:-}" ] || echo "insert into games values('today','$2',1);"
		echo "commit;"
	} | sqlite3 "$1"
}

# The uninterrupted reference run, made once: its target, stderr and state.
setup_file() {
	mkdir -p "$BATS_FILE_TMPDIR/ref/tmp"
	cd "$BATS_FILE_TMPDIR/ref" || return 1
	mksource src.db
	s0=$SECONDS
	RECDELTA_STATE=$PWD/state.db TMPDIR=$PWD/tmp \
	    "$TOP/pipelines/historical-import" --source "sqlite:$PWD/src.db?table=games&key=id" \
	    --target "dir:$PWD/target" --from "$FROM" --to "$TO" --window-field day \
	    --log "$PWD/log.ndjson" 2> stderr
	echo $? > status
	echo $((SECONDS - s0)) > seconds
}

suite_setup() {
	mkdir -p tmp
	export TMPDIR=$PWD/tmp
	export RECDELTA_STATE=$PWD/state.db
	cp "$BATS_FILE_TMPDIR/ref/src.db" src.db
	SRC="sqlite:$PWD/src.db?table=games&key=id"
	T="dir:$PWD/target"
	REF="$BATS_FILE_TMPDIR/ref"
}

# import [OPTION]...: the flow script itself (not through recdelta(1), which
# would put its own bin first on PATH, ahead of a test's shims).
import() {
	"$TOP/pipelines/historical-import" --source "$SRC" --target "$T" \
	    --window-field day "$@"
}

# The calendar lines of the report: 35 days, all of them in STATE's letter.
calendar_all() {
	printf '2024-01 %s\n2024-02 %s\n# done  x failed  . pending' \
	    "$(printf "%31s" | tr ' ' "$1")" "$(printf "%4s" | tr ' ' "$1")"
}

@test "an import of 35 windows from sqlite: into dir: copies every row and reports full coverage" {
	assert_equal "$(cat "$REF/status")" 0
	export RECDELTA_STATE=$REF/state.db
	run -0 recdelta-diff --exit-code --local "$SRC" --remote "dir:$REF/target"
	assert_output ""
	assert_equal "$(recdelta-fetch "dir:$REF/target" | wc -l)" 120
	assert_equal "$(sqlite3 src.db 'select count(*) from games')" 120
	run -0 recdelta-checkpoint windows coverage
	assert_line --index 0 "100% complete (35/35 days)"
	run -0 recdelta-checkpoint windows pending
	assert_output ""
	# Progress lines, then the report ending with the calendar.
	grep -qx 'Historical import: 3% complete (1/35 days).*' "$REF/stderr"
	grep -q '^Historical import: 100% complete (35/35 days)' "$REF/stderr"
	grep -qx '100% complete (35/35 days)' "$REF/stderr"
	# Not a terminal: the first line, the last, one at most every 10 s.
	shown=$(grep -c '^Historical import: ' "$REF/stderr")
	[ "$shown" -ge 2 ] && [ "$shown" -le $((3 + $(cat "$REF/seconds") / 10)) ] ||
	    fail "$shown progress lines in $(cat "$REF/seconds") s"
	assert_equal "$(tail -n 3 "$REF/stderr")" "$(calendar_all '#')"
	# 35 windows started and done, each once.
	assert_equal "$(jq -r 'select(.msg == "window done") | .window' "$REF/log.ndjson" | sort -u | wc -l)" 35
	assert_equal "$(grep -c '"msg":"window start"' "$REF/log.ndjson")" 35
	# One run in the history for the import, with the totals.
	run -0 jq -c '[.flow, .status, .ended != null, .counts.ok, .counts.failed]' \
	    <(recdelta-checkpoint history --json)
	assert_output '["historical-import","done",true,120,0]'
	# A second run has nothing left to do, and says so the same way.
	run -0 --separate-stderr env NO_COLOR=1 "$TOP/pipelines/historical-import" \
	    --source "sqlite:$REF/src.db?table=games&key=id" --target "dir:$REF/target" \
	    --window-field day --from "$FROM" --to "$TO"
	assert_output ""
	assert_equal "$(tail -n 3 <<< "$stderr")" "$(calendar_all '#')"
	! grep -q 'Historical import:' <<< "$stderr"
	# Nothing to do is no run.
	assert_equal "$(recdelta-checkpoint history | wc -l)" 1
}

# Kill points are chosen, not timed: run j stops the processes of one stage
# (push, checkpoint or diff, in turn) before their Nth file-system call,
# lets the first j % 4 of them go on and kills the whole flow at the next.
# Push makes at least 16 such calls a window, each checkpoint and diff more
# than N at some point, so every run is killed, on any machine, at a point
# spread over the windows and the stages of one.
@test "kill -9 at 20 chosen points: each restart redoes at most one window, and the target equals an uninterrupted run's" {
	stages=(recdelta-push recdelta-checkpoint recdelta-diff)
	kills=0
	for j in $(seq 1 20); do
		n=$((1 + j * 7 % 16))
		RECDELTA_FAULT_PROG=${stages[j % 3]} paused "$n" "$TOP/pipelines/historical-import" \
		    --source "$SRC" --target "$T" --window-field day --from "$FROM" --to "$TO" \
		    --log "$PWD/log.ndjson" -q > /dev/null 2> "run.$j"
		for r in $(seq 0 $((j % 4))); do
			wait_paused || fail "run $j: ended before pause $r of ${stages[j % 3]}: status $PAUSED_STATUS: $(cat "run.$j")"
			[ "$r" -eq $((j % 4)) ] || resume
		done
		kill_paused
		[ "$PAUSED_STATUS" -eq 137 ] || fail "run $j: status $PAUSED_STATUS, not killed"
		kills=$((kills + 1))
		echo "run $j: killed in ${stages[j % 3]} before call $n, pause $((j % 4 + 1))"
	done
	echo "# $kills kills; $(grep -c '"msg":"window done"' log.ndjson) windows logged done before the last run" >&3
	run -0 --separate-stderr import --from "$FROM" --to "$TO" --log "$PWD/log.ndjson" -q
	assert_equal "$kills" 20
	# The same records as an uninterrupted run, none doubled or missing.
	run -0 recdelta-diff --exit-code --local "dir:$REF/target" --remote "$T"
	assert_output ""
	run -0 recdelta-diff --exit-code --local "$SRC" --remote "$T"
	assert_equal "$(recdelta-fetch "$T" | wc -l)" "$(recdelta-fetch "dir:$REF/target" | wc -l)"
	assert_equal "$(recdelta-fetch "$T" | jq -r .key | sort | uniq -d)" ""
	run -0 recdelta-checkpoint windows coverage
	assert_line --index 0 "100% complete (35/35 days)"
	# The log, cut in segments at each "import start": no segment starts
	# a window an earlier one finished, and at most one window of a
	# segment is started and not finished.
	run -0 jq -rs '
	    reduce (.[] | select(.prog == "recdelta-historical-import")) as $l
	        ({seg: -1, done: {}, bad: [], open: {}};
	         if $l.msg == "import start" then .seg += 1 | .open[.seg | tostring] = {}
	         elif $l.msg == "window start" then
	             (if .done[$l.window] then .bad += ["segment \(.seg) redid \($l.window)"] else . end)
	             | .open[.seg | tostring][$l.window] = true
	         elif $l.msg == "window done" then
	             .done[$l.window] = true | del(.open[.seg | tostring][$l.window])
	         else . end)
	    | .bad + [.open | to_entries[] | select((.value | length) > 1)
	              | "segment \(.key) left \(.value | keys | join(" ")) unfinished"]
	    | .[]' log.ndjson
	assert_output ""
	assert_equal "$(jq -r 'select(.msg == "window done") | .window' log.ndjson | sort | uniq -d)" ""
	# (A kill between the commit and its log line leaves a window done
	# without its "window done" line, so that count may fall short of 35.)
}

@test "a failing window is reported as a gap and a failure, and the next run fills it" {
	# The credential command fails for the 5th window (2024-01-05) while
	# the file "broken" exists.
	cat > auth <<'SH'
#!/bin/sh
echo x >> calls
[ -e broken ] && [ "$(wc -l < calls)" -eq 5 ] && { echo "session refused" >&2; exit 1; }
echo token
SH
	chmod +x auth
	touch broken
	run -6 --separate-stderr import --from "$FROM" --to "$TO" --auth-cmd "$PWD/auth"
	assert_output ""
	grep -qx '97% complete (34/35 days)' <<< "$stderr" || fail "$stderr"
	grep -q '^gap: 2024-01-05' <<< "$stderr" || fail "no gap line: $stderr"
	grep -qx 'failed: 2024-01-05: --auth-cmd failed' <<< "$stderr" || fail "no failed line: $stderr"
	assert_equal "$(tail -n 3 <<< "$stderr")" \
	    "$(printf '2024-01 ####x##########################\n2024-02 ####\n# done  x failed  . pending')"
	run -0 recdelta-checkpoint windows pending
	assert_output --partial 2024-01-05
	assert_equal "$(recdelta-fetch "$T" | wc -l)" \
	    "$(sqlite3 src.db "select count(*) from games where day <> '2024-01-05'")"
	# One run for the import, partial: a window is not done.
	run -0 jq -c '[.flow, .status, .counts.ok]' <(recdelta-checkpoint history --json)
	assert_output "[\"historical-import\",\"partial\",$(sqlite3 src.db \
	    "select count(*) from games where day <> '2024-01-05'")]"
	# The next run, with the session back, does that window only.
	rm broken
	: > calls
	run -0 --separate-stderr env NO_COLOR=1 "$TOP/pipelines/historical-import" --source "$SRC" \
	    --target "$T" --window-field day --from "$FROM" --to "$TO" --auth-cmd "$PWD/auth"
	assert_equal "$(wc -l < calls)" 1
	grep -qx '100% complete (35/35 days)' <<< "$stderr"
	! grep -q '^gap:\|^failed:' <<< "$stderr"
	assert_equal "$(tail -n 3 <<< "$stderr")" "$(calendar_all '#')"
	run -0 recdelta-diff --exit-code --local "$SRC" --remote "$T"
	run -0 recdelta-checkpoint windows coverage
	assert_line --index 0 "100% complete (35/35 days)"
	# The second import is a second run, of that window's records.
	run -0 jq -c '[.status, .counts.ok]' <(recdelta-checkpoint history --json)
	assert_output "$(printf '["partial",%s]\n["done",%s]' \
	    "$(sqlite3 src.db "select count(*) from games where day <> '2024-01-05'")" \
	    "$(sqlite3 src.db "select count(*) from games where day = '2024-01-05'")")"
}

@test "--auth-cmd runs once per window; its output reaches no stage, no log and no message" {
	cat > auth <<'SH'
#!/bin/sh
t="tok-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "$t" >> printed
echo "$t"
SH
	chmod +x auth
	mkdir shim
	# The pushes of the windows; not the check of the arguments, which
	# runs once before the first window.
	cat > shim/recdelta-push <<SH
#!/bin/sh
[ "\$1" = --check-args ] ||
    printf '%s\n' "\${RECDELTA_AUTH_TOKEN-unset}" >> "$PWD/seen"
exec "$TOP/bin/recdelta-push" "\$@"
SH
	chmod +x shim/recdelta-push
	PATH="$PWD/shim:$PATH" run -0 --separate-stderr \
	    import --from 2024-01-01 --to 2024-01-06 --auth-cmd "$PWD/auth" --log "$PWD/log.ndjson"
	assert_equal "$(wc -l < printed)" 6
	assert_equal "$(sort -u printed | wc -l)" 6
	# No program reads a token from the environment: none is exported.
	assert_equal "$(sort -u seen)" unset
	assert_equal "$(wc -l < seen)" 6
	! grep -qF -f printed log.ndjson || fail "a token in the log"
	! grep -qF -f printed <<< "$stderr" || fail "a token on stderr"
	! grep -qF -f printed <<< "$output" || fail "a token on stdout"
	! grep -qF tok- "$RECDELTA_STATE" || fail "a token in the state"
}

@test "changes an earlier run deferred are delivered first, then the import goes on" {
	ck_start || return 1
	chmod 600 "$CK_KEY_FILE"
	export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE \
	    RECDELTA_CLOUDKIT_URL=$CK_URL RECDELTA_CLOUDKIT_CONFIG=$PWD/none.conf \
	    RECDELTA_HTTP_BACKOFF=0.05 RECDELTA_HTTP_RETRIES=1
	ck=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/$CK_DATABASE
	for k in a b c; do
		rec Item "$k" '{"day":"2024-01-01","n":1}'
	done > src.ndjson
	set -- --source ndjson:src.ndjson --target "$ck" -t Item --window-field day \
	    --from 2024-01-01 --to 2024-01-01
	ck_control POST faults '{"path":"records/modify","count":100,"status":503}' > /dev/null
	run -6 --separate-stderr "$TOP/pipelines/historical-import" -q "$@"
	assert_equal "$(recdelta-checkpoint outbox | jq -r .key)" "$(printf 'a\nb\nc')"
	# Still unreachable: the outbox is tried again, nothing new planned.
	run -6 --separate-stderr "$TOP/pipelines/historical-import" -q "$@"
	assert_equal "${stderr_lines[-1]}" "recdelta-historical-import: the outbox still holds changes that could not be delivered; nothing new was planned"
	ck_control DELETE faults > /dev/null
	ck_control DELETE log > /dev/null
	run -0 --separate-stderr env NO_COLOR=1 "$TOP/pipelines/historical-import" "$@"
	assert_equal "${stderr_lines[0]}" "recdelta-historical-import: delivering 3 change(s) an earlier run deferred"
	assert_equal "${stderr_lines[-1]}" "# done  x failed  . pending"
	assert_equal "$(recdelta-checkpoint outbox)" ""
	assert_equal "$(recdelta-fetch -t Item "$ck" | jq -r 'select(.kind == "record") | .key' | sort)" "$(printf 'a\nb\nc')"
	# The delivery was the only write: the window then found nothing to do.
	assert_equal "$(ck_control GET 'log?format=ndjson' | jq -c 'select(.op | endswith("/modify")) | .status')" 200
	run -0 recdelta-checkpoint windows pending
	assert_output ""
}

@test "--since 7d plans the 7 days ending today" {
	today=$(date -u +%F)
	rm src.db
	mksource src.db "$today"
	run -0 --separate-stderr env NO_COLOR=1 "$TOP/pipelines/historical-import" \
	    --source "$SRC" --target "$T" --window-field day --since 7d
	grep -qx '100% complete (7/7 days)' <<< "$stderr" || fail "$stderr"
	run -0 recdelta-checkpoint windows coverage
	assert_line --index 0 "100% complete (7/7 days)"
	run -0 recdelta-fetch "$T"
	assert_equal "${#lines[@]}" 1
	assert_output --partial '"key":"today"'
}

@test "bad usage exits 2" {
	run -2 --separate-stderr import --from "$FROM" --to "$TO" --bogus
	assert_equal "${stderr_lines[0]}" 'recdelta-historical-import: unknown option "--bogus"'
	run -2 --separate-stderr "$TOP/pipelines/historical-import" --source "$SRC" \
	    --target "$T" --from "$FROM" --to "$TO"
	assert_equal "${stderr_lines[0]}" 'recdelta-historical-import: --window-field is required'
	run -2 --separate-stderr import --since 7
	run -2 --separate-stderr import --since 7d --from "$FROM"
	[ ! -e state.db ]
	[ ! -e target ]
}
