#!/usr/bin/env bats
# recdelta-merge: every case of the three-way merge with its exact conflict
# and change lines, the policies, the rules, exact values, the "seen" guard,
# pass-through lines, the summary, and errors with their exit statuses.

load helpers/common
bats_require_minimum_version 1.5.0

# merge3 ARGS...: merge b.ndjson, l.ndjson and r.ndjson.
merge3() {
	recdelta-merge --base ndjson:b.ndjson --local ndjson:l.ndjson \
	    --remote ndjson:r.ndjson "$@"
}

# recm KEY REV MTIME FIELDS: a record of type T with an mtime.
recm() {
	printf '{"kind":"record","type":"T","key":"%s","rev":"%s","mtime":"%s","fields":%s}\n' \
	    "$1" "$2" "$3" "$4"
}

# seen FIELDS: the "seen" of a record whose fields are FIELDS, strings alone,
# written with sorted members and no blanks: that is their canonical form,
# so its SHA-256 is computed here by sha256sum, not by the program.
seen() {
	printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

# dve BASE LOCAL REMOTE WINNER REASON: the conflict line of T/a deleted on
# one side (its value given as empty) and edited on the other.
dve() {
	local l='{"kind":"conflict","type":"T","key":"a","base":'"$1"
	[ -n "$2" ] && l+=',"local":'"$2"
	[ -n "$3" ] && l+=',"remote":'"$3"
	printf '%s,"winner":"%s","reason":"%s"}' "$l" "$4" "$5"
}

USAGE1='usage: recdelta-merge [--base SRC] --local SRC --remote SRC'

@test "only local changed: an update to the remote, guarded by its rev and seen" {
	rec T a '{"name":"x","city":"p"}' 1 > b.ndjson
	rec T a '{"name":"y","city":"p"}' 2 > l.ndjson
	rec T a '{"name":"x","city":"p"}' 7 > r.ndjson
	run -0 --separate-stderr merge3
	assert_equal "$stderr" ''
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"y","city":"p"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"city":"p","name":"x"}')"'"}'
	run -1 --separate-stderr merge3 --exit-code
	assert_equal "${#lines[@]}" 1
}

@test "only remote changed: an update to the local side, the merged fields in the local's member order" {
	rec T a '{"name":"x","city":"p"}' 1 > b.ndjson
	rec T a '{"name":"x","city":"p"}' 2 > l.ndjson
	rec T a '{"city":"p","name":"y"}' 7 > r.ndjson
	run -0 --separate-stderr merge3
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"name":"y","city":"p"},"changed":["name"],"target":"local","seen":"'"$(seen '{"city":"p","name":"x"}')"'"}'
}

@test "both changed different fields: one merged record, an update to each side" {
	rec T a '{"name":"x","city":"p"}' 1 > b.ndjson
	rec T a '{"name":"y","city":"p"}' 2 > l.ndjson
	rec T a '{"name":"x","city":"q","zip":"1"}' 7 > r.ndjson
	run -0 --separate-stderr merge3
	assert_equal "$stderr" ''
	assert_line --index 0 '{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"name":"y","city":"q","zip":"1"},"changed":["city","zip"],"target":"local","seen":"'"$(seen '{"city":"p","name":"y"}')"'"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"y","city":"q","zip":"1"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"city":"q","name":"x","zip":"1"}')"'"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --summary
	assert_output 'Ts: 1 to local, 1 to remote, 1 merged, 0 conflicts, 0 unchanged'
}

@test "both changed the same field, --prefer newer: the later mtime wins, either way" {
	rec T a '{"name":"x","city":"p"}' 1 > b.ndjson
	recm a 2 2026-01-02T00:00:00Z '{"name":"L","city":"p"}' > l.ndjson
	recm a 7 2026-01-03T00:00:00Z '{"name":"R","city":"p"}' > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"remote","reason":"newer"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"name":"R","city":"p"},"changed":["name"],"target":"local","seen":"'"$(seen '{"city":"p","name":"L"}')"'"}'
	assert_equal "${#lines[@]}" 2
	# The default is newer; said or not, the same.
	run -0 --separate-stderr merge3 --prefer newer
	assert_equal "${#lines[@]}" 2
	recm a 2 2026-01-04T00:00:00.5Z '{"name":"L","city":"p"}' > l.ndjson
	recm a 7 2026-01-04T00:00:00.25Z '{"name":"R","city":"p"}' > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"newer"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"L","city":"p"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"city":"p","name":"R"}')"'"}'
	assert_equal "${#lines[@]}" 2
}

