#!/usr/bin/env bats
# The in-step digest: recdelta-diff --from-state (the remote is the base
# snapshot, read from the state; local lines the digest vouches for counted
# same unread), --digest-out, recdelta-checkpoint prune --sparse --digest
# (the digest settled against the base and kept), base --count, and
# smart-sync --incremental, which plans and prunes so.  Every plan made
# through the digest is compared with the plan the whole base gives.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	export RECDELTA_STATE=$PWD/state.db
	export RECDELTA_LOG=$PWD/log.ndjson
}

# Records T a..j in the base (recorded as a push's results would be), and
# the same ten lines in local.ndjson.
ten() {
	local k i=0
	for k in a b c d e f g h i j; do
		i=$((i + 1))
		res create T "$k" ok "1" "{\"n\":$i,\"s\":\"v$k\"}"
		rec T "$k" "{\"n\":$i,\"s\":\"v$k\"}" >> local.ndjson
	done | recdelta-checkpoint record --scope S > /dev/null
}

# plan [DIFF-OPTION]...: the sparse plan through the state (digest.bin
# written), into plan.ndjson; whole.ndjson the plan against a copy of the
# whole base, which must be the same.
plan() {
	recdelta-checkpoint base > base.ndjson
	recdelta-diff --all --sparse --before --allow-empty "$@" -l local.ndjson \
	    -r ndjson:base.ndjson > whole.ndjson
	: > "$RECDELTA_LOG"
	recdelta-diff --all --sparse --before --allow-empty "$@" -l local.ndjson \
	    --from-state "$RECDELTA_STATE" --digest-out digest.bin > plan.ndjson
	assert_equal "$(cat plan.ndjson)" "$(cat whole.ndjson)"
}

# settle [DIFF-OPTION]...: plan, then prune with no result: the digest of
# local.ndjson as the base holds it.
settle() {
	plan "$@"
	recdelta-checkpoint prune --sparse --digest digest.bin < /dev/null
}

# hits: what the last plan's log says of the digest ("none": not used).
hits() {
	local l
	l=$(grep '"msg":"in-step digest"' "$RECDELTA_LOG" | tail -n 1)
	case $l in
	*'"hits":'*) l=${l#*\"hits\":}; echo "${l%%,*}" ;;
	*'"fallback":'*) echo fallback ;;
	*) echo none ;;
	esac
}

@test "diff --from-state: the plan the whole base gives, first without a digest, then counting the lines in step unread" {
	ten
	settle
	assert_equal "$(hits)" none
	assert_equal "$(sqlite3 state.db 'SELECT id FROM insync')" 1
	plan
	assert_equal "$(hits)" 10
	assert_equal "$(cat plan.ndjson)" '{"kind":"summary","stage":"diff","counts":{"T":{"same":10,"create":0,"update":0,"delete":0}}}'
	# One changed, one new, one gone, two moved: the plan is still the
	# whole base's; the changed line is read, the others counted.
	sed -e 's/"n":2,/"n":20,/' -e '/"key":"d"/d' local.ndjson > l2
	{ grep '"key":"j"' l2; grep -v '"key":"[ij]"' l2; grep '"key":"i"' l2; rec T k '{"n":11}'; } > local.ndjson
	plan
	run -0 cat plan.ndjson
	assert_line '{"kind":"change","op":"update","type":"T","key":"b","rev":"1","fields":{"n":20,"s":"vb"},"changed":["n"],"before":{"rev":"1","fields":{"n":2,"s":"vb"}}}'
	assert_line '{"kind":"change","op":"create","type":"T","key":"k","fields":{"n":11}}'
	assert_line --partial '{"kind":"change","op":"delete","type":"T","key":"d","rev":"1"'
	assert_line '{"kind":"summary","stage":"diff","counts":{"T":{"same":8,"create":1,"update":1,"delete":1}}}'
	[ "$(hits)" -ge 6 ]
}

