#!/usr/bin/env bats
# Numbers and column types through the sqlite: store: an INTEGER reads as an
# integer and a REAL as a number that is recognisably a double (30.0, never
# 3e1), so that sqlite: -> dir: -> sqlite: keeps every column's type and
# value, bit for bit; a number that a column cannot hold exactly is refused,
# never altered; a REAL that is not finite is bad input.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	export RECDELTA_STATE=$BATS_TEST_TMPDIR/state.db
	unset RECDELTA_LOG
}

# A table of every kind of column, as an application makes it: declared
# INTEGER, REAL, TEXT, BLOB, a column only NULL, a JSON one, and v with no
# declared type, where SQLite keeps what it is given (-0.0 included, which
# a REAL column stores as 0.0).
make_source() {
	sqlite3 "$1" <<'EOF'
CREATE TABLE t(k TEXT PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n,
    j JSON TEXT, v);
INSERT INTO t VALUES('max', 9223372036854775807, 30.0, '30.0', x'00ff',
    NULL, '{"a":[1,2.5,null],"t":{"$ts":"2026-01-10T16:02:53Z"}}', -0.0);
INSERT INTO t VALUES('min', -9223372036854775808, -120.5, '', x'', NULL,
    '[]', 1e300);
INSERT INTO t VALUES('tenth', 0, 0.1, 'é 日本', x'48656c6c6f', NULL,
    '{"x":30.0}', 0.1);
INSERT INTO t VALUES('huge', -1, 1e300, '3e1', x'00', NULL, '[0.1,-0.0]',
    30.0);
INSERT INTO t VALUES('tiny', 42, 5e-324, '-0.0', NULL, NULL, NULL,
    9223372036854775807);
INSERT INTO t VALUES('text', 1, -0.0, '1', x'01', NULL, '{}', '0.1');
INSERT INTO t VALUES('blob', 2, 1e-05, 'x', x'02', NULL, '[1]', x'ff00');
INSERT INTO t VALUES('null', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
EOF
}

# columns DB: every row's columns as "typeof:value", a REAL as the hex of
# its 64 bits (so that -0.0 and 0.0 differ, and no digit is rounded), any
# other value as SQLite quotes it.
columns() {
	local c sel=k
	for c in i r s b n j v; do
		sel+=", typeof($c) || ':' || CASE typeof($c) WHEN 'real'
		    THEN hex(ieee754_to_blob($c)) ELSE quote($c) END"
	done
	sqlite3 "$1" "SELECT $sel FROM t ORDER BY k"
}

# The columns of make_source's table.
source_columns() {
	cat <<'EOF'
blob|integer:2|real:3EE4F8B588E368F1|text:'x'|blob:X'02'|null:NULL|text:'[1]'|blob:X'FF00'
huge|integer:-1|real:7E37E43C8800759C|text:'3e1'|blob:X'00'|null:NULL|text:'[0.1,-0.0]'|real:403E000000000000
max|integer:9223372036854775807|real:403E000000000000|text:'30.0'|blob:X'00FF'|null:NULL|text:'{"a":[1,2.5,null],"t":{"$ts":"2026-01-10T16:02:53Z"}}'|real:8000000000000000
min|integer:-9223372036854775808|real:C05E200000000000|text:''|blob:X''|null:NULL|text:'[]'|real:7E37E43C8800759C
null|null:NULL|null:NULL|null:NULL|null:NULL|null:NULL|null:NULL|null:NULL
tenth|integer:0|real:3FB999999999999A|text:'é 日本'|blob:X'48656C6C6F'|null:NULL|text:'{"x":30.0}'|real:3FB999999999999A
text|integer:1|real:0000000000000000|text:'1'|blob:X'01'|null:NULL|text:'{}'|text:'0.1'
tiny|integer:42|real:0000000000000001|text:'-0.0'|null:NULL|null:NULL|null:NULL|integer:9223372036854775807
EOF
}

@test "fetch writes a REAL in the plain form of a double (30.0, -120.5, 0.1, 1e+300, -0.0), an INTEGER exactly" {
	make_source s.db
	assert_equal "$(columns s.db)" "$(source_columns)"
	run -0 --separate-stderr recdelta-fetch 'sqlite:s.db?table=t&key=k'
	assert_equal "$stderr" ''
	assert_output - <<'EOF'
{"kind":"record","type":"t","key":"max","rev":"0","fields":{"i":9223372036854775807,"r":30.0,"s":"30.0","b":{"$bytes":"AP8="},"n":null,"j":{"a":[1,2.5,null],"t":{"$ts":"2026-01-10T16:02:53Z"}},"v":-0.0}}
{"kind":"record","type":"t","key":"min","rev":"0","fields":{"i":-9223372036854775808,"r":-120.5,"s":"","b":{"$bytes":""},"n":null,"j":[],"v":1e+300}}
{"kind":"record","type":"t","key":"tenth","rev":"0","fields":{"i":0,"r":0.1,"s":"é 日本","b":{"$bytes":"SGVsbG8="},"n":null,"j":{"x":30.0},"v":0.1}}
{"kind":"record","type":"t","key":"huge","rev":"0","fields":{"i":-1,"r":1e+300,"s":"3e1","b":{"$bytes":"AA=="},"n":null,"j":[0.1,-0.0],"v":30.0}}
{"kind":"record","type":"t","key":"tiny","rev":"0","fields":{"i":42,"r":5e-324,"s":"-0.0","b":null,"n":null,"j":null,"v":9223372036854775807}}
{"kind":"record","type":"t","key":"text","rev":"0","fields":{"i":1,"r":0.0,"s":"1","b":{"$bytes":"AQ=="},"n":null,"j":{},"v":"0.1"}}
{"kind":"record","type":"t","key":"blob","rev":"0","fields":{"i":2,"r":1e-05,"s":"x","b":{"$bytes":"Ag=="},"n":null,"j":[1],"v":{"$bytes":"/wA="}}}
{"kind":"record","type":"t","key":"null","rev":"0","fields":{"i":null,"r":null,"s":null,"b":null,"n":null,"j":null,"v":null}}
EOF
	refute_output --partial 3e1,
	# jq reads every number back as the same double.
	assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.key == "max" or .key == "huge") | [.fields.r, .fields.v]')" \
	    "$(printf '%s\n' '[30,-0]' '[1e+300,30]')"
}

