#!/usr/bin/env bats
# recdelta-checkpoint: recording results, the base, cursors, windows, status,
# the preflight and each of its refusals, the lock, history and change logs,
# the outbox, the schema, bad input, and what kill -9 leaves behind.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/faultinject

ST=.recdelta/state.db

# q SQL: query the default state with sqlite3.
q() {
	sqlite3 "$ST" "$1"
}

# record SCOPE [ARGS]: record the file "in" quietly, for set-up.
record() {
	local scope=$1
	shift
	recdelta-checkpoint record --scope "$scope" "$@" < in > /dev/null
}

# live_pid: start a process to own a lock, its pid in $PID; it is stopped
# when the test ends.
live_pid() {
	sleep 1000 > /dev/null 2>&1 3>&- &
	PID=$!
	LIVE+=" $PID"
}

teardown() {
	local p
	for p in ${LIVE:-}; do
		kill "$p" 2>/dev/null || true
	done
}

@test "record writes every line on unchanged and records ok results in the base" {
	{
		res create Team t1 ok 1 '{"name":"Zürich ✓","n":12345678901234567890}'
		rec Team x '{}'
		printf '%s\n' '{"kind":"summary","stage":"push","counts":{}}'
		res update Stadium s1 ok 8 '{"capacity":63400,"loc":{"$loc":{"lat":33.5,"lng":-112.2}}}' ',"changed":["capacity"]'
		printf '%s\r\n' '{"kind":"other","x":[1,2]}'
	} > in
	recdelta-checkpoint record --scope S < in > out
	cmp in out
	run -0 --separate-stderr recdelta-checkpoint base
	assert_equal "$stderr" ""
	assert_output - <<'EOF'
{"kind":"record","type":"Stadium","key":"s1","rev":"8","fields":{"capacity":63400,"loc":{"$loc":{"lat":33.5,"lng":-112.2}}}}
{"kind":"record","type":"Team","key":"t1","rev":"1","fields":{"name":"Zürich ✓","n":12345678901234567890}}
EOF
	run -0 q "SELECT length(hash), hash GLOB '*[^0-9a-f]*' FROM base"
	assert_output $'64|0\n64|0'
	run -0 q "SELECT value FROM meta WHERE key = 'scope'"
	assert_output S
}

@test "the content hash is the canonical one: member order and number spelling do not matter" {
	{
		res create A k ok 1 '{"a":1,"b":"x","c":{"$ref":"r"}}'
		res create B k ok 1 '{"c":{"$ref":"r"},"b":"x","a":1.0}'
		res create C k ok 1 '{"a":2,"b":"x","c":{"$ref":"r"}}'
	} > in
	record S
	run -0 q "SELECT count(DISTINCT hash) FROM base WHERE type IN ('A', 'B')"
	assert_output 1
	run -0 q "SELECT count(DISTINCT hash) FROM base"
	assert_output 2
}

@test "an ok update without fields keeps the fields and takes the rev; an ok delete removes" {
	{ res create T a ok 1 '{"n":1}'; res create T b ok 1 '{"n":2}'; } > in
	record S
	hash=$(q "SELECT hash FROM base WHERE key = 'a'")
	{ res update T a ok 2; res delete T b ok; res update T c ok 5; } > in
	record S
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"a","rev":"2","fields":{"n":1}}'
	run -0 q "SELECT hash FROM base WHERE key = 'a'"
	assert_output "$hash"
}

@test "planned and skipped results leave the base alone and are counted" {
	{ res create T a planned; res update T b skipped 1 '{"n":1}'; res create T c ok 1 '{}'; } > in
	record S --flow smart-sync
	run -0 q "SELECT key FROM base"
	assert_output c
	run -0 --separate-stderr recdelta-checkpoint history --json
	assert_output --regexp '^\{"kind":"run","id":1,"scope":"S","flow":"smart-sync","started":"[0-9T:Z-]+","ended":"[0-9T:Z-]+","status":"done","counts":\{"ok":1,"skipped":1,"conflict":0,"deferred":0,"failed":0,"planned":1\},"undoable":true\}$'
	run -0 recdelta-checkpoint show 1
	assert_output 'ok create T c rev 1 (new record)'
}

@test "a skipped same confirms the base; a skipped delete of a record already gone removes it" {
	{ res create T a ok 1 '{"n":1}'; res create T b ok 1 '{"n":2}'; } > in
	record S
	{
		res same T a skipped 7 '{"n":5}'
		res same T c skipped 2 '{"n":3}'
		res delete T b skipped 1 '' ',"error":{"code":"gone","message":"already deleted"}'
	} > in
	record S
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"7","fields":{"n":5}}
{"kind":"record","type":"T","key":"c","rev":"2","fields":{"n":3}}
EOF
}

@test "deferred results go to the outbox as change lines; a change deferred again replaces itself" {
	{
		res update T a deferred 3 '{"n":1}' ',"changed":["n"]'
		res delete T b deferred 4
		res update T a deferred 3 '{"n":2}' ',"changed":["n"]'
	} > in
	record S
	run -0 --separate-stderr recdelta-checkpoint outbox
	assert_output - <<'EOF'
{"kind":"change","op":"delete","type":"T","key":"b","rev":"4"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"3","fields":{"n":2},"changed":["n"]}
EOF
	run -0 q "SELECT count(*) FROM base"
	assert_output 0
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\t-\t3 deferred\tpartial$'
}

@test "replaying the outbox is idempotent: each result settles its change, twice changes nothing" {
	{ res update T a deferred 3 '{"n":2}'; res delete T b deferred 4; res create T c deferred '' '{"n":3}'; } > in
	record S
	{ res update T a ok 4 '{"n":2}'; res delete T b conflict 4; res create T c failed; } > in
	record S
	run -0 recdelta-checkpoint outbox
	assert_output ''
	q 'SELECT * FROM base; SELECT * FROM outbox' > before
	record S
	q 'SELECT * FROM base; SELECT * FROM outbox' > after
	cmp before after
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"a","rev":"4","fields":{"n":2}}'
}

