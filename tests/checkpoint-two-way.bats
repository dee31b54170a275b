#!/usr/bin/env bats
# The checkpoint side of two-way sync: results with a "target" confirm what
# each side holds (the sides table), and the base moves only once both sides
# hold the same content; deletes forget a record; conflict lines are kept
# once each, listed and reviewed; history and show name the side of each
# change; a state of schema version 1 is migrated; and recdelta-push --side
# applies one side's changes and passes the rest on.

bats_require_minimum_version 1.5.0

load helpers/common

ST=.recdelta/state.db

# q SQL: query the default state with sqlite3.
q() {
	sqlite3 "$ST" "$1"
}

# record [ARGS]: record the file "in" for scope S, quietly.
record() {
	recdelta-checkpoint record --scope S "$@" < in > /dev/null
}

# hash_of FIELDS: the content hash the state keeps for FIELDS, from a
# state of its own.
hash_of() {
	res create H h ok 1 "$1" |
	    recdelta-checkpoint --state hash.db record --scope H > /dev/null
	sqlite3 hash.db "SELECT hash FROM base"
	rm -f hash.db*
}

# sides: every row of sides, the hash as the fields it is the hash of, as
# named by the variables H1, H2... set with hashes.
sides() {
	local rows row h
	rows=$(q "SELECT type, key, side, ifnull(rev, '-'), hash FROM sides ORDER BY 1, 2, 3")
	while IFS= read -r row; do
		[ -n "$row" ] || continue
		h=${row##*|}
		row=${row%|*}
		case $h in
		"$H1") h=F1 ;;
		"$H2") h=F2 ;;
		"$H3") h=F3 ;;
		esac
		printf '%s|%s\n' "$row" "$h"
	done <<< "$rows"
}

# hashes: H1, H2, H3, the hashes of {"n":1}, {"n":2}, {"n":3}.
hashes() {
	H1=$(hash_of '{"n":1}')
	H2=$(hash_of '{"n":2}')
	H3=$(hash_of '{"n":3}')
}

# to SIDE: the member a two-way result carries.
to() {
	printf ',"target":"%s"' "$1"
}

# --- the base and the sides ------------------------------------------------------

@test "one side's confirmation leaves the base the old ancestor; both confirming the same fields make them the base, in either order" {
	hashes
	{ res create T a ok 1 '{"n":1}'; res create T b ok 1 '{"n":1}'; } > in
	record
	run -0 q "SELECT count(*) FROM sides"
	assert_output 0

	# a: the remote first, then the local side (which keeps no rev).
	res update T a ok 2 '{"n":2}' "$(to remote)" > in
	record
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"1","fields":{"n":1}}
{"kind":"record","type":"T","key":"b","rev":"1","fields":{"n":1}}
EOF
	run -0 sides
	assert_output 'T|a|remote|2|F2'
	res update T a ok '' '{"n":2}' "$(to local)" > in
	record
	run -0 recdelta-checkpoint base -t T
	assert_line --index 0 '{"kind":"record","type":"T","key":"a","rev":"2","fields":{"n":2}}'
	run -0 sides
	assert_output - <<'EOF'
T|a|local|-|F2
T|a|remote|2|F2
EOF
	run -0 q "SELECT hash FROM base WHERE key = 'a'"
	assert_output "$H2"

	# b: the local side first, in one stream with the remote's answer.
	{
		res update T b ok 7 '{"n":2}' "$(to local)"
		res update T b ok 3 '{"n":2}' "$(to remote)"
	} > in
	record
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"2","fields":{"n":2}}
{"kind":"record","type":"T","key":"b","rev":"3","fields":{"n":2}}
EOF

	# The sides confirm different content: the base stays the ancestor.
	{
		res update T a ok 3 '{"n":3}' "$(to remote)"
		res update T a ok '' '{"n":1}' "$(to local)"
	} > in
	record
	run -0 recdelta-checkpoint base -t T
	assert_line --index 0 '{"kind":"record","type":"T","key":"a","rev":"2","fields":{"n":2}}'
	run -0 sides
	assert_output - <<'EOF'
T|a|local|-|F1
T|a|remote|3|F3
T|b|local|7|F2
T|b|remote|3|F2
EOF
	# Then the local side comes to the remote's content: in step again.
	res update T a ok '' '{"n":3}' "$(to local)" > in
	record
	run -0 recdelta-checkpoint base -t T
	assert_line --index 0 '{"kind":"record","type":"T","key":"a","rev":"3","fields":{"n":3}}'
}