@test "both changed the same field, equal mtimes: a tie goes to local" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	recm a 2 2026-01-02T00:00:00Z '{"name":"L"}' > l.ndjson
	recm a 7 2026-01-02T00:00:00Z '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"tie: local wins"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"L"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"R"}')"'"}'
	assert_equal "${#lines[@]}" 2
}

@test "both changed the same field, a side without a time that parses: local wins" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	rec T a '{"name":"L"}' 2 > l.ndjson
	recm a 7 2026-01-02T00:00:00Z '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"no mtime: local wins"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"L"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"R"}')"'"}'
	assert_equal "${#lines[@]}" 2
	recm a 2 2026-01-02T00:00:00Z '{"name":"L"}' > l.ndjson
	recm a 7 yesterday '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"no mtime: local wins"}'
}

@test "--mtime-field: a field's time, tagged or an ISO string or seconds, instead of the line's mtime" {
	rec T a '{"name":"x","at":"2026-01-01T00:00:00Z"}' 1 > b.ndjson
	# The line's mtimes say remote; the field says local.
	recm a 2 2026-01-01T00:00:00Z '{"name":"L","at":{"$ts":"2026-01-05T00:00:00Z"}}' > l.ndjson
	recm a 7 2026-01-09T00:00:00Z '{"name":"R","at":"2026-01-04T00:00:00Z"}' > r.ndjson
	run -0 --separate-stderr merge3 --mtime-field at -i at
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"newer"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"L","at":{"$ts":"2026-01-05T00:00:00Z"}},"changed":["name"],"target":"remote","seen":"'"$(seen '{"at":"2026-01-04T00:00:00Z","name":"R"}')"'"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 -i at
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"remote","reason":"newer"}'
	# Seconds since the epoch: 1767571200 is 2026-01-05T00:00:00Z.
	recm a 7 2026-01-09T00:00:00Z '{"name":"R","at":1767571201}' > r.ndjson
	run -0 --separate-stderr merge3 --mtime-field at -i at
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"remote","reason":"newer"}'
	# A record without the field has no time.
	recm a 7 2026-01-09T00:00:00Z '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3 --mtime-field at -i at
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"no mtime: local wins"}'
}

@test "--prefer local and --prefer remote: that side wins whatever the times" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	recm a 2 2026-01-01T00:00:00Z '{"name":"L"}' > l.ndjson
	recm a 7 2026-01-09T00:00:00Z '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3 --prefer local
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"local","reason":"prefer local"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"L"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"R"}')"'"}'
	assert_equal "${#lines[@]}" 2
	recm a 2 2026-01-09T00:00:00Z '{"name":"L"}' > l.ndjson
	recm a 7 2026-01-01T00:00:00Z '{"name":"R"}' > r.ndjson
	run -0 --separate-stderr merge3 --prefer remote
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","base":"x","local":"L","remote":"R","winner":"remote","reason":"prefer remote"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"name":"R"},"changed":["name"],"target":"local","seen":"'"$(seen '{"name":"L"}')"'"}'
	assert_equal "${#lines[@]}" 2
}

@test "both changed the same field to the same value: no conflict" {
	{
		rec T a '{"name":"x","city":"p"}' 1
		rec T b '{"name":"x"}' 1
	} > b.ndjson
	{
		rec T a '{"name":"y","city":"p2"}' 2
		rec T b '{"name":"z"}' 2
	} > l.ndjson
	{
		rec T a '{"name":"y","city":"p"}' 7
		rec T b '{"name":"z"}' 7
	} > r.ndjson
	run -0 --separate-stderr merge3
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"name":"y","city":"p2"},"changed":["city"],"target":"remote","seen":"'"$(seen '{"city":"p","name":"y"}')"'"}'
}