@test "conflict and failed results go to the run's change log with their errors" {
	{
		res update T a conflict 3 '' ',"error":{"code":"CONFLICT","message":"changed by someone"}'
		res create T b failed '' '' ',"error":{"code":"HTTP_500","message":"server error"}'
		res create T c ok 1 '{"x":1}'
	} > in
	record S
	run -0 --separate-stderr recdelta-checkpoint show 1
	assert_output - <<'EOF'
conflict update T a rev 3 error CONFLICT: changed by someone
failed create T b error HTTP_500: server error
ok create T c rev 1 (new record)
EOF
	run -0 recdelta-checkpoint show --json 1
	assert_line --index 0 '{"kind":"logentry","run":1,"op":"update","type":"T","key":"a","status":"conflict","rev":"3","error":{"code":"CONFLICT","message":"changed by someone"}}'
	run -0 q "SELECT count(*) FROM base"
	assert_output 1
	run -2 --separate-stderr recdelta-checkpoint show 7
	assert_equal "$stderr" 'recdelta-checkpoint: show: no run 7; see: recdelta-checkpoint history'
}

@test "show names the fields an update changed, given or found against the base" {
	{ res create T a ok 1 '{"x":1,"y":2,"z":3}'; res create T b ok 1 '{"x":1}'; } > in
	record S
	{ res update T a ok 2 '{"x":1,"y":5,"z":4}'; res update T b ok 2 '{"x":2}' ',"changed":["x"]'; } > in
	record S
	run -0 recdelta-checkpoint show 2
	assert_output - <<'EOF'
ok update T a rev 2 changed: y, z
ok update T b rev 2 changed: x
EOF
}

@test "cursor lines are recorded under SOURCE/NAME, or NAME without a source" {
	{
		printf '%s\n' '{"kind":"cursor","source":"couchdb:http://h/db","name":"since","value":"12-abc"}'
		printf '%s\n' '{"kind":"cursor","name":"seq","value":42}'
		printf '%s\n' '{"kind":"cursor","name":"seq","value":{"a":[1]}}'
	} > in
	recdelta-checkpoint record --scope S < in > out
	cmp in out
	run -0 --separate-stderr recdelta-checkpoint cursor get couchdb:http://h/db/since
	assert_output 12-abc
	run -0 recdelta-checkpoint cursor get seq
	assert_output '{"a":[1]}'
}

@test "cursor set and get; an unset cursor is exit 1 with no output" {
	run -1 --separate-stderr recdelta-checkpoint cursor get marker
	assert_output ''
	assert_equal "$stderr" ''
	[ ! -e .recdelta ]
	run -0 recdelta-checkpoint cursor set marker 'a b/c'
	run -0 recdelta-checkpoint cursor get marker
	assert_output 'a b/c'
	run -0 recdelta-checkpoint cursor set marker d
	run -0 recdelta-checkpoint cursor get marker
	assert_output d
	run -2 --separate-stderr recdelta-checkpoint cursor put x
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: cursor: unknown verb "put" (expected get or set)'
}

@test "base is sorted by type then key, and --type keeps only those types" {
	{
		res create T b ok 1 '{}'; res create S z ok 1 '{}'; res create T a ok '' '{}'
		res create U a ok 1 '{}'
	} > in
	record S
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"S","key":"z","rev":"1","fields":{}}
{"kind":"record","type":"T","key":"a","fields":{}}
{"kind":"record","type":"T","key":"b","rev":"1","fields":{}}
{"kind":"record","type":"U","key":"a","rev":"1","fields":{}}
EOF
	run -0 recdelta-checkpoint base -t U --type S
	assert_output - <<'EOF'
{"kind":"record","type":"S","key":"z","rev":"1","fields":{}}
{"kind":"record","type":"U","key":"a","rev":"1","fields":{}}
EOF
}

@test "batches: every batch is one transaction, --run continues a run" {
	for i in 1 2 3 4 5; do res create T "k$i" ok 1 '{}'; done > in
	record S --batch 2 --flow import
	{ res create T k6 ok 1 '{}'; res update T k6 conflict 1; } > in
	record S --run 1
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\timport\t6 ok, 1 conflict\tpartial\tundoable$'
	run -0 q "SELECT count(*), max(seq) FROM changes WHERE run = 1"
	assert_output '7|7'
	record S --run 9
	run -0 q "SELECT group_concat(id) FROM runs"
	assert_output 1,9
	# Nothing to record is no run, and no change at all.
	before=$(sha256 "$ST")
	rec T x '{}' > in
	record S
	: > in
	record S
	assert_equal "$(sha256 "$ST")" "$before"
}

