#!/usr/bin/env bats
# Remote edits in the one-way smart-sync: a record changed on the remote
# since the last sync (the checkpoint's base) in a field that an update
# writes.  recdelta-diff --base names those fields in "edited";
# recdelta-push overwrites such an update, logs it by name and counts it,
# or with --keep-remote-edits skips it and leaves the remote edit; the
# flow passes the base to the diff of every full run.  The remote is a dir:
# store that the tests write with helpers/dirstore, as another writer
# would, independently of our writer.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore

# The remote as last synced: a, b and c, each {"x":1,"y":1} at rev 1; the
# local data the same.
suite_setup() {
	export RECDELTA_STATE=$PWD/state.db
	for k in a b c; do
		rec T "$k" '{"x":1,"y":1}'
	done > local.ndjson
	for k in a b c; do
		rec T "$k" '{"x":1,"y":1}' 1
	done > remote.ndjson
	make_dir_store remote < remote.ndjson
}

sync() {
	recdelta smart-sync -l ndjson:local.ndjson -r dir:remote "$@"
}

# set_local KEY FIELDS, set_remote KEY FIELDS REV: change one record of the
# local data, or of the remote as another writer does (a new version, the
# store written again by the helper from what it holds).
set_local() {
	sed -i -E "/\"key\":\"$1\"/s/\"fields\":\\{[^}]*\\}/\"fields\":${2//\//\\/}/" local.ndjson
}
set_remote() {
	local l
	l=$(rec T "$1" "$2" "$3")
	recdelta-fetch dir:remote > remote.ndjson || return 1
	sed -i -E "/\"key\":\"$1\"/c\\
$l" remote.ndjson
	rm -rf remote
	make_dir_store remote < remote.ndjson
}

# remote_fields KEY: the fields the remote holds for KEY.
remote_fields() {
	recdelta-fetch dir:remote | jq -c --arg k "$1" 'select(.key == $k) | .fields'
}

# logged MSG: the keys and fields of the log lines of recdelta-push with MSG.
logged() {
	jq -r --arg m "$1" 'select(.prog == "recdelta-push" and .msg == $m) |
	    [.key, (.fields | tostring)] | @tsv' log.ndjson
}

@test "diff --base names in \"edited\" the remote edits an update overwrites" {
	rec T a '{"x":1,"y":9,"z":1}' 2 > r.ndjson
	rec T b '{"x":1,"y":5}' 2 >> r.ndjson
	rec T c '{"x":1,"y":1}' 1 >> r.ndjson
	rec T d '{"x":1}' 1 >> r.ndjson
	rec T a '{"x":1,"y":1,"z":1}' 1 > b.ndjson
	rec T b '{"x":1,"y":1}' 1 >> b.ndjson
	rec T c '{"x":1,"y":1}' 1 >> b.ndjson
	# a: local x, remote y (a different field); b: both made y 5 (no
	# loss); c: local only; d: not in the base (nothing known).
	rec T a '{"x":2,"y":1,"z":1}' > l.ndjson
	rec T b '{"x":2,"y":5}' >> l.ndjson
	rec T c '{"x":2,"y":1}' >> l.ndjson
	rec T d '{"x":2}' >> l.ndjson
	run -0 --separate-stderr recdelta-diff -l ndjson:l.ndjson -r ndjson:r.ndjson \
	    --base ndjson:b.ndjson
	assert_equal "$stderr" ""
	assert_output - <<'OUT'
{"kind":"change","op":"update","type":"T","key":"a","rev":"2","fields":{"x":2,"y":1,"z":1},"changed":["x","y"],"edited":["y"]}
{"kind":"change","op":"update","type":"T","key":"b","rev":"2","fields":{"x":2,"y":5},"changed":["x"]}
{"kind":"change","op":"update","type":"T","key":"c","rev":"1","fields":{"x":2,"y":1},"changed":["x"]}
{"kind":"change","op":"update","type":"T","key":"d","rev":"1","fields":{"x":2},"changed":["x"]}
OUT
	# Under the rules: a remote edit within a tolerance is none.
	run -0 recdelta-diff -l ndjson:l.ndjson -r ndjson:r.ndjson \
	    --base ndjson:b.ndjson --tolerance y=10 -t T
	refute_output --partial '"edited"'
	# An empty base knows nothing; standard input is refused as the base.
	: > empty.ndjson
	run -0 recdelta-diff -l ndjson:l.ndjson -r ndjson:r.ndjson --base ndjson:empty.ndjson
	refute_output --partial '"edited"'
	run -2 --separate-stderr recdelta-diff -l ndjson:l.ndjson -r ndjson:r.ndjson --base -
	assert_equal "$stderr" "recdelta-diff: --base cannot be standard input"
}

