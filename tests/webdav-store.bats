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
		if [ "$f" = ./meta.json ]; then
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
	assert_equal "$(cd "$DAV_ROOT/s" && find . -type f | LC_ALL=C sort)" "./Game/g1~1.json
./Team/%C3%BC%20%C3%A9~1.json
./Team/t1~2.json
./meta.json"
	run -0 recdelta-diff --exit-code -l ndjson:L2 -r "dir:$DAV_ROOT/s"
}