@test "run start, record --run and run end: one run for several recordings, with the totals" {
	live_pid
	run -0 --separate-stderr recdelta-checkpoint run start --scope S --flow import --pid "$PID"
	assert_output 1
	assert_equal "$stderr" ""
	# Each recording adds to it and leaves it running while its owner lives.
	for i in 1 2; do res create T "k$i" ok 1 '{}'; done > in
	record S --run 1
	{ res create T k3 ok 1 '{}'; res update T k3 failed; } > in
	record S --run 1
	run -0 q "SELECT runs.status, ended IS NULL, pid, ok, failed, max(seq) FROM runs, changes WHERE id = 1 AND run = 1"
	assert_output "running|1|$PID|3|1|4"
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t-\timport\t3 ok, 1 failed\trunning$'
	# Its end: partial for the failure; done when all went well.
	run -0 --separate-stderr recdelta-checkpoint run end 1
	assert_equal "$stderr" ""
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\timport\t3 ok, 1 failed\tpartial\tundoable$'
	run -0 recdelta-checkpoint run start --scope S --flow import --pid "$PID"
	assert_output 2
	res create T k4 ok 1 '{}' > in
	record S --run 2
	recdelta-checkpoint run end 2
	run -0 q "SELECT status FROM runs WHERE id = 2"
	assert_output done
	recdelta-checkpoint run start --scope S --flow import --pid "$PID" > /dev/null
	recdelta-checkpoint run end 3 --partial
	run -0 q "SELECT status, ok FROM runs WHERE id = 3"
	assert_output 'partial|0'
	# An owner gone: the run is interrupted, and a recording closes it as
	# before.
	recdelta-checkpoint run start --scope S --flow import --pid 999999 > /dev/null
	run -0 recdelta-checkpoint history
	assert_line --index 3 --regexp $'\tinterrupted$'
	record S --run 4
	run -0 q "SELECT status, ended IS NOT NULL FROM runs WHERE id = 4"
	assert_output 'done|1'
	# Refusals and usage.
	run -5 --separate-stderr recdelta-checkpoint run start --scope other --flow import
	assert_output ""
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: refused: the state $ST belongs to scope \"S\", not \"other\""
	run -2 --separate-stderr recdelta-checkpoint run end 42
	assert_equal "$stderr" "recdelta-checkpoint: no run 42; see: recdelta-checkpoint history"
	run -2 --separate-stderr recdelta-checkpoint run start --scope S
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: run start: --flow is required"
	run -2 --separate-stderr recdelta-checkpoint run end
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: missing RUN"
	run -2 --separate-stderr recdelta-checkpoint run stop 1
	assert_equal "${stderr_lines[0]}" "recdelta-checkpoint: run: unknown verb \"stop\" (expected start or end)"
}

@test "windows: plan, pending, done, fail, coverage; planning again keeps what is done" {
	run -0 --separate-stderr recdelta-checkpoint windows plan --from 2025-01-01 --to 2025-01-10
	assert_output ''
	run -0 recdelta-checkpoint windows pending
	assert_equal "${#lines[@]}" 10
	assert_line --index 0 2025-01-01
	assert_line --index 9 2025-01-10
	for w in 2025-01-01 2025-01-02 2025-01-06; do
		recdelta-checkpoint windows done "$w"
	done
	recdelta-checkpoint windows fail 2025-01-07 --reason 'server down'
	run -0 recdelta-checkpoint windows coverage
	assert_output - <<'EOF'
30% complete (3/10 days)
gap: 2025-01-03..2025-01-05 (3 days)
gap: 2025-01-07..2025-01-10 (4 days)
EOF
	run -0 recdelta-checkpoint windows pending --json
	assert_line --index 3 --regexp '^\{"kind":"window","start":"2025-01-07","end":"2025-01-08","status":"failed","reason":"server down","updated":"[0-9T:Z-]+"\}$'
	recdelta-checkpoint windows plan --from 2025-01-01 --to 2025-01-12
	run -0 recdelta-checkpoint windows coverage --json
	assert_output '{"kind":"coverage","coverage":{"percent":25,"done":3,"total":12,"unit":"days","windows":12,"windows_done":3,"gaps":[{"start":"2025-01-03","end":"2025-01-06","windows":3},{"start":"2025-01-07","end":"2025-01-13","windows":6}]}}'
	run -2 --separate-stderr recdelta-checkpoint windows done 2024-12-31
	assert_equal "$stderr" 'recdelta-checkpoint: no planned window starts at "2024-12-31"; see: recdelta-checkpoint windows pending'
}

@test "windows reset: a range or all of them back to pending, done and failed alike; nothing in range is a usage error" {
	run -2 --separate-stderr recdelta-checkpoint windows reset --all
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows reset: no planned window in the range; see: recdelta-checkpoint windows pending'
	[ ! -e "$ST" ] || fail "a reset of nothing created the state"
	recdelta-checkpoint windows plan --from 2025-01-01 --to 2025-01-05
	for d in 01 02 03; do
		recdelta-checkpoint windows done "2025-01-$d"
	done
	recdelta-checkpoint windows fail 2025-01-04 --reason 'server down'
	run -0 --separate-stderr recdelta-checkpoint windows reset --from 2025-01-02 --to 2025-01-02
	assert_output ''
	run -0 recdelta-checkpoint windows pending --json
	assert_equal "$(jq -r '.start + " " + .status + " " + (.reason // "-")' <<< "$output")" \
	    "$(printf '%s\n' '2025-01-02 pending -' '2025-01-04 failed server down' '2025-01-05 pending -')"
	before=$(sha256 "$ST")
	run -2 --separate-stderr recdelta-checkpoint windows reset --from 2025-02-01 --to 2025-02-03
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows reset: no planned window in the range; see: recdelta-checkpoint windows pending'
	run -2 --separate-stderr recdelta-checkpoint windows reset
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows reset: --from and --to, or --all, are required'
	run -2 --separate-stderr recdelta-checkpoint windows reset --all --from 2025-01-01
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows reset: --all goes without --from and --to'
	run -2 --separate-stderr recdelta-checkpoint windows done 2025-01-01 --all
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --all goes with windows reset'
	assert_equal "$(sha256 "$ST")" "$before"
	run -0 recdelta-checkpoint windows reset --all
	run -0 recdelta-checkpoint windows coverage
	assert_line --index 0 '0% complete (0/5 days)'
}

