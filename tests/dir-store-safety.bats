#!/usr/bin/env bats
# The dir: store keeps to its folder and stays usable whatever a record or a
# stranger puts in it: nothing outside the store is touched through a
# symbolic link, a hard link or a planted .collect; no type or key takes a
# name of the store's own files or one too long for a file system; versions
# go up to 2^63-1; messages name the real path; and a local target that
# cannot be written stops with exit 4 instead of deferring to the outbox.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# change OP TYPE KEY [FIELDS] [REV]: a change line.
change() {
	printf '{"kind":"change","op":"%s","type":"%s","key":"%s"' "$1" "$2" "$3"
	[ -z "${5:-}" ] || printf ',"rev":"%s"' "$5"
	[ -z "${4:-}" ] || printf ',"fields":%s' "$4"
	printf '}\n'
}

# sync_check L: diff ndjson:L against dir:R, push the plan, fetch: nothing
# is left to diff, against the store nor against what was fetched.
sync_check() {
	recdelta-diff --all --allow-missing-remote -l "ndjson:$1" -r dir:R -o plan
	run -0 --separate-stderr recdelta-push --delete-orphans dir:R < plan
	refute_output --partial '"status":"failed"'
	recdelta-fetch dir:R > F
	run -0 --separate-stderr recdelta-diff --exit-code -l "ndjson:$1" -r dir:R
	run -0 --separate-stderr recdelta-diff --exit-code -l "ndjson:$1" -r ndjson:F
}

# limited KIB COMMAND...: run COMMAND with files limited to KIB KiB, a limit
# root is bound by too; its standard error through a pipe, which the limit
# does not touch (bats keeps it in a file).
limited() {
	local kib=$1
	shift
	{
		(trap '' XFSZ; ulimit -f "$kib"; exec "$@") 2>&1 >&3 3>&- | cat >&2
		return "${PIPESTATUS[0]}"
	} 3>&1
}

# --- nothing outside the store ---------------------------------------------------

@test "a delete or an update does not follow a symlinked type folder out of the store: damaged store, exit 4, nothing touched" {
	rec Team t1 '{"n":1}' > L
	sync_check L
	mkdir out
	cp 'R/Team/t1~1.json' out/
	rm -r R/Team
	ln -s "$PWD/out" R/Team
	before=$(tree_digest R)
	change delete Team t1 '' 1 > del
	change update Team t1 '{"n":2}' 1 > upd
	run -4 --separate-stderr recdelta-push --delete-orphans dir:R < del
	assert_output ''
	assert_stderr 'recdelta-push: R/Team: damaged store: a symbolic link'
	run -4 --separate-stderr recdelta-push dir:R < upd
	assert_output ''
	assert_stderr 'recdelta-push: R/Team: damaged store: a symbolic link'
	assert_equal "$(ls out)" 't1~1.json'
	assert_equal "$(tree_digest R)" "$before"
	assert_equal "$(readlink R/Team)" "$PWD/out"
}

@test "a planted .collect removes nothing outside the store, nor a file the index names as current; through an indexed type's symlinked folder it is refused" {
	rec Team t1 '{"n":1}' | make_dir_store R
	mkdir out
	echo keep > 'out/x~7.json'
	ln -s "$PWD/out" R/Evil
	printf '%s\n' 'Evil/x~7.json' 'Team/t1~1.json' '../out/x~7.json' 'Team/t1~0.json' > R/.collect
	change create Team t2 '{"n":2}' > in
	run -0 --separate-stderr recdelta-push dir:R < in
	assert_equal "$(cat 'out/x~7.json')" keep
	assert_equal "$(ls -A R/Team)" "$(printf '%s\n' 't1~1.json' 't2~1.json')"
	[ ! -e R/.collect ]
	run -0 --separate-stderr recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .rev, .fields.n]')" \
	    "$(printf '%s\n' '["t1","1",1]' '["t2","1",2]')"

	# Evil is a type of the index now, x at 8, so x~7 is superseded: the
	# line is acted on, and the symlinked folder refused before anything.
	{ rec Team t1 '{"n":1}'; rec Evil x '{"n":1}' 8; } | make_dir_store S
	: > S/.lock
	rm -r S/Evil
	ln -s "$PWD/out" S/Evil
	echo 'Evil/x~7.json' > S/.collect
	before=$(tree_digest S)
	run -4 --separate-stderr recdelta-push dir:S < in
	assert_output ''
	assert_stderr 'recdelta-push: S/Evil: damaged store: a symbolic link'
	assert_equal "$(cat 'out/x~7.json')" keep
	assert_equal "$(tree_digest S)" "$before"
}