@test "push: an update naming remote edits is logged and counted, or skipped with --keep-remote-edits" {
	make_dir_store remote < remote.ndjson
	printf '%s\n' \
	    '{"kind":"change","op":"update","type":"T","key":"a","rev":"1","fields":{"x":2,"y":1},"changed":["x","y"],"edited":["y"]}' \
	    '{"kind":"change","op":"update","type":"T","key":"c","rev":"1","fields":{"x":2,"y":1},"changed":["x"]}' \
	    > plan.ndjson
	before=$(tree_digest remote)
	run -0 --separate-stderr recdelta-push --keep-remote-edits -q --log log.ndjson dir:remote < plan.ndjson
	assert_equal "$stderr" "recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
	assert_line -n 0 '{"kind":"result","op":"update","type":"T","key":"a","status":"skipped","rev":"1","error":{"code":"remote_edit","message":"kept a remote edit (--keep-remote-edits)"}}'
	assert_line -n 1 --partial '"key":"c","status":"ok"'
	assert_equal "$(logged "kept a remote edit")" "$(printf 'a\t["y"]')"
	assert_equal "$(remote_fields a)" '{"x":1,"y":1}'

	# Without it: written, and said even with -q.
	sed -i 's/"rev":"1","fields":{"x":2,"y":1},"changed":\["x"\]/"rev":"2","fields":{"x":3,"y":1},"changed":["x"]/' plan.ndjson
	run -0 --separate-stderr recdelta-push -q --log log.ndjson dir:remote < plan.ndjson
	assert_equal "$stderr" "recdelta-push: overwrote 1 remote edit (see --log)"
	assert_equal "$(logged "overwrote a remote edit")" "$(printf 'a\t["y"]')"
	assert_equal "$(remote_fields a)" '{"x":2,"y":1}'
	[ "$(tree_digest remote)" != "$before" ]

	# "edited" only on an update, and an array.
	echo '{"kind":"change","op":"create","type":"T","key":"n","fields":{},"edited":["y"]}' > bad.ndjson
	run -3 --separate-stderr recdelta-push dir:remote < bad.ndjson
	assert_equal "$stderr" 'recdelta-push: <stdin>:1: "edited" on a change that is no update'
}

@test "smart-sync overwrites a remote edit, says how many, and logs each record by name" {
	sync -q
	# Another writer changes y of a and b; locally a gets a new x (another
	# field) and b a new y (the same field); c changes only locally.
	set_remote a '{"x":1,"y":9}' 2
	set_remote b '{"x":1,"y":9}' 2
	set_local a '{"x":2,"y":1}'
	set_local b '{"x":1,"y":7}'
	set_local c '{"x":2,"y":1}'
	run -0 --separate-stderr sync --log "$PWD/log.ndjson"
	assert_output ""
	assert_equal "$stderr" "$(printf '%s\n' \
	    'Created 0, Updated 3, Skipped 0 unchanged, Deleted 0, Conflicts 0' \
	    'recdelta-push: overwrote 2 remote edits (see --log)')"
	assert_equal "$(logged "overwrote a remote edit")" "$(printf 'a\t["y"]\nb\t["y"]')"
	assert_equal "$(remote_fields a)" '{"x":2,"y":1}'
	assert_equal "$(remote_fields b)" '{"x":1,"y":7}'
	# In step now: the next run overwrites nothing.
	run -0 --separate-stderr sync -q
	assert_equal "$stderr" ""

	# One edit, singular; -q keeps the line, the summary goes.
	set_remote c '{"x":2,"y":4}' 3
	run -0 --separate-stderr sync -q
	assert_equal "$stderr" "recdelta-push: overwrote 1 remote edit (see --log)"
	assert_equal "$(remote_fields c)" '{"x":2,"y":1}'
}