@test "windows report: coverage, gaps, the first ten failed windows and the calendar" {
	run -0 --separate-stderr recdelta-checkpoint windows report
	assert_output 'no windows planned'
	recdelta-checkpoint windows plan --from 2025-01-30 --to 2025-02-14
	for d in 01-30 01-31 02-01; do
		recdelta-checkpoint windows done "2025-$d"
	done
	for d in 02 03 04 05 06 07 08 09 10 11 12; do
		recdelta-checkpoint windows fail "2025-02-$d" --reason "down on the $d"
	done
	NO_COLOR= run -0 --separate-stderr recdelta-checkpoint windows report
	assert_output - <<'EOF'
19% complete (3/16 days)
gap: 2025-02-02..2025-02-14 (13 days)
failed: 2025-02-02: down on the 02
failed: 2025-02-03: down on the 03
failed: 2025-02-04: down on the 04
failed: 2025-02-05: down on the 05
failed: 2025-02-06: down on the 06
failed: 2025-02-07: down on the 07
failed: 2025-02-08: down on the 08
failed: 2025-02-09: down on the 09
failed: 2025-02-10: down on the 10
failed: 2025-02-11: down on the 11
failed: and 1 more
2025-01 ##
2025-02 #xxxxxxxxxxx..
# done  x failed  . pending
EOF
	run -2 --separate-stderr recdelta-checkpoint windows report --json
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --json goes with windows pending or coverage'
}

@test "windows: steps in hours, date-times, a plan that overlaps another is refused" {
	recdelta-checkpoint windows plan --from 2025-03-01T06:00:00Z --to 2025-03-01T18:00:00Z --step 6h
	run -0 recdelta-checkpoint windows pending
	assert_output $'2025-03-01T06:00:00Z\n2025-03-01T12:00:00Z'
	recdelta-checkpoint windows done 2025-03-01T06:00:00Z
	run -0 recdelta-checkpoint windows coverage
	assert_output $'50% complete (6/12 hours)\ngap: 2025-03-01T12:00:00Z..2025-03-01T18:00:00Z (6 hours)'
	before=$(sha256 "$ST")
	run -5 --separate-stderr recdelta-checkpoint windows plan --from 2025-03-01 --to 2025-03-01
	assert_equal "$stderr" 'recdelta-checkpoint: windows plan: the window 2025-03-01..2025-03-02 overlaps the planned window 2025-03-01T12:00:00Z..2025-03-01T18:00:00Z; plan with the step it was planned with'
	assert_equal "$(sha256 "$ST")" "$before"
	run -2 --separate-stderr recdelta-checkpoint windows plan --from 2025-03-01 --to 2025-02-01
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows plan: --to is not after --from'
	run -2 --separate-stderr recdelta-checkpoint windows plan --from 2025-02-30 --to 2025-03-01
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --from: "2025-02-30" is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM:SSZ)'
	run -2 --separate-stderr recdelta-checkpoint windows plan --from 2025-03-01 --to 2025-03-02 --step 1w
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --step: "1w" is not a step (Nd or Nh)'
	run -2 --separate-stderr recdelta-checkpoint windows fail 2025-03-01T12:00:00Z
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows fail: --reason is required'
}

@test "status: scope, last run, coverage as 45% complete (120/267 days), gaps, outbox, lock" {
	recdelta-checkpoint windows plan --from 2025-01-01 --to 2025-09-24
	q "UPDATE windows SET status = 'done' WHERE t0 < strftime('%s', '2025-05-01')"
	{ res create T a ok 1 '{}'; res update T b deferred 1 '{}'; } > in
	record S --flow smart-sync
	live_pid; p=$PID
	recdelta-checkpoint lock --scope S --pid "$p"
	started=$(q "SELECT started FROM lock")
	run -0 --separate-stderr recdelta-checkpoint status
	assert_output --regexp "^state: \.recdelta/state\.db \(schema 5\)
scope: \"S\"
last run: 1 \(smart-sync\) partial, [0-9T:Z-]+\.\.[0-9T:Z-]+: 1 ok, 1 deferred
coverage: 45% complete \(120/267 days\)
gaps: 2025-05-01\.\.2025-09-24 \(147 days\)
2025-01 #{31}
2025-02 #{28}
2025-03 #{31}
2025-04 #{30}
2025-05 \.{31}
2025-06 \.{30}
2025-07 \.{31}
2025-08 \.{31}
2025-09 \.{24}
# done  x failed  \. pending
outbox: 1 undelivered change
lock: held by pid $p on host \"$(hostname)\" since $started \(recdelta [0-9.]+, scope \"S\"\)\$"
	run -0 recdelta-checkpoint status --json
	assert_output --partial '"coverage":{"percent":45,"done":120,"total":267,"unit":"days","windows":267,"windows_done":120,"gaps":[{"start":"2025-05-01","end":"2025-09-25","windows":147}]},"outbox":1,"lock":{"pid":'"$p"
}

@test "status and preflight on a state that does not exist create nothing" {
	run -0 --separate-stderr recdelta-checkpoint status
	assert_output - <<'EOF'
state: .recdelta/state.db (not created yet)
scope: none yet
last run: none
coverage: no windows planned
outbox: empty
lock: free
EOF
	run -0 --separate-stderr recdelta-checkpoint preflight --scope S
	assert_output ''
	assert_equal "$stderr" ''
	run -0 recdelta-checkpoint status --check
	[ ! -e .recdelta ]
}

@test "preflight refuses a state of another scope, and status --check says the same" {
	res create T a ok 1 '{}' > in
	record S
	run -0 recdelta-checkpoint preflight --scope S
	run -5 --separate-stderr recdelta-checkpoint preflight --scope T
	assert_output ''
	assert_equal "$stderr" 'recdelta-checkpoint: refused: the state .recdelta/state.db belongs to scope "S", not "T"
  give each scope a state of its own: recdelta-checkpoint --state FILE preflight --scope T'
	refusal=$stderr
	run -1 --separate-stderr recdelta-checkpoint --scope T status --check
	assert_equal "$stderr" "$refusal"
	run -5 --separate-stderr recdelta-checkpoint lock --scope T
	assert_equal "$stderr" "${refusal/preflight/lock}"
}

