#!/usr/bin/env bats
# The ndjson: store as a target: a batch rewrites the file once, through a
# temporary file renamed over it only if the file did not change since it
# was read; creates go at the end, updates in place, deletes take their line
# out, and every other line keeps its bytes.  Updates and deletes are
# guarded by the record's rev when the change carries one and by "seen",
# the hash of the fields the plan read, when it carries that.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/faultinject

SEENHASH="$TOP/tests/helpers/seenhash"

suite_setup() {
	[ -x "$SEENHASH" ] || fail "$SEENHASH: missing; make check builds it"
	unset RECDELTA_LOG
	# A folder of its own, so that "nothing left" can be listed.
	mkdir w && cd w || return 1
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# change OP KEY [FIELDS [MORE]]: a change line of type G; MORE is added to
# the object as it is (',"rev":"3"').
change() {
	local l
	l=$(printf '{"kind":"change","op":"%s","type":"G","key":"%s"' "$1" "$2")
	[ -n "${3:-}" ] && l+=",\"fields\":$3"
	printf '%s%s}\n' "$l" "${4:-}"
}

# seen_of FILE KEY: the "seen" of record KEY of FILE as fetch reads it.
seen_of() {
	recdelta-fetch "ndjson:$1" | jq -c --arg k "$2" 'select(.kind == "record" and .key == $k)' | "$SEENHASH"
}

# summary CREATED UPDATED SKIPPED DELETED CONFLICTS: push's summary line.
summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' "$@"
}

# The file every test starts from: records with and without a rev, values
# that must keep their bytes (the largest 64-bit integer, a tagged integer
# beyond 64 bits, non-ASCII text, a member order and spacing no writer
# makes), a line of another kind, a blank line, a line ended by "\r\n".
seed() {
	printf '%s\n' \
	    '{"kind":"record","type":"G","key":"a","rev":"3","fields":{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}}' \
	    '{"kind":"note","text":"kept as it is",  "z":[1,2]}' \
	    '' \
	    '{"fields":{"s":"é ☃ 𝄞","b":1.50},"key":"b","type":"G","kind":"record"}' \
	    '{"kind":"record","type":"G","key":"c","fields":{"n":3}}' > f.ndjson
	printf '%s\r\n' '{"kind":"record","type":"G","key":"d","rev":"x1","fields":{"n":4}}' >> f.ndjson
}

@test "create, update and delete: the file after is exact, one rewrite for the batch; results carry no rev; lines no change names keep their bytes" {
	seed
	{
		change create e '{"n":5,"s":"ü"}'
		change update c '{"n":30}' ',"rev":"","seen":"'"$(seen_of f.ndjson c)"'"'
		change delete b '' ',"seen":"'"$(seen_of f.ndjson b)"'"'
		change update d '{"n":40,"big":{"$int":"-99999999999999999999"}}' ',"rev":"x1"'
		printf '%s\n' '{"kind":"other","between":true}'
		change create f '{}'
	} > plan
	RECDELTA_FAULT_CALLS=rename RECDELTA_FAULT_TRACE=$PWD/trace run -0 --separate-stderr \
	    faulty recdelta-push --delete-orphans ndjson:f.ndjson < plan
	assert_stderr "$(summary 2 2 0 1 0)"
	assert_equal "$output" "$(
	    res create G e ok '' '{"n":5,"s":"ü"}'
	    res update G c ok '' '{"n":30}'
	    res delete G b ok
	    res update G d ok '' '{"n":40,"big":{"$int":"-99999999999999999999"}}'
	    printf '%s\n' '{"kind":"other","between":true}'
	    res create G f ok '' '{}')"
	# One rename for the five changes, over the file.
	assert_equal "$(cut -d' ' -f2,3 trace)" "rename f.ndjson"
	printf '%s\n' \
	    '{"kind":"record","type":"G","key":"a","rev":"3","fields":{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}}' \
	    '{"kind":"note","text":"kept as it is",  "z":[1,2]}' \
	    '' \
	    '{"kind":"record","type":"G","key":"c","fields":{"n":30}}' > want
	printf '%s\r\n' '{"kind":"record","type":"G","key":"d","fields":{"n":40,"big":{"$int":"-99999999999999999999"}}}' >> want
	printf '%s\n' \
	    '{"kind":"record","type":"G","key":"e","fields":{"n":5,"s":"ü"}}' \
	    '{"kind":"record","type":"G","key":"f","fields":{}}' >> want
	cmp f.ndjson want
	# No temporary file is left.
	assert_equal "$(ls -A)" "$(printf '%s\n' f.ndjson plan trace want)"
	# Read back, the file holds what the plan asked for: nothing to diff
	# but the line of another kind, passing through.
	{
		rec G a '{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}' 3
		rec G c '{"n":30}'
		rec G d '{"n":40,"big":{"$int":"-99999999999999999999"}}'
		rec G e '{"n":5,"s":"ü"}'
		rec G f '{}'
	} > local.ndjson
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:f.ndjson
	assert_output '{"kind":"note","text":"kept as it is",  "z":[1,2]}'
}

