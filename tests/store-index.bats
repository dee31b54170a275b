#!/usr/bin/env bats
# The index of dir: and webdav: stores, recdelta-store/2 (recdelta-stream(5)):
# meta.json a small root naming B bucket files meta.idx/I~G.json.  A commit
# writes the files of the buckets its keys fall in and the root, nothing
# else of the index; the change feed reads the buckets changed after its
# cursor; B doubles as the index grows; a recdelta-store/1 index (the whole
# index in meta.json) is read and turned into /2 by the first write; a
# bucket file that is not the one the root names is a damaged store; and a
# writer that dies before its root leaves files the next writer removes.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/dirstore
load helpers/apache
load helpers/faultinject

teardown() {
	dav_stop
}

assert_stderr() {
	assert_equal "$stderr" "$1"
}

# records N: record lines T k1..kN, {"n":I}.
records() {
	awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++)
	    printf "{\"kind\":\"record\",\"type\":\"T\",\"key\":\"k%d\",\"fields\":{\"n\":%d}}\n", i, i }'
}

# updates N: change lines updating T k1..kN (at rev 1) to {"n":-I}.
updates() {
	awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++)
	    printf "{\"kind\":\"change\",\"op\":\"update\",\"type\":\"T\",\"key\":\"k%d\",\"rev\":\"1\",\"fields\":{\"n\":%d}}\n", i, -i }'
}