@test "a record created on both sides is in the base only once both confirmed it; the same content written otherwise agrees" {
	{
		res create T c ok '' '{"a":1,"b":[1,2]}' "$(to local)"
	} > in
	record
	run -0 recdelta-checkpoint base
	assert_output ''
	res create T c ok 1 '{"b":[1,2],"a":1.0}' "$(to remote)" > in
	record
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"c","rev":"1","fields":{"b":[1,2],"a":1.0}}'
	run -0 q "SELECT count(DISTINCT hash) FROM sides"
	assert_output 1
}

@test "same lines confirm: skipped same results of both sides, with or without a rev, make the base" {
	hashes
	res create T a ok 1 '{"n":1}' > in
	record
	{
		res same T a skipped 5 '{"n":2}' "$(to remote)"
		res same T a skipped '' '{"n":2}' "$(to local)"
	} > in
	record
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"a","rev":"5","fields":{"n":2}}'
	run -0 sides
	assert_output - <<'EOF'
T|a|local|-|F2
T|a|remote|5|F2
EOF
	# Skipped results are counted, not logged.
	run -0 recdelta-checkpoint history
	assert_line --index 1 --regexp $'^2\t[0-9T:Z-]+\t[0-9T:Z-]+\t-\t2 skipped\tdone$'
	run -0 recdelta-checkpoint show 2
	assert_output ''
}

@test "a delete on either side, or one found gone, removes the base row and both sides rows" {
	hashes
	for k in a b c; do
		res same T "$k" skipped 1 '{"n":1}' "$(to remote)"
		res same T "$k" skipped 1 '{"n":1}' "$(to local)"
	done > in
	record
	run -0 q "SELECT count(*) FROM base; SELECT count(*) FROM sides"
	assert_output $'3\n6'
	{
		res delete T a ok '' '' "$(to local)"
		res delete T b ok '' '' "$(to remote)"
	} > in
	record
	run -0 recdelta-checkpoint base
	assert_output '{"kind":"record","type":"T","key":"c","rev":"1","fields":{"n":1}}'
	run -0 sides
	assert_output - <<'EOF'
T|c|local|1|F1
T|c|remote|1|F1
EOF
	res delete T c skipped 1 '' "$(to remote)"',"error":{"code":"gone","message":"already deleted"}' > in
	record
	run -0 q "SELECT count(*) FROM base; SELECT count(*) FROM sides"
	assert_output $'0\n0'
}

@test "conflict, failed, deferred, planned and other skipped results leave the base and sides untouched; a deferred change keeps its target" {
	hashes
	{
		res same T a skipped 1 '{"n":1}' "$(to remote)"
		res same T a skipped 1 '{"n":1}' "$(to local)"
	} > in
	record
	before=$(q "SELECT * FROM base; SELECT * FROM sides")
	{
		res update T a conflict 1 '' "$(to remote)"',"error":{"code":"CONFLICT","message":"changed by someone"}'
		res update T a failed '' '' "$(to local)"',"error":{"code":"HTTP_500","message":"server error"}'
		res update T a planned 1 '{"n":3}' "$(to local)"
		res update T a skipped 1 '' "$(to local)"',"error":{"code":"remote_edit","message":"kept a remote edit"}'
		res delete T a skipped 1 '' "$(to remote)"',"error":{"code":"orphan","message":"not deleted without --delete-orphans"}'
		res create T a ok 1 '' "$(to local)"
		res update T a deferred 1 '{"n":2}' "$(to remote)"',"error":{"code":"unreachable","message":"down"}'
	} > in
	record
	# An ok create without fields forgets only what that side holds.
	run -0 sides
	assert_output 'T|a|remote|1|F1'
	run -0 q "SELECT * FROM base"
	assert_output "$(printf '%s\n' "$before" | head -n 1)"
	run -0 recdelta-checkpoint outbox
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2},"target":"remote"}'
	run -0 recdelta-checkpoint show 2
	assert_output - <<'EOF'
conflict update T a to remote rev 1 error CONFLICT: changed by someone
failed update T a to local error HTTP_500: server error
ok create T a to local rev 1 (new record)
deferred update T a to remote rev 1 error unreachable: down
EOF
}

