#!/usr/bin/env bats
# The modes of the state files: the base holds every record's fields, so a
# .recdelta folder recdelta makes is 0700 and a state database it makes is
# 0600, its -wal and -shm files too, whatever the umask lets through; what
# the user made is left as it is.

bats_require_minimum_version 1.5.0

load helpers/common

suite_setup() {
	unset RECDELTA_STATE RECDELTA_LOG
	umask 022
	res='{"kind":"result","op":"create","type":"T","key":"k","status":"ok","rev":"1","fields":{"secret":"s"}}'
}

# modes FILE...: "name mode" of each FILE.
modes() {
	stat -c '%n %a' "$@"
}

@test "a state made by recdelta: .recdelta 0700, state.db and its -wal and -shm 0600, with umask 022" {
	printf '%s\n' "$res" > in
	run -0 --separate-stderr recdelta-checkpoint record --scope S < in
	assert_equal "$(modes .recdelta .recdelta/state.db)" "$(printf '%s\n' '.recdelta 700' '.recdelta/state.db 600')"
	# -wal and -shm exist while a connection is open: look from one.
	run -0 sqlite3 .recdelta/state.db "BEGIN; SELECT count(*) FROM base;" \
	    ".shell stat -c '%n %a' .recdelta/state.db-wal .recdelta/state.db-shm" "COMMIT;"
	assert_equal "${#lines[@]}" 3
	assert_line '.recdelta/state.db-wal 600'
	assert_line '.recdelta/state.db-shm 600'
	# A state file elsewhere, through --state and RECDELTA_STATE.
	mkdir d
	run -0 --separate-stderr recdelta-checkpoint --state d/s.db cursor set c 1
	RECDELTA_STATE=$PWD/d/t.db run -0 --separate-stderr recdelta-checkpoint cursor set c 1
	assert_equal "$(modes d d/s.db d/t.db)" "$(printf '%s\n' 'd 755' 'd/s.db 600' 'd/t.db 600')"
}

@test "a folder and a state database the user made keep their modes" {
	mkdir -m 755 .recdelta
	run -0 --separate-stderr recdelta-checkpoint cursor set c 1
	assert_equal "$(modes .recdelta .recdelta/state.db)" "$(printf '%s\n' '.recdelta 755' '.recdelta/state.db 600')"
	chmod 640 .recdelta/state.db
	run -0 --separate-stderr recdelta-checkpoint cursor set c 2
	assert_equal "$(modes .recdelta/state.db)" '.recdelta/state.db 640'
}