@test "changes to one key in one batch apply in turn: create, update by the seen of what the create wrote, delete; a create over a deleted record" {
	seed
	{
		change create n '{"v":1}'
		change update n '{"v":2}' ',"seen":"'"$(printf '%s\n' '{"kind":"record","type":"G","key":"n","fields":{"v":1}}' | "$SEENHASH")"'"'
		change delete c '' ',"seen":"'"$(seen_of f.ndjson c)"'"'
		change create c '{"again":true}'
		change delete n '' ',"rev":"1"'
	} > plan
	run -6 --separate-stderr recdelta-push --retries 0 --delete-orphans ndjson:f.ndjson < plan
	assert_stderr "$(summary 2 1 0 1 1)"
	assert_equal "$output" "$(
	    res create G n ok '' '{"v":1}'
	    res update G n ok '' '{"v":2}'
	    res delete G c ok
	    res create G c ok '' '{"again":true}'
	    res delete G n conflict '' '' ',"error":{"code":"conflict","message":"the record kept changing; retries exhausted"}')"
	# c keeps its place; n, written by this batch, has no rev to match "1".
	assert_equal "$(sed -n 5p f.ndjson)" '{"kind":"record","type":"G","key":"c","fields":{"again":true}}'
	assert_equal "$(tail -n 1 f.ndjson)" '{"kind":"record","type":"G","key":"n","fields":{"v":2}}'
	assert_equal "$(wc -l < f.ndjson)" 7
}

@test "the rev guard: a stale rev, a rev on a record without one, a missing record, a create of an existing key: conflicts with exact lines, the file unchanged" {
	seed
	before=$(sha256 f.ndjson)
	{
		change update a '{"n":1}' ',"rev":"2"'
		change delete d '' ',"rev":"x2"'
		change update c '{"n":1}' ',"rev":"0"'
		change update zz '{"n":1}' ',"rev":"1"'
		change delete zz '' ',"rev":"1"'
		change create b '{"n":1}'
	} > plan
	C=',"error":{"code":"conflict","message":"the record kept changing; retries exhausted"}'
	run -6 --separate-stderr recdelta-push --retries 0 --delete-orphans ndjson:f.ndjson < plan
	assert_stderr "$(summary 0 0 0 0 6)"
	assert_equal "$output" "$(
	    res update G a conflict '' '' "$C"
	    res delete G d conflict '' '' "$C"
	    res update G c conflict '' '' "$C"
	    res update G zz conflict '' '' "$C"
	    res delete G zz conflict '' '' "$C"
	    res create G b conflict '' '' "$C")"
	assert_equal "$(sha256 f.ndjson)" "$before"
	assert_equal "$(ls -A)" "$(printf '%s\n' f.ndjson plan)"
	# Retried, as on every store: the current rev is read back and the
	# update goes in; the delete of a record gone is done already.
	change update a '{"n":1}' ',"rev":"2"' > plan
	change delete zz '' ',"rev":"1"' >> plan
	run -0 --separate-stderr recdelta-push --delete-orphans ndjson:f.ndjson < plan
	assert_equal "$output" "$(res update G a ok '' '{"n":1}'
	    res delete G zz skipped '' '' ',"error":{"code":"gone","message":"already deleted"}')"
	assert_equal "$(head -n 1 f.ndjson)" '{"kind":"record","type":"G","key":"a","fields":{"n":1}}'
}

