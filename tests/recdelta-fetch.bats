#!/usr/bin/env bats
# recdelta-fetch: every store read back as a record stream.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore

# The sample of examples/mksample, made once, only read by the tests.
setup_file() {
	SAMPLE=$BATS_FILE_TMPDIR/sample
	export SAMPLE
	sh "$TOP/examples/mksample" "$SAMPLE" 2>/dev/null
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# records FILE: the record lines of FILE as sorted [type,key,rev,deleted,
# fields] tuples, for comparing streams that may differ in member order.
records() {
	jq -c 'select(.kind == "record") |
	    [.type, .key, .rev, (.deleted // false), .fields]' "$1" | LC_ALL=C sort
}

# --- ndjson: and - ---------------------------------------------------------

mixed_input() {
	# Odd spacing, escapes, member order and number forms: none of it may
	# be normalised, and lines of other kinds stay where they are.
	cat > in.ndjson <<'EOF'
{"kind":"cursor","source":"x","name":"n","value":"v1"}
{ "kind" : "record", "type":"Stadium","key":"b","fields":{"z":1.0,"a":1e2,"n":"\u00e9"} }
{"kind":"record","type":"Team","key":"a","rev":"3","fields":{"big":12345678901234567890123}}
{"kind":"future","anything":[1,2,3]}
{"kind":"record","type":"Stadium","key":"a","deleted":true}
{"fields":{},"key":"c","type":"Stadium","kind":"record","mtime":"2026-01-01T00:00:00Z"}
{"kind":"summary","stage":"diff","counts":{}}
EOF
}

@test "ndjson: and -: pass every line through byte for byte, in order" {
	mixed_input
	recdelta-fetch ndjson:in.ndjson > out.ndjson
	cmp in.ndjson out.ndjson
	run -0 --separate-stderr recdelta-fetch ndjson:in.ndjson
	assert_stderr ""
	recdelta-fetch - < in.ndjson > out.ndjson
	cmp in.ndjson out.ndjson
}

@test "-t TYPE, once or more, keeps only those records and every line of another kind" {
	mixed_input
	run -0 --separate-stderr recdelta-fetch -t Stadium ndjson:in.ndjson
	assert_stderr ""
	expected=$(grep -v '"type":"Team"' in.ndjson)
	assert_equal "$output" "$expected"
	[ "${#lines[@]}" -eq 6 ]
	run -0 --separate-stderr recdelta-fetch -t Team --type Stadium ndjson:in.ndjson
	assert_equal "$output" "$(cat in.ndjson)"
	run -0 --separate-stderr recdelta-fetch -t Team -t Nothing - < in.ndjson
	assert_equal "$output" "$(grep -v '"type":"Stadium"' in.ndjson)"
}

@test "ndjson: and -: empty input is refused unless --allow-empty" {
	: > empty.ndjson
	run -3 --separate-stderr recdelta-fetch ndjson:empty.ndjson
	assert_output ""
	assert_stderr "recdelta-fetch: empty.ndjson: empty input (--allow-empty accepts it)"
	run -0 --separate-stderr recdelta-fetch --allow-empty ndjson:empty.ndjson
	assert_output ""
	assert_stderr ""
	run -3 --separate-stderr recdelta-fetch - < /dev/null
	assert_output ""
	assert_stderr "recdelta-fetch: <stdin>: empty input (--allow-empty accepts it)"
	run -0 --separate-stderr recdelta-fetch --allow-empty - < /dev/null
	assert_output ""
}

@test "ndjson: a malformed line is bad data, named by file and line" {
	{
		rec Stadium a '{"x":1}'
		echo '{"kind":"cursor","name":"n","value":"v"}'
		rec Stadium b '{"x":2}'
		echo '{"kind":"record","type":"Stadium","fields":{}}'
		rec Stadium c '{"x":3}'
	} > bad.ndjson
	run -3 --separate-stderr recdelta-fetch ndjson:bad.ndjson
	assert_stderr 'recdelta-fetch: bad.ndjson:4: missing "key"'
	# fetch streams, so the good lines before the bad one may have been
	# written; nothing from the bad line or after it may be.
	good=$(head -n 3 bad.ndjson)
	[ "${#lines[@]}" -le 3 ]
	assert_equal "$output" "$(printf '%s\n' "$good" | head -n "${#lines[@]}")"
	refute_output --partial '"key":"c"'
	printf '%s\n' '{"kind":"cursor"}' 'not json' > bad.ndjson
	run -3 --separate-stderr recdelta-fetch ndjson:bad.ndjson
	[[ $stderr == "recdelta-fetch: bad.ndjson:2: "* ]]
	refute_output --partial 'not json'
}

@test "ndjson: a missing file is a runtime failure" {
	run -4 --separate-stderr recdelta-fetch ndjson:nope.ndjson
	assert_output ""
	assert_stderr "recdelta-fetch: nope.ndjson: No such file or directory"
}

# --- dir: ----------------------------------------------------------------

@test "dir: records come back with rev = v, mtime and their fields" {
	{
		rec Stadium ari '{"capacity":63400,"location":{"$loc":{"lat":33.5276,"lng":-112.2626}},"name":"State Farm Stadium","team":{"$ref":"team_ari"}}' 7
		rec Team team_ari '{"name":"Arizona Cardinals","tags":["a","b"],"x":null,"ok":true}'
	} > in.ndjson
	make_dir_store S < in.ndjson
	[ -f S/Stadium/ari~7.json ]
	[ -f S/Team/team_ari~1.json ]
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_stderr ""
	[ "${#lines[@]}" -eq 2 ]
	assert_equal "$(jq -r '.kind + " " + .rev + " " + .mtime' <<<"${lines[0]}")" \
	    "record 7 2026-01-01T00:00:00Z"
	assert_equal "$(jq -r '.rev | type' <<<"${lines[1]}")" string
	assert_equal "$(jq -r .rev <<<"${lines[1]}")" 1
	printf '%s\n' "$output" > out.ndjson
	# Fields equal, whatever the member order.
	run jq -n --slurpfile a in.ndjson --slurpfile b out.ndjson \
	    '[$a[] | {type, key, fields}] == [$b[] | {type, key, fields}]'
	assert_output true
}

@test "dir: a record with empty fields comes back with fields {}" {
	rec T k '{}' 3 | make_dir_store S
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_stderr ""
	assert_output '{"kind":"record","type":"T","key":"k","rev":"3","mtime":"2026-01-01T00:00:00Z","fields":{}}'
	rec T k '{}' > local.ndjson
	run -0 --separate-stderr recdelta-diff --all --local ndjson:local.ndjson --remote dir:S
	assert_stderr ""
	assert_output '{"kind":"change","op":"same","type":"T","key":"k","rev":"3","fields":{}}'
}

@test "dir: a tombstone comes out deleted, with its rev and no fields" {
	{
		rec Stadium live '{"x":1}' 2
		echo '{"kind":"record","type":"Stadium","key":"old","rev":"4","deleted":true}'
	} | make_dir_store S
	[ ! -e S/Stadium/old~4.json ]
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_equal "${lines[1]}" \
	    '{"kind":"record","type":"Stadium","key":"old","rev":"4","mtime":"2026-01-01T00:00:00Z","deleted":true}'
	assert_equal "${#lines[@]}" 2
}

@test "dir: records are sorted by type, then by key bytes" {
	for t in b B a _; do
		for k in b a B 10 9 _ é .z; do
			rec "$t" "$k" '{}'
		done
	done | make_dir_store S
	# Write the index in reverse order, so the order is fetch's own.
	jq -c '.entities |= (to_entries | reverse |
	    map(.value |= (to_entries | reverse | from_entries)) | from_entries)' \
	    S/meta.json > meta.rev && mv meta.rev S/meta.json
	run -0 --separate-stderr recdelta-fetch dir:S
	printf '%s\n' "$output" | jq -r '.type + " " + .key' > got
	for t in B _ a b; do
		for k in .z 10 9 B _ a b é; do
			echo "$t $k"
		done
	done > want
	diff -u want got
}

@test "dir: -t TYPE fetches only that type" {
	{ rec A k '{}'; rec B k '{}'; rec C k '{}'; } | make_dir_store S
	run -0 --separate-stderr recdelta-fetch -t B -t C dir:S
	assert_equal "$(printf '%s\n' "$output" | jq -r .type | tr '\n' ' ')" "B C "
}

@test "dir: a missing directory is a runtime failure and is not created; one without meta.json is an empty store" {
	run -4 --separate-stderr recdelta-fetch dir:nothing/here
	assert_output ""
	assert_stderr "recdelta-fetch: nothing/here: No such file or directory"
	[ ! -e nothing ]
	mkdir S
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr ""
	[ -z "$(ls -A S)" ]
}

@test "dir: a path that is a regular file is a runtime failure" {
	echo hello > S
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S: Not a directory"
}

@test "dir: meta.json of another format is refused" {
	rec A k '{}' | make_dir_store S
	jq -c '.format = "recdelta-store/3"' S/meta.json > m && mv m S/meta.json
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S/meta.json: not a recdelta-store/1 or recdelta-store/2 store"
	jq -c 'del(.format)' S/meta.json > m && mv m S/meta.json
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/meta.json: not a recdelta-store/1 or recdelta-store/2 store"
}

@test "dir: a tampered entity file is a damaged store" {
	rec A 'k/1' '{"x":1}' | make_dir_store S
	echo '{"fields":{"x":2},"key":"k/1","type":"A"}' > 'S/A/k%2F1~1.json'
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S/A/k%2F1~1.json: damaged store: sha256 does not match the index"
}

@test "dir: a missing entity file is a damaged store, another version is no stand-in" {
	{ rec A k1 '{}'; rec A k2 '{}' 5; } | make_dir_store S
	rm S/A/k2~5.json
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/A/k2~5.json: damaged store: No such file or directory"
	refute_output --partial '"key":"k2"'
	rec A k '{"x":1}' 2 | make_dir_store S2
	mv S2/A/k~2.json S2/A/k~1.json
	run -4 --separate-stderr recdelta-fetch dir:S2
	assert_output ""
	assert_stderr "recdelta-fetch: S2/A/k~2.json: damaged store: No such file or directory"
}

@test "dir: an entity whose type or key differ from meta.json is a damaged store" {
	rec A k '{"x":1}' | make_dir_store S
	echo '{"fields":{"x":1},"key":"other","type":"A"}' > S/A/k~1.json
	reseal S A k 1
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S/A/k~1.json: damaged store: type or key differs from meta.json"

	echo '{"fields":{"x":1},"key":"k","type":"B"}' > S/A/k~1.json
	reseal S A k 1
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S/A/k~1.json: damaged store: type or key differs from meta.json"
}

# --- dir: key safety ------------------------------------------------------

@test "make_dir_store: enc() follows webdav.md section 4" {
	assert_equal "$(enc a/b)" "a%2Fb"
	assert_equal "$(enc ..)" "%2E."
	assert_equal "$(enc .hidden)" "%2Ehidden"
	assert_equal "$(enc a.b)" "a.b"
	assert_equal "$(enc é)" "%C3%A9"
	assert_equal "$(enc 'a b')" "a%20b"
	assert_equal "$(enc 'x~1')" "x%7E1"
	assert_equal "$(enc '%41')" "%2541"
	assert_equal "$(enc 'Az09_-')" "Az09_-"
	assert_equal "$(enc $'\t')" "%09"
	assert_equal "$(enc 日本)" "%E6%97%A5%E6%9C%AC"
}

@test "make_dir_store writes the layout examples/mksample writes" {
	recdelta-fetch -t Stadium -t Team "dir:$SAMPLE/remote" > st.ndjson
	make_dir_store S < st.ndjson
	diff -r "$SAMPLE/remote/Stadium" S/Stadium
	diff -r "$SAMPLE/remote/Team" S/Team
	assert_equal "$(jq -cS '.entities | {Stadium, Team}' S/meta.json)" \
	    "$(jq -cS '.entities | {Stadium, Team}' "$SAMPLE/remote/meta.json")"
}

@test "dir: keys and types with any character round-trip exactly" {
	cat > in.ndjson <<'EOF'
{"kind":"record","type":"K","key":"a/b","fields":{"n":1}}
{"kind":"record","type":"K","key":"..","fields":{"n":2}}
{"kind":"record","type":"K","key":".","fields":{"n":3}}
{"kind":"record","type":"K","key":"../../etc/passwd","fields":{"n":4}}
{"kind":"record","type":"K","key":"with space","fields":{"n":5}}
{"kind":"record","type":"K","key":"\u00e9","fields":{"n":6}}
{"kind":"record","type":"K","key":"日本","fields":{"n":7}}
{"kind":"record","type":"K","key":".hidden","fields":{"n":8}}
{"kind":"record","type":"K","key":"tab\there","fields":{"n":9}}
{"kind":"record","type":"K","key":"A","fields":{"n":10}}
{"kind":"record","type":"K","key":"%41","fields":{"n":11}}
{"kind":"record","type":"K","key":"x~1","fields":{"n":12}}
{"kind":"record","type":"K","key":"x~1.json","fields":{"n":13}}
{"kind":"record","type":"K","key":"meta.json","fields":{"n":14}}
{"kind":"record","type":"K","key":"\\back\"quote","fields":{"n":15}}
{"kind":"record","type":"..","key":"k","fields":{"n":16}}
{"kind":"record","type":"a/b","key":"../k","fields":{"n":17}}
{"kind":"record","type":"日本 é","key":"k","fields":{"n":18}}
EOF
	make_dir_store S < in.ndjson
	# Every file is inside the store, one level down.
	assert_equal "$(find S -mindepth 2 -type f | wc -l)" 18
	[ -z "$(find S -mindepth 3)" ]
	[ -f 'S/K/%2E.%2F..%2Fetc%2Fpasswd~1.json' ]
	[ -f 'S/%2E./k~1.json' ]
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_stderr ""
	printf '%s\n' "$output" > out.ndjson
	diff -u <(records in.ndjson | jq -c '.[2] = "1"') <(records out.ndjson)
}

@test "dir: a key in meta.json cannot name a file outside its type folder" {
	# A hand-written index whose key would climb out of the store if it
	# were used as a path; the file it would reach is a valid entity.
	mkdir -p S/A
	printf '%s\n' '{"fields":{"secret":"OUTSIDE"},"key":"../../x","type":"A"}' > 'x~1.json'
	sha=$(sha256 'x~1.json')
	printf '{"entities":{"A":{"../../x":{"mtime":"2026-01-01T00:00:00Z","sha256":"%s","v":1}}},"format":"recdelta-store/1","generation":1}\n' \
	    "$sha" > S/meta.json
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ""
	assert_stderr "recdelta-fetch: S/A/%2E.%2F..%2Fx~1.json: damaged store: No such file or directory"
}

@test "dir: a symlinked entity file is not followed" {
	rec A k '{"secret":"OUTSIDE"}' | make_dir_store S
	mkdir outside
	mv S/A/k~1.json outside/
	ln -s ../../outside/k~1.json S/A/k~1.json
	cat S/A/k~1.json > /dev/null	# the link works, and its sha256 matches
	run -4 --separate-stderr recdelta-fetch dir:S
	refute_output --partial OUTSIDE
	[[ $stderr == "recdelta-fetch: S/A/k~1.json: damaged store: "* ]]
}

@test "dir: a symlinked type folder is not followed" {
	{ rec A k '{"secret":"OUTSIDE"}'; } | make_dir_store S
	mkdir outside
	mv S/A outside/A
	ln -s ../outside/A S/A
	cat S/A/k~1.json > /dev/null
	run -4 --separate-stderr recdelta-fetch dir:S
	refute_output --partial OUTSIDE
	[[ $stderr == "recdelta-fetch: S/A: damaged store: "* ]]
}

# --- sqlite: --------------------------------------------------------------

make_db() {
	sqlite3 t.db <<'EOF'
CREATE TABLE games(id INTEGER PRIMARY KEY, rev TEXT, i INTEGER, r REAL,
    s TEXT, n TEXT, b BLOB, loc JSON);
INSERT INTO games VALUES(1, '3', 9223372036854775807, 0.1, 'é日本', NULL,
    x'48656c6c6f', '{"$loc":{"lat":1.5,"lng":2.5}}');
INSERT INTO games VALUES(2, NULL, -9223372036854775808, 1e300, 'plain',
    NULL, x'00ff10', '[1,{"a":null}]');
EOF
}

@test "sqlite: columns become fields with exact values" {
	make_db
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id'
	assert_stderr ""
	[ "${#lines[@]}" -eq 2 ]
	assert_equal "${lines[0]}" '{"kind":"record","type":"games","key":"1","rev":"3","fields":{"i":9223372036854775807,"r":0.1,"s":"é日本","n":null,"b":{"$bytes":"SGVsbG8="},"loc":{"$loc":{"lat":1.5,"lng":2.5}}}}'
	assert_equal "${lines[1]}" '{"kind":"record","type":"games","key":"2","rev":"0","fields":{"i":-9223372036854775808,"r":1e+300,"s":"plain","n":null,"b":{"$bytes":"AP8Q"},"loc":[1,{"a":null}]}}'
}

@test "sqlite: the record type is type=, or the table; -t selects, as on every store" {
	make_db
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id&type=Game'
	assert_equal "$(printf '%s\n' "$output" | jq -r .type | sort -u)" Game
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id'
	assert_equal "$(printf '%s\n' "$output" | jq -r .type | sort -u)" games
	# -t names no type: the table's type is not Match, so nothing, and a
	# warning that says where the type is named.
	run -0 --separate-stderr recdelta-fetch --type Match 'sqlite:t.db?table=games&key=id'
	assert_output ""
	assert_stderr 'recdelta-fetch: warning: sqlite:t.db?table=games&key=id: its records are of type "games", which no -t names: none read (a table'"'"'s type is named by type=)'
	run -0 --separate-stderr recdelta-fetch -t Match 'sqlite:t.db?table=games&key=id&type=Game'
	assert_output ""
	assert_stderr 'recdelta-fetch: warning: sqlite:t.db?table=games&key=id&type=Game: its records are of type "Game", which no -t names: none read (a table'"'"'s type is named by type=)'
	# The table's type among the -t types: every row, as without -t.
	run -0 --separate-stderr recdelta-fetch -t Game 'sqlite:t.db?table=games&key=id&type=Game'
	assert_stderr ""
	all=$(recdelta-fetch 'sqlite:t.db?table=games&key=id&type=Game')
	assert_output "$all"
	run -0 --separate-stderr recdelta-fetch -t A -t games 'sqlite:t.db?table=games&key=id'
	assert_equal "${#lines[@]}" 2
	assert_equal "$(printf '%s\n' "$output" | jq -r .type | sort -u)" games
}

@test "-t selects the same records from ndjson:, dir: and sqlite:" {
	{ rec Game g1 '{"n":1}'; rec Team t1 '{"n":2}'; } > in.ndjson
	recdelta-push -q dir:d < <(recdelta-diff --allow-missing-remote \
	    -l ndjson:in.ndjson -r dir:d) > /dev/null 2>&1
	recdelta-push -q 'sqlite:s.db?table=games&key=id&type=Game' \
	    < <(recdelta-diff --allow-missing-remote -t Game -l ndjson:in.ndjson \
	    -r 'sqlite:s.db?table=games&key=id&type=Game') > /dev/null 2>&1
	for t in Game Team; do
		want=$(recdelta-fetch -t "$t" ndjson:in.ndjson | jq -c '[.type, .key, .fields]')
		for w in dir:d 'sqlite:s.db?table=games&key=id&type=Game'; do
			got=$(recdelta-fetch -t "$t" "$w" 2>/dev/null | jq -c '[.type, .key, .fields]')
			if [ "$t" = Team ] && [ "${w%%:*}" = sqlite ]; then
				assert_equal "$got" ""
			else
				assert_equal "$got" "$want"
			fi
		done
	done
}

@test "sqlite: the rev column (rev= or rev) is the record's rev, not a field" {
	sqlite3 t.db "CREATE TABLE t(k TEXT, version INTEGER, rev TEXT, x INTEGER);
	    INSERT INTO t VALUES('a', 12, 'r', 1);"
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=t&key=k&rev=version'
	assert_output '{"kind":"record","type":"t","key":"a","rev":"12","fields":{"rev":"r","x":1}}'
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=t&key=k'
	assert_output '{"kind":"record","type":"t","key":"a","rev":"r","fields":{"version":12,"x":1}}'
	# No rev column: rev "0", as for a NULL rev.
	sqlite3 t.db "CREATE TABLE u(k INTEGER, x TEXT); INSERT INTO u VALUES(42, 'y');"
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=u&key=k'
	assert_output '{"kind":"record","type":"u","key":"42","rev":"0","fields":{"x":"y"}}'
}

@test "sqlite: a missing table, key column or rev= column is a runtime failure" {
	make_db
	before=$(sha256 t.db)
	run -4 --separate-stderr recdelta-fetch 'sqlite:t.db?table=nope&key=id'
	assert_output ""
	assert_stderr 'recdelta-fetch: t.db: no table "nope"'
	assert_equal "$(sha256 t.db)" "$before"
	assert_equal "$(sqlite3 t.db "SELECT name FROM sqlite_master WHERE type = 'table'")" games
	run -4 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id&rev=nope'
	assert_output ""
	assert_stderr 'recdelta-fetch: t.db: table "games" has no column "nope"'
	run -4 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=nope'
	assert_output ""
	assert_stderr 'recdelta-fetch: t.db: table "games" has no column "nope"'
	# An empty file is an empty database: it has no such table.
	: > empty.db
	run -4 --separate-stderr recdelta-fetch 'sqlite:empty.db?table=games&key=id'
	assert_output ""
	assert_stderr 'recdelta-fetch: empty.db: no table "games"'
	[ ! -s empty.db ]
}

@test "sqlite: a NULL key is bad data" {
	sqlite3 t.db "CREATE TABLE t(k TEXT, x TEXT); INSERT INTO t VALUES(NULL, 'y');"
	run -3 --separate-stderr recdelta-fetch 'sqlite:t.db?table=t&key=k'
	assert_output ""
	assert_stderr 'recdelta-fetch: t.db: table "t" row 1: key is not a non-empty text or integer'
}

@test "sqlite: a malformed store word is a usage error" {
	make_db
	run -2 --separate-stderr recdelta-fetch 'sqlite:t.db'
	assert_output ""
	assert_stderr 'recdelta-fetch: "sqlite:t.db": expected sqlite:DB?table=T&key=COL'
	run -2 --separate-stderr recdelta-fetch 'sqlite:t.db?key=id'
	assert_output ""
	assert_stderr 'recdelta-fetch: "sqlite:t.db?key=id": table= and key= are required'
	run -2 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games'
	assert_output ""
	assert_stderr 'recdelta-fetch: "sqlite:t.db?table=games": table= and key= are required'
	run -2 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id&color=red'
	assert_output ""
	assert_stderr 'recdelta-fetch: "sqlite:t.db?table=games&key=id&color=red": unknown or empty parameter "color=red" (expected table, key, rev, type)'
}

@test "sqlite: a database is only read: a missing one is a runtime failure and is not created, a present one not written" {
	mkdir w && cd w
	run -4 --separate-stderr recdelta-fetch 'sqlite:none.db?table=t&key=id'
	assert_output ""
	assert_stderr "recdelta-fetch: none.db: No such file or directory"
	[ -z "$(ls -A)" ]
	run -4 --separate-stderr recdelta-fetch 'sqlite:no/such/dir/none.db?table=t&key=id'
	assert_output ""
	assert_stderr "recdelta-fetch: no/such/dir/none.db: No such file or directory"
	[ -z "$(ls -A)" ]
	# A file that is not a database is no empty store.
	echo garbage > junk.db
	run -4 --separate-stderr recdelta-fetch 'sqlite:junk.db?table=t&key=id'
	assert_output ""
	assert_stderr "recdelta-fetch: junk.db: file is not a database"
	assert_equal "$(cat junk.db)" garbage
	rm junk.db
	make_db
	before=$(sha256 t.db)
	run -0 --separate-stderr recdelta-fetch 'sqlite:t.db?table=games&key=id'
	assert_equal "$(sha256 t.db)" "$before"
	assert_equal "$(ls -A)" t.db
}

# --- output ---------------------------------------------------------------

@test "a write error on standard output is a runtime failure" {
	[ -w /dev/full ] || skip "no /dev/full"
	rec A k '{}' > in.ndjson
	make_dir_store S < in.ndjson
	for src in ndjson:in.ndjson dir:S; do
		run -4 --separate-stderr bash -c 'recdelta-fetch "$1" > /dev/full' _ "$src"
		assert_stderr "recdelta-fetch: write error: No space left on device"
	done
}

# --- round trips ----------------------------------------------------------

roundtrip() {
	run -0 --separate-stderr recdelta-diff --local "dir:$1" --remote "dir:$1" --exit-code
	assert_output ""
	assert_stderr ""
	recdelta-fetch "dir:$1" > f.ndjson
	run -0 --separate-stderr recdelta-diff --local ndjson:f.ndjson --remote "dir:$1" --exit-code
	assert_output ""
	assert_stderr ""
}

@test "round trip: a made store diffs clean against itself and its fetch" {
	{
		rec Stadium 'a/b' '{"location":{"$loc":{"lat":1.5,"lng":2.5}},"name":"é"}' 3
		rec Stadium '..' '{"team":{"$ref":"x"},"n":[1,2,{"z":null}]}'
		rec Team 'tab\tx' '{"d":{"$ts":"2026-01-01T00:00:00Z"},"b":{"$bytes":"AP8Q"}}' 9
		echo '{"kind":"record","type":"Team","key":"gone","rev":"2","deleted":true}'
	} | make_dir_store S
	roundtrip S
}

@test "round trip: the examples/mksample remote diffs clean against itself" {
	before=$(tree_digest "$SAMPLE/remote")
	roundtrip "$SAMPLE/remote"
	assert_equal "$(tree_digest "$SAMPLE/remote")" "$before"
	[ "$(wc -l < f.ndjson)" -eq 2960 ]
	[ "$(grep -c '"deleted":true' f.ndjson)" -eq 2 ]
}
