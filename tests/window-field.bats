#!/usr/bin/env bats
# The window field of --window and historical-import: a misspelt field is
# an error, never an import of nothing; SQLite's own datetime() format is
# read as UTC; a value that reads as no time is counted and reported;
# windows done by mistake can be reset and imported again.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	mkdir -p tmp
	export TMPDIR=$PWD/tmp
	export RECDELTA_STATE=$PWD/state.db
	# updatedAt as SQLite's datetime() writes it: no zone, a space.
	sqlite3 g.db "create table games(id text primary key, updatedAt text, score integer);
	    insert into games values('a', datetime('2025-01-02T01:00:00'), 1),
	      ('b', '2025-01-03 23:59:59.5', 2), ('c', 'soon', 3), ('d', NULL, 4),
	      ('e', '2025-01-03T10:00:00+02:00', 5);"
	SRC='sqlite:g.db?table=games&key=id'
}

import() {
	recdelta historical-import --source "$SRC" --target dir:t \
	    --from 2025-01-01 --to 2025-01-04 "$@"
}

@test "fetch --window: zoneless date-times are UTC; unreadable values are counted; a field no record has is an error" {
	run -0 --separate-stderr recdelta-fetch --window 'updatedAt=2025-01-02..2025-01-04' "$SRC"
	assert_equal "$(jq -r .key <<< "$output" | sort | tr '\n' ' ')" 'a b e '
	assert_equal "$stderr" 'recdelta-fetch: sqlite:g.db?table=games&key=id: 1 record has a field "updatedAt" that is not a date or an instant (the first: key "c"): outside every window'
	# 23:59:59.5 UTC on the 3rd is not in a window that ends then.
	run -0 --separate-stderr recdelta-fetch --window 'updatedAt=2025-01-03T00:00:00Z..2025-01-03 23:59:59' "$SRC"
	assert_equal "$(jq -r .key <<< "$output" | sort | tr '\n' ' ')" 'e '
	run -3 --separate-stderr recdelta-fetch --window 'updatedat=2025-01-01..2025-02-01' "$SRC"
	assert_output ''
	assert_equal "$stderr" 'recdelta-fetch: sqlite:g.db?table=games&key=id: the --window field "updatedat" holds no time in any of its 5 records (misspelt?)'
	# An empty store has nothing to misspell.
	: > empty.ndjson
	run -0 --separate-stderr recdelta-fetch --allow-empty --window 'x=2025-01-01..2025-02-01' ndjson:empty.ndjson
	assert_output ''
}

@test "diff --window: the side whose records lack the field is an error, exit 3" {
	run -3 --separate-stderr recdelta-diff --window 'updatedat=2025-01-01..2025-02-01' \
	    --local "$SRC" --remote dir:nowhere --allow-missing-remote --allow-empty
	assert_output ''
	assert_equal "$stderr" 'recdelta-diff: sqlite:g.db?table=games&key=id: the --window field "updatedat" holds no time in any of its 5 records (misspelt?)'
}

@test "historical-import with a misspelt --window-field: fails at the first window, exit 6, nothing written; windows reset, then the right field imports" {
	run -6 --separate-stderr import --window-field updatedat
	assert_equal "${stderr_lines[0]}" 'recdelta-diff: sqlite:g.db?table=games&key=id: the --window field "updatedat" holds no time in any of its 5 records (misspelt?)'
	grep -qxF 'failed: 2025-01-01: recdelta-diff: sqlite:g.db?table=games&key=id: the --window field "updatedat" holds no time in any of its 5 records (misspelt?)' <<< "$stderr"
	[ ! -e t ] || fail "the target was written"
	run -0 recdelta-checkpoint windows pending
	assert_equal "${#lines[@]}" 4
	# Windows marked done by mistake (as an older version did): reset them.
	for d in 01 02 03 04; do recdelta-checkpoint windows done "2025-01-$d"; done
	run -0 --separate-stderr import --window-field updatedAt
	assert_equal "$(recdelta-fetch dir:t 2>/dev/null | wc -l)" 0
	recdelta-checkpoint windows reset --all
	run -0 --separate-stderr import --window-field updatedAt
	assert_equal "$(recdelta-fetch dir:t | jq -r .key | sort | tr '\n' ' ')" 'a b e '
	# The unreadable value: reported once, not once a window.
	assert_equal "$(grep -c 'not a date or an instant' <<< "$stderr")" 1
	grep -qxF 'recdelta-diff: sqlite:g.db?table=games&key=id: 1 record has a field "updatedAt" that is not a date or an instant (the first: key "c"): outside every window' <<< "$stderr"
}