@test "the outbox keeps a deferred change per side: one side's deferral or answer never replaces or settles the other's" {
	{
		res update T a deferred 1 '{"n":2}' "$(to remote)"',"error":{"code":"unreachable","message":"down"}'
		res update T a deferred 3 '{"n":2}' "$(to local)"',"error":{"code":"unreachable","message":"down"}'
	} > in
	record
	run -0 recdelta-checkpoint outbox
	assert_output - <<'EOF'
{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2},"target":"remote"}
{"kind":"change","op":"update","type":"T","key":"a","rev":"3","fields":{"n":2},"target":"local"}
EOF
	# The local side's answer settles the local change alone.
	res update T a ok 4 '{"n":2}' "$(to local)" > in
	record
	run -0 recdelta-checkpoint outbox
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2},"target":"remote"}'
	# A result without a target settles only a change without one.
	res update T a deferred 1 '{"n":5}' ',"error":{"code":"unreachable","message":"down"}' > in
	record
	res update T a ok 2 '{"n":5}' > in
	record
	run -0 recdelta-checkpoint outbox
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"n":2},"target":"remote"}'
}

@test "results without a target are recorded as before and touch no sides row" {
	hashes
	{
		res same T a skipped 1 '{"n":1}' "$(to remote)"
		res same T a skipped 1 '{"n":1}' "$(to local)"
	} > in
	record
	{
		res update T a ok 4 '{"n":2}'
		res create T b ok 1 '{"n":3}'
		res same T c skipped '' '{"n":3}'
	} > in
	record
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"4","fields":{"n":2}}
{"kind":"record","type":"T","key":"b","rev":"1","fields":{"n":3}}
EOF
	run -0 sides
	assert_output - <<'EOF'
T|a|local|1|F1
T|a|remote|1|F1
EOF
	run -0 q "SELECT count(*) FROM changes WHERE target IS NOT NULL"
	assert_output 0
	res delete T a ok > in
	record
	run -0 q "SELECT count(*) FROM base WHERE key = 'a'; SELECT count(*) FROM sides"
	assert_output $'0\n2'
}

@test "prune removes the sides rows of the records no result names" {
	for k in a b c; do
		res same T "$k" skipped 1 '{"n":1}' "$(to remote)"
		res same T "$k" skipped 1 '{"n":1}' "$(to local)"
	done > in
	record
	res create T d ok '' '{"n":1}' "$(to local)" > in
	record
	{
		res same T a skipped 1 '{"n":1}' "$(to remote)"
		res same T c skipped 1 '{"n":1}' "$(to local)"
	} > in
	recdelta-checkpoint prune < in
	run -0 q "SELECT key FROM base ORDER BY key"
	assert_output $'a\nc'
	run -0 q "SELECT key, side FROM sides ORDER BY key, side"
	assert_output $'a|local\na|remote\nc|local\nc|remote'
}

# --- history and show ---------------------------------------------------------------------------