@test "the content guard: an update or delete whose record was edited since the plan read it (no rev moved) is a conflict, retried or not; the edit stays" {
	seed
	sc=$(seen_of f.ndjson c)
	sa=$(seen_of f.ndjson a)
	{
		change update c '{"n":30}' ",\"seen\":\"$sc\""
		change delete a '' ",\"rev\":\"3\",\"seen\":\"$sa\""
	} > plan
	# Another program edits both records in place, without a rev.
	sed -i -e 's/"key":"c","fields":{"n":3}/"key":"c","fields":{"n":33}/' \
	    -e 's/"n":9223372036854775807,/"n":1,/' f.ndjson
	before=$(sha256 f.ndjson)
	C=',"error":{"code":"conflict","message":"the record kept changing; retries exhausted"}'
	for retries in 0 3; do
		run -6 --separate-stderr recdelta-push --retries "$retries" --delete-orphans ndjson:f.ndjson < plan
		assert_stderr "$(summary 0 0 0 0 2)"
		assert_equal "$output" "$(res update G c conflict '' '' "$C"; res delete G a conflict '' '' "$C")"
		assert_equal "$(sha256 f.ndjson)" "$before"
	done
	# The same edit on both sides is no conflict: now equal, skipped.
	change update c '{"n":33}' ",\"seen\":\"$sc\"" > plan
	run -0 --separate-stderr recdelta-push ndjson:f.ndjson < plan
	assert_equal "$output" "$(res same G c skipped '' '{"n":33}')"
	# A member order or spacing the plan did not see is no edit.
	sed -i -e 's/"key":"c","fields":{"n":33}/"key":"c", "fields": {"n":33.0}/' f.ndjson
	change update c '{"n":34}' ",\"seen\":\"$(seen_of f.ndjson c)\"" > plan
	run -0 --separate-stderr recdelta-push ndjson:f.ndjson < plan
	assert_equal "$(sed -n 5p f.ndjson)" '{"kind":"record","type":"G","key":"c","fields":{"n":34}}'
}

@test "a file changed between its reading and the rename: every change of the batch conflicts, the other writer's content stays, no temporary file is left" {
	[ -f "$SHIM" ] || fail "$SHIM: missing; make check builds it"
	C=',"error":{"code":"conflict","message":"the record kept changing; retries exhausted"}'
	{
		change create e '{"n":5}'
		change update c '{"n":30}' ",\"seen\":\"$(seed; seen_of f.ndjson c)\""
	} > plan
	# Appended to (size and time move), then rewritten with the same size
	# and time (only the bytes tell).
	for how in append same-size; do
		seed
		chmod 640 f.ndjson
		# Stopped before its first fsync, the temporary file's: the file
		# is read and the new content written aside.
		RECDELTA_FAULT_CALLS=fsync paused 1 recdelta-push --retries 0 ndjson:f.ndjson \
		    < plan > out 2> err
		wait_paused || fail "$how: push ended before its fsync: $(cat err)"
		case $how in
		append)
			printf '%s\n' '{"kind":"record","type":"G","key":"w","fields":{}}' >> f.ndjson ;;
		same-size)
			cp -p f.ndjson ref
			sed -i.orig 's/"n":3}/"n":7}/' f.ndjson
			touch -r ref f.ndjson
			rm ref f.ndjson.orig ;;
		esac
		theirs=$(sha256 f.ndjson)
		resume
		PAUSED_STATUS=0
		wait "$PAUSED_PID" || PAUSED_STATUS=$?
		assert_equal "$PAUSED_STATUS" 6
		assert_equal "$(cat out)" "$(res create G e conflict '' '' "$C"; res update G c conflict '' '' "$C")"
		assert_equal "$(cat err)" "$(summary 0 0 0 0 2)"
		assert_equal "$(sha256 f.ndjson)" "$theirs"
		assert_equal "$(ls -A)" "$(printf '%s\n' err f.ndjson out plan)"
	done
}

@test "the file's mode is kept; a missing file is created (said once) with the umask's mode; a batch of which nothing applies writes nothing, creates nothing" {
	seed
	chmod 604 f.ndjson
	change create e '{}' | recdelta-push -q ndjson:f.ndjson
	assert_equal "$(stat -c %a f.ndjson)" 604
	# Nothing applies: not even a missing file is made.
	change update x '{}' ',"rev":"1"' > plan
	run -6 --separate-stderr recdelta-push --retries 0 ndjson:new.ndjson < plan
	[ ! -e new.ndjson ]
	change create x '{"k":1}' > plan
	# A folder that does not exist is no file to create.
	run -4 --separate-stderr recdelta-push ndjson:nosuch/new.ndjson < plan
	assert_output ''
	assert_stderr "recdelta-push: nosuch/new.ndjson: No such file or directory"
	run -0 --separate-stderr bash -c 'umask 027; recdelta-push ndjson:new.ndjson < plan'
	assert_equal "${stderr_lines[0]}" 'recdelta-push: created "ndjson:new.ndjson" (it did not exist)'
	assert_equal "$output" "$(res create G x ok '' '{"k":1}')"
	assert_equal "$(cat new.ndjson)" '{"kind":"record","type":"G","key":"x","fields":{"k":1}}'
	assert_equal "$(stat -c %a new.ndjson)" 640
	# Written to again: not created again.
	change create y '{}' > plan
	run -0 --separate-stderr recdelta-push ndjson:new.ndjson < plan
	assert_stderr "$(summary 1 0 0 0 0)"
	assert_equal "$(ls -A)" "$(printf '%s\n' f.ndjson new.ndjson plan)"
}