@test "created on both sides with equal content: nothing to write" {
	: > b.ndjson
	rec T a '{"name":"n","city":"c"}' 1 > l.ndjson
	rec T a '{"city":"c","name":"n"}' r1 > r.ndjson
	run -0 --separate-stderr merge3 --exit-code
	assert_output ''
	run -0 --separate-stderr merge3 --summary
	assert_output 'Ts: 0 to local, 0 to remote, 0 merged, 0 conflicts, 1 unchanged'
}

@test "created on both sides with different content: merged against an empty base" {
	: > b.ndjson
	rec T a '{"name":"A","city":"c","only":"l"}' 1 > l.ndjson
	rec T a '{"name":"B","city":"c","extra":"r"}' r1 > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","local":"A","remote":"B","winner":"local","reason":"no mtime: local wins"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"name":"A","city":"c","only":"l","extra":"r"},"changed":["extra"],"target":"local","seen":"'"$(seen '{"city":"c","name":"A","only":"l"}')"'"}'
	assert_line --index 2 '{"kind":"change","op":"update","type":"T","key":"a","rev":"r1","fields":{"name":"A","city":"c","only":"l","extra":"r"},"changed":["name","only"],"target":"remote","seen":"'"$(seen '{"city":"c","extra":"r","name":"B"}')"'"}'
	assert_equal "${#lines[@]}" 3
}

@test "created on one side: a create on the other, with no rev and no seen" {
	rec T z '{"name":"z"}' 1 > b.ndjson
	{
		rec T z '{"name":"z"}' 1
		rec T n '{"name":"new here"}' 1
	} > l.ndjson
	{
		rec T m '{"name":"new there"}' r1
		rec T z '{"name":"z"}' r1
	} > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"change","op":"create","type":"T","key":"n","fields":{"name":"new here"},"target":"remote"}'
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"m","fields":{"name":"new there"},"target":"local"}'
	assert_equal "${#lines[@]}" 2
}

@test "deleted on one side, unchanged on the other: a delete there, either way" {
	{
		rec T a '{"name":"a"}' 1
		rec T b '{"name":"b"}' 1
		rec T c '{"name":"c"}' 1
	} > b.ndjson
	{
		rec T b '{"name":"b"}' 1
		rec T c '{"name":"c"}' 1
	} > l.ndjson
	{
		rec T a '{"name":"a"}' r1
		rec T b '{"name":"b"}' r1
	} > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"change","op":"delete","type":"T","key":"c","rev":"1","target":"local","seen":"'"$(seen '{"name":"c"}')"'"}'
	assert_line --index 1 '{"kind":"change","op":"delete","type":"T","key":"a","rev":"r1","target":"remote","seen":"'"$(seen '{"name":"a"}')"'"}'
	assert_equal "${#lines[@]}" 2
	# A tombstone is an absent record.
	{
		cat l.ndjson
		printf '{"kind":"record","type":"T","key":"a","deleted":true}\n'
	} > l2.ndjson
	run -0 --separate-stderr recdelta-merge --base ndjson:b.ndjson --local ndjson:l2.ndjson --remote ndjson:r.ndjson
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 '{"kind":"change","op":"delete","type":"T","key":"a","rev":"r1","target":"remote","seen":"'"$(seen '{"name":"a"}')"'"}'
}

@test "deleted locally, edited remotely: the edit survives unless --prefer names the deleting side" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	rec T z '{"name":"z"}' 1 > l.ndjson
	{
		rec T a '{"name":"y"}' r2
		rec T z '{"name":"z"}' r1
	} > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 "$(dve '{"name":"x"}' '' '{"name":"y"}' remote 'edit wins over delete')"
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"y"},"target":"local"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --prefer remote
	assert_line --index 0 "$(dve '{"name":"x"}' '' '{"name":"y"}' remote 'prefer remote')"
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"y"},"target":"local"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --prefer local
	assert_line --index 0 "$(dve '{"name":"x"}' '' '{"name":"y"}' local 'prefer local')"
	assert_line --index 1 '{"kind":"change","op":"delete","type":"T","key":"a","rev":"r2","target":"remote","seen":"'"$(seen '{"name":"y"}')"'"}'
	assert_equal "${#lines[@]}" 2
}