@test "history and show say which side each change went to, in text and JSON; a run without targets is written as before" {
	{
		res create T a ok 1 '{"n":1}'
	} > in
	record --flow smart-sync
	{
		res update T a ok 2 '{"n":2}' "$(to remote)"',"changed":["n"]'
		res create T b ok '' '{"n":1}' "$(to local)"
		res update T c conflict 3 '' "$(to local)"',"error":{"code":"CONFLICT","message":"changed"}'
		res update T d ok 4 '{"n":1}' "$(to remote)"
		res same T e skipped 1 '{"n":1}' "$(to remote)"
	} > in
	record --flow two-way-sync
	run -0 --separate-stderr recdelta-checkpoint history
	assert_equal "$stderr" ''
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\tsmart-sync\t1 ok\tdone\tundoable\n2\t[0-9T:Z-]+\t[0-9T:Z-]+\ttwo-way-sync\t3 ok, 1 skipped, 1 conflict; 2 to local, 2 to remote\tpartial$'
	run -0 --separate-stderr recdelta-checkpoint history --json
	assert_line --index 0 --regexp '^\{"kind":"run","id":1,"scope":"S","flow":"smart-sync","started":"[0-9T:Z-]+","ended":"[0-9T:Z-]+","status":"done","counts":\{"ok":1,"skipped":0,"conflict":0,"deferred":0,"failed":0,"planned":0\},"undoable":true\}$'
	assert_line --index 1 --regexp '^\{"kind":"run","id":2,"scope":"S","flow":"two-way-sync","started":"[0-9T:Z-]+","ended":"[0-9T:Z-]+","status":"partial","counts":\{"ok":3,"skipped":1,"conflict":1,"deferred":0,"failed":0,"planned":0\},"targets":\{"local":2,"remote":2\},"undoable":false\}$'
	run -0 --separate-stderr recdelta-checkpoint status
	assert_line --index 2 --regexp '^last run: 2 \(two-way-sync\) partial, [0-9T:Z-]+\.\.[0-9T:Z-]+: 3 ok, 1 skipped, 1 conflict; 2 to local, 2 to remote$'
	run -0 recdelta-checkpoint show 1
	assert_output 'ok create T a rev 1 (new record)'
	run -0 recdelta-checkpoint show 2
	assert_output - <<'EOF'
ok update T a to remote rev 2 changed: n
ok create T b to local (new record)
conflict update T c to local rev 3 error CONFLICT: changed
ok update T d to remote rev 4
EOF
	run -0 recdelta-checkpoint show --json 2
	assert_output - <<'EOF'
{"kind":"logentry","run":2,"op":"update","type":"T","key":"a","target":"remote","status":"ok","rev":"2","changed":["n"]}
{"kind":"logentry","run":2,"op":"create","type":"T","key":"b","target":"local","status":"ok"}
{"kind":"logentry","run":2,"op":"update","type":"T","key":"c","target":"local","status":"conflict","rev":"3","error":{"code":"CONFLICT","message":"changed"}}
{"kind":"logentry","run":2,"op":"update","type":"T","key":"d","target":"remote","status":"ok","rev":"4"}
EOF
	run -0 recdelta-checkpoint show --json 1
	assert_output '{"kind":"logentry","run":1,"op":"create","type":"T","key":"a","status":"ok","rev":"1"}'
	run -0 q "SELECT seq, target FROM changes WHERE run = 2 ORDER BY seq"
	assert_output $'1|remote\n2|local\n3|local\n4|remote'
}

# --- conflicts ------------------------------------------------------------------------------------

# The conflict lines of the tests: a field both changed, a record deleted on
# one side and changed on the other, a field absent on one side.
conflicts_in() {
	cat <<'EOF'
{"kind":"conflict","type":"Game","key":"g1","field":"score","base":5,"local":6,"remote":7,"winner":"local","reason":"newer"}
{"kind":"conflict","type":"Game","key":"g 9\t✓","base":{"score":1},"remote":{"score":2},"winner":"remote","reason":"changed, not deleted"}
{"kind":"conflict","type":"Team","key":"t1","field":"name","base":"A","local":"B","remote":null,"winner":"remote","reason":"prefer remote"}
EOF
}

@test "conflict lines are kept with their run, passed on unchanged, and listed oldest first with the losing value, in text and JSON" {
	conflicts_in > in
	recdelta-checkpoint record --scope S --flow two-way-sync < in > out
	cmp in out
	# Conflict lines alone make a run.
	run -0 recdelta-checkpoint history
	assert_output --regexp $'^1\t[0-9T:Z-]+\t[0-9T:Z-]+\ttwo-way-sync\tno results\tdone$'
	run -0 --separate-stderr recdelta-checkpoint conflicts
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
1  1  Game  g1  score  winner local (newer); lost: 7
2  1  Game  g 9\x09✓  (record)  winner remote (changed, not deleted); lost: (deleted)
3  1  Team  t1  name  winner remote (prefer remote); lost: "B"
EOF
	recorded=$(q "SELECT recorded FROM conflicts WHERE id = 1")
	run -0 --separate-stderr recdelta-checkpoint conflicts --json
	assert_output - <<EOF
{"kind":"conflict","type":"Game","key":"g1","field":"score","base":5,"local":6,"remote":7,"winner":"local","reason":"newer","id":1,"run":1,"recorded":"$recorded","reviewed":null}
{"kind":"conflict","type":"Game","key":"g 9\\t✓","base":{"score":1},"remote":{"score":2},"winner":"remote","reason":"changed, not deleted","id":2,"run":1,"recorded":"$recorded","reviewed":null}
{"kind":"conflict","type":"Team","key":"t1","field":"name","base":"A","local":"B","remote":null,"winner":"remote","reason":"prefer remote","id":3,"run":1,"recorded":"$recorded","reviewed":null}
EOF
	# As merge wrote it, with the members of the state after.
	run -0 --separate-stderr recdelta-checkpoint conflicts --json
	assert_equal "$(printf '%s\n' "$output" | jq -c 'del(.id, .run, .recorded, .reviewed)')" "$(cat in)"
	run -0 recdelta-checkpoint conflicts -t Team
	assert_output '3  1  Team  t1  name  winner remote (prefer remote); lost: "B"'
	run -0 recdelta-checkpoint conflicts -t Team -t Game
	assert_equal "${#lines[@]}" 3
	run -0 q "SELECT id, run, type, field, base, local, remote, winner, reviewed IS NULL FROM conflicts"
	assert_output - <<'EOF'
1|1|Game|score|5|6|7|local|1
2|1|Game||{"score":1}||{"score":2}|remote|1
3|1|Team|name|"A"|"B"|null|remote|1
EOF
	run -0 q "SELECT count(*) FROM conflicts WHERE field IS NULL AND local IS NULL"
	assert_output 1
}