@test "diff --from-state: a base row written after the digest was made is never vouched for, whoever wrote it" {
	ten
	settle
	# The state's own recording of another run's result.
	res update T b ok 2 '{"n":99}' | recdelta-checkpoint record --scope S > /dev/null
	# Any other writer of the base, by hand.
	sqlite3 state.db "UPDATE base SET fields = '{\"n\":77}', hash = 'x' WHERE key = 'c';
	    DELETE FROM base WHERE key = 'e';
	    INSERT INTO base(type, key, rev, hash, fields) VALUES ('T', 'z', '1', 'y', '{}')"
	plan
	run -0 cat plan.ndjson
	assert_line --partial '{"kind":"change","op":"update","type":"T","key":"b","rev":"2",'
	assert_line --partial '{"kind":"change","op":"update","type":"T","key":"c","rev":"1",'
	assert_line '{"kind":"change","op":"create","type":"T","key":"e","fields":{"n":5,"s":"ve"}}'
	assert_line --partial '{"kind":"change","op":"delete","type":"T","key":"z","rev":"1"'
	assert_equal "$(hits)" 7
	# Settled, the digest speaks for them again: pushed as planned, the
	# base would hold the local lines; here nothing was pushed.
	recdelta-checkpoint prune --sparse --digest digest.bin < /dev/null
	assert_equal "$(sqlite3 state.db 'SELECT count(*) FROM insync_dirty')" 0
	plan
	assert_equal "$(hits)" 7
	assert_equal "$(grep -c '"kind":"change"' plan.ndjson)" 4
}

@test "diff --from-state: a base row changed to what the line says again is vouched for only once prune has checked it" {
	ten
	settle
	sed 's/"n":3,/"n":30,/' local.ndjson > l2 && mv l2 local.ndjson
	plan
	assert_equal "$(grep -c '"op":"update"' plan.ndjson)" 1
	# The push failed: the base keeps n 3, the line stays unvouched.
	recdelta-checkpoint prune --sparse --digest digest.bin < /dev/null
	plan
	assert_equal "$(grep -c '"op":"update"' plan.ndjson)" 1
	assert_equal "$(hits)" 9
	# The push made it: recorded, then checked by prune, then counted.
	res update T c ok 2 '{"n":30,"s":"vc"}' | recdelta-checkpoint record --scope S > /dev/null
	recdelta-checkpoint prune --sparse --digest digest.bin < /dev/null
	plan
	assert_equal "$(hits)" 10
	# What a push wrote that is not the line (a store that rewrote a
	# field) is not vouched for.
	sed 's/"n":4,/"n":40,/' local.ndjson > l2 && mv l2 local.ndjson
	plan
	res update T d ok 2 '{"n":40,"s":"other"}' | recdelta-checkpoint record --scope S > /dev/null
	recdelta-checkpoint prune --sparse --digest digest.bin < /dev/null
	plan
	assert_equal "$(hits)" 9
}

@test "diff --from-state: a line met twice is the same bad input as without the digest, and nothing is vouched for" {
	ten
	settle
	grep '"key":"c"' local.ndjson > twice
	cat twice >> local.ndjson
	recdelta-checkpoint base > base.ndjson
	run -3 --separate-stderr recdelta-diff --sparse -l local.ndjson -r ndjson:base.ndjson
	want=$stderr
	run -3 --separate-stderr recdelta-diff --sparse -l local.ndjson --from-state state.db
	assert_equal "$stderr" "$want"
	assert_equal "$(hits)" fallback
	# A key twice, one line in step and one not.
	sed 's/"n":3,/"n":33,/' twice > l2 && mv l2 twice
	head -n 10 local.ndjson > l2 && cat twice >> l2 && mv l2 local.ndjson
	run -3 --separate-stderr recdelta-diff --sparse -l local.ndjson -r ndjson:base.ndjson
	want=$stderr
	assert_equal "$want" 'recdelta-diff: local.ndjson:11: duplicate record (type "T", key "c"), first at line 3'
	run -3 --separate-stderr recdelta-diff --sparse -l local.ndjson --from-state state.db
	assert_equal "$stderr" "$want"
}