@test "edited locally, deleted remotely: the edit survives unless --prefer names the deleting side" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	rec T a '{"name":"y"}' 2 > l.ndjson
	: > r.ndjson
	run -0 --separate-stderr merge3 --allow-empty
	assert_line --index 0 "$(dve '{"name":"x"}' '{"name":"y"}' '' local 'edit wins over delete')"
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"y"},"target":"remote"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --allow-empty --prefer local
	assert_line --index 0 "$(dve '{"name":"x"}' '{"name":"y"}' '' local 'prefer local')"
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"y"},"target":"remote"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --allow-empty --prefer remote
	assert_line --index 0 "$(dve '{"name":"x"}' '{"name":"y"}' '' remote 'prefer remote')"
	assert_line --index 1 '{"kind":"change","op":"delete","type":"T","key":"a","rev":"2","target":"local","seen":"'"$(seen '{"name":"y"}')"'"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --allow-empty --prefer remote --summary
	assert_output 'Ts: 1 to local, 0 to remote, 0 merged, 1 conflict, 0 unchanged'
}

@test "deleted on both sides: nothing to write, nothing counted" {
	{
		rec T a '{"name":"x"}' 1
		rec T b '{"name":"b"}' 1
	} > b.ndjson
	rec T b '{"name":"b"}' 1 > l.ndjson
	rec T b '{"name":"b"}' r1 > r.ndjson
	run -0 --separate-stderr merge3 --exit-code -a
	assert_line --index 0 '{"kind":"change","op":"same","type":"T","key":"b","rev":"1","fields":{"name":"b"},"target":"local"}'
	assert_line --index 1 '{"kind":"change","op":"same","type":"T","key":"b","rev":"r1","fields":{"name":"b"},"target":"remote"}'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --summary=json
	assert_output '{"kind":"summary","stage":"merge","counts":{"T":{"local":0,"remote":0,"merged":0,"conflicts":0,"unchanged":1}}}'
}

@test "no --base at all: every difference is a case of created on both sides" {
	{
		rec T a '{"name":"A","n":"1"}' 1
		rec T l '{"name":"l"}' 1
	} > l.ndjson
	{
		rec T m '{"name":"m"}' r1
		rec T a '{"name":"B","n":"1"}' r1
	} > r.ndjson
	run -0 --separate-stderr recdelta-merge --local ndjson:l.ndjson --remote ndjson:r.ndjson
	assert_equal "$stderr" ''
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"name","local":"A","remote":"B","winner":"local","reason":"no mtime: local wins"}'
	assert_line --index 1 '{"kind":"change","op":"update","type":"T","key":"a","rev":"r1","fields":{"name":"A","n":"1"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"n":"1","name":"B"}')"'"}'
	assert_line --index 2 '{"kind":"change","op":"create","type":"T","key":"l","fields":{"name":"l"},"target":"remote"}'
	assert_line --index 3 '{"kind":"change","op":"create","type":"T","key":"m","fields":{"name":"m"},"target":"local"}'
	assert_equal "${#lines[@]}" 4
}

@test "-a: a same line for each side in step, both carrying the same fields (the local's)" {
	{
		rec T a '{"name":"x","n":1}' 1
		rec T b '{"name":"x"}' 1
	} > b.ndjson
	{
		rec T a '{"n":1.0,"name":"x"}' l1
		rec T b '{"name":"y"}' l2
	} > l.ndjson
	{
		rec T a '{"name":"x","n":1}' r1
		rec T b '{"name":"x"}' r1
	} > r.ndjson
	run -0 --separate-stderr merge3 -a
	assert_line --index 0 '{"kind":"change","op":"same","type":"T","key":"a","rev":"l1","fields":{"n":1.0,"name":"x"},"target":"local"}'
	assert_line --index 1 '{"kind":"change","op":"same","type":"T","key":"a","rev":"r1","fields":{"n":1.0,"name":"x"},"target":"remote"}'
	assert_line --index 2 '{"kind":"change","op":"same","type":"T","key":"b","rev":"l2","fields":{"name":"y"},"target":"local"}'
	assert_line --index 3 '{"kind":"change","op":"update","type":"T","key":"b","rev":"r1","fields":{"name":"y"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"x"}')"'"}'
	assert_equal "${#lines[@]}" 4
	# Without -a, and --exit-code counts changes, not same lines.
	run -1 --separate-stderr merge3 --exit-code
	assert_output '{"kind":"change","op":"update","type":"T","key":"b","rev":"r1","fields":{"name":"y"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"x"}')"'"}'
}