@test "a conflict met again while not reviewed is kept once; a new value, or one met after its review, is kept again" {
	conflicts_in > in
	record
	{
		conflicts_in
		res update Game g1 ok 3 '{"score":6}' "$(to remote)"
		printf '%s\n' '{"kind":"conflict","type":"Game","key":"g1","field":"score","base":5,"local":6,"remote":8,"winner":"local","reason":"newer"}'
		# Equal as compact JSON: the winner and reason are not compared.
		printf '%s\n' '{"kind":"conflict", "type":"Game","key":"g1","field":"score","base":5,"local":6,"remote":7,"winner":"remote","reason":"other"}'
	} > in
	record
	run -0 recdelta-checkpoint conflicts
	assert_output - <<'EOF'
1  1  Game  g1  score  winner local (newer); lost: 7
2  1  Game  g 9\x09✓  (record)  winner remote (changed, not deleted); lost: (deleted)
3  1  Team  t1  name  winner remote (prefer remote); lost: "B"
4  2  Game  g1  score  winner local (newer); lost: 8
EOF
	recdelta-checkpoint conflicts review 1
	conflicts_in | head -n 1 > in
	record
	run -0 recdelta-checkpoint conflicts
	assert_output - <<'EOF'
2  1  Game  g 9\x09✓  (record)  winner remote (changed, not deleted); lost: (deleted)
3  1  Team  t1  name  winner remote (prefer remote); lost: "B"
4  2  Game  g1  score  winner local (newer); lost: 8
5  3  Game  g1  score  winner local (newer); lost: 7
EOF
}

@test "conflicts review marks conflicts reviewed: kept, shown with --all; an unknown number is exit 2 and marks nothing" {
	conflicts_in > in
	record
	run -0 --separate-stderr recdelta-checkpoint conflicts review 1 3
	assert_equal "$stderr" ''
	assert_output ''
	reviewed=$(q "SELECT reviewed FROM conflicts WHERE id = 1")
	[ -n "$reviewed" ]
	run -0 recdelta-checkpoint conflicts
	assert_output '2  1  Game  g 9\x09✓  (record)  winner remote (changed, not deleted); lost: (deleted)'
	run -0 recdelta-checkpoint conflicts --all
	assert_output - <<EOF
1  1  Game  g1  score  winner local (newer); lost: 7; reviewed $reviewed
2  1  Game  g 9\\x09✓  (record)  winner remote (changed, not deleted); lost: (deleted)
3  1  Team  t1  name  winner remote (prefer remote); lost: "B"; reviewed $reviewed
EOF
	run -0 recdelta-checkpoint conflicts --all --json -t Team
	assert_output --regexp '^\{"kind":"conflict","type":"Team",.*,"id":3,"run":1,"recorded":"[0-9T:Z-]+","reviewed":"[0-9T:Z-]+"\}$'

	run -2 --separate-stderr recdelta-checkpoint conflicts review 2 42
	assert_equal "$stderr" 'recdelta-checkpoint: no conflict 42; see: recdelta-checkpoint conflicts --all'
	assert_output ''
	run -0 q "SELECT count(*) FROM conflicts WHERE reviewed IS NULL"
	assert_output 1

	# Reviewing again keeps the time; --all -t only those types.
	sqlite3 "$ST" "UPDATE conflicts SET reviewed = '2026-01-01T00:00:00Z' WHERE id = 1"
	recdelta-checkpoint conflicts review 1 --all -t Team 2>/dev/null && fail "IDs and --all together"
	recdelta-checkpoint conflicts review --all -t Team
	run -0 q "SELECT id, reviewed FROM conflicts WHERE id = 1; SELECT count(*) FROM conflicts WHERE reviewed IS NULL"
	assert_output $'1|2026-01-01T00:00:00Z\n1'
	recdelta-checkpoint conflicts review --all
	run -0 recdelta-checkpoint conflicts
	assert_output ''
	run -0 q "SELECT count(*) FROM conflicts"
	assert_output 3
}