@test "sqlite: -> dir: -> sqlite: with the programs keeps every column's type and value; a second sync finds everything same" {
	make_source s.db
	# The target table as the application declares it.
	sqlite3 d.db "CREATE TABLE t(k TEXT PRIMARY KEY, rev INTEGER, i INTEGER,
	    r REAL, s TEXT, b BLOB, n, j JSON TEXT, v)"
	SRC='sqlite:s.db?table=t&key=k'
	DST='sqlite:d.db?table=t&key=k'
	recdelta-fetch "$SRC" > fetched
	recdelta-diff --allow-missing-remote -l ndjson:fetched -r dir:D > plan
	run -0 --separate-stderr recdelta-push dir:D < plan
	assert_equal "$stderr" 'recdelta-push: created "dir:D" (it did not exist)
Created 8, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0'
	# dir: keeps the numbers as fetch wrote them (its fields sorted by name).
	run -0 --separate-stderr recdelta-fetch dir:D
	assert_output --partial '"fields":{"b":{"$bytes":"AP8="},"i":9223372036854775807,"j":{"a":[1,2.5,null],"t":{"$ts":"2026-01-10T16:02:53Z"}},"n":null,"r":30.0,"s":"30.0","v":-0.0}}'
	recdelta-diff -l dir:D -r "$DST" > plan
	run -0 --separate-stderr recdelta-push "$DST" < plan
	assert_equal "$stderr" 'Created 8, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0'
	assert_equal "$(columns d.db)" "$(source_columns)"
	# Fetched again, each side reads as the source did, and compares same.
	run -0 --separate-stderr recdelta-fetch "$DST"
	assert_equal "$(printf '%s\n' "$output" | jq -c '.fields' | sort)" \
	    "$(jq -c '.fields' fetched | sort)"
	run -0 --separate-stderr recdelta-diff --all -l "$SRC" -r dir:D
	assert_equal "$(printf '%s\n' "$output" | jq -r .op | sort | uniq -c | awk '{print $1, $2}')" '8 same'
	run -0 --separate-stderr recdelta-diff --all -l dir:D -r "$DST"
	assert_equal "$(printf '%s\n' "$output" | jq -r .op | sort | uniq -c | awk '{print $1, $2}')" '8 same'
	run -0 --separate-stderr recdelta-diff --exit-code -l "$SRC" -r "$DST"
	assert_output ''
	# Straight from one table to the other: nothing to write.
	before=$(sha256 d.db)
	recdelta-diff -l "$SRC" -r "$DST" > plan
	run -0 --separate-stderr recdelta-push "$DST" < plan
	assert_equal "$stderr" 'Created 0, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0'
	assert_equal "$(sha256 d.db)" "$before"
}

