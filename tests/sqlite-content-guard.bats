#!/usr/bin/env bats
# The sqlite: store's content guard: an update or delete that carries
# "seen", the hash of the record's fields as the plan read them, is applied
# only if the row, read inside the write transaction as fetch reads it,
# still hashes to it.  So a row another program changed with SQL, which
# moves no rev, is a conflict and keeps the other program's value.  A
# change with "seen" and no rev is guarded by its content alone; with both,
# both must hold.

bats_require_minimum_version 1.5.0

load helpers/common

SEENHASH="$TOP/tests/helpers/seenhash"

suite_setup() {
	[ -x "$SEENHASH" ] || fail "$SEENHASH: missing; make check builds it"
	unset RECDELTA_LOG
	mkdir w && cd w || return 1
	S='sqlite:u.db?table=games&key=id'
	sqlite3 u.db "CREATE TABLE games(id TEXT PRIMARY KEY, name TEXT, n INTEGER);
	    INSERT INTO games VALUES('g1', 'one', 1), ('g2', 'two', 2), ('g3', 'three', 3);"
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# rows SQL: the rows of a query on u.db, "|"-separated, NULL as "-".
rows() {
	sqlite3 -nullvalue - u.db "$1"
}

# seen KEY: the "seen" of row KEY as recdelta-fetch reads it now.
seen() {
	recdelta-fetch "$S" | grep -F "\"key\":\"$1\"" | "$SEENHASH"
}

# change OP KEY FIELDS MORE: a change line of type games; MORE is added to
# the object as it is (',"rev":"0"').
change() {
	local l
	l=$(printf '{"kind":"change","op":"%s","type":"games","key":"%s"' "$1" "$2")
	[ -n "$3" ] && l+=",\"fields\":$3"
	printf '%s%s}\n' "$l" "$4"
}

C=',"error":{"code":"conflict","message":"the record kept changing; retries exhausted"}'

@test "an update guarded by seen alone: the row as read is updated; a row changed with SQL between plan and push (no rev moved) is a conflict, retried or not, and keeps the other writer's value" {
	s1=$(seen g1)
	s2=$(seen g2)
	{
		change update g1 '{"name":"uno","n":1}' ",\"seen\":\"$s1\""
		change update g2 '{"name":"dos","n":2}' ",\"seen\":\"$s2\""
	} > plan
	sqlite3 u.db "UPDATE games SET name = 'deux' WHERE id = 'g2'"
	run -6 --separate-stderr recdelta-push "$S" < plan
	assert_stderr 'Created 0, Updated 1, Skipped 0 unchanged, Deleted 0, Conflicts 1'
	assert_equal "$output" "$(res update games g1 ok 1 '{"name":"uno","n":1}'
	    res update games g2 conflict '' '' "$C")"
	assert_equal "$(rows 'SELECT id, name, n, rev FROM games ORDER BY id')" \
	    "$(printf '%s\n' 'g1|uno|1|1' 'g2|deux|2|-' 'g3|three|3|-')"
	# Without retries, the same.
	sed -n 2p plan > plan2
	run -6 --separate-stderr recdelta-push --retries 0 "$S" < plan2
	assert_equal "$output" "$(res update games g2 conflict '' '' "$C")"
	assert_equal "$(rows "SELECT name FROM games WHERE id = 'g2'")" deux
	# The other writer made the plan's edit: now equal, skipped.
	sqlite3 u.db "UPDATE games SET name = 'dos' WHERE id = 'g2'"
	run -0 --separate-stderr recdelta-push "$S" < plan2
	assert_equal "$output" "$(res same games g2 skipped 0 '{"name":"dos","n":2}')"
}