@test "conflicts: usage errors exit 2; a bad conflict line is exit 3 naming its line, nothing of its batch kept" {
	for args in 'review' 'review x' 'review 1 --all' 'review --json 1' 'review 1 -t T' 'frobnicate' '--pid 3'; do
		run -2 --separate-stderr recdelta-checkpoint conflicts $args
		assert_output ''
	done
	run -2 --separate-stderr recdelta-checkpoint conflicts review
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: conflicts review: missing ID (or --all)'
	run -2 --separate-stderr recdelta-checkpoint conflicts review 1 --all
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: conflicts review: IDs or --all, not both'
	run -2 --separate-stderr recdelta-checkpoint conflicts frobnicate
	assert_equal "${stderr_lines[0]}" 'recdelta-checkpoint: conflicts: unknown verb "frobnicate" (expected review)'

	{
		conflicts_in | head -n 1
		printf '%s\n' '{"kind":"conflict","type":"Game","key":"g2","field":"x","winner":"both","reason":"r"}'
	} > in
	run -3 --separate-stderr recdelta-checkpoint record --scope S < in
	assert_equal "$stderr" 'recdelta-checkpoint: <stdin>:2: "winner" is not local or remote'
	assert_output "$(head -n 1 in)"
	printf '%s\n' '{"kind":"conflict","type":"Game","key":"g2","field":"x","winner":"local"}' > in
	run -3 --separate-stderr recdelta-checkpoint record --scope S < in
	assert_equal "$stderr" 'recdelta-checkpoint: <stdin>:1: missing "reason"'
	run -0 q "SELECT count(*) FROM conflicts"
	assert_output 0
}

# --- the schema -------------------------------------------------------------------------------------

@test "a state of schema version 1 is migrated on open by any subcommand: its base, runs and change logs kept, the schema that of a new state" {
	mkdir -p .recdelta
	sqlite3 "$ST" < "$FIXTURES/checkpoint-two-way/state-v1.sql"
	run -0 q 'PRAGMA user_version'
	assert_output 1
	# A read-only subcommand migrates it.
	run -0 --separate-stderr recdelta-checkpoint history
	assert_equal "$stderr" ''
	assert_output $'1\t2026-11-30T10:00:00Z\t2026-11-30T10:00:01Z\tsmart-sync\t2 ok, 1 conflict\tpartial'
	run -0 q 'PRAGMA user_version; PRAGMA journal_mode'
	assert_output $'5\nwal'
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"2","fields":{"n":2}}
{"kind":"record","type":"T","key":"b","rev":"1","fields":{"s":"Zürich"}}
EOF
	run -0 recdelta-checkpoint show 1
	assert_output - <<'EOF'
ok update T a rev 2 changed: n
ok create T b rev 1 (new record)
conflict update T c rev 4 error CONFLICT: changed by someone
EOF
	run -0 recdelta-checkpoint outbox
	assert_output '{"kind":"change","op":"update","type":"T","key":"d","rev":"1","fields":{"n":5}}'
	run -0 q "SELECT key, value FROM meta; SELECT name, value FROM cursors"
	assert_output $'scope|S\nsrc/marker|m1'
	run -0 q "SELECT count(*) FROM changes WHERE target IS NULL"
	assert_output 3

	# The same schema as a state made new.
	recdelta-checkpoint --state new.db cursor set a b
	assert_equal "$(sqlite3 "$ST" .schema)" "$(sqlite3 new.db .schema)"

	# And it records two-way results at once.
	res update T a ok 3 '{"n":3}' "$(to remote)" > in
	record
	run -0 q "SELECT type, key, side, rev FROM sides"
	assert_output 'T|a|remote|3'
	run -0 recdelta-checkpoint history
	assert_line --index 1 --regexp $'^2\t.*\t1 ok; 0 to local, 1 to remote\tdone$'
}

