# Helpers over tests/helpers/faultinject.so (see its header for the
# RECDELTA_FAULT_* variables).  Load after helpers/common.
#
#   faulty CMD...           run CMD with the shim
#   paused N CMD...         start CMD in the background, in a process group
#                           of its own, each process of RECDELTA_FAULT_PROG
#                           (CMD's name when unset) stopping before its Nth
#                           counted call; PAUSED_PID is CMD's pid
#   wait_paused             wait until a process stops (0, PAUSED_WHO its
#                           pid) or CMD ends (1, PAUSED_STATUS its status)
#   resume                  let the stopped process go on
#   kill_paused             SIGKILL to CMD's whole process group, and wait
#
# So a test kills a program at a point it chose, counted in the program's
# own calls, and the number of kills does not depend on the machine's speed.

SHIM="$TOP/tests/helpers/faultinject.so"

# faulty CMD...: run CMD (a recdelta program or flow) with the shim,
# configured by the RECDELTA_FAULT_* variables set around the call.  The shim
# counts in the processes named RECDELTA_FAULT_PROG alone (CMD's name when
# unset), not in a wrapper around them; a sanitizer build wants its runtime
# first, but the shim may go before it.
faulty() {
	[ -f "$SHIM" ] || { echo "$SHIM: missing; make check builds it" >&2; return 1; }
	LD_PRELOAD="$SHIM${LD_PRELOAD:+ $LD_PRELOAD}" \
	    RECDELTA_FAULT_PROG="${RECDELTA_FAULT_PROG:-${1##*/}}" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	    "$@"
}

PAUSE_FILE=
PAUSED_PID=
PAUSED_WHO=
PAUSED_STATUS=

paused() {
	local n=$1
	shift
	# Out of the test's folder: processes waiting for their turn leave
	# their pause files aside when killed.
	mkdir -p "$BATS_TEST_TMPDIR/.pause"
	PAUSE_FILE=$BATS_TEST_TMPDIR/.pause/paused
	rm -f "$PAUSE_FILE"
	# setsid: CMD leads a process group, so that one kill reaches every
	# process of a flow.  (A background job of a shell without job
	# control is no group leader, so setsid execs CMD in place.)
	# One simple command, not faulty: so $! is CMD's own pid.  <&0: a
	# background command of a shell without job control would read
	# /dev/null otherwise, not what the caller gave paused.
	[ -f "$SHIM" ] || { echo "$SHIM: missing; make check builds it" >&2; return 1; }
	RECDELTA_FAULT_PAUSE=$n RECDELTA_FAULT_PAUSE_FILE=$PAUSE_FILE \
	    RECDELTA_FAULT_PROG="${RECDELTA_FAULT_PROG:-${1##*/}}" \
	    LD_PRELOAD="$SHIM${LD_PRELOAD:+ $LD_PRELOAD}" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	    setsid "$@" <&0 3>&- &
	PAUSED_PID=$!
}

wait_paused() {
	local i
	PAUSED_WHO=
	for i in $(seq 1 3000); do
		if [ -s "$PAUSE_FILE" ]; then
			PAUSED_WHO=$(cat "$PAUSE_FILE")
			return 0
		fi
		if ! kill -0 "$PAUSED_PID" 2>/dev/null; then
			PAUSED_STATUS=0
			wait "$PAUSED_PID" || PAUSED_STATUS=$?
			return 1
		fi
		sleep 0.02
	done
	echo "wait_paused: $PAUSED_PID neither stopped nor ended" >&2
	return 2
}

resume() {
	rm -f "$PAUSE_FILE"
}

kill_paused() {
	kill -9 -- "-$PAUSED_PID" 2>/dev/null || kill -9 "$PAUSED_PID" 2>/dev/null || true
	PAUSED_STATUS=0
	wait "$PAUSED_PID" 2>/dev/null || PAUSED_STATUS=$?
	rm -f "$PAUSE_FILE"
}