@test "hard links and symbolic links where the store writes or removes its own file are refused; the file outside keeps its content" {
	rec Team t1 '{"n":1}' | make_dir_store R
	: > R/.lock
	echo precious > outside
	change update Team t1 '{"n":2}' 1 > upd
	# Debris at the next version's name, the version to supersede, the
	# journal and the index's temporary file.
	for f in 'Team/t1~2.json' 'Team/t1~1.json' .collect meta.json.tmp; do
		echo "--- $f"
		cp -p "R/$f" saved 2>/dev/null || rm -f saved
		rm -f "R/$f"
		ln outside "R/$f"
		before=$(tree_digest R)
		run -4 --separate-stderr recdelta-push dir:R < upd
		assert_output ''
		assert_stderr "recdelta-push: R/$f: damaged store: a file with other hard links"
		assert_equal "$(cat outside)" precious
		assert_equal "$(tree_digest R)" "$before"
		rm "R/$f"
		ln -s "$PWD/outside" "R/$f"
		run -4 --separate-stderr recdelta-push dir:R < upd
		assert_stderr "recdelta-push: R/$f: damaged store: a symbolic link"
		rm "R/$f"
		[ ! -e saved ] || mv saved "R/$f"
	done
	run -0 --separate-stderr recdelta-push dir:R < upd
	assert_output '{"kind":"result","op":"update","type":"Team","key":"t1","status":"ok","rev":"2","fields":{"n":2}}'
	assert_equal "$(cat outside)" precious
	assert_equal "$(ls -A R/Team)" 't1~2.json'
}

# --- names ------------------------------------------------------------------------

@test "types named like the store's own files (meta.json, meta.json.tmp, meta.idx, META.JSON, Meta.Idx, Meta.x, .lock, .collect) sync, read back and leave the store usable" {
	for t in meta.json meta.json.tmp meta.idx META.JSON Meta.Idx Meta.x .lock .collect; do
		rec "$t" k '{"n":1}'
	done > L
	sync_check L
	assert_equal "$(cd R && ls -A | LC_ALL=C sort)" "$(printf '%s\n' \
	    %2Ecollect %2Elock .lock META%2EJSON Meta%2EIdx Meta%2Ex meta%2Eidx \
	    meta%2Ejson meta%2Ejson%2Etmp meta.idx meta.json)"
	assert_equal "$(jq -c '[.type, .key, .rev]' F | LC_ALL=C sort)" \
	    "$(printf '["%s","k","1"]\n' .collect .lock META.JSON Meta.Idx Meta.x meta.idx meta.json meta.json.tmp)"
	# Later fetches, diffs and pushes: an update of each, then a delete.
	sed 's/"n":1/"n":2/' L > L2
	sync_check L2
	assert_equal "$(jq -c '[.rev, .fields.n]' F | sort -u)" '["2",2]'
	grep -v '"meta.json"' L2 > L3
	sync_check L3
	assert_equal "$(jq -r 'select(.deleted != true) | .type' F | LC_ALL=C sort | tr '\n' ' ')" '.collect .lock META.JSON Meta.Idx Meta.x meta.idx meta.json.tmp '
	[ ! -e R/meta%2Ejson/k~2.json ]
}