@test "a state of a newer schema than 5 is refused and left as it is" {
	recdelta-checkpoint cursor set a b
	sqlite3 "$ST" 'PRAGMA user_version = 6'
	before=$(sha256 "$ST")
	run -5 --separate-stderr recdelta-checkpoint conflicts
	assert_equal "$stderr" 'recdelta-checkpoint: .recdelta/state.db: schema version 6 is newer than this build (5); upgrade recdelta'
	run -5 --separate-stderr recdelta-checkpoint conflicts review --all
	assert_equal "$(sha256 "$ST")" "$before"
}

# --- recdelta-push --side ------------------------------------------------------------------------

# The plan of a two-way sync: changes for each side and for no side, a
# conflict line, a cursor and a line of an unknown kind among them.
plan_in() {
	cat <<'EOF'
{"kind":"change","op":"create","type":"T","key":"r1","fields":{"n":1},"target":"remote"}
{"kind":"change","op":"create","type":"T","key":"l1","fields":{"n":2},"target":"local"}
{"kind":"conflict","type":"T","key":"c","field":"n","base":1,"local":2,"remote":3,"winner":"local","reason":"newer"}
{"kind":"change","op":"delete","type":"T","key":"x","rev":"1","target":"local"}
{"kind":"cursor","name":"mark","value":"v"}
{"kind":"change","op":"same","type":"T","key":"s","rev":"1","fields":{"n":5},"target":"local"}
{"kind":"change","op":"same","type":"T","key":"s","rev":"1","fields":{"n":5},"target":"remote"}
{"kind":"future-thing","x":[1, 2.50]}
{"kind":"change","op":"create","type":"T","key":"u","fields":{"n":6}}
EOF
}

@test "push --side applies its side's changes and those without a target, and passes every other line on unchanged and in order" {
	plan_in > plan
	for t in dir:R "sqlite:$PWD/r.db?table=t&key=id&type=T"; do
		echo "target $t"
		rm -rf R r.db*
		# The other side's delete is neither counted for --max-delete
		# nor applied.
		run -0 --separate-stderr recdelta-push --side remote --delete-orphans --max-delete 0 "$t" < plan
		assert_equal "$stderr" "recdelta-push: created \"$t\" (it did not exist)
Created 2, Updated 0, Skipped 1 unchanged, Deleted 0, Conflicts 0"
		ru=$(case $t in dir:*) echo 1 ;; *) echo 2 ;; esac)
		assert_output - <<EOF
{"kind":"result","op":"create","type":"T","key":"r1","status":"ok","rev":"1","fields":{"n":1},"target":"remote"}
{"kind":"change","op":"create","type":"T","key":"l1","fields":{"n":2},"target":"local"}
{"kind":"conflict","type":"T","key":"c","field":"n","base":1,"local":2,"remote":3,"winner":"local","reason":"newer"}
{"kind":"change","op":"delete","type":"T","key":"x","rev":"1","target":"local"}
{"kind":"cursor","name":"mark","value":"v"}
{"kind":"change","op":"same","type":"T","key":"s","rev":"1","fields":{"n":5},"target":"local"}
{"kind":"result","op":"same","type":"T","key":"s","status":"skipped","rev":"1","fields":{"n":5},"target":"remote"}
{"kind":"future-thing","x":[1, 2.50]}
{"kind":"result","op":"create","type":"T","key":"u","status":"ok","rev":"$ru","fields":{"n":6}}
EOF
		run -0 recdelta-fetch "$t"
		assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .fields]' | LC_ALL=C sort)" '["r1",{"n":1}]
["u",{"n":6}]'
	done
	# A dry run plans only its side's changes.
	run -0 --separate-stderr recdelta-push -n --side local dir:D < plan
	assert_equal "$stderr" 'recdelta-push: "dir:D" does not exist: a push would create it