@test "rules: an ignored field is never a change or a conflict; a tolerance makes near numbers equal" {
	{
		rec T a '{"name":"x","note":"1"}' 1
		rec T b '{"score":10}' 1
		rec T c '{"score":10}' 1
	} > b.ndjson
	{
		rec T a '{"name":"x","note":"2"}' 2
		rec T b '{"score":10.2}' 2
		rec T c '{"score":11}' 2
	} > l.ndjson
	{
		rec T a '{"name":"x","note":"3"}' r2
		rec T b '{"score":12}' r2
		rec T c '{"score":10.4}' r2
	} > r.ndjson
	run -0 --separate-stderr merge3 -i note --tolerance score=0.5
	assert_line --index 0 --regexp '^\{"kind":"change","op":"update","type":"T","key":"b","rev":"2","fields":\{"score":12\},"changed":\["score"\],"target":"local","seen":"[0-9a-f]{64}"\}$'
	assert_equal "${#lines[@]}" 2
	assert_line --index 1 --regexp '^\{"kind":"change","op":"update","type":"T","key":"c","rev":"r2","fields":\{"score":11\},"changed":\["score"\],"target":"remote","seen":"[0-9a-f]{64}"\}$'
	# The same through a rules file, for type T alone.
	printf 'T ignore note\nT tolerance score=0.5\n' > rules
	run -0 --separate-stderr merge3 --rules rules
	assert_equal "${#lines[@]}" 2
	# Without the rules, the notes conflict.
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"conflict","type":"T","key":"a","field":"note","base":"1","local":"2","remote":"3","winner":"local","reason":"no mtime: local wins"}'
}

@test "64-bit integers, tagged values and Unicode are kept exactly" {
	rec T a '{"big":9007199254740993,"at":{"$ts":"2026-01-01T00:00:00Z"},"s":"x"}' 1 > b.ndjson
	rec T a '{"big":9007199254740993,"at":{"$ts":"2026-01-01T00:00:00Z"},"s":"Zoë ☃ \u0000","loc":{"$loc":{"lat":1.5,"lng":2.25}},"who":{"$ref":"k1"}}' 2 > l.ndjson
	rec T a '{"big":{"$int":"18446744073709551615"},"at":{"$ts":"2026-01-01T00:00:00Z"},"s":"x","n":-0.000000000000000000001}' r2 > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 --regexp '^\{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":\{"big":\{"\$int":"18446744073709551615"\},"at":\{"\$ts":"2026-01-01T00:00:00Z"\},"s":"Zoë ☃ \\u0000","loc":\{"\$loc":\{"lat":1.5,"lng":2.25\}\},"who":\{"\$ref":"k1"\},"n":-0.000000000000000000001\},"changed":\["big","n"\],"target":"local","seen":"[0-9a-f]{64}"\}$'
	assert_line --index 1 --regexp '^\{"kind":"change","op":"update","type":"T","key":"a","rev":"r2","fields":\{"big":\{"\$int":"18446744073709551615"\},"at":\{"\$ts":"2026-01-01T00:00:00Z"\},"s":"Zoë ☃ \\u0000","loc":\{"\$loc":\{"lat":1.5,"lng":2.25\}\},"who":\{"\$ref":"k1"\},"n":-0.000000000000000000001\},"changed":\["loc","s","who"\],"target":"remote","seen":"[0-9a-f]{64}"\}$'
	assert_equal "${#lines[@]}" 2
}