@test "diff --from-state: -i, -t and --shard give the whole base's plan; a type that ignores a field vouches for no line" {
	ten
	for k in x y; do
		res create U "$k" ok 1 "{\"n\":1,\"at\":1}"
	done | recdelta-checkpoint record --scope S > /dev/null
	rec U x '{"n":1,"at":2}' >> local.ndjson
	rec U y '{"n":1,"at":1}' >> local.ndjson
	echo 'U ignore at' > rules
	settle --rules rules
	plan --rules rules
	# y is the base's to the byte but of a type with ignored fields.
	assert_equal "$(hits)" 10
	assert_equal "$(tail -n 1 plan.ndjson)" '{"kind":"summary","stage":"diff","counts":{"T":{"same":10,"create":0,"update":0,"delete":0},"U":{"same":2,"create":0,"update":0,"delete":0}}}'
	plan -t U
	assert_equal "$(hits)" 0
	plan -t T
	assert_equal "$(hits)" 10
	# A shard's plan: the state holds every shard's rows, so the whole
	# base is read, and the plan is still the whole base's.
	plan --shard 1/2 -t T
	assert_equal "$(hits)" fallback
	# Without rules, x differs: an update; the digest is still used.
	plan
	assert_equal "$(grep -c '"op":"update"' plan.ndjson)" 1
	assert_equal "$(hits)" 10
}

@test "prune --digest: a delta when little changed, a whole digest when much did; a delta against another whole digest drops the digest, and its triggers" {
	ten
	assert_equal "$(sqlite3 state.db "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'")" 0
	# Forty records: one changed is less than an eighth.
	for i in $(seq 1 30); do
		res create T "m$i" ok 1 "{\"n\":$i}"
		rec T "m$i" "{\"n\":$i}" >> local.ndjson
	done | recdelta-checkpoint record --scope S > /dev/null
	settle
	sed 's/"n":1,/"n":100,/' local.ndjson > l2 && mv l2 local.ndjson
	settle
	assert_equal "$(sqlite3 state.db 'SELECT id FROM insync ORDER BY id' | tr '\n' ' ')" '1 2 '
	cp digest.bin delta.bin
	sed 's/"s":"v/"s":"w/' local.ndjson > l2 && mv l2 local.ndjson
	settle
	assert_equal "$(sqlite3 state.db 'SELECT id FROM insync ORDER BY id' | tr '\n' ' ')" '1 '
	# delta.bin was made against the whole digest before this one.
	assert_equal "$(sqlite3 state.db "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'")" 3
	run -0 recdelta-checkpoint prune --sparse --digest delta.bin < /dev/null
	assert_equal "$(sqlite3 state.db 'SELECT count(*) FROM insync')" 0
	# Its triggers go with it: a state without a digest pays nothing for
	# them on each write to the base.
	assert_equal "$(sqlite3 state.db "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'")" 0
	assert_equal "$(sqlite3 state.db 'SELECT count(*) FROM base_count')" 0
	plan
	assert_equal "$(hits)" none
}

@test "prune --digest: a file that is not a digest is bad input, exit 3, nothing written; --digest needs --sparse" {
	ten
	settle
	before=$(sqlite3 state.db 'SELECT hex(digest) FROM insync; SELECT * FROM base; SELECT count(*) FROM runs' | sha256sum)
	echo '{"kind":"summary"}' > junk.bin
	res update T a ok 2 '{"n":5}' > results.ndjson
	run -3 --separate-stderr recdelta-checkpoint prune --sparse --digest junk.bin < results.ndjson
	assert_equal "$stderr" 'recdelta-checkpoint: junk.bin: not an in-step digest this build reads (too short)'
	head -c 200 digest.bin > cut.bin
	run -3 --separate-stderr recdelta-checkpoint prune --sparse --digest cut.bin < results.ndjson
	assert_equal "$stderr" 'recdelta-checkpoint: cut.bin: not an in-step digest this build reads (truncated)'
	run -4 --separate-stderr recdelta-checkpoint prune --sparse --digest missing.bin < results.ndjson
	assert_equal "$(sqlite3 state.db 'SELECT hex(digest) FROM insync; SELECT * FROM base; SELECT count(*) FROM runs' | sha256sum)" "$before"
	run -2 --separate-stderr recdelta-checkpoint prune --digest digest.bin < results.ndjson
	assert_equal "${stderr%%$'\n'*}" 'recdelta-checkpoint: --digest needs --sparse'
}