@test "preflight refuses while another live run holds the lock, not for its own" {
	live_pid; p=$PID
	recdelta-checkpoint --state st.db lock --scope S --pid "$p"
	started=$(sqlite3 st.db "SELECT started FROM lock")
	run -0 --separate-stderr recdelta-checkpoint --state st.db preflight --scope S --pid "$p"
	run -5 --separate-stderr recdelta-checkpoint preflight --state st.db --scope S
	assert_equal "$stderr" "recdelta-checkpoint: refused: another run holds the lock of scope \"S\"
  owner: pid $p on host \"$(hostname)\", started $started, recdelta $(recdelta --version | cut -d' ' -f2)
  wait for it, or if it is gone: recdelta-checkpoint --state st.db unlock --force"
	refusal=$stderr
	run -1 --separate-stderr recdelta-checkpoint --state st.db status --check
	assert_equal "$stderr" "$refusal"
	[ "${#stderr}" -gt 0 ] && [ "$(wc -l <<<"$stderr")" -le 25 ]
}

@test "preflight refuses while the outbox holds undelivered changes" {
	{ res update T a deferred 1 '{}'; res update T b deferred 1 '{}'; res update T c deferred 1 '{}'; } > in
	record 'dir:remote x'
	run -5 --separate-stderr recdelta-checkpoint preflight --scope 'dir:remote x'
	assert_equal "$stderr" "recdelta-checkpoint: refused: the outbox holds 3 undelivered changes for scope \"dir:remote x\"
  replay them first: recdelta-checkpoint outbox | recdelta-push --delete-orphans TARGET | recdelta-checkpoint record --scope 'dir:remote x'"
	run -1 --separate-stderr recdelta-checkpoint status --check
	assert_equal "$stderr" "recdelta-checkpoint: refused: the outbox holds 3 undelivered changes for scope \"dir:remote x\"
  replay them first: recdelta-checkpoint outbox | recdelta-push --delete-orphans TARGET | recdelta-checkpoint record --scope 'dir:remote x'"
}

@test "a newer schema is refused by every subcommand with exit 5, and the file is left unchanged" {
	recdelta-checkpoint cursor set a b
	sqlite3 "$ST" 'PRAGMA user_version = 99'
	before=$(sha256 "$ST")
	msg='recdelta-checkpoint: .recdelta/state.db: schema version 99 is newer than this build (5); upgrade recdelta'
	run -5 --separate-stderr recdelta-checkpoint preflight --scope S
	assert_equal "$stderr" "$msg"
	run -1 --separate-stderr recdelta-checkpoint status --check
	assert_equal "$stderr" "$msg"
	res create T a ok 1 '{}' > in
	run -5 --separate-stderr recdelta-checkpoint record --scope S < in
	assert_equal "$stderr" "$msg"
	assert_output ''
	for cmd in base outbox history 'cursor get a' 'cursor set a c' 'lock --scope S' \
	    unlock 'windows plan --from 2025-01-01 --to 2025-01-02' 'windows pending' \
	    'show 1'; do
		run -5 --separate-stderr recdelta-checkpoint $cmd
		assert_equal "$stderr" "$msg"
	done
	assert_equal "$(sha256 "$ST")" "$before"
}

@test "lock: taken, taken again by its owner, refused to another live process" {
	live_pid; p=$PID
	run -0 --separate-stderr recdelta-checkpoint lock --scope S --pid "$p"
	assert_equal "$stderr" ''
	run -0 recdelta-checkpoint lock --scope S --pid "$p"
	run -0 q "SELECT pid, host, version, scope FROM lock"
	assert_output "$p|$(hostname)|$(recdelta --version | cut -d' ' -f2)|S"
	run -5 --separate-stderr recdelta-checkpoint lock --scope S
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: refused: another run holds the lock of scope "S"'
	run -5 --separate-stderr recdelta-checkpoint unlock
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: refused: another run holds the lock of scope "S"'
	run -0 recdelta-checkpoint unlock --pid "$p"
	run -0 q "SELECT count(*) FROM lock"
	assert_output 0
	recdelta-checkpoint lock --scope S --pid "$p"
	run -0 recdelta-checkpoint unlock --force
	run -0 q "SELECT count(*) FROM lock"
	assert_output 0
	run -0 recdelta-checkpoint unlock
}

@test "lock: the lock of a process that is gone is an orphan, reclaimed with a notice" {
	sleep 1000 > /dev/null 2>&1 3>&- &
	gone=$!
	recdelta-checkpoint lock --scope S --pid "$gone"
	started=$(q "SELECT started FROM lock")
	kill "$gone"
	wait "$gone" || true
	run -0 --separate-stderr recdelta-checkpoint preflight --scope S
	assert_equal "$stderr" "recdelta-checkpoint: found the orphan lock of pid $gone on host \"$(hostname)\" (started $started): its process is gone"
	live_pid; p=$PID
	run -0 --separate-stderr recdelta-checkpoint lock --scope S --pid "$p"
	assert_equal "$stderr" "recdelta-checkpoint: reclaimed the orphan lock of pid $gone on host \"$(hostname)\" (started $started): its process is gone"
	run -0 q "SELECT pid FROM lock"
	assert_output "$p"
}