@test "seen with a rev: both must hold; a stale rev with the right seen, the right rev with a stale seen, each a conflict and nothing written" {
	s3=$(seen g3)
	{
		change update g3 '{"name":"tres","n":3}' ",\"rev\":\"7\",\"seen\":\"$s3\""
		change update g3 '{"name":"tres","n":3}' ",\"rev\":\"0\",\"seen\":\"$(seen g2)\""
	} > plan
	run -6 --separate-stderr recdelta-push --retries 0 "$S" < plan
	assert_equal "$output" "$(res update games g3 conflict '' '' "$C"
	    res update games g3 conflict '' '' "$C")"
	assert_equal "$(rows 'SELECT id, name, n, rev FROM games ORDER BY id')" \
	    "$(printf '%s\n' 'g1|one|1|-' 'g2|two|2|-' 'g3|three|3|-')"
	change update g3 '{"name":"tres","n":3}' ",\"rev\":\"0\",\"seen\":\"$s3\"" > plan
	run -0 --separate-stderr recdelta-push --retries 0 "$S" < plan
	assert_equal "$output" "$(res update games g3 ok 1 '{"name":"tres","n":3}')"
}

@test "a row deleted since the plan read it: its update is a conflict; a delete with a stale seen is a conflict and the row stays; with the row's seen it is deleted" {
	s1=$(seen g1)
	s2=$(seen g2)
	sqlite3 u.db "DELETE FROM games WHERE id = 'g1'; UPDATE games SET n = 20 WHERE id = 'g2'"
	{
		change update g1 '{"name":"uno","n":1}' ",\"seen\":\"$s1\""
		change delete g2 '' ",\"seen\":\"$s2\""
	} > plan
	run -6 --separate-stderr recdelta-push --retries 0 --delete-orphans "$S" < plan
	assert_stderr 'Created 0, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 2'
	assert_equal "$output" "$(res update games g1 conflict '' '' "$C"
	    res delete games g2 conflict '' '' "$C")"
	assert_equal "$(rows 'SELECT id, name, n FROM games ORDER BY id')" \
	    "$(printf '%s\n' 'g2|two|20' 'g3|three|3')"
	change delete g2 '' ",\"rev\":\"0\",\"seen\":\"$(seen g2)\"" > plan
	run -0 --separate-stderr recdelta-push --delete-orphans "$S" < plan
	assert_equal "$output" "$(res delete games g2 ok)"
	assert_equal "$(rows 'SELECT id FROM games ORDER BY id')" g3
}

@test "the row is hashed as fetch reads it: a JSON column, a blob, a real, NULL columns as absent fields, and a column an earlier change of the batch added" {
	sqlite3 v.db "CREATE TABLE t(id TEXT PRIMARY KEY, j JSON TEXT, b BLOB, r REAL, big INTEGER, z TEXT);
	    INSERT INTO t VALUES('k1', '{\"\$ref\":\"x\",\"a\":[1,2]}', X'00FF', 30.0, 9223372036854775807, NULL),
	    ('k2', NULL, NULL, 0.1, -9223372036854775808, 'é ☃');"
	V='sqlite:v.db?table=t&key=id'
	recdelta-fetch "$V" > read
	sk1=$(sed -n 1p read | "$SEENHASH")
	sk2=$(sed -n 2p read | "$SEENHASH")
	{
		printf '%s\n' '{"kind":"change","op":"create","type":"t","key":"k0","fields":{"extra":1}}'
		printf '%s\n' "{\"kind\":\"change\",\"op\":\"update\",\"type\":\"t\",\"key\":\"k1\",\"seen\":\"$sk1\",\"fields\":{\"r\":31.5}}"
		printf '%s\n' "{\"kind\":\"change\",\"op\":\"delete\",\"type\":\"t\",\"key\":\"k2\",\"seen\":\"$sk2\"}"
	} > plan
	run -0 --separate-stderr recdelta-push --delete-orphans "$V" < plan
	assert_stderr 'Created 1, Updated 1, Skipped 0 unchanged, Deleted 1, Conflicts 0'
	assert_equal "$(sqlite3 -nullvalue - v.db 'SELECT id, r, extra FROM t ORDER BY id')" \
	    "$(printf '%s\n' 'k0|-|1' 'k1|31.5|-')"
}