@test "seen is the hash of the record as read: the canonical fields' SHA-256, the same from sqlite: as from ndjson:, another for other content" {
	rec T a '{"name":"x","city":"p"}' 1 > b.ndjson
	rec T a '{"name":"x","city":"p"}' 1 > l.ndjson
	: > r.ndjson
	run -0 --separate-stderr merge3 --allow-empty
	assert_output '{"kind":"change","op":"delete","type":"T","key":"a","rev":"1","target":"local","seen":"'"$(seen '{"city":"p","name":"x"}')"'"}'
	# The same content in an sqlite: table.
	sqlite3 l.db "CREATE TABLE T(id TEXT PRIMARY KEY, name TEXT, city TEXT); INSERT INTO T VALUES('a', 'x', 'p');"
	run -0 --separate-stderr recdelta-merge --allow-empty --base ndjson:b.ndjson --local 'sqlite:l.db?table=T&key=id' --remote ndjson:r.ndjson
	assert_equal "$stderr" ''
	assert_output '{"kind":"change","op":"delete","type":"T","key":"a","rev":"0","target":"local","seen":"'"$(seen '{"city":"p","name":"x"}')"'"}'
	# Content that differs only in a field the rules ignore: another seen,
	# and then it counts as an edit, so the delete is a conflict.
	sqlite3 l.db "UPDATE T SET city = 'q'"
	run -0 --separate-stderr recdelta-merge --allow-empty -i city --prefer remote --base ndjson:b.ndjson --local 'sqlite:l.db?table=T&key=id' --remote ndjson:r.ndjson
	assert_output '{"kind":"change","op":"delete","type":"T","key":"a","rev":"0","target":"local","seen":"'"$(seen '{"city":"q","name":"x"}')"'"}'
	[ "$(seen '{"city":"q","name":"x"}')" != "$(seen '{"city":"p","name":"x"}')" ]
}

@test "--before: an update and a delete carry the targeted side's rev and fields as read; a create none" {
	{
		rec T a '{"n":"1"}' 1
		rec T b '{"n":"2"}' 1
		rec T c '{"n":"3"}' 1
	} > b.ndjson
	{
		rec T a '{"n":"10"}' 2
		rec T b '{"n":"2"}' 1
		rec T d '{"s":"日本"}' 1
	} > l.ndjson
	{
		rec T a '{"n":"1"}' 7
		rec T b '{"n":"20"}' 8
		rec T c '{"n":"3"}' 9
	} > r.ndjson
	run -0 --separate-stderr merge3 --before
	assert_equal "$stderr" ''
	assert_equal "$output" '{"kind":"change","op":"update","type":"T","key":"a","rev":"7","fields":{"n":"10"},"changed":["n"],"target":"remote","seen":"'"$(seen '{"n":"1"}')"'","before":{"rev":"7","fields":{"n":"1"}}}
{"kind":"change","op":"update","type":"T","key":"b","rev":"1","fields":{"n":"20"},"changed":["n"],"target":"local","seen":"'"$(seen '{"n":"2"}')"'","before":{"rev":"1","fields":{"n":"2"}}}
{"kind":"change","op":"create","type":"T","key":"d","fields":{"s":"日本"},"target":"remote"}
{"kind":"change","op":"delete","type":"T","key":"c","rev":"9","target":"remote","seen":"'"$(seen '{"n":"3"}')"'","before":{"rev":"9","fields":{"n":"3"}}}'
	# Without --before, the same lines without it.
	run -0 merge3
	assert_equal "$output" "$(merge3 --before | sed -E 's/,"before":\{"rev":"[0-9]+","fields":\{"n":"[0-9]+"\}\}//')"
}

@test "pass-through: the remote's lines of other kinds first, the local's in place, the base's dropped" {
	{
		printf '{"kind":"note","from":"base"}\n'
		rec T a '{"name":"x"}' 1
	} > b.ndjson
	{
		rec T n '{"name":"n"}' 1
		printf '{"kind":"note","from":"local","v":[1,2.50]}\n'
		rec T a '{"name":"y"}' 2
	} > l.ndjson
	{
		rec T a '{"name":"x"}' r1
		printf '{"kind":"cursor","source":"s","name":"m","value":"v"}\n'
	} > r.ndjson
	run -0 --separate-stderr merge3
	assert_line --index 0 '{"kind":"cursor","source":"s","name":"m","value":"v"}'
	assert_line --index 1 '{"kind":"change","op":"create","type":"T","key":"n","fields":{"name":"n"},"target":"remote"}'
	assert_line --index 2 '{"kind":"note","from":"local","v":[1,2.50]}'
	assert_line --index 3 '{"kind":"change","op":"update","type":"T","key":"a","rev":"r1","fields":{"name":"y"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"x"}')"'"}'
	assert_equal "${#lines[@]}" 4
}