@test "keys and types too long for a file name (300, 1000 bytes, two sharing 250 bytes, 77 bytes encoded to 231) round-trip with nothing left to diff" {
	p250=$(printf 'p%.0s' $(seq 250))
	k300=$(printf 'a%.0s' $(seq 300))
	k1000=$(printf 'b%.0s' $(seq 1000))
	k77=$(printf '/%.0s' $(seq 77))
	k76=$(printf '/%.0s' $(seq 76))
	t240=$(printf 'T%.0s' $(seq 240))
	{
		rec T "$k300" '{"n":1}'
		rec T "$k1000" '{"n":2}'
		rec T "${p250}x" '{"n":3}'
		rec T "${p250}y" '{"n":4}'
		rec T "$k77" '{"n":5}'
		rec T "$k76" '{"n":6}'
		rec "$t240" k '{"n":7}'
	} > L
	sync_check L
	assert_equal "$(wc -l < F)" 7
	hash() { printf '%%sha256-%s' "$(printf %s "$1" | sha256sum | cut -c1-64)"; }
	assert_equal "$(cd R/T && ls | LC_ALL=C sort)" "$(printf '%s~1.json\n' \
	    "$(hash "$k1000")" "$(hash "$k300")" "$(hash "$k77")" \
	    "$(hash "${p250}x")" "$(hash "${p250}y")" "$(enc "$k76")" | LC_ALL=C sort)"
	[ -f "R/$(hash "$t240")/k~1.json" ]
	# Every name fits a file system; the real key is in the entity file.
	assert_equal "$(find R | awk -F/ 'length($NF) > 255')" ''
	assert_equal "$(jq -r .key "R/T/$(hash "$k300")~1.json")" "$k300"
	# Updates move them to their next version, deletes remove them.
	sed 's/"n":\([0-9]\)/"n":1\1/' L > L2
	sync_check L2
	assert_equal "$(jq -r .rev F | sort -u)" 2
	head -n 2 L2 > L3
	sync_check L3
	assert_equal "$(ls R/T | wc -l)" 2
}

# --- versions ---------------------------------------------------------------------

@test "versions up to 2^63-1: 999999999999999999 moves to 10^18 and reads back; at 9223372036854775807 the change fails alone with code version" {
	big=999999999999999999 max=9223372036854775807
	{ rec T a '{"n":1}' 11; rec T b '{"n":1}' 12; } | make_dir_store R
	mv 'R/T/a~11.json' "R/T/a~$big.json"
	mv 'R/T/b~12.json' "R/T/b~$max.json"
	sed -i "s/\"v\":11}/\"v\":$big}/; s/\"v\":12}/\"v\":$max}/" R/meta.json
	run -0 --separate-stderr recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -r .rev)" "$(printf '%s\n' "$big" "$max")"
	{
		change update T a '{"n":2}' "$big"
		change update T b '{"n":2}' "$max"
		change create T c '{"n":3}'
	} > in
	run -6 --separate-stderr recdelta-push dir:R < in
	assert_output - <<EOF
{"kind":"result","op":"update","type":"T","key":"a","status":"ok","rev":"1000000000000000000","fields":{"n":2}}
{"kind":"result","op":"update","type":"T","key":"b","status":"failed","error":{"code":"version","message":"R: version $max is the last a dir: store can count"}}
{"kind":"result","op":"create","type":"T","key":"c","status":"ok","rev":"1","fields":{"n":3}}
EOF
	assert_stderr 'Created 1, Updated 1, Skipped 0 unchanged, Deleted 0, Conflicts 0