@test "two processes racing for the lock: exactly one wins, every time" {
	for round in 1 2 3 4 5 6; do
		[ $((round % 2)) = 1 ] && rm -rf .recdelta
		live_pid; p1=$PID
		live_pid; p2=$PID
		(recdelta-checkpoint lock --scope S --pid "$p1" 2>/dev/null && r=0 || r=$?
		    echo $r > r1) 3>&- &
		a=$!
		(recdelta-checkpoint lock --scope S --pid "$p2" 2>/dev/null && r=0 || r=$?
		    echo $r > r2) 3>&- &
		b=$!
		wait "$a" "$b"
		run -0 sort r1 r2
		assert_output $'0\n5'
		if [ "$(cat r1)" = 0 ]; then winner=$p1; else winner=$p2; fi
		run -0 q "SELECT pid FROM lock"
		assert_output "$winner"
		recdelta-checkpoint unlock --force
	done
}

@test "migrations run twice leave the same schema and version" {
	recdelta-checkpoint cursor set a b
	schema=$(sqlite3 "$ST" .schema)
	run -0 q 'PRAGMA user_version'
	assert_output 5
	recdelta-checkpoint cursor set a c
	recdelta-checkpoint lock --scope S
	assert_equal "$(sqlite3 "$ST" .schema)" "$schema"
	run -0 q 'PRAGMA user_version; PRAGMA journal_mode'
	assert_output $'5\nwal'
	# An empty file is a database of version 0: it is migrated.
	: > empty.db
	recdelta-checkpoint --state empty.db cursor set a b
	assert_equal "$(sqlite3 empty.db .schema)" "$schema"
}

@test "an SQLite database of other tables is refused, and left alone" {
	sqlite3 app.db 'CREATE TABLE stadiums(id TEXT)'
	before=$(sha256 app.db)
	run -5 --separate-stderr recdelta-checkpoint --state app.db cursor set a b
	assert_equal "$stderr" 'recdelta-checkpoint: app.db: not a recdelta state database (it holds other tables); choose another with --state'
	assert_equal "$(sha256 app.db)" "$before"
}

@test "record refuses a state of another scope before reading anything" {
	res create T a ok 1 '{}' > in
	record S
	q .dump > before
	run -5 --separate-stderr recdelta-checkpoint record --scope T < in
	assert_output ''
	assert_equal "$stderr" 'recdelta-checkpoint: refused: the state .recdelta/state.db belongs to scope "S", not "T"
  give each scope a state of its own: recdelta-checkpoint --state FILE record --scope T'
	q .dump > after
	cmp before after
}

@test "a malformed line: exit 3, the lines before it written on, its batch rolled back" {
	{ res create T a ok 1 '{}'; res create T b ok 1 '{}'; res create T c ok 1 '{}'; printf '{"kind":"result",\n'; } > in
	run -3 --separate-stderr recdelta-checkpoint record --scope S --batch 2 < in
	assert_equal "$stderr" 'recdelta-checkpoint: <stdin>:4: unterminated object'
	assert_output "$(head -n 3 in)"
	run -0 q "SELECT group_concat(key) FROM base"
	assert_output a,b
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\t-\t2 ok\tfailed\tundoable$'
	# A failure in the first batch leaves the database as it was.
	q .dump > before
	{ res create T d ok 1 '{}'; printf '%s\n' '{"kind":"result","op":"create","type":"T","key":"e"}'; } > in
	run -3 --separate-stderr recdelta-checkpoint record --scope S < in
	assert_equal "$stderr" 'recdelta-checkpoint: <stdin>:2: missing "status"'
	q .dump > after
	cmp before after
}

@test "bad result and cursor lines are named by line and field" {
	check() {
		printf '%s\n' '{"kind":"record","type":"T","key":"k","fields":{}}' "$1" > in
		run -3 --separate-stderr recdelta-checkpoint record --scope S < in
		assert_equal "$stderr" "recdelta-checkpoint: <stdin>:2: $2"
	}
	check '{"kind":"result","op":"merge","type":"T","key":"k","status":"ok"}' 'unknown op "merge" (expected create, update, delete or same)'
	check '{"kind":"result","op":"create","type":"T","key":"k","status":"done"}' 'unknown status "done" (expected ok, skipped, conflict, deferred, failed or planned)'
	check '{"kind":"result","op":"create","type":"T","key":"","status":"ok"}' 'empty "key"'
	check '{"kind":"result","op":"create","type":"T","key":"k","status":"ok","fields":[]}' '"fields" is not an object'
	check '{"kind":"result","op":"update","type":"T","key":"k","status":"deferred"}' 'deferred update without "fields": it could not be replayed'
	check '{"kind":"result","op":"create","type":"T","key":"k","status":"ok","fields":{"l":{"$loc":1}}}' 'field "l": bad $loc value: needs numbers "lat" and "lng"'
	check '{"kind":"cursor","name":"x"}' 'missing "value"'
	check '{"kind":"record","type":"T"}' 'missing "key"'
	check 'not json' 'invalid literal'
	run -0 q "SELECT count(*) FROM base"
	assert_output 0
}

@test "a state path that is a directory or cannot be written: exit 4" {
	mkdir statedir
	run -4 --separate-stderr recdelta-checkpoint --state statedir status
	assert_equal "$stderr" 'recdelta-checkpoint: statedir: cannot open the state database: it is a directory'
	res create T a ok 1 '{}' > in
	run -4 --separate-stderr recdelta-checkpoint --state statedir record --scope S < in
	assert_equal "$stderr" 'recdelta-checkpoint: statedir: cannot open the state database: it is a directory'
	assert_output ''
	: > file
	run -4 --separate-stderr recdelta-checkpoint --state file/state.db cursor set a b
	assert_equal "$stderr" 'recdelta-checkpoint: file/state.db: cannot create the state database: file is not a directory'
	printf 'not a database at all, not at all, no' > junk.db
	run -4 --separate-stderr recdelta-checkpoint --state junk.db status
	assert_equal "$stderr" 'recdelta-checkpoint: junk.db: cannot open the state database: file is not a database'
}