@test "bad input anywhere: exit 3 naming file:line, nothing written, no output file made" {
	rec T a '{"name":"x"}' 1 > l.ndjson
	rec T a '{"name":"x"}' 1 > r.ndjson
	{
		rec T a '{"name":"x"}' 1
		printf '{"kind":"record","type":"T","key":"b","fields":{"n":1}\n'
	} > b.ndjson
	run -3 --separate-stderr merge3
	assert_equal "$stderr" 'recdelta-merge: b.ndjson:2: unterminated object'
	assert_output ''
	run -3 --separate-stderr merge3 -o out.ndjson
	[ ! -e out.ndjson ]
	rec T a '{"name":"x"}' 1 > b.ndjson
	rec T a '{"name":"y"}' 2 >> r.ndjson
	run -3 --separate-stderr merge3
	assert_equal "$stderr" 'recdelta-merge: r.ndjson:2: duplicate record (type "T", key "a"), first at line 1'
	assert_output ''
	rec T a '{"name":"x"}' 1 > r.ndjson
	printf '{"kind":"record","type":"T","key":"b","fields":{"t":{"$ts":"soon"}}}\n' >> l.ndjson
	run -3 --separate-stderr merge3
	assert_equal "$stderr" 'recdelta-merge: l.ndjson:2: field "t": bad $ts value: not an ISO-8601 date and time'
	assert_output ''
}

@test "a base that is named must exist; an empty one is a first sync; empty sides need --allow-empty" {
	rec T a '{"name":"x"}' 1 > l.ndjson
	: > r.ndjson
	run -4 --separate-stderr recdelta-merge --base ndjson:nope.ndjson --local ndjson:l.ndjson --remote ndjson:r.ndjson --allow-empty
	assert_equal "$stderr" 'recdelta-merge: nope.ndjson: No such file or directory'
	assert_output ''
	: > b.ndjson
	run -3 --separate-stderr merge3
	assert_equal "$stderr" 'recdelta-merge: r.ndjson: empty input (--allow-empty accepts it)'
	assert_output ''
	run -0 --separate-stderr merge3 --allow-empty
	assert_output '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"x"},"target":"remote"}'
	# A remote that does not exist yet, when allowed.
	run -4 --separate-stderr recdelta-merge --local ndjson:l.ndjson --remote dir:nope
	assert_output ''
	run -0 --separate-stderr recdelta-merge --local ndjson:l.ndjson --remote dir:nope --allow-missing-remote
	assert_output '{"kind":"change","op":"create","type":"T","key":"a","fields":{"name":"x"},"target":"remote"}'
	[ ! -e nope ]
}

@test "--summary text and json: per type, sorted, with -o the lines to the file" {
	{
		rec Match a '{"name":"x","city":"p"}' 1
		rec Match b '{"name":"x"}' 1
		rec City c '{"name":"c"}' 1
		rec City d '{"name":"d"}' 1
	} > b.ndjson
	{
		rec Match a '{"name":"y","city":"p"}' 2
		rec Match b '{"name":"L"}' 2
		rec City c '{"name":"c"}' 1
		rec City e '{"name":"e"}' 1
	} > l.ndjson
	{
		rec Match a '{"name":"x","city":"q"}' r2
		rec Match b '{"name":"R"}' r2
		rec City c '{"name":"c"}' r1
		rec City d '{"name":"d"}' r1
	} > r.ndjson
	run -0 --separate-stderr merge3 --summary
	assert_equal "$stderr" ''
	assert_line --index 0 'Cities: 0 to local, 2 to remote, 0 merged, 0 conflicts, 1 unchanged'
	assert_line --index 1 'Matches: 1 to local, 2 to remote, 1 merged, 1 conflict, 0 unchanged'
	assert_equal "${#lines[@]}" 2
	run -0 --separate-stderr merge3 --summary=json -o out.ndjson
	assert_output '{"kind":"summary","stage":"merge","counts":{"City":{"local":0,"remote":2,"merged":0,"conflicts":0,"unchanged":1},"Match":{"local":1,"remote":2,"merged":1,"conflicts":1,"unchanged":0}}}'
	run -0 wc -l < out.ndjson
	assert_output 6
	run -0 grep -c '"kind":"conflict"' out.ndjson
	assert_output 1
	# The summary line reads back through lib/stream's parser.
	merge3 --summary=json > sum.ndjson
	run -0 "$TOP/tests/helpers/streamkinds" < sum.ndjson
	assert_output "$(cat sum.ndjson)"
}