# bucket_of B TYPE KEY...: the bucket of each key, as recdelta-stream(5)
# specifies it (the first 8 bytes of SHA-256(TYPE NUL KEY), big-endian,
# mod B; B a power of two up to 2^24, so the last 6 hex digits suffice).
bucket_of() {
	local b=$1 t=$2 k h
	shift 2
	for k; do
		h=$(printf '%s\0%s' "$t" "$k" | sha256sum | cut -c11-16)
		echo $(( 16#$h % b ))
	done
}

# push_all STORE: the records of L pushed into STORE, a new store.
push_all() {
	recdelta-diff --all --allow-missing-remote -l ndjson:L -r "$1" -o plan
	recdelta-push -q "$1" < plan > /dev/null
}

# idx_files DIR: the files of DIR/meta.idx, ./meta.idx/NAME, sorted.
idx_files() {
	(cd "$1" && find ./meta.idx -type f | LC_ALL=C sort)
}

@test "dir: 100 updates into 20,000 records write the root and one new file per bucket they fall in, remove the files those supersede, and the feed reads back exactly them" {
	records 20000 > L
	push_all dir:S
	# Four commits of 5,000: B doubled to 128, then to 512.
	assert_equal "$(jq -c '[.format, .generation, .entries, (.buckets | length)]' S/meta.json)" \
	    '["recdelta-store/2",4,20000,512]'
	assert_equal "$(idx_files S)" "$(bucket_files S | LC_ALL=C sort)"
	assert_equal "$(idx_files S | wc -l)" 512
	idx_files S > before
	updates 100 > in
	run -0 --separate-stderr recdelta-push -q dir:S < in
	assert_equal "$(grep -c '"status":"ok","rev":"2"' <<<"$output")" 100
	assert_equal "$(jq -c '[.generation, .entries, (.buckets | length)]' S/meta.json)" '[5,20000,512]'
	# The new files: one per bucket of the 100 keys, named for generation 5.
	idx_files S > after
	comm -13 before after > new
	comm -23 before after > gone
	expect=$(bucket_of 512 T $(seq -f 'k%g' 1 100) | sort -n -u)
	assert_equal "$(sed 's|^./meta.idx/||; s|~5\.json$||' new | sort -n)" "$expect"
	[ "$(wc -l < new)" -le 100 ]
	# Each replaced the file of its bucket, which is gone; nothing else is.
	assert_equal "$(sed 's|^./meta.idx/||; s|~[0-9]*\.json$||' gone | sort -n)" "$expect"
	assert_equal "$(idx_files S)" "$(bucket_files S | LC_ALL=C sort)"
	assert_equal "$(cd S && find . -type f ! -path './meta.idx/*' ! -path './T/*' | LC_ALL=C sort)" './.lock
./meta.json'
	# The feed after generation 4: exactly the 100 records, then its cursor.
	run -0 --separate-stderr recdelta-fetch --changes --resume 4 dir:S
	assert_equal "$(jq -c 'select(.kind == "record") | [.key, .rev, .fields.n]' <<<"$output" | sort)" \
	    "$(seq 1 100 | awk '{ printf "[\"k%d\",\"2\",%d]\n", $1, -$1 }' | sort)"
	assert_equal "${lines[100]}" '{"kind":"cursor","source":"dir:S","name":"generation","value":5}'
	assert_equal "${#lines[@]}" 101
	# The whole store reads back: 20,000 records, the 100 changed.
	recdelta-fetch dir:S > F
	assert_equal "$(wc -l < F)" 20000
	{ records 20000 | sed -n '101,$p'; seq 1 100 | awk '{ printf "{\"kind\":\"record\",\"type\":\"T\",\"key\":\"k%d\",\"fields\":{\"n\":%d}}\n", $1, -$1 }'; } > L2
	run -0 recdelta-diff --exit-code -l ndjson:L2 -r ndjson:F
}

@test "webdav: 100 updates into 20,000 records: GET and PUT of the buckets they fall in and the root, DELETE of the superseded ones; the feed GETs only the buckets changed after its cursor" {
	dav_start
	records 20000 > L
	# dir: writes the same store as webdav: (webdav-store.bats), faster.
	push_all "dir:$DAV_ROOT/s"
	[ "$(id -u)" != 0 ] || chown -R www-data: "$DAV_ROOT/s"
	W="webdav:$DAV_URL/s/"
	updates 100 > in
	n0=$(dav_requests | wc -l)
	run -0 --separate-stderr recdelta-push -q "$W" < in
	assert_equal "$(grep -c '"status":"ok","rev":"2"' <<<"$output")" 100
	dav_requests | tail -n +$((n0 + 1)) > log
	expect=$(bucket_of 512 T $(seq -f 'k%g' 1 100) | sort -n -u)
	nb=$(wc -l <<<"$expect")
	[ "$nb" -le 100 ]
	assert_equal "$(awk '$1 == "PUT" && $2 ~ /^\/s\/meta\.idx\// { print $2 }' log | sed 's|.*/||; s|~5\.json$||' | sort -n)" "$expect"
	assert_equal "$(awk '$1 == "GET" && $2 ~ /^\/s\/meta\.idx\// { print $2 }' log | sed 's|.*/||; s|~[0-9]*\.json$||' | sort -n)" "$expect"
	assert_equal "$(awk '$1 == "DELETE" && $2 ~ /^\/s\/meta\.idx\// { print $2 }' log | sed 's|.*/||; s|~[0-9]*\.json$||' | sort -n)" "$expect"
	assert_equal "$(grep -c '^PUT /s/meta.json 20[14]$' log)" 1
	assert_equal "$(grep -c '^GET /s/meta.json 200$' log)" 1
	assert_equal "$(idx_files "$DAV_ROOT/s")" "$(bucket_files "$DAV_ROOT/s" | LC_ALL=C sort)"
	# The feed: the root, the changed buckets, the 100 version files.
	n0=$(dav_requests | wc -l)
	run -0 --separate-stderr recdelta-fetch --changes --resume 4 "$W"
	assert_equal "$(jq -c 'select(.kind == "record") | [.key, .rev, .fields.n]' <<<"$output" | sort)" \
	    "$(seq 1 100 | awk '{ printf "[\"k%d\",\"2\",%d]\n", $1, -$1 }' | sort)"
	assert_equal "${lines[100]}" "{\"kind\":\"cursor\",\"source\":\"$W\",\"name\":\"generation\",\"value\":5}"
	dav_requests | tail -n +$((n0 + 1)) > log
	assert_equal "$(awk '$2 ~ /^\/s\/meta\.idx\// { print $1, $2, $3 }' log | sed 's|/s/meta\.idx/||; s|~5\.json||' | sort -k2n)" \
	    "$(sed 's/^/GET /; s/$/ 200/' <<<"$expect")"
	assert_equal "$(grep -c '^GET /s/T/k[0-9]*~2\.json 200$' log)" 100
	assert_equal "$(wc -l < log)" $((1 + nb + 100))
	# From generation 5, nothing: the root alone.
	n0=$(dav_requests | wc -l)
	run -0 --separate-stderr recdelta-fetch --changes --resume 5 "$W"
	assert_output "{\"kind\":\"cursor\",\"source\":\"$W\",\"name\":\"generation\",\"value\":5}"
	assert_equal "$(dav_requests | tail -n +$((n0 + 1)))" 'GET /s/meta.json 200'
}

@test "a recdelta-store/1 index is read as before; the first write makes it /2 in one commit, every record and tombstone kept, nothing of /1 left" {
	{
		rec Team t1 '{"name":"Ari"}'
		rec Team 'a/b' '{"name":"slash"}' 3
		rec Game g1 '{"score":[1,2]}'
		printf '%s\n' '{"kind":"record","type":"Team","key":"gone","rev":"4","deleted":true}'
	} | make_dir_store S
	jq -c '.generation = 7' S/meta.json > m && mv m S/meta.json
	assert_equal "$(jq -r .format S/meta.json)" recdelta-store/1
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_output '{"kind":"record","type":"Game","key":"g1","rev":"1","mtime":"2026-01-01T00:00:00Z","fields":{"score":[1,2]}}
{"kind":"record","type":"Team","key":"a/b","rev":"3","mtime":"2026-01-01T00:00:00Z","fields":{"name":"slash"}}
{"kind":"record","type":"Team","key":"gone","rev":"4","mtime":"2026-01-01T00:00:00Z","deleted":true}
{"kind":"record","type":"Team","key":"t1","rev":"1","mtime":"2026-01-01T00:00:00Z","fields":{"name":"Ari"}}'
	before=$output
	entities=$(store_entities S)
	printf '%s\n' '{"kind":"change","op":"update","type":"Team","key":"t1","rev":"1","fields":{"name":"Ari 2"}}' > in
	run -0 --separate-stderr recdelta-push -q dir:S < in
	assert_output '{"kind":"result","op":"update","type":"Team","key":"t1","status":"ok","rev":"2","fields":{"name":"Ari 2"}}'
	# The root of /2, at the next generation; every bucket written by it.
	assert_equal "$(jq -c '[.format, .generation, .entries, .feed, (.buckets | length), ([.buckets[] | select(. != 0 and . != 8)] | length), has("entities")]' S/meta.json)" \
	    '["recdelta-store/2",8,4,8,16,0,false]'
	assert_equal "$(bucket_files S | sed 's|^./meta.idx/||; s|~8\.json$||' | sort -n)" \
	    "$({ bucket_of 16 Team t1 a/b gone; bucket_of 16 Game g1; } | sort -n -u)"
	# The same entries, t1's changed alone.
	assert_equal "$(store_entities S | jq -c 'del(.Team.t1)')" "$(jq -c 'del(.Team.t1)' <<<"$entities")"
	assert_equal "$(store_entities S | jq -c '.Team.t1 | [.v, .g]')" '[2,8]'
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_equal "$(jq -c 'del(.mtime)' <<<"$output")" "$(jq -c 'del(.mtime) | if .key == "t1" then .rev = "2" | .fields.name = "Ari 2" else . end' <<<"$before")"
	# Nothing else: the versions, the root, its buckets, the lock.
	assert_equal "$(cd S && find . -type f | LC_ALL=C sort)" "$({ printf '%s\n' ./.lock ./Game/g1~1.json ./Team/a%2Fb~3.json ./Team/t1~2.json ./meta.json; bucket_files S; } | LC_ALL=C sort)"
	# The feed: what changed after generation 7.
	run -0 --separate-stderr recdelta-fetch --changes --resume 7 dir:S
	assert_equal "$(jq -c 'del(.mtime)' <<<"$output")" '{"kind":"record","type":"Team","key":"t1","rev":"2","fields":{"name":"Ari 2"}}
{"kind":"cursor","source":"dir:S","name":"generation","value":8}'
}

@test "a bucket file that is not the one the root names (another generation, another bucket, truncated, missing) is a damaged store: exit 4 naming the file; a write is refused" {
	records 40 > L
	push_all dir:S
	f=$(bucket_files S | head -1)
	f=${f#./}
	bi=${f#meta.idx/}
	bi=${bi%%~*}
	cp "S/$f" good
	# Another generation inside.
	jq -c '.generation = 9' good > "S/$f"
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_output ''
	assert_stderr "recdelta-fetch: S/$f: damaged store: not bucket $bi of 16 at generation 1, which meta.json names"
	# Another bucket's file under its name.
	jq -c ".bucket = $(( (bi + 1) % 16 ))" good > "S/$f"
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/$f: damaged store: not bucket $bi of 16 at generation 1, which meta.json names"
	# Another number of buckets.
	jq -c '.buckets = 32' good > "S/$f"
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/$f: damaged store: not bucket $bi of 16 at generation 1, which meta.json names"
	# Truncated.
	cut='{"bucket":'$bi',"buckets":16'
	head -c ${#cut} good > "S/$f"
	assert_equal "$(cat "S/$f")" "$cut"
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/$f: damaged store: unterminated object"
	# Refused by a writer too, before anything is written.
	tree_digest S > t0
	updates 40 > in
	run -4 --separate-stderr recdelta-push -q dir:S < in
	assert_output ''
	assert_stderr "recdelta-push: S/$f: damaged store: unterminated object"
	tree_digest S > t1
	cmp t0 t1
	# Missing.
	rm "S/$f"
	run -4 --separate-stderr recdelta-fetch dir:S
	assert_stderr "recdelta-fetch: S/$f: damaged store: No such file or directory"
	# Back in place, the store reads whole.
	cp good "S/$f"
	run -0 recdelta-diff --exit-code -l ndjson:L -r dir:S
}

@test "dir: a writer whose root is not committed leaves the store as it was; its bucket files are named by nothing and the next writer removes them" {
	records 40 > L
	push_all dir:S
	recdelta-fetch dir:S > F0
	idx_files S > before
	# The rename of meta.json.tmp over meta.json, the commit, fails.
	updates 10 > in
	RECDELTA_FAULT_CALLS=rename RECDELTA_FAULT_AT=1 RECDELTA_FAULT_ERRNO=EIO \
	    run -4 --separate-stderr faulty recdelta-push -q dir:S < in
	assert_equal "$stderr" 'recdelta-push: S/meta.json: Input/output error'
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_equal "$output" "$(cat F0)"
	# New bucket files at generation 2 that the root does not name.
	orphans=$(comm -13 before <(idx_files S))
	[ -n "$orphans" ]
	assert_equal "$(grep -vc '~2\.json$' <<<"$orphans" || true)" 0
	assert_equal "$(bucket_files S | LC_ALL=C sort)" "$(cat before)"
	# The next writer, whatever it writes, removes them.
	printf '%s\n' '{"kind":"change","op":"create","type":"U","key":"x","fields":{}}' > in2
	run -0 --separate-stderr recdelta-push -q dir:S < in2
	assert_equal "$(idx_files S)" "$(bucket_files S | LC_ALL=C sort)"
	[ ! -e S/.collect ]
	[ ! -e S/meta.json.tmp ]
	assert_equal "$(jq -c '[.generation, .entries]' S/meta.json)" '[2,41]'
	run -0 --separate-stderr recdelta-push -q dir:S < in
	assert_equal "$(grep -c '"status":"ok","rev":"2"' <<<"$output")" 10
	assert_equal "$(idx_files S)" "$(bucket_files S | LC_ALL=C sort)"
	assert_equal "$(cd S/T && ls | wc -l)" 40
}

@test "dir: a commit of up to 256 files makes each durable, and each folder that names one, before its root, and flushes nothing else of the file system; a larger one flushes the file system once" {
	records 40 > L
	push_all dir:S
	recdelta-fetch dir:S > F0
	s=$(cd S && pwd -P)
	(cd S && find . -type f | LC_ALL=C sort) > before
	# Something else waiting to be written on the same file system.
	head -c 1000000 /dev/zero > other
	printf '%s\n' '{"kind":"change","op":"update","type":"T","key":"k1","rev":"1","fields":{"n":0}}' \
	    '{"kind":"change","op":"create","type":"U","key":"x","fields":{}}' > in
	RECDELTA_FAULT_CALLS=fsync,syncfs,rename RECDELTA_FAULT_TRACE=$PWD/trace \
	    run -0 --separate-stderr faulty recdelta-push -q dir:S < in
	assert_equal "$(grep -c '"status":"ok"' <<<"$output")" 2
	# What was flushed before the commit (the rename of the root), and
	# after it: the base, whose entries the commit changed.
	sed -n '/ renameat meta\.json$/q; s/^[0-9]* fsync fd [0-9]* //p' trace > flushed
	assert_equal "$(sed -n '/ renameat meta\.json$/,$p' trace | sed 's/^[0-9]* //; s/ fd [0-9]*//')" \
	    "renameat meta.json
fsync $s"
	! grep -q syncfs trace
	# Each file of the new index and every version it names, and the
	# journal the commit removed after it.
	(cd S && find . -type f ! -name .lock ! -name meta.json | LC_ALL=C sort) > after
	new=$(comm -13 before after | sed "s|^\.|$s|")
	assert_equal "$(grep -c . <<<"$new")" 4
	for f in $new "$s/.collect" "$s/meta.json.tmp" "$s/T" "$s/U" "$s/meta.idx" "$s"; do
		grep -qxF -- "$f" flushed || fail "$f: not made durable before the commit"
	done
	# Nothing outside the store.
	assert_equal "$(grep -vc "^$s\(/\|$\)" flushed || true)" 0

	# 100 new versions and their buckets: a flush that fails is a failed
	# batch, nothing committed.
	awk 'BEGIN { for (i = 41; i <= 140; i++)
	    printf "{\"kind\":\"change\",\"op\":\"create\",\"type\":\"T\",\"key\":\"k%d\",\"fields\":{}}\n", i }' > in2
	recdelta-fetch dir:S > F1
	RECDELTA_FAULT_CALLS=fsync RECDELTA_FAULT_AT=1 RECDELTA_FAULT_ERRNO=EIO \
	    run -4 --separate-stderr faulty recdelta-push -q --retries 0 dir:S < in2
	assert_equal "$stderr" 'recdelta-push: S/T/k41~1.json: Input/output error'
	run -0 --separate-stderr recdelta-fetch dir:S
	assert_equal "$output" "$(cat F1)"
	run -0 --separate-stderr recdelta-push -q dir:S < in2
	assert_equal "$(grep -c '"status":"ok","rev":"1"' <<<"$output")" 100
	assert_equal "$(recdelta-fetch dir:S | wc -l)" 141

	# 300 new versions and their buckets: one syncfs before the root.
	awk 'BEGIN { for (i = 141; i <= 440; i++)
	    printf "{\"kind\":\"change\",\"op\":\"create\",\"type\":\"T\",\"key\":\"k%d\",\"fields\":{}}\n", i }' > in3
	rm trace
	RECDELTA_FAULT_CALLS=fsync,syncfs,rename RECDELTA_FAULT_TRACE=$PWD/trace \
	    run -0 --separate-stderr faulty recdelta-push -q dir:S < in3
	assert_equal "$(grep -c '"status":"ok","rev":"1"' <<<"$output")" 300
	assert_equal "$(sed 's/^[0-9]* //; s/ fd [0-9]*//' trace)" "syncfs $s
fsync $s/meta.json.tmp
renameat meta.json
fsync $s"
	assert_equal "$(recdelta-fetch dir:S | wc -l)" 441
}

@test "B doubles when a commit leaves more than 128 B entries, tombstones counted, every bucket rewritten, and every record still reads back" {
	records 2048 > L
	push_all dir:S
	assert_equal "$(jq -c '[.entries, (.buckets | length)]' S/meta.json)" '[2048,16]'
	# A delete leaves a tombstone: still 2048 entries, 16 buckets.
	printf '%s\n' '{"kind":"change","op":"delete","type":"T","key":"k7","rev":"1"}' > in
	recdelta-push -q --delete-orphans dir:S < in > /dev/null
	assert_equal "$(jq -c '[.generation, .entries, (.buckets | length)]' S/meta.json)" '[2,2048,16]'
	# One entry more: 2049 > 128 * 16, doubled until 2049 <= 64 B.
	printf '%s\n' '{"kind":"change","op":"create","type":"T","key":"k9999","fields":{"n":9999}}' > in
	recdelta-push -q dir:S < in > /dev/null
	assert_equal "$(jq -c '[.generation, .entries, (.buckets | length), (.buckets | unique)]' S/meta.json)" '[3,2049,64,[3]]'
	assert_equal "$(idx_files S)" "$(bucket_files S | LC_ALL=C sort)"
	assert_equal "$(jq -s -c 'map(.bucket) == [range(64)] and all(.buckets == 64 and .generation == 3)' $(bucket_files S | LC_ALL=C sort -t/ -k3n | sed 's|^\./|S/|'))" true
	# Each entry in the bucket of its key.
	for f in $(bucket_files S | sed 's|^\./|S/|' | head -3); do
		b=$(jq .bucket "$f")
		assert_equal "$(jq -r '.entities.T | keys[]' "$f" | while read -r k; do bucket_of 64 T "$k"; done | sort -u)" "$b"
	done
	recdelta-fetch dir:S > F
	assert_equal "$(wc -l < F)" 2049
	{ records 2048 | grep -v '"k7"'; rec T k9999 '{"n":9999}'; } > L2
	run -0 recdelta-diff --exit-code -l ndjson:L2 -r ndjson:F
	assert_equal "$(jq -c 'select(.key == "k7") | [.rev, .deleted]' F)" '["2",true]'
}