@test "a state that cannot be written: exit 4, and the database unchanged" {
	as=
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null || skip "root without setpriv"
		as='setpriv --reuid=nobody --regid=nogroup --clear-groups'
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/rdck.XXXXXX")
	chmod 755 "$dir"
	recdelta-checkpoint --state "$dir/s.db" cursor set a b
	chmod 444 "$dir/s.db"
	chmod 555 "$dir"
	before=$(sha256 "$dir/s.db")
	# The program itself: a valgrind wrapper may lie where nobody can reach.
	run -4 --separate-stderr $as "$TOP/bin/recdelta-checkpoint" --state "$dir/s.db" cursor set a c
	st1=$stderr
	run -4 --separate-stderr $as "$TOP/bin/recdelta-checkpoint" --state "$dir/new.db" cursor set a b
	st2=$stderr
	chmod 755 "$dir"
	after=$(sha256 "$dir/s.db")
	rm -rf "$dir"
	assert_equal "$st1" "recdelta-checkpoint: $dir/s.db: cannot write the state database: Permission denied"
	assert_equal "$st2" "recdelta-checkpoint: $dir/new.db: cannot create the state database: $dir: Permission denied"
	assert_equal "$after" "$before"
}

@test "usage errors exit 2: unknown or missing subcommand, bad arguments" {
	run -2 --separate-stderr recdelta-checkpoint frobnicate
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: unknown subcommand "frobnicate"'
	run -2 --separate-stderr recdelta-checkpoint
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: missing SUBCOMMAND'
	run -2 --separate-stderr recdelta-checkpoint record
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --scope is required'
	run -2 --separate-stderr recdelta-checkpoint record --scope S --batch 0
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --batch: "0" is not a number from 1 to 10000000'
	run -2 --separate-stderr recdelta-checkpoint base --json
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: option "--json" does not go with this subcommand'
	run -2 --separate-stderr recdelta-checkpoint history extra
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: too many arguments'
	run -2 --separate-stderr recdelta-checkpoint windows
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: windows: missing plan, pending, done, fail, reset, coverage, calendar or report'
	[ ! -e .recdelta ]
	run -0 recdelta-checkpoint record --help
	assert_line --index 0 --partial 'usage: recdelta-checkpoint '
}

@test "--state and --scope go before or after the subcommand; RECDELTA_STATE chooses the state" {
	res create T a ok 1 '{}' > in
	recdelta-checkpoint --state one.db --scope S record < in > /dev/null
	recdelta-checkpoint record --state two.db --scope S < in > /dev/null
	RECDELTA_STATE=three.db recdelta-checkpoint record --scope S < in > /dev/null
	for db in one two three; do
		run -0 sqlite3 "$db.db" "SELECT key FROM base"
		assert_output a
	done
	run -0 env RECDELTA_STATE=three.db recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"a","rev":"1","fields":{}}'
	[ ! -e .recdelta ]
}

@test "a pause in the input commits what was read before the batch is full" {
	mkfifo fifo
	recdelta-checkpoint record --scope S < fifo > out 3>&- &
	pid=$!
	exec 4> fifo
	{ res create T a ok 1 '{}'; res create T b ok 1 '{}'; } >&4
	based() {
		[ "$(q 'SELECT count(*) FROM base' 2>/dev/null)" = "$1" ]
	}
	wait_until based 2
	run -0 q 'SELECT count(*) FROM base'
	assert_output 2
	run -0 cat out
	assert_equal "${#lines[@]}" 2
	exec 4>&-
	wait "$pid"
}

# The property that matters: killed at any point, record leaves a database
# that is whole and whose base holds only results it had read whole and
# written on.  It is killed at 10 points spread over the file-system calls
# of an uninterrupted run (helpers/faultinject.bash): each stops it before
# its Nth call, and the test kills it there.
@test "kill -9 of record at 10 chosen points: the base never runs ahead of the stream" {
	awk 'BEGIN { for (i = 0; i < 6000; i++) printf "{\"kind\":\"result\",\"op\":\"create\",\"type\":\"T\",\"key\":\"k%05d\",\"status\":\"ok\",\"rev\":\"1\",\"fields\":{\"n\":%d}}\n", i, i }' > in
	mkdir st
	RECDELTA_FAULT_COUNT=$PWD/count faulty recdelta-checkpoint --state st/s.db \
	    record --scope S --batch 300 < in > /dev/null
	calls=$(cat count)
	[ "$calls" -ge 100 ] || fail "only $calls calls counted"
	midway=0
	for round in $(seq 10); do
		rm -rf st out
		mkdir st
		paused $((round * calls / 11)) recdelta-checkpoint --state st/s.db \
		    record --scope S --batch 300 < in > out 2> err
		wait_paused || fail "round $round: ended before call $((round * calls / 11)) of $calls: status $PAUSED_STATUS: $(cat err)"
		kill_paused
		assert_equal "$PAUSED_STATUS" 137

		# The lines written on whole: a last line cut short is left out.
		complete=
		[ -n "$(tail -c 1 out)" ] && complete='$d'
		sed "$complete" out | grep '"status":"ok"' |
		    grep -o '"key":"k[0-9]*"' | sort > passed
		run -0 sqlite3 st/s.db 'PRAGMA integrity_check'
		assert_output ok
		# Killed before the schema was committed: no base yet.
		: > based
		[ "$(sqlite3 st/s.db "SELECT count(*) FROM sqlite_schema WHERE name = 'base'")" = 0 ] ||
		    sqlite3 st/s.db "SELECT '\"key\":\"' || key || '\"' FROM base ORDER BY 1" > based
		run -0 comm -23 based passed
		[ -z "$output" ] || fail "round $round: in the base, not passed on: ${lines[*]:0:3}"
		n=$(wc -l < based)
		if [ "$n" -gt 0 ] && [ "$n" -lt 6000 ] && [ $((midway += 1)) = 1 ]; then
			run -0 recdelta-checkpoint --state st/s.db history
			assert_output --regexp $'\tinterrupted\tundoable$'
		fi
	done
	echo "# $midway of 10 rounds killed midway, $calls calls" >&3
	[ "$midway" -ge 3 ] || fail "only $midway of 10 rounds were killed midway"
}