# A window on a column of an sqlite: table is a WHERE clause: the records
# of each window are those a whole read and the window's test give (the
# same fetch over an ndjson: copy is the oracle), for values with zones
# either side of midnight, SQLite's own format, dates alone, a lower-case
# "t", words, numbers and NULL, in a TEXT column and in an indexed one of
# numeric affinity; and a run of daily windows reads each dated row three
# times at most (its window and the two beside it), as the log counts.
@test "fetch --window on an sqlite: column reads the window's rows by a WHERE clause: the records a whole read keeps, each row read a few times, not once a window" {
	{
		echo 'create table w(id text primary key, at text, dt datetime);'
		echo 'create index w_dt on w(dt);'
		for i in $(seq 0 299); do
			d=$(printf '2025-01-%02d' $((i % 10 + 1)))
			h=$(printf '%02d' $((i * 7 % 24)))
			case $((i % 6)) in
			0) v="${d}T$h:00:00Z" ;;
			1) v="$d $h:30:00" ;;
			2) v="${d}T$h:00:00+13:00" ;;
			3) v="${d}T$h:15:00-11:30" ;;
			4) v="$d" ;;
			5) v="${d}t$h:45:00.5z" ;;
			esac
			printf "insert into w values('r%03d', '%s', '%s');\n" "$i" "$v" "$v"
		done
		echo "insert into w values('n1', NULL, NULL), ('w1', 'soon', 'soon'), ('i1', ' 2025-01-05', 1735689600);"
	} | sqlite3 w.db
	src='sqlite:w.db?table=w&key=id'
	recdelta-fetch "$src" > all.ndjson
	export RECDELTA_LOG=$PWD/fetch.log
	for col in at dt; do
		: > fetch.log
		for day in $(seq 1 10); do
			from=$(printf '2025-01-%02d' "$day")
			to=$(date -u -d "$from + 1 day" +%F)
			run -0 --separate-stderr recdelta-fetch --window "$col=$from..$to" "$src"
			got=$(LC_ALL=C sort <<< "$output") got_err=$stderr
			run -0 --separate-stderr recdelta-fetch --window "$col=$from..$to" ndjson:all.ndjson
			[ "$got" = "$(LC_ALL=C sort <<< "$output")" ] ||
			    fail "$col, $from: $(diff <(echo "$got") <(LC_ALL=C sort <<< "$output"))"
			# The first unreadable one named is the first read: in the
			# index's order when SQLite reads through one.
			exp=${stderr%(the first:*}
			assert_equal "${got_err%(the first:*}" "${exp//ndjson:all.ndjson/"$src"}"
		done
		read_rows=$(jq -s 'map(.rows_read) | add' fetch.log)
		assert_equal "$(jq -s length fetch.log)" 10
		# 300 dated rows, at most 3 reads each; "soon" and " 2025-01-05"
		# (or the number) once a window.
		[ "$read_rows" -le $((3 * 300 + 10 * 2)) ] ||
		    fail "$col: $read_rows rows read by 10 windows of 302 rows"
		[ "$read_rows" -ge 300 ] || fail "$col: $read_rows rows read: fewer than the dated rows"
	done
	# Every window together holds every dated row once.
	for day in $(seq 1 10); do
		from=$(printf '2025-01-%02d' "$day")
		recdelta-fetch --window "at=$from..$(date -u -d "$from + 1 day" +%F)" "$src" 2> /dev/null
	done | jq -r .key | LC_ALL=C sort > windowed.keys
	assert_equal "$(uniq -d windowed.keys)" ''
	# The zones reach into December and the 11th: 300 less those.
	[ "$(wc -l < windowed.keys)" -ge 290 ] || fail "only $(wc -l < windowed.keys) rows in January's windows"
}
