#!/usr/bin/env bats
# The webdav: store against a real Apache httpd with mod_dav and mod_dav_fs
# (helpers/apache.bash): the layout of dir:, byte for byte, both ways;
# writes guarded by If-None-Match: * and meta.json's If-Match, racing
# writers, kills mid-batch, the sweep, credentials, weak ETags and keys
# that would leave the store.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore
load helpers/apache
load helpers/faultinject

teardown() {
	dav_stop
}

# change OP TYPE KEY [FIELDS] [REV]: a change line.
change() {
	printf '{"kind":"change","op":"%s","type":"%s","key":"%s"' "$1" "$2" "$3"
	[ -z "${5:-}" ] || printf ',"rev":"%s"' "$5"
	[ -z "${4:-}" ] || printf ',"fields":%s' "$4"
	printf '}\n'
}

# The files of a store folder with their sha256, sorted; meta.json's
# mtimes left out (they are the time of the write).
store_files() {
	(cd "$1" && find . -type f ! -name .lock | LC_ALL=C sort | while IFS= read -r f; do
		if [ "$f" = ./meta.json ] || [[ $f == ./meta.idx/* ]]; then
			printf '%s %s\n' "$f" "$(sed 's/"mtime":"[^"]*",//g' "$f" | sha256sum | cut -c1-16)"
		else
			printf '%s %s\n' "$f" "$(sha256sum < "$f" | cut -c1-16)"
		fi
	done)
}

records() {
	rec Team t1 '{"name":"Ari","n":{"$int":"9007199254740993"}}'
	rec Team 'a/b' '{"name":"slash"}'
	rec Team 'ü é' '{"name":"Ünïcode ✓"}'
	rec Game g1 '{"home":"t1","score":[1,2]}'
}

@test "dir: -> webdav: -> dir:: a store pushed through webdav: is, on Apache's document root, the store dir: writes, byte for byte; each reads the other" {
	dav_start
	records > L
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r dir:D -o planD
	recdelta-push -q dir:D < planD > /dev/null
	W="webdav:$DAV_URL/s/"
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r "$W" -o planW
	run -0 --separate-stderr recdelta-push "$W" < planW
	assert_equal "$stderr" "recdelta-push: created \"$W\" (it did not exist)
Created 4, Updated 0, Skipped 0 unchanged, Deleted 0, Conflicts 0"
	assert_equal "$(store_files "$DAV_ROOT/s")" "$(store_files D)"
	recdelta-fetch "$W" > FW
	recdelta-fetch "dir:$DAV_ROOT/s" > FD
	assert_equal "$(cat FW)" "$(cat FD)"
	run -0 recdelta-diff --exit-code -l ndjson:L -r "$W"
	# A folder dir: wrote, read by webdav:.
	cp -r D "$DAV_ROOT/d"
	[ "$(id -u)" != 0 ] || chown -R www-data: "$DAV_ROOT/d"
	recdelta-fetch "webdav:$DAV_URL/d" > FW2
	recdelta-fetch dir:D > FD2
	assert_equal "$(cat FW2)" "$(cat FD2)"
	# An update and a delete through webdav: collect the old versions.
	rec Team t1 '{"name":"Ari 2"}' > L2
	rec Game g1 '{"home":"t1","score":[1,2]}' >> L2
	rec Team 'ü é' '{"name":"Ünïcode ✓"}' >> L2
	recdelta-diff --all -l ndjson:L2 -r "$W" -o plan2
	run -0 --separate-stderr recdelta-push --delete-orphans "$W" < plan2
	assert_equal "$stderr" "Created 0, Updated 1, Skipped 2 unchanged, Deleted 1, Conflicts 0"
	assert_equal "$(cd "$DAV_ROOT/s" && find . -type f | LC_ALL=C sort)" "$({ printf '%s\n' ./Game/g1~1.json \
	    ./Team/%C3%BC%20%C3%A9~1.json ./Team/t1~2.json ./meta.json; bucket_files "$DAV_ROOT/s"; } | LC_ALL=C sort)"
	run -0 recdelta-diff --exit-code -l ndjson:L2 -r "dir:$DAV_ROOT/s"
}

@test "a wrong password: exit 4, the server's refusal said, nothing written, the password in no message" {
	dav_start
	W="webdav:$DAV_URL/s/"
	change create Team t1 '{"n":1}' > in
	printf 'wrong horse\n' > bad
	chmod 600 bad
	RECDELTA_WEBDAV_PASSWORD_FILE=$PWD/bad run -4 --separate-stderr recdelta-push "$W" < in
	assert_output ''
	assert_equal "$stderr" "recdelta-push: webdav: $DAV_URL/s: the server refused the credentials (HTTP 401): check RECDELTA_WEBDAV_USER and RECDELTA_WEBDAV_PASSWORD_FILE, or the netrc file"
	RECDELTA_WEBDAV_PASSWORD_FILE=$PWD/bad run -4 --separate-stderr recdelta-fetch "$W"
	assert_equal "$stderr" "recdelta-fetch: webdav: $DAV_URL/s: the server refused the credentials (HTTP 401): check RECDELTA_WEBDAV_USER and RECDELTA_WEBDAV_PASSWORD_FILE, or the netrc file"
	assert_equal "$(ls "$DAV_ROOT")" ''
	# A password file others may read is refused before anything is sent.
	chmod 644 bad
	RECDELTA_WEBDAV_PASSWORD_FILE=$PWD/bad run -2 --separate-stderr recdelta-fetch "$W"
	assert_equal "$stderr" "recdelta-fetch: webdav: RECDELTA_WEBDAV_PASSWORD_FILE: $PWD/bad: others may read the password file (chmod 600 it)"
	# The netrc file, when no user is set in the environment.
	printf 'machine 127.0.0.1 login %s password "%s"\n' "$DAV_USER" "$DAV_PASSWORD" > netrc
	RECDELTA_WEBDAV_USER= RECDELTA_WEBDAV_PASSWORD_FILE= RECDELTA_NETRC=$PWD/netrc \
	    run -0 --separate-stderr recdelta-push -q "$W" < in
	assert_output '{"kind":"result","op":"create","type":"Team","key":"t1","status":"ok","rev":"1","fields":{"n":1}}'
	! grep -rq 'wrong horse\|s3cret' "$DAV_RUN/access.log"
}

@test "plain http to a host not this one is refused unless --insecure-http, which warns" {
	run -2 --separate-stderr recdelta-fetch webdav:http://192.0.2.1/s/
	assert_equal "$stderr" "recdelta-fetch: webdav: the URL must start with https:// (http:// only to localhost, 127.0.0.0/8 or [::1])"
	run -2 --separate-stderr recdelta-push --check-args webdav:http://192.0.2.1/s/
	run -0 --separate-stderr recdelta-push --check-args --insecure-http webdav:http://192.0.2.1/s/
	assert_equal "$stderr" "recdelta-push: webdav: warning: http://192.0.2.1/s: plain http (--insecure-http): the password and the records cross the network unencrypted"
	run -2 --separate-stderr recdelta-fetch webdav:https://alice@example.org/s/
	assert_equal "$stderr" "recdelta-fetch: webdav: the URL may not hold a user name or password (nor an @ before the host)"
}

@test "a server whose ETags for meta.json are weak (FileETag MTime Size) is detected: waited out with a warning, never trusted for a commit" {
	dav_start 'MTime Size'
	W="webdav:$DAV_URL/s/"
	change create Team t1 '{"n":1}' > in1
	recdelta-push -q "$W" < in1 > /dev/null
	# meta.json changed "in the future": Apache's ETag stays weak.
	before=$(cat "$DAV_ROOT/s/meta.json")
	touch -d '+1 day' "$DAV_ROOT/s/meta.json"
	change update Team t1 '{"n":2}' 1 > in2
	run -6 --separate-stderr recdelta-push -q "$W" < in2
	assert_output "$(res update Team t1 deferred 1 '{"n":2}' ',"error":{"code":"unreachable","message":"webdav: '"$DAV_URL"'/s/meta.json: the ETag stayed weak (Apache: set FileETag Digest)"}')"
	assert_equal "$stderr" "recdelta-push: webdav: warning: $DAV_URL/s/meta.json: the server gives a weak ETag, which no If-Match accepts (Apache: set FileETag Digest); waiting for a strong one
recdelta-push: webdav: $DAV_URL/s/meta.json: the ETag stayed weak (Apache: set FileETag Digest)"
	assert_equal "$(cat "$DAV_ROOT/s/meta.json")" "$before"
	assert_equal "$(cd "$DAV_ROOT/s" && find . -type f | LC_ALL=C sort)" "$({ printf '%s\n' ./Team/t1~1.json \
	    ./meta.json; bucket_files "$DAV_ROOT/s"; } | LC_ALL=C sort)"
	# Once strong (a second after the change), the commit goes through.
	touch -d '-10 seconds' "$DAV_ROOT/s/meta.json"
	run -0 --separate-stderr recdelta-push -q "$W" < in2
	assert_output '{"kind":"result","op":"update","type":"Team","key":"t1","status":"ok","rev":"2","fields":{"n":2}}'
	assert_equal "$stderr" ''
}

@test "hostile keys and types stay inside the store's collection, each one path segment, and round-trip exactly" {
	dav_start
	W="webdav:$DAV_URL/s/"
	{
		rec Team '../../escape' '{"n":1}'
		rec Team '..' '{"n":2}'
		rec Team '.' '{"n":3}'
		rec Team 'a/../../b' '{"n":4}'
		rec Team '%2e%2e%2f' '{"n":5}'
		rec Team 'meta.json' '{"n":6}'
		rec Team 'x?y#z' '{"n":7}'
		rec Team 'sp ace\ttab' '{"n":8}'
		rec '..' 'k' '{"n":9}'
		rec 'meta.json' 'k' '{"n":10}'
		rec '/' '~1.json' '{"n":11}'
	} > L
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r "$W" -o plan
	run -0 --separate-stderr recdelta-push -q "$W" < plan
	refute_output --partial '"status":"failed"'
	assert_equal "$(ls -A "$DAV_ROOT")" s
	assert_equal "$(cd "$DAV_ROOT/s" && find . -mindepth 1 -maxdepth 1 | LC_ALL=C sort)" './%2E.
./%2F
./Team
./meta%2Ejson
./meta.idx
./meta.json'
	assert_equal "$(find "$DAV_ROOT/s" -mindepth 3 | wc -l)" 0
	run -0 recdelta-diff --exit-code -l ndjson:L -r "$W"
	run -0 recdelta-diff --exit-code -l ndjson:L -r "dir:$DAV_ROOT/s"
	! grep -q ' 40[03] \| 50[0-9]$' "$DAV_RUN/access.log"
}

# updates ROUND WHO KEY...: update lines for KEY... at the revs of the
# fetched store in F, to {"r":ROUND,"w":WHO}.
updates() {
	local round=$1 who=$2
	shift 2
	jq -c --argjson round "$round" --arg who "$who" --args \
	    'select(.key as $k | $ARGS.positional | index($k)) |
	    {kind:"change",op:"update",type,key,rev,fields:{r:$round,w:$who}}' "$@" < F
}

@test "two pushes racing on one store, overlapping keys, 20 rounds: no lost update, every change ok at its own rev or a conflict, the index whole, nothing left behind" {
	dav_start
	W="webdav:$DAV_URL/s/"
	for i in 1 2 3 4 5 6 7 8 9 10; do rec Team "k$i" '{"r":0}'; done > L
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r "$W" -o plan
	recdelta-push -q "$W" < plan > /dev/null
	for round in $(seq 1 20); do
		recdelta-fetch "$W" > F
		updates "$round" A k1 k2 k3 k4 k5 k6 k7 > A
		updates "$round" B k4 k5 k6 k7 k8 k9 k10 > B
		recdelta-push -q --jobs 3 "$W" < A > outA 2> errA &
		pa=$!
		recdelta-push -q --jobs 3 "$W" < B > outB 2> errB &
		pb=$!
		# 6: a change that kept losing the race is a conflict.
		wait "$pa" || [ $? = 6 ] || fail "round $round: push A: $(cat errA)"
		wait "$pb" || [ $? = 6 ] || fail "round $round: push B: $(cat errB)"
		recdelta-fetch "$W" > G
		# Per key: the ok writes took consecutive revs after the one
		# read, each its own, and the store holds the last of them.
		run -0 jq -rn --slurpfile f F --slurpfile g G --slurpfile r <(cat outA outB) '
		    ($r | map(select(.kind == "result" and .status == "ok"))) as $res |
		    [$r[] | select(.status != "ok" and .status != "conflict")] as $bad |
		    if ($bad | length) > 0 then "not ok: \($bad)" else
		    [$g[] | . as $now | ($f[] | select(.key == $now.key) | .rev | tonumber) as $was |
		     [$res[] | select(.key == $now.key)] as $w |
		     ($w | map(.rev | tonumber) | sort) as $revs |
		     if $revs != [range($was + 1; $was + 1 + ($w | length))] then "\($now.key): revs \($revs) after \($was)"
		     elif ($w | length) > 0 and (($now.rev | tonumber) != ($revs | last) or
		         ($w | max_by(.rev | tonumber) | .fields) != $now.fields) then "\($now.key): lost update"
		     else empty end] | if length > 0 then join("; ") else "consistent" end end'
		assert_output consistent
		assert_equal "$(grep -c '"key":"k[4-7]"' G)" 4
		# The index and the files agree: dir: reads them, checking each
		# sha256, and holds no file the index does not name.
		recdelta-fetch "dir:$DAV_ROOT/s" > D
		assert_equal "$(cat D)" "$(cat G)"
		assert_equal "$(find "$DAV_ROOT/s" -type f | wc -l)" "$((11 + $(bucket_files "$DAV_ROOT/s" | wc -l)))"
	done
	# A rerun converges.
	recdelta-diff --all -l ndjson:L -r "$W" -o plan
	recdelta-push -q "$W" < plan > /dev/null
	run -0 recdelta-diff --exit-code -l ndjson:L -r "$W"
	run -0 --separate-stderr recdelta-push --sweep --grace 0 "$W"
	assert_equal "$stderr" 'Swept 0 files'
}

@test "kill -9 of push before each of its requests: the store reads as the last commit, the sweep removes the lock and the debris, a rerun converges" {
	dav_start
	W="webdav:$DAV_URL/s/"
	for i in 1 2 3 4 5 6 7 8; do rec Team "k$i" "{\"n\":$i}"; done > L1
	recdelta-diff --all --allow-missing-remote -l ndjson:L1 -r "$W" -o plan
	recdelta-push -q "$W" < plan > /dev/null
	cp -a "$DAV_ROOT/s" init
	recdelta-fetch "$W" | jq -c 'del(.mtime)' > F1
	{ for i in 1 2 3; do rec Team "k$i" "{\"n\":$((i * 10))}"; done
	  rec Team k4 '{"n":4}'; rec Team k7 '{"n":7}'; rec Team k8 '{"n":8}'
	  rec Team n1 '{"n":-1}'; rec Team n2 '{"n":-2}'; } > L2
	recdelta-diff --all -l ndjson:L2 -r "$W" -o plan2
	# One run to the end: the final state, and its number of sends.
	RECDELTA_FAULT_CALLS=send RECDELTA_FAULT_COUNT=$PWD/count \
	    faulty recdelta-push -q --jobs 1 --delete-orphans "$W" < plan2 > /dev/null
	total=$(cat count)
	recdelta-fetch "$W" | jq -c 'del(.mtime)' > F2
	# The lock and its owner, meta.json, the bucket files of the changed
	# keys that were there, 5 versions, the changed buckets' new files, the
	# commit, 5 superseded versions and the superseded bucket files, the
	# unlock.
	had=$(jq -n --slurpfile a init/meta.json --slurpfile b "$DAV_ROOT/s/meta.json" \
	    '[range($a[0].buckets | length) | select($b[0].buckets[.] == $b[0].generation and $a[0].buckets[.] > 0)] | length')
	made=$(jq '[.buckets[] | select(. == 2)] | length' "$DAV_ROOT/s/meta.json")
	assert_equal "$(jq -c '[.generation, .buckets[]] | unique' init/meta.json)" '[0,1]'
	assert_equal "$total" "$((15 + 2 * had + made))"
	for n in $(seq 1 "$total"); do
		rm -rf "$DAV_ROOT/s"
		cp -a init "$DAV_ROOT/s"
		RECDELTA_FAULT_CALLS=send paused "$n" recdelta-push -q --jobs 1 \
		    --delete-orphans "$W" < plan2 > out 2> err
		wait_paused || fail "send $n: push ended first: $(cat err)"
		kill_paused
		# The last commit, whole, whichever it is: through webdav: and
		# through dir: (each file checked against the index).
		recdelta-fetch "$W" > F
		jq -c 'del(.mtime)' F > G
		cmp -s G F1 || cmp -s G F2 || fail "send $n: a state neither before nor after"
		recdelta-fetch "dir:$DAV_ROOT/s" > D
		cmp -s D F || fail "send $n: dir: reads another state"
		# A lock with its owner's pid is taken back by the next writer;
		# one made just before the kill, with no owner yet, by the sweep.
		if [ "$n" = 2 ]; then
			run -0 --separate-stderr recdelta-push --sweep --grace 0 "$W"
			assert_equal "$stderr" "recdelta-push: webdav: $DAV_URL/s/.recdelta-lock/: removed the lock of a writer that did not finish
Swept 0 files"
		fi
		recdelta-diff --all -l ndjson:L2 -r "$W" -o plan3
		recdelta-push -q --delete-orphans "$W" < plan3 > /dev/null
		run -0 recdelta-diff --exit-code -l ndjson:L2 -r "$W"
		# The sweep removes what is left (a lock, versions not collected).
		run -0 --separate-stderr recdelta-push --sweep --grace 0 "$W"
		run -0 --separate-stderr recdelta-push --sweep --grace 0 "$W"
		assert_equal "$stderr" 'Swept 0 files'
		# Nothing left but the index and the current versions.
		assert_equal "$(cd "$DAV_ROOT/s" && find . -mindepth 1 ! -path './meta.idx/*' | LC_ALL=C sort | sed 's/~[0-9]*\.json$//' | tr '\n' ' ')" \
		    './Team ./Team/k1 ./Team/k2 ./Team/k3 ./Team/k4 ./Team/k7 ./Team/k8 ./Team/n1 ./Team/n2 ./meta.idx ./meta.json '
		assert_equal "$(cd "$DAV_ROOT/s" && find ./meta.idx -type f | LC_ALL=C sort)" "$(bucket_files "$DAV_ROOT/s" | LC_ALL=C sort)"
	done
}

@test "push --sweep, dir: and webdav:: unreferenced version files older than the grace period go, younger ones, current versions and other files stay; a dead writer's lock goes" {
	dav_start
	rec Team k1 '{"n":1}' > L
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r dir:D -o plan
	recdelta-push -q dir:D < plan > /dev/null
	W="webdav:$DAV_URL/s/"
	recdelta-push -q "$W" < plan > /dev/null
	for d in D "$DAV_ROOT/s"; do
		echo debris > "$d/Team/k1~2.json"
		echo young > "$d/Team/k1~3.json"
		echo other > "$d/Team/notes.txt"
		mkdir -p "$d/Gone"
		echo debris > "$d/Gone/x~1.json"
		touch -d '-1 hour' "$d/Team/k1~2.json" "$d/Team/k1~1.json" "$d/Gone/x~1.json" "$d/Team/notes.txt"
	done
	mkdir "$DAV_ROOT/s/.recdelta-lock"
	touch -d '-1 hour' "$DAV_ROOT/s/.recdelta-lock"
	[ "$(id -u)" != 0 ] || chown -R www-data: "$DAV_ROOT/s"
	run -0 --separate-stderr recdelta-push --sweep dir:D
	assert_equal "$stderr" 'Swept 2 files'
	run -0 --separate-stderr recdelta-push --sweep "$W"
	assert_equal "$stderr" "recdelta-push: webdav: $DAV_URL/s/.recdelta-lock/: removed the lock of a writer that did not finish
Swept 2 files"
	for d in D "$DAV_ROOT/s"; do
		assert_equal "$(cd "$d" && find . -type f ! -name .lock | LC_ALL=C sort)" "$({ printf '%s\n' ./Team/k1~1.json \
		    ./Team/k1~3.json ./Team/notes.txt ./meta.json; bucket_files "$d"; } | LC_ALL=C sort)"
	done
	run -0 recdelta-diff --exit-code -l ndjson:L -r "$W"
	run -2 --separate-stderr recdelta-push --sweep --grace x dir:D
	assert_equal "$stderr" 'recdelta-push: --grace: "x": expected seconds, 0 or more'
	run -2 --separate-stderr recdelta-push --sweep ndjson:F
	assert_equal "$stderr" 'recdelta-push: --sweep: ndjson:F: the ndjson: store leaves no debris to sweep'
}