@test "prune keeps in the base only the records a result stream names; bad input leaves it unchanged" {
	export RECDELTA_STATE="$PWD/p.db"
	for k in a b c; do
		printf '{"kind":"result","op":"create","type":"T","key":"%s","status":"ok","rev":"1","fields":{"k":"%s"}}\n' "$k" "$k"
	done > results
	recdelta-checkpoint record --scope s < results > /dev/null
	printf '%s\n' '{"kind":"result","op":"same","type":"T","key":"a","status":"skipped","rev":"1","fields":{"k":"a"}}' \
	    '{"kind":"cursor","name":"x","value":"y"}' \
	    '{"kind":"result","op":"delete","type":"T","key":"c","status":"skipped","error":{"code":"orphan","message":"kept"}}' > named
	printf '%s\n' '{"kind":"result","op":"same","type":"T","key":"a","status":"skipped"}' 'not json' > bad
	before=$(sqlite3 p.db 'select type, key from base order by key')
	run -3 --separate-stderr recdelta-checkpoint prune < bad
	assert_equal "$stderr" 'recdelta-checkpoint: <stdin>:2: invalid literal'
	assert_output ''
	assert_equal "$(sqlite3 p.db 'select type, key from base order by key')" "$before"
	run -0 --separate-stderr recdelta-checkpoint prune < named
	assert_output ''
	assert_equal "$stderr" ''
	assert_equal "$(sqlite3 p.db 'select key from base order by key' | tr '\n' ' ')" 'a c '
}

@test "prune -t: only the base, sides and feed_seen rows of the types named go; --whole keeps what the plan read of the records not settled, in place of what feeds said" {
	export RECDELTA_STATE="$PWD/p.db"
	for k in a b c d; do
		printf '{"kind":"result","op":"create","type":"%s","key":"%s","status":"ok","rev":"1","fields":{"k":"%s"}}\n' T "$k" "$k" U "$k" "$k"
	done | recdelta-checkpoint record --scope s > /dev/null
	sqlite3 p.db "INSERT INTO feed_seen VALUES ('T','z','1','{}'), ('U','z','1','{}'), ('*','z',NULL,NULL)"
	# a settled; b an update refused (the remote's as the plan read it);
	# c an orphan kept; d a create that failed (not on the remote).
	cat > results <<'RESULTS'
{"kind":"result","op":"same","type":"T","key":"a","status":"skipped","rev":"1","fields":{"k":"a"}}
{"kind":"result","op":"update","type":"T","key":"b","status":"skipped","before":{"rev":"2","fields":{"k":"B"}},"error":{"code":"remote_edit","message":"kept"}}
{"kind":"result","op":"delete","type":"T","key":"c","status":"skipped","before":{"rev":"3","fields":{"k":"C","n":{"$int":"18446744073709551615"}}},"error":{"code":"orphan","message":"kept"}}
{"kind":"result","op":"create","type":"T","key":"d","status":"failed","error":{"code":"x","message":"y"}}
{"kind":"cursor","source":"s","name":"generation","value":4}
RESULTS
	run -0 --separate-stderr recdelta-checkpoint prune -t T --whole --cursor 'feed -t T' < results
	assert_output ''
	assert_equal "$stderr" ''
	# U's rows stay, and the tombstone of every type.
	assert_equal "$(sqlite3 p.db 'SELECT type, key FROM base ORDER BY 1, 2' | tr '\n' ' ')" 'T|a T|b T|c T|d U|a U|b U|c U|d '
	assert_equal "$(sqlite3 p.db 'SELECT type, key, rev, fields FROM feed_seen ORDER BY 1, 2')" '*|z||
T|b|2|{"k":"B"}
T|c|3|{"k":"C","n":{"$int":"18446744073709551615"}}
T|d||
U|z|1|{}'
	run -0 recdelta-checkpoint cursor get 'feed -t T'
	assert_output 4
	# Without -t every type is the run's.
	run -0 recdelta-checkpoint prune < results
	assert_equal "$(sqlite3 p.db 'SELECT type, key FROM base ORDER BY 1, 2' | tr '\n' ' ')" 'T|a T|b T|c T|d '
	assert_equal "$(sqlite3 p.db 'SELECT type, key FROM feed_seen ORDER BY 1, 2' | tr '\n' ' ')" 'T|b T|c T|d '
	run -2 --separate-stderr recdelta-checkpoint prune --sparse --whole < results
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --sparse and --whole: one or the other'
	run -2 --separate-stderr recdelta-checkpoint prune --runs 3 -t T
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: --runs and -t: one or the other'
}

@test "record --window with no results marks the window done and checks that it is planned" {
	export RECDELTA_STATE="$PWD/w.db"
	recdelta-checkpoint windows plan --from 2025-01-01 --to 2025-01-02
	run -2 --separate-stderr recdelta-checkpoint record --scope S --window 2029-01-01 < /dev/null
	# RECDELTA_STATE is not the default: the command that fixes names it.
	assert_equal "$stderr" "recdelta-checkpoint: no planned window starts at \"2029-01-01\"; see: recdelta-checkpoint --state $PWD/w.db windows pending"
	run -0 --separate-stderr recdelta-checkpoint record --scope S --window 2025-01-01 < /dev/null
	assert_output ''
	run -0 recdelta-checkpoint windows pending
	assert_output '2025-01-02'
	run -0 recdelta-checkpoint history
	assert_output ''
}