@test "usage errors exit 2 with nothing on stdout" {
	run -2 --separate-stderr recdelta-merge
	assert_equal "${stderr_lines[0]}" 'recdelta-merge: both --local and --remote are required'
	assert_equal "${stderr_lines[1]}" "$USAGE1"
	assert_output ''
	: > b.ndjson
	run -2 --separate-stderr merge3 --prefer older
	assert_equal "$stderr" 'recdelta-merge: --prefer: "older": expected newer, local or remote'
	run -2 --separate-stderr merge3 --summary=xml
	assert_equal "$stderr" 'recdelta-merge: --summary: "xml": expected text or json'
	run -2 --separate-stderr merge3 --mtime-field ''
	assert_equal "$stderr" 'recdelta-merge: --mtime-field: empty field name'
	run -2 --separate-stderr recdelta-merge --base - --local - --remote ndjson:r.ndjson
	assert_equal "$stderr" 'recdelta-merge: at most one of --base, --local and --remote can be standard input'
	run -2 --separate-stderr merge3 extra
	assert_equal "${stderr_lines[0]}" 'recdelta-merge: unexpected argument "extra"'
	run -2 --separate-stderr merge3 --bogus
	assert_equal "${stderr_lines[0]}" "recdelta-merge: unrecognized option '--bogus'"
	run -2 --separate-stderr merge3 --tolerance score
	assert_output ''
	run -2 --separate-stderr merge3 --local l.ndjson
	assert_equal "$stderr" 'recdelta-merge: "l.ndjson": not a store: no such file or folder (a bare word is an existing file or folder; a missing path is not a store; expected ndjson:PATH, -, json:PATH, sqlite:DB?table=T&key=COL, dir:PATH, cloudkit:CONTAINER/ENV/DB, couchdb:URL/DB or webdav:URL)'
	rec T a '{"name":"x"}' 1 > l.ndjson
	cp l.ndjson r.ndjson
	run -2 --separate-stderr merge3 -o l.ndjson
	assert_equal "$stderr" 'recdelta-merge: -o l.ndjson: would overwrite an input'
	assert_equal "$(cat l.ndjson)" "$(rec T a '{"name":"x"}' 1)"
	# --check-args reads nothing: stores that do not exist are fine.
	run -0 --separate-stderr recdelta-merge --base ndjson:no1 --local ndjson:no2 --remote dir:no3 --check-args
	assert_output ''
	assert_equal "$stderr" ''
}

@test "one input may be standard input" {
	rec T a '{"name":"x"}' 1 > b.ndjson
	rec T a '{"name":"x"}' r1 > r.ndjson
	rec T a '{"name":"y"}' 2 > l.ndjson
	run -0 --separate-stderr recdelta-merge --base ndjson:b.ndjson --local - --remote ndjson:r.ndjson < l.ndjson
	assert_output '{"kind":"change","op":"update","type":"T","key":"a","rev":"r1","fields":{"name":"y"},"changed":["name"],"target":"remote","seen":"'"$(seen '{"name":"x"}')"'"}'
}

@test "--help and --version" {
	run -0 --separate-stderr recdelta-merge --help
	assert_line --index 0 "$USAGE1"
	assert_equal "$stderr" ''
	run -0 --separate-stderr recdelta-merge -h
	assert_line --index 0 "$USAGE1"
	run -0 --separate-stderr recdelta-merge --version
	assert_output --regexp '^recdelta-merge [0-9]+\.[0-9]+\.[0-9]+$'
	run -0 --separate-stderr recdelta merge --version
	assert_output --regexp '^recdelta-merge [0-9]'
}
