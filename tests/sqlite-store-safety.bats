#!/usr/bin/env bats
# The sqlite: store on tables it did not make: rows without a rev (NULL, or
# no rev column) read as rev "0" and take guarded updates and deletes; the
# table and its columns named in another case are read and written alike;
# a store word whose parameters hold a NUL byte or non-UTF-8 bytes once
# decoded is refused.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	export RECDELTA_STATE=$BATS_TEST_TMPDIR/state.db
	unset RECDELTA_LOG
}

# rows DB SQL: the rows of a query, "|"-separated, NULL as "-".
rows() {
	sqlite3 -nullvalue - "$1" "$2"
}

# summary CREATED UPDATED SKIPPED DELETED [CONFLICTS]: push's summary line.
summary() {
	printf 'Created %s, Updated %s, Skipped %s unchanged, Deleted %s, Conflicts %s' \
	    "$1" "$2" "$3" "$4" "${5:-0}"
}

@test "rows with a NULL rev read as rev \"0\"; an update or delete guarded by it is applied and an update writes the table's next rev; a stale \"0\" conflicts" {
	sqlite3 u.db "CREATE TABLE games(id TEXT PRIMARY KEY, rev INTEGER, name TEXT);
	    INSERT INTO games VALUES('g1', NULL, 'old'), ('g2', NULL, 'gone'), ('g3', NULL, 'same');"
	S='sqlite:u.db?table=games&key=id'
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_equal "$stderr" ''
	assert_equal "$output" "$(rec games g1 '{"name":"old"}' 0; rec games g2 '{"name":"gone"}' 0; rec games g3 '{"name":"same"}' 0)"
	{ rec games g1 '{"name":"new"}'; rec games g3 '{"name":"same"}'; rec games g4 '{"name":"added"}'; } > local.ndjson

	recdelta-diff -l ndjson:local.ndjson -r "$S" > plan
	assert_equal "$(jq -c '[.op, .key, .rev]' plan)" "$(printf '%s\n' '["update","g1","0"]' '["create","g4",null]' '["delete","g2","0"]')"
	run -0 --separate-stderr recdelta-push --delete-orphans "$S" < plan
	assert_equal "$stderr" "$(summary 1 1 0 1)"
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.op, .key, .status, .rev]')" \
	    "$(printf '%s\n' '["update","g1","ok","1"]' '["create","g4","ok","2"]' '["delete","g2","ok",null]')"
	assert_equal "$(rows u.db 'SELECT id, rev, name FROM games ORDER BY id')" "$(printf '%s\n' 'g1|1|new' 'g3|-|same' 'g4|2|added')"

	# The plan again: g1 is at rev 1 now, so its "0" is stale.
	sed -n 1p plan > stale
	run -6 --separate-stderr recdelta-push --retries 0 "$S" < stale
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .status]')" '["g1","conflict"]'
	# A rev that is not "0" does not match a NULL one.
	printf '%s\n' '{"kind":"change","op":"update","type":"games","key":"g3","rev":"7","fields":{"name":"x"}}' > stale
	run -6 --separate-stderr recdelta-push --retries 0 "$S" < stale
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .status]')" '["g3","conflict"]'
	assert_equal "$(rows u.db 'SELECT id, rev, name FROM games ORDER BY id')" "$(printf '%s\n' 'g1|1|new' 'g3|-|same' 'g4|2|added')"
	# In step: nothing left to diff.
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r "$S"
	assert_output ''
}

@test "a table without a rev column reads as rev \"0\"; smart-sync updates it, adding the column, nothing in conflict; a second run writes nothing" {
	sqlite3 v.db "CREATE TABLE games(id TEXT PRIMARY KEY, name TEXT);
	    INSERT INTO games VALUES('g1', 'old'), ('g2', 'kept');"
	S='sqlite:v.db?table=games&key=id'
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_equal "$output" "$(rec games g1 '{"name":"old"}' 0; rec games g2 '{"name":"kept"}' 0)"
	{ rec games g1 '{"name":"new"}'; rec games g2 '{"name":"kept"}'; } > local.ndjson
	run -0 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "$S"
	assert_equal "$(rows v.db 'SELECT id, name, rev FROM games ORDER BY id')" "$(printf '%s\n' 'g1|new|1' 'g2|kept|-')"
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_equal "$output" "$(rec games g1 '{"name":"new"}' 1; rec games g2 '{"name":"kept"}' 0)"
	before=$(sha256 v.db)
	run -0 --separate-stderr recdelta smart-sync -l ndjson:local.ndjson -r "$S"
	assert_equal "$(sha256 v.db)" "$before"
}

