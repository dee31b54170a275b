# Shared set-up for every suite: the built programs first on PATH, bats
# helper libraries, and a few data helpers.  Each test works in
# $BATS_TEST_TMPDIR.

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
# A suite in a folder of tests/ (tests/property) is one level deeper.
[ -f "$TOP/Makefile" ] || TOP=$(cd "$TOP/.." && pwd)
export TOP
FIXTURES="$TOP/tests/fixtures"
export FIXTURES

bats_load_library bats-support
bats_load_library bats-assert

# With RECDELTA_VALGRIND=1 every recdelta program runs under valgrind and a
# memory error or leak makes it exit 99, which the test then reports.
if [ "${RECDELTA_VALGRIND:-}" = 1 ]; then
	_vgbin="$BATS_RUN_TMPDIR/valgrind-bin"
	if [ ! -d "$_vgbin" ]; then
		mkdir -p "$_vgbin.$$"
		for p in "$TOP"/bin/recdelta*; do
			case $p in *.c) continue ;; esac
			n=${p##*/}
			cat > "$_vgbin.$$/$n" <<VG
#!/bin/sh
exec valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	"$p" "\$@"
VG
			chmod +x "$_vgbin.$$/$n"
		done
		mv "$_vgbin.$$" "$_vgbin" 2>/dev/null || rm -rf "$_vgbin.$$"
	fi
	PATH="$_vgbin:$TOP/bin:$PATH"
else
	PATH="$TOP/bin:$PATH"
fi
export PATH
export RECDELTA_PIPELINES="$TOP/pipelines"

setup() {
	cd "$BATS_TEST_TMPDIR" || return 1
	if declare -F suite_setup >/dev/null; then
		suite_setup
	fi
}

# rec TYPE KEY FIELDS-JSON [REV]: print one record line.
rec() {
	if [ -n "${4:-}" ]; then
		printf '{"kind":"record","type":"%s","key":"%s","rev":"%s","fields":%s}\n' "$1" "$2" "$4" "$3"
	else
		printf '{"kind":"record","type":"%s","key":"%s","fields":%s}\n' "$1" "$2" "$3"
	fi
}

# res OP TYPE KEY STATUS [REV [FIELDS [MORE]]]: a result line; MORE is added
# to the object as it is (',"changed":["a"]').
res() {
	local l
	l=$(printf '{"kind":"result","op":"%s","type":"%s","key":"%s","status":"%s"' \
	    "$1" "$2" "$3" "$4")
	[ -n "${5:-}" ] && l+=$(printf ',"rev":"%s"' "$5")
	[ -n "${6:-}" ] && l+=",\"fields\":$6"
	printf '%s%s}\n' "$l" "${7:-}"
}

# sha256 FILE: the hex digest of a file.
sha256() {
	sha256sum "$1" | cut -d' ' -f1
}

# tree_digest DIR: one digest of every file's path and content under DIR, so
# a test can assert that a store was left byte-identical.
tree_digest() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}

# wait_until CMD...: run CMD until it succeeds, polling, for at most 60
# seconds (a bound for a machine under load, never reached when CMD's event
# comes); 1 if it never did.  What a test waits for is an event it observes,
# a file made, a line written, a row in the state, never a length of time.
wait_until() {
	local i
	for i in $(seq 1 3000); do
		"$@" && return 0
		sleep 0.02
	done
	return 1
}

# wait_for FILE: wait_until FILE exists.
wait_for() {
	wait_until test -e "$1" || { echo "wait_for: $1: never appeared" >&2; return 1; }
}