@test "smart-sync sqlite: -> dir: -> sqlite: into a table it creates keeps every value's type; a second run writes nothing" {
	make_source s.db
	SRC='sqlite:s.db?table=t&key=k'
	DST='sqlite:d.db?table=t&key=k'
	run -0 --separate-stderr recdelta smart-sync --state s1.db -l "$SRC" -r dir:D
	assert_equal "$stderr" 'recdelta-push: created "dir:D" (it did not exist)
Created 8, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0'
	run -0 --separate-stderr recdelta smart-sync --state s2.db -l dir:D -r "$DST"
	assert_equal "$stderr" "recdelta-push: created \"$DST\" (it did not exist)
Created 8, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	# New columns have no declared type, or JSON TEXT for objects and
	# arrays, so every value is kept as it was bound.
	assert_equal "$(sqlite3 d.db "SELECT name || ':' || type FROM pragma_table_info('t')
	    ORDER BY name" | paste -sd' ')" 'b: i: j:JSON TEXT k:TEXT n: r: rev:INTEGER s: v:'
	assert_equal "$(columns d.db)" "$(source_columns)"
	before=$(tree_digest D)
	dbefore=$(sha256 d.db)
	run -0 --separate-stderr recdelta smart-sync --state s1.db -l "$SRC" -r dir:D
	assert_equal "$stderr" 'Created 0, Updated 0, Skipped 8 unchanged, Deleted 0, Conflicts 0'
	run -0 --separate-stderr recdelta smart-sync --state s2.db -l dir:D -r "$DST"
	assert_equal "$stderr" 'Created 0, Updated 0, Skipped 8 unchanged, Deleted 0, Conflicts 0'
	assert_equal "$(tree_digest D)" "$before"
	assert_equal "$(sha256 d.db)" "$dbefore"
}

@test "push binds an integer literal as INTEGER and a fraction or exponent as REAL; a number no column holds exactly fails inexact" {
	S='sqlite:p.db?table=t&key=k'
	cat > in <<'EOF'
{"kind":"change","op":"create","type":"t","key":"a","fields":{"x":30,"y":30.0,"z":1e2,"w":-0.0,"u":-0}}
{"kind":"change","op":"create","type":"t","key":"b","fields":{"x":10000000000000000000}}
{"kind":"change","op":"create","type":"t","key":"c","fields":{"x":0.1000000000000000001}}
{"kind":"change","op":"create","type":"t","key":"d","fields":{"x":1e400}}
{"kind":"change","op":"create","type":"t","key":"e","fields":{"x":1e-400}}
{"kind":"change","op":"create","type":"t","key":"f","fields":{"x":-9223372036854775808,"y":1.7976931348623157e308,"z":0.30000000000000004}}
EOF
	run -6 --separate-stderr recdelta-push "$S" < in
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .status, .error.code]')" \
	    '["a","ok",null]
["b","failed","inexact"]
["c","failed","inexact"]
["d","failed","inexact"]
["e","failed","inexact"]
["f","ok",null]'
	assert_line --index 1 '{"kind":"result","op":"create","type":"t","key":"b","status":"failed","error":{"code":"inexact","message":"value of \"x\" cannot be stored exactly in column \"x\""}}'
	assert_equal "$(sqlite3 p.db "SELECT k, typeof(x), x, typeof(y), typeof(z),
	    hex(ieee754_to_blob(w)), typeof(u), u FROM t ORDER BY k")" \
	    'a|integer|30|real|real|8000000000000000|integer|0
f|integer|-9223372036854775808|real|real||null|'
	run -0 --separate-stderr recdelta-fetch "$S"
	assert_output '{"kind":"record","type":"t","key":"a","rev":"1","fields":{"x":30,"y":30.0,"z":100.0,"w":-0.0,"u":0}}
{"kind":"record","type":"t","key":"f","rev":"2","fields":{"x":-9223372036854775808,"y":1.7976931348623157e+308,"z":0.30000000000000004,"w":null,"u":null}}'
	# What was written compares same with what was asked.
	head -1 in | sed 's/"change","op":"create"/"record"/' > L
	sed -n 6p in | sed 's/"change","op":"create"/"record"/' >> L
	run -0 --separate-stderr recdelta-diff --exit-code -l ndjson:L -r "$S"
	assert_output ''
}

@test "push into declared columns: SQLite's affinity keeps a whole REAL as INTEGER in an INTEGER column, equal in value; a REAL column keeps a double" {
	sqlite3 q.db "CREATE TABLE t(k TEXT PRIMARY KEY, rev INTEGER, i INTEGER, r REAL)"
	S='sqlite:q.db?table=t&key=k'
	printf '%s\n' '{"kind":"change","op":"create","type":"t","key":"a","fields":{"i":30.0,"r":30.0}}' \
	    '{"kind":"change","op":"create","type":"t","key":"b","fields":{"i":2.5,"r":7}}' > in
	run -0 --separate-stderr recdelta-push "$S" < in
	assert_equal "$(sqlite3 q.db "SELECT k, typeof(i), i, typeof(r), r FROM t ORDER BY k")" \
	    'a|integer|30|real|30.0
b|real|2.5|real|7.0'
	sed 's/"change","op":"create"/"record"/' in > L
	run -0 --separate-stderr recdelta-diff --exit-code -l ndjson:L -r "$S"
	assert_output ''
}

@test "fetch: a REAL that is not finite is bad input, named by table, row and column" {
	sqlite3 inf.db "CREATE TABLE t(k TEXT PRIMARY KEY, r REAL);
	    INSERT INTO t VALUES('a', 1.5), ('b', 1e999)"
	run -3 --separate-stderr recdelta-fetch 'sqlite:inf.db?table=t&key=k'
	assert_equal "$stderr" 'recdelta-fetch: inf.db: table "t" row 2 column "r": not a finite number'
}