@test "table=, key= and rev= in another case than the schema's name the same table and columns for reading and writing" {
	sqlite3 t.db "CREATE TABLE games(Id TEXT PRIMARY KEY, Version INTEGER, name TEXT);
	    INSERT INTO games VALUES('g1', 4, 'old');
	    CREATE TABLE other(k TEXT PRIMARY KEY, Rev INTEGER, x);
	    INSERT INTO other VALUES('a', 9, 1);"
	S='sqlite:t.db?table=GAMES&key=ID&rev=VERSION&type=Game'
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_equal "$stderr" ''
	assert_output "$(rec Game g1 '{"name":"old"}' 4)"
	{ rec Game g1 '{"name":"new"}'; rec Game g2 '{"name":"two"}'; } > local.ndjson
	recdelta-diff -l ndjson:local.ndjson -r "$S" > plan
	run -0 --separate-stderr recdelta-push "$S" < plan
	assert_equal "$stderr" "$(summary 1 1 0 0)"
	# Into games itself: no other table, no other column.
	assert_equal "$(rows t.db "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")" "$(printf '%s\n' games other recdelta_revs)"
	assert_equal "$(rows t.db 'SELECT * FROM games ORDER BY Id')" "$(printf '%s\n' 'g1|5|new' 'g2|6|two')"
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r "$S"
	assert_output ''
	run -0 --separate-stderr recdelta-diff -l ndjson:local.ndjson -r 'sqlite:t.db?table=games&key=Id&rev=Version&type=Game'
	assert_output ''

	# The default rev column "rev" is found as "Rev", when reading and when writing.
	S='sqlite:t.db?table=Other&key=K'
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_output "$(rec Other a '{"x":1}' 9)"
	printf '%s\n' '{"kind":"change","op":"update","type":"Other","key":"a","rev":"9","fields":{"x":2}}' > plan
	run -0 --separate-stderr recdelta-push "$S" < plan
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .status, .rev]')" '["a","ok","10"]'
	assert_equal "$(rows t.db 'SELECT * FROM other')" 'a|10|2'
}

@test "a parameter holding a NUL byte or non-UTF-8 bytes once decoded is a usage error naming it; nothing is read, created or written" {
	sqlite3 t.db "CREATE TABLE t2(id TEXT PRIMARY KEY, rev INTEGER, x); INSERT INTO t2 VALUES('a', 1, 1);"
	before=$(sha256 t.db)
	printf '%s\n' '{"kind":"change","op":"create","type":"t2","key":"b","fields":{"x":2}}' > plan
	for p in 'table=t2%00junk&key=id:table:a NUL byte' 'table=t2&key=id%00:key:a NUL byte' \
	    'table=t2&key=id&rev=rev%00x:rev:a NUL byte' 'table=t2&key=id&type=%00:type:a NUL byte' \
	    'table=t2%ff&key=id:table:bytes that are not UTF-8' 'table=t2&key=id&type=T%C3:type:bytes that are not UTF-8'; do
		w=${p%%:*} rest=${p#*:}
		name=${rest%%:*} what=${rest#*:}
		run -2 --separate-stderr recdelta-fetch "sqlite:t.db?$w"
		assert_output ''
		assert_equal "$stderr" "recdelta-fetch: \"sqlite:t.db?$w\": parameter \"$name\" holds $what once decoded"
		run -2 --separate-stderr recdelta-push "sqlite:t.db?$w" < plan
		assert_output ''
		assert_equal "$stderr" "recdelta-push: \"sqlite:t.db?$w\": parameter \"$name\" holds $what once decoded"
		run -2 --separate-stderr recdelta-push "sqlite:new.db?$w" < plan
	done
	assert_equal "$(sha256 t.db)" "$before"
	[ ! -e new.db ]
	# Encoded bytes that are allowed still work.
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=%74%32&key=id&type=%C3%A9'
	assert_output "$(rec é a '{"x":1}' 1)"
}