@test "standard input cannot be written: - and ndjson:- are usage errors (exit 2), nothing read" {
	change create e '{}' > plan
	for t in - ndjson:-; do
		run -2 --separate-stderr recdelta-push "$t" < plan
		assert_output ''
		assert_stderr "recdelta-push: $t: the ndjson: store cannot be written"
	done
}

@test "bad input in the file: a duplicated (type, key) or a line that does not parse is exit 3 naming file:line, and nothing is written" {
	seed
	printf '%s\n' '{"kind":"record","type":"G","key":"c","fields":{"n":9}}' >> f.ndjson
	before=$(sha256 f.ndjson)
	change create e '{}' > plan
	run -3 --separate-stderr recdelta-push ndjson:f.ndjson < plan
	assert_output ''
	assert_stderr 'recdelta-push: f.ndjson:7: duplicate record (type "G", key "c"), first at line 5'
	assert_equal "$(sha256 f.ndjson)" "$before"
	seed
	printf '%s\n' '{"kind":"record","type":"G","fields":{}}' >> f.ndjson
	run -3 --separate-stderr recdelta-push ndjson:f.ndjson < plan
	assert_stderr 'recdelta-push: f.ndjson:7: missing "key"'
	assert_equal "$(ls -A)" "$(printf '%s\n' f.ndjson plan)"
}

@test "a round trip: diff into an ndjson: file, push, and nothing is left to diff; the plan again is all skipped" {
	{
		rec G a '{"n":0}' 3
		rec G b '{"b":1.50}' 1
		printf '%s\n' '{"kind":"note"}'
		rec G gone '{}' 7
	} > r.ndjson
	{
		rec G a '{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}'
		rec G b '{"b":1.5}'
		rec G new '{"s":"é ☃ 𝄞"}'
	} > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r ndjson:r.ndjson > plan
	run -0 --separate-stderr recdelta-push --delete-orphans ndjson:r.ndjson < plan
	assert_stderr "$(summary 1 1 0 1 0)"
	# Nothing to diff; the line of another kind passes through.
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r ndjson:r.ndjson
	assert_output '{"kind":"note"}'
	assert_equal "$(cat r.ndjson)" "$(
	    rec G a '{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}'
	    rec G b '{"b":1.50}' 1
	    printf '%s\n' '{"kind":"note"}'
	    rec G new '{"s":"é ☃ 𝄞"}')"
	# The plan again: each change conflicts, is read back, and is equal.
	run -0 --separate-stderr recdelta-push --delete-orphans ndjson:r.ndjson < plan
	assert_stderr "$(summary 0 0 3 0 0)"
	assert_equal "$output" "$(
	    printf '%s\n' '{"kind":"note"}'
	    res same G a skipped '' '{"n":9223372036854775807,"big":{"$int":"123456789012345678901234"}}'
	    res same G new skipped '' '{"s":"é ☃ 𝄞"}'
	    res delete G gone skipped '' '' ',"error":{"code":"gone","message":"already deleted"}')"
}

@test "--max-delete N% counts the file's live records: over budget, exit 5 and the file unchanged; within it, the deletes are applied" {
	seed
	printf '%s\n' '{"kind":"record","type":"G","key":"t","deleted":true}' >> f.ndjson
	before=$(sha256 f.ndjson)
	{
		change delete a '' ',"rev":"3"'
		change delete d '' ',"rev":"x1"'
	} > plan
	# Four live records, the tombstone aside: 25% is one delete.
	run -5 --separate-stderr recdelta-push --delete-orphans --max-delete 25% ndjson:f.ndjson < plan
	assert_output ''
	assert_equal "${stderr_lines[0]}" 'recdelta-push: refused: 2 deletes exceed the budget of 1 (--max-delete 25%)'
	assert_equal "$(sha256 f.ndjson)" "$before"
	run -0 --separate-stderr recdelta-push --delete-orphans --max-delete 50% ndjson:f.ndjson < plan
	assert_equal "$output" "$(res delete G a ok; res delete G d ok)"
	assert_equal "$(grep -c '"kind":"record"' f.ndjson)" 3
}