@test "smart-sync --keep-remote-edits leaves a remote edit, exits 0, and sees it again next time" {
	sync -q
	set_remote a '{"x":1,"y":9}' 2
	set_local a '{"x":2,"y":1}'
	set_local c '{"x":2,"y":1}'
	run -0 --separate-stderr sync --keep-remote-edits --log "$PWD/log.ndjson"
	assert_equal "$stderr" "$(printf '%s\n' \
	    'Created 0, Updated 1, Skipped 1 unchanged, Deleted 0, Conflicts 0' \
	    'recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)')"
	assert_equal "$(logged "kept a remote edit")" "$(printf 'a\t["y"]')"
	# The remote edit stays, and the local change of a waits with it.
	assert_equal "$(remote_fields a)" '{"x":1,"y":9}'
	assert_equal "$(remote_fields c)" '{"x":2,"y":1}'
	# The base was not advanced for a: the next run finds the edit again.
	run -0 jq -c 'select(.key == "a") | .fields' <(recdelta-checkpoint base)
	assert_output '{"x":1,"y":1}'
	run -0 --separate-stderr sync -q --keep-remote-edits
	assert_equal "$stderr" "recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
	# A kept edit is a skipped result, as the unchanged records are; the
	# runs are done.
	run -0 jq -r '.status + " " + (.counts.skipped | tostring)' <(recdelta-checkpoint history --json)
	assert_output "$(printf 'done 3\ndone 2\ndone 3')"
	# Until the user lets the local data win.
	run -0 --separate-stderr sync -q
	assert_equal "$stderr" "recdelta-push: overwrote 1 remote edit (see --log)"
	assert_equal "$(remote_fields a)" '{"x":2,"y":1}'
}

@test "smart-sync: no remote edit where the remote made the local change, or before any base" {
	# No base yet: nothing is known, nothing counted.
	set_remote a '{"x":1,"y":9}' 2
	run -0 --separate-stderr sync -q
	assert_equal "$stderr" ""
	# Both sides set y to 5; x changes locally: no edit is lost.
	set_remote b '{"x":1,"y":5}' 2
	set_local b '{"x":2,"y":5}'
	run -0 --separate-stderr sync -q
	assert_equal "$stderr" ""
	assert_equal "$(remote_fields b)" '{"x":2,"y":5}'
	# A dry run says what it would do, and writes nothing.
	set_remote c '{"x":1,"y":6}' 2
	before=$(tree_digest remote)
	run -0 --separate-stderr sync -n -q
	assert_equal "$stderr" "recdelta-push: would overwrite 1 remote edit (see --log)"
	assert_equal "$(tree_digest remote)" "$before"
}

@test "smart-sync --incremental: a remote edit read from dir:'s change feed is counted, or kept, as a full run does" {
	sync -q
	set_remote a '{"x":1,"y":9}' 2
	set_local a '{"x":2,"y":1}'
	# The plan is made against the base with the feed folded in: the edit
	# of y is seen, as a full run sees it.
	run -0 --separate-stderr sync -q --incremental --keep-remote-edits
	assert_equal "$stderr" "recdelta-push: kept 1 remote edit: not pushed (--keep-remote-edits)"
	assert_equal "$(remote_fields a)" '{"x":1,"y":9}'
	run -0 --separate-stderr sync -q --incremental --log "$PWD/log.ndjson"
	assert_equal "$stderr" "recdelta-push: overwrote 1 remote edit (see --log)"
	assert_equal "$(logged "overwrote a remote edit")" "$(printf 'a\t["y"]')"
	assert_equal "$(remote_fields a)" '{"x":2,"y":1}'
}