Failed 1, Deferred 0 (kept for replay)'
	run -0 --separate-stderr recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -c '[.key, .rev, .fields.n]')" \
	    "$(printf '%s\n' '["a","1000000000000000000",2]' "[\"b\",\"$max\",1]" '["c","1",3]')"
	# A version past the limit is no version.
	bucket=$(grep -l '"b":' R/meta.idx/*.json)
	sed -i "s/\"v\":$max}/\"v\":9223372036854775808}/" "$bucket"
	run -4 --separate-stderr recdelta-fetch dir:R
	assert_stderr "recdelta-fetch: $bucket: damaged store: a bad entry"
}

# --- messages and stores that cannot be written -----------------------------------

@test "messages name the real path: an entity file in its type folder, meta.json.tmp rather than meta.json" {
	for k in $(seq 300); do rec Team "team-$k" '{"name":"a team with a long name"}'; done |
	    make_dir_store R
	change update Team team-1 '{"n":2}' 1 > upd
	change delete Team team-1 '' 1 > del
	mkdir 'R/Team/team-1~2.json'
	run -4 --separate-stderr recdelta-push dir:R < upd
	assert_stderr 'recdelta-push: R/Team/team-1~2.json: damaged store: not a regular file'
	rmdir 'R/Team/team-1~2.json'
	mkdir R/meta.json.tmp
	run -4 --separate-stderr recdelta-push dir:R < upd
	assert_stderr 'recdelta-push: R/meta.json.tmp: damaged store: not a regular file'
	rmdir R/meta.json.tmp
	# A plain I/O error, from a limit on file sizes (root is bound by it
	# too, as by a full disk): a delete writes no entity file, and the
	# first of the bucket files the first write makes of a
	# recdelta-store/1 index is the first file over 1 KiB.
	run -4 --separate-stderr limited 1 recdelta-push --delete-orphans dir:R < del
	assert_output ''
	assert_stderr 'recdelta-push: R/meta.idx/0~2.json: File too large'
	assert_equal "$(jq -r .format R/meta.json)" recdelta-store/1
	# What they left is debris the next writer replaces.
	run -0 --separate-stderr recdelta-push dir:R < upd
	run -0 --separate-stderr recdelta-fetch dir:R
	assert_equal "$(printf '%s\n' "$output" | jq -c 'select(.key == "team-1") | [.rev, .fields]')" '["2",{"n":2}]'
}

@test "smart-sync to a dir: target it may not write: exit 4 naming the path and the reason, nothing deferred to the outbox; once writable, the next run syncs" {
	mkdir st
	if [ "$(id -u)" = 0 ]; then
		# Root writes anywhere: the flow runs as nobody, the target is root's.
		command -v setpriv > /dev/null || skip "running as root without setpriv"
		d=$BATS_TEST_TMPDIR
		while [ "$d" != "$(dirname "$BATS_RUN_TMPDIR")" ]; do
			chmod o+x "$d"
			d=$(dirname "$d")
		done
		chown 65534 st
		as_other() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
		# A checkout under root's home (0700) is out of nobody's reach.
		as_other sh -c 'test -x "$1" && test -r "$2"' sh "$(command -v recdelta)" \
		    "$TOP/pipelines/smart-sync" ||
		    skip "running as root, with the programs where uid 65534 cannot run them ($TOP)"
	else
		as_other() { "$@"; }
	fi
	export RECDELTA_STATE=$PWD/st/state.db TMPDIR=$PWD/st
	{ rec Team a '{"n":1}'; rec Team b '{"n":2}'; } > L
	mkdir R
	: > R/.lock
	chmod 0666 R/.lock
	chmod 0555 R
	run -4 --separate-stderr as_other recdelta smart-sync -q -l ndjson:L -r "dir:$PWD/R"
	assert_output ''
	assert_stderr "recdelta-push: $PWD/R/Team: Permission denied"
	run -0 --separate-stderr as_other recdelta-checkpoint outbox
	assert_output ''
	chmod 0777 R
	run -0 --separate-stderr as_other recdelta smart-sync -q -l ndjson:L -r "dir:$PWD/R"
	assert_equal "$(recdelta-fetch "dir:$PWD/R" | jq -c '[.key, .rev]')" \
	    "$(printf '%s\n' '["a","1"]' '["b","1"]')"
}