Dry run: would create 2, update 0, delete 0; 1 unchanged; nothing written
Would delete 1 orphan records (use --delete-orphans to confirm)'
	run -0 jq -c 'select(.kind == "result") | [.op, .key, .status, .target]' <<< "$output"
	assert_output - <<'EOF'
["create","l1","planned","local"]
["delete","x","skipped","local"]
["same","s","skipped","local"]
["create","u","planned",null]
EOF
	[ ! -e D ]
}

@test "push --side in a pipe: each side gets its own changes, the checkpoint records both, the base moves once both confirmed" {
	cat > plan <<'EOF'
{"kind":"change","op":"create","type":"T","key":"a","fields":{"n":1},"target":"remote"}
{"kind":"change","op":"create","type":"T","key":"a","fields":{"n":1},"target":"local"}
{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":2},"target":"local"}
{"kind":"conflict","type":"T","key":"b","field":"n","base":null,"local":3,"remote":2,"winner":"remote","reason":"newer"}
{"kind":"change","op":"same","type":"T","key":"b","rev":"1","fields":{"n":2},"target":"remote"}
EOF
	L="sqlite:$PWD/l.db?table=t&key=id&type=T"
	# b is on the remote side already.
	printf '%s\n' '{"kind":"change","op":"create","type":"T","key":"b","fields":{"n":2}}' |
	    recdelta-push -q dir:R > /dev/null
	recdelta-push -q --side remote dir:R < plan > mid
	recdelta-push -q --side local "$L" < mid > out
	run -0 cat out
	assert_output - <<'EOF'
{"kind":"result","op":"create","type":"T","key":"a","status":"ok","rev":"1","fields":{"n":1},"target":"remote"}
{"kind":"result","op":"create","type":"T","key":"a","status":"ok","rev":"1","fields":{"n":1},"target":"local"}
{"kind":"result","op":"create","type":"T","key":"b","status":"ok","rev":"2","fields":{"n":2},"target":"local"}
{"kind":"conflict","type":"T","key":"b","field":"n","base":null,"local":3,"remote":2,"winner":"remote","reason":"newer"}
{"kind":"result","op":"same","type":"T","key":"b","status":"skipped","rev":"1","fields":{"n":2},"target":"remote"}
EOF
	recdelta-checkpoint record --scope S --flow two-way-sync < out > /dev/null
	run -0 recdelta-checkpoint base
	assert_output - <<'EOF'
{"kind":"record","type":"T","key":"a","rev":"1","fields":{"n":1}}
{"kind":"record","type":"T","key":"b","rev":"1","fields":{"n":2}}
EOF
	run -0 q "SELECT key, side, ifnull(rev, '-') FROM sides ORDER BY 1, 2"
	assert_output $'a|local|1\na|remote|1\nb|local|2\nb|remote|1'
	run -0 recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .fields]')" '["a",{"n":1}]
["b",{"n":2}]'
	run -0 recdelta-fetch "$L"
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .fields]')" '["a",{"n":1}]
["b",{"n":2}]'
	run -0 recdelta-checkpoint conflicts
	assert_output '1  1  T  b  n  winner remote (newer); lost: 3'
	run -0 recdelta-checkpoint show 1
	assert_output - <<'EOF'
ok create T a to remote rev 1 (new record)
ok create T a to local rev 1 (new record)
ok create T b to local rev 2 (new record)
EOF
}

@test "push without --side applies every change, whatever its target; a bad --side is a usage error" {
	plan_in > plan
	run -0 --separate-stderr recdelta-push -q dir:R < plan
	run -0 jq -r 'select(.kind != "result") | .kind' <<< "$output"
	assert_output $'conflict\ncursor\nfuture-thing'
	run -0 recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -r .key | LC_ALL=C sort | tr '\n' ' ')" 'l1 r1 u '
	run -2 --separate-stderr recdelta-push --side both dir:R < plan
	assert_equal "$stderr" 'recdelta-push: --side: "both": expected local or remote'
	assert_output ''
	# The other side's change is checked all the same: bad input writes
	# nothing.
	printf '%s\n' '{"kind":"change","op":"update","type":"T","key":"z","fields":{"n":1},"target":"local"}' > bad
	run -3 --separate-stderr recdelta-push --side remote dir:Q < bad
	assert_equal "$stderr" 'recdelta-push: <stdin>:1: missing "rev"'
	[ ! -e Q ]
}
