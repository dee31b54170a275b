#!/usr/bin/env bats
# The base URL of an HTTP store (lib/http.c, http_url_parse), through the
# cloudkit: store against the emulator: parsed by curl, plain http only to
# a loopback host as curl parsed it, no user name or password where the
# credentials come from elsewhere, nothing of a refused URL's secrets in a
# message, and no proxy from the environment for a loopback host.  What
# reached another port is read from a sink: a listener that logs every
# connection and what came on it, and answers nothing.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit

setup_file() {
	# sink.js LOG: log "connection" and then the bytes of each connection
	# to LOG before closing it, so that a client that saw it closed finds
	# it logged.
	cat > "$BATS_FILE_TMPDIR/sink.js" <<'JS'
'use strict';
const net = require('net');
const fs = require('fs');
const log = process.argv[2];
const server = net.createServer((sock) => {
	fs.appendFileSync(log, 'connection\n');
	sock.on('data', (d) => { fs.appendFileSync(log, d); sock.destroy(); });
	sock.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
JS
}

suite_setup() {
	ck_start || return 1
	chmod 600 "$CK_KEY_FILE"
	export RECDELTA_CLOUDKIT_KEY_ID=$CK_KEY_ID RECDELTA_CLOUDKIT_KEY_FILE=$CK_KEY_FILE
	export RECDELTA_CLOUDKIT_URL=$CK_URL RECDELTA_HTTP_BACKOFF=0.05 RECDELTA_HTTP_RETRIES=0
	export XDG_CONFIG_HOME=$BATS_TEST_TMPDIR/config
	unset RECDELTA_CLOUDKIT_CONFIG RECDELTA_HTTP_TIMEOUT RECDELTA_LOG
	unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
	export RECDELTA_STATE=$BATS_TEST_TMPDIR/state.db
	T=cloudkit:$CK_CONTAINER/$CK_ENVIRONMENT/$CK_DATABASE
	sink_start || return 1
	ck_request records/modify '{"zoneID":{"zoneName":"_defaultZone"},"operations":[{"operationType":"create","record":{"recordName":"it-1","recordType":"Item","fields":{"n":{"value":1}}}}]}' > /dev/null
	[ "$CK_STATUS" = 200 ] || return 1
	ck_control DELETE log > /dev/null
}

teardown() {
	if [ -n "${SINK_PID:-}" ]; then
		kill "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	ck_stop
}

# sink_start: the sink on a free loopback port, SINK_PORT; its log is sink.log.
sink_start() {
	: > sink.log
	node "$BATS_FILE_TMPDIR/sink.js" "$PWD/sink.log" > sink.out 2> sink.err 3>&- &
	SINK_PID=$!
	SINK_PORT=$(listening_port "$SINK_PID" sink.out sink.err) || return 1
}

# ck_ops: the operations the emulator answered, one a line.
ck_ops() {
	ck_control GET log | jq -r '.[] | .op'
}

@test "a URL with a user name or password is refused (exit 2) before anything is sent: http://localhost:x@HOST/ goes nowhere, and no message holds the secret" {
	printf '%s\n' '{"kind":"change","op":"create","type":"Item","key":"new","fields":{"n":2}}' > in
	want='cloudkit: RECDELTA_CLOUDKIT_URL: the URL may not hold a user name or password (nor an @ before the host)'
	for u in "http://localhost:x@127.0.0.1:$SINK_PORT/" \
	    "http://localhost:s3cretPW@127.0.0.1:$SINK_PORT" \
	    "http://127.0.0.1:s3cretPW@127.0.0.1:$SINK_PORT/" \
	    "https://me:s3cretPW@127.0.0.1:$SINK_PORT/" \
	    "http://s3cretPW@127.0.0.1:$SINK_PORT/" \
	    "http://@127.0.0.1:$SINK_PORT/" \
	    "http://me;s3cretPW@127.0.0.1:$SINK_PORT/" \
	    "http://localhost:x@$CK_URL" "${CK_URL/http:\/\//http://me:s3cretPW@}"; do
		RECDELTA_CLOUDKIT_URL=$u run -2 --separate-stderr recdelta-fetch -t Item "$T"
		assert_output ''
		assert_equal "$stderr" "recdelta-fetch: $want"
		RECDELTA_CLOUDKIT_URL=$u run -2 --separate-stderr recdelta-push "$T" < in
		assert_output ''
		assert_equal "$stderr" "recdelta-push: $want"
	done
	# The same from the configuration file.
	mkdir -p config/recdelta
	printf 'url = http://localhost:s3cretPW@127.0.0.1:%s/\n' "$SINK_PORT" > config/recdelta/cloudkit.conf
	chmod 600 config/recdelta/cloudkit.conf
	unset RECDELTA_CLOUDKIT_URL
	run -2 --separate-stderr recdelta-fetch -t Item "$T"
	assert_output ''
	assert_equal "$stderr" 'recdelta-fetch: cloudkit: url in the configuration file: the URL may not hold a user name or password (nor an @ before the host)'
	assert_equal "$(cat sink.log)" ''
	assert_equal "$(ck_ops)" ''
}

@test "plain http only to a loopback host as curl parses it (localhost, 127.0.0.0/8, [::1]); a query or a fragment, another scheme or no URL at all: exit 2, nothing sent, the URL not echoed" {
	https='the URL must start with https:// (http:// only to localhost, 127.0.0.0/8 or [::1])'
	for u in http://ck.example http://localhost.example:1/ http://127.0.0.1.example/ \
	    "http://[::ffff:127.0.0.1]:$SINK_PORT/" "http://localhost%2e:$SINK_PORT/" \
	    http://128.0.0.1/ "ftp://127.0.0.1:$SINK_PORT/" "HTTP://10.1.2.3/"; do
		RECDELTA_CLOUDKIT_URL=$u run -2 --separate-stderr recdelta-fetch -t Item "$T"
		assert_output ''
		assert_equal "$stderr" "recdelta-fetch: cloudkit: RECDELTA_CLOUDKIT_URL: $https"
	done
	for u in "$CK_URL/?x=1" "$CK_URL#frag"; do
		RECDELTA_CLOUDKIT_URL=$u run -2 --separate-stderr recdelta-fetch -t Item "$T"
		assert_output ''
		assert_equal "$stderr" 'recdelta-fetch: cloudkit: RECDELTA_CLOUDKIT_URL: the URL may not hold a query or fragment'
	done
	for u in 'http://a b/' '127.0.0.1:80' "http://127.0.0.1:99999/"; do
		RECDELTA_CLOUDKIT_URL=$u run -2 --separate-stderr recdelta-fetch -t Item "$T"
		assert_output ''
		[[ $stderr == 'recdelta-fetch: cloudkit: RECDELTA_CLOUDKIT_URL: not a URL: '* ]]
		[[ $stderr != *"$u"* ]]
	done
	assert_equal "$(cat sink.log)" ''
	assert_equal "$(ck_ops)" ''

	# Loopback in every form curl reads as one, final slashes dropped.
	for u in "$CK_URL" "$CK_URL///" "http://LocalHost:$CK_PORT" "http://127.1:$CK_PORT/" \
	    "http://2130706433:$CK_PORT"; do
		RECDELTA_CLOUDKIT_URL=$u run -0 --separate-stderr recdelta-fetch -t Item "$T"
		assert_equal "$stderr" ''
		assert_equal "$(printf '%s\n' "$output" | jq -r 'select(.kind == "record") | .key')" it-1
	done
	assert_equal "$(ck_control GET log | jq -r '.[] | .path' | sort -u)" "$(ck_path records/query)"
}

@test "a proxy in the environment receives nothing meant for a loopback host; for another host curl still uses it" {
	p=http://127.0.0.1:$SINK_PORT
	for u in "$CK_URL" "http://localhost:$CK_PORT"; do
		http_proxy=$p HTTP_PROXY=$p https_proxy=$p HTTPS_PROXY=$p all_proxy=$p ALL_PROXY=$p \
		    RECDELTA_CLOUDKIT_URL=$u run -0 --separate-stderr recdelta-fetch -t Item "$T"
		assert_equal "$stderr" ''
		assert_equal "$(printf '%s\n' "$output" | jq -r 'select(.kind == "record") | .key')" it-1
	done
	assert_equal "$(cat sink.log)" ''
	assert_equal "$(ck_ops)" $'records/query\nrecords/query'

	# Elsewhere the proxy is asked (and fails here): exit 4, the URL in
	# the message as given.
	https_proxy=$p RECDELTA_CLOUDKIT_URL=https://ck.example.invalid/ run -4 --separate-stderr recdelta-fetch -t Item "$T"
	assert_output ''
	[[ $stderr == 'recdelta-fetch: cloudkit: records/query: https://ck.example.invalid: '* ]]
	assert_equal "$(head -2 sink.log | tr -d '\r')" $'connection\nCONNECT ck.example.invalid:443 HTTP/1.1'
}