@test "base --count: the base's rows, of the -t types, without reading them; diff --from-state's words checked" {
	run -0 recdelta-checkpoint base --count
	assert_output 0
	ten
	res create U x ok 1 '{}' | recdelta-checkpoint record --scope S > /dev/null
	run -0 recdelta-checkpoint base --count
	assert_output 11
	run -0 recdelta-checkpoint base --count -t U -t U -t V
	assert_output 1
	res delete T a ok | recdelta-checkpoint record --scope S > /dev/null
	run -0 recdelta-checkpoint base --count -t T
	assert_output 9
	run -2 --separate-stderr recdelta-diff -l local.ndjson -r local.ndjson --from-state state.db
	assert_equal "$stderr" 'recdelta-diff: --from-state and --remote: one or the other'
	run -2 --separate-stderr recdelta-diff -l local.ndjson --from-state state.db --where .n
	assert_equal "$stderr" 'recdelta-diff: --from-state and --where: one or the other'
	run -2 --separate-stderr recdelta-diff -l local.ndjson -r local.ndjson --digest-out d
	assert_equal "$stderr" 'recdelta-diff: --digest-out needs --from-state'
	# A state that does not exist is an empty base: everything is new.
	run -0 recdelta-diff --sparse -l local.ndjson --from-state none.db
	assert_line '{"kind":"summary","stage":"diff","counts":{"T":{"same":0,"create":10,"update":0,"delete":0}}}'
	[ ! -e none.db ]
}

@test "smart-sync --incremental over dir: from the second run on the plan counts the lines in step from the digest, and the store ends as the local data" {
	for i in $(seq 1 40); do rec T "k$i" "{\"n\":$i}"; done > local.ndjson
	mkdir store
	recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r dir:store
	recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r dir:store
	sed -e 's/"n":7}/"n":70}/' -e '/"k9"/d' local.ndjson > l2 && mv l2 local.ndjson
	rec T k41 '{"n":41}' >> local.ndjson
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync --incremental --delete-orphans -l ndjson:local.ndjson -r dir:store
	assert_equal "$(hits)" 38
	recdelta-fetch dir:store | jq -c 'select(.fields) | {key, fields}' | sort > got
	jq -c '{key, fields}' local.ndjson | sort > want
	assert_equal "$(cat got)" "$(cat want)"
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r dir:store
	assert_equal "$(hits)" 40
}

@test "smart-sync --incremental over sqlite: (no change feed): the digest is made, used and kept; the base's counts stay its rows" {
	tgt="sqlite:$PWD/t.db?table=items&key=key&type=T"
	for i in $(seq 1 40); do rec T "k$i" "{\"n\":$i}"; done > local.ndjson
	recdelta smart-sync -q -l ndjson:local.ndjson -r "$tgt"
	: > "$RECDELTA_LOG"
	recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(hits)" none
	sed -e 's/"n":3}/"n":30}/' -e '/"k5"/d' local.ndjson > l2 && mv l2 local.ndjson
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync -q --incremental --delete-orphans -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(hits)" 38
	recdelta-fetch "$tgt" | jq -c 'select(.fields) | {key, fields}' | sort > got
	jq -c '{key, fields}' local.ndjson | sort > want
	assert_equal "$(cat got)" "$(cat want)"
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(hits)" 39
	# Another writer of the target; a full run puts it back, writing the
	# base row: the digest is not trusted for it until a prune settles it.
	sqlite3 t.db "UPDATE items SET n = 99, rev = rev + 1 WHERE key = 'k7'"
	recdelta smart-sync -q -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(sqlite3 t.db "SELECT n FROM items WHERE key = 'k7'")" 7
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(hits)" 38
	: > "$RECDELTA_LOG"
	run -0 recdelta smart-sync -q --incremental -l ndjson:local.ndjson -r "$tgt"
	assert_equal "$(hits)" 39
	assert_equal "$(recdelta-fetch "$tgt" | jq -c 'select(.fields) | {key, fields}' | sort)" "$(cat want)"
	assert_equal "$(sqlite3 state.db 'SELECT sum(n) FROM base_count')" "$(sqlite3 state.db 'SELECT count(*) FROM base')"
}
