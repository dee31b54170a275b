# pouchdb-server helpers for the couchdb: store.  Load after helpers/common.
# The server is the npm package of tests/package.json, installed into
# tests/node_modules by tools/install-deps --test; it runs --in-memory on a
# free loopback port with tests/servers/couchdb-hooks.js loaded into it.
#
#   couch_start [DIR]       start it (its files in DIR, by default
#                           $BATS_FILE_TMPDIR/couch), create the admin
#                           "admin" with a random password, and export what
#                           recdelta needs: RECDELTA_COUCHDB_USER and
#                           RECDELTA_COUCHDB_PASSWORD_FILE; COUCH_URL, the
#                           server's base URL
#   couch_stop              stop it (SIGTERM to its pid, then wait)
#   couch_curl METHOD PATH [BODY]   an authenticated request: prints the
#                           body, sets COUCH_STATUS
#   couch_db NAME           a fresh empty database NAME (deleted first)
#   couch_requests          the requests served so far, "METHOD URL" a line
#   couch_stop_after SEGMENT N      the service stops at the N+1th request
#                           whose path has SEGMENT ("_bulk_docs"), leaving
#                           that request unanswered (the data stays)
#   couch_restart           open the service again after such a stop
#   couch_replicate SRC DST PouchDB's replicator between two databases
#   couch_hold SEGMENT N, couch_held, couch_release: hold such requests
#                           unhandled (after N), count them, let them go
#
# A test sees what a program did to the server only after the program has
# ended: the request log is written before each request is handled.

COUCH_MODULES=${COUCH_MODULES:-$TOP/tests/node_modules}

couch_start() {
	local dir=${1:-$BATS_FILE_TMPDIR/couch} i line=
	COUCH_DIR=$dir
	mkdir -p "$dir"
	if [ ! -f "$COUCH_MODULES/pouchdb-server/bin/pouchdb-server" ]; then
		echo "$COUCH_MODULES/pouchdb-server: missing; run tools/install-deps --test" >&2
		return 1
	fi
	: > "$dir/requests.log"
	rm -f "$dir/out"
	# The server writes its config and log.txt into its working folder.
	(cd "$dir" && COUCH_HOOK_PORT=0 COUCH_HOOK_LOG=$dir/requests.log exec node \
	    -r "$TOP/tests/servers/couchdb-hooks.js" \
	    "$COUCH_MODULES/pouchdb-server/bin/pouchdb-server" --in-memory \
	    --host 127.0.0.1 --port 5984 --config "$dir/config.json" \
	    --no-stdout-logs > "$dir/out" 2> "$dir/stderr" 3>&-) &
	COUCH_PID=$!
	export COUCH_PID COUCH_DIR
	for i in $(seq 1 400); do
		IFS= read -r line < "$dir/out" 2>/dev/null || true
		case $line in "listening "*) break ;; esac
		kill -0 "$COUCH_PID" 2>/dev/null || break
		sleep 0.05
	done
	case $line in
	"listening "*) ;;
	*)
		echo "pouchdb-server did not start: $line" >&2
		cat "$dir/stderr" >&2
		couch_stop
		return 1
		;;
	esac
	COUCH_URL=http://127.0.0.1:${line#listening }
	export COUCH_URL
	couch_ready || return 1
	# An admin: every request recdelta makes is then authenticated.
	openssl rand -hex 12 > "$dir/password" && chmod 600 "$dir/password" || return 1
	printf 'machine 127.0.0.1 login admin password %s\n' "$(cat "$dir/password")" > "$dir/netrc"
	chmod 600 "$dir/netrc"
	COUCH_STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT \
	    --data-binary "\"$(cat "$dir/password")\"" \
	    "$COUCH_URL/_config/admins/admin")
	[ "$COUCH_STATUS" = 200 ] || { echo "cannot create the admin: HTTP $COUCH_STATUS" >&2; return 1; }
	export RECDELTA_COUCHDB_USER=admin
	export RECDELTA_COUCHDB_PASSWORD_FILE=$dir/password
	: > "$dir/requests.log"
}

# couch_ready: poll until the server answers its welcome, or give up.
couch_ready() {
	local i
	for i in $(seq 1 400); do
		curl -s --max-time 5 "$COUCH_URL/" 2>/dev/null | grep -q '"express-pouchdb":"Welcome!"' && return 0
		kill -0 "$COUCH_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "pouchdb-server does not answer at $COUCH_URL" >&2
	cat "$COUCH_DIR/stderr" >&2
	return 1
}

couch_stop() {
	if [ -n "${COUCH_PID:-}" ]; then
		kill "$COUCH_PID" 2>/dev/null || true
		wait "$COUCH_PID" 2>/dev/null || true
		COUCH_PID=
	fi
}

couch_curl() {
	local out=$COUCH_DIR/resp.$$
	local -a data=()
	[ $# -lt 3 ] || data=(-H 'Content-Type: application/json' --data-binary "$3")
	COUCH_STATUS=$(curl -sS -o "$out" -w '%{http_code}' --netrc-file "$COUCH_DIR/netrc" \
	    -H 'Accept: application/json' -X "$1" "${data[@]}" "$COUCH_URL$2") || COUCH_STATUS=000
	cat "$out" 2>/dev/null
	rm -f "$out"
}

couch_db() {
	couch_curl DELETE "/$1" > /dev/null
	couch_curl PUT "/$1" > /dev/null
	[ "$COUCH_STATUS" = 201 ] || { echo "cannot create database $1: HTTP $COUCH_STATUS" >&2; return 1; }
}

couch_requests() {
	cat "$COUCH_DIR/requests.log"
}

couch_stop_after() {
	curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
	    --data-binary "{\"path\":\"$1\",\"after\":$2}" "$COUCH_URL/_test/stop"
}

couch_restart() {
	kill -USR2 "$COUCH_PID" && couch_ready
}

# couch_hold SEGMENT N: the requests whose path has SEGMENT after the next N
# wait, unhandled, until couch_release; couch_held prints how many wait.
couch_hold() {
	curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
	    --data-binary "{\"path\":\"$1\",\"after\":$2}" "$COUCH_URL/_test/hold"
}
couch_held() {
	curl -sS "$COUCH_URL/_test/held" | jq .held
}
couch_release() {
	curl -sS -o /dev/null -X POST "$COUCH_URL/_test/release"
}

# couch_replicate SOURCE TARGET: PouchDB's replicator, one shot, between two
# databases of the server (revs and all).
couch_replicate() {
	COUCH_USER=admin COUCH_PASSWORD_FILE=$COUCH_DIR/password \
	    node "$TOP/tests/helpers/couch-pouchdb.js" replicate "$COUCH_URL/$1" "$COUCH_URL/$2" > /dev/null
}
