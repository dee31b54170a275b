#!/usr/bin/env bats
# lib/http through tests/helpers/httpreq (one request, built by make check)
# against tests/servers/http-dav.js, an in-memory WebDAV server on a free
# loopback port that answers as Apache mod_dav with FileETag Digest does and
# logs every request it gets (method, path, headers, body) to dav.log: the
# methods beyond POST, the request headers a store sets and the reply
# headers it reads, basic authentication from the environment or the netrc
# file (never on a command line, in a message or in a log), the retry
# policy every HTTP store shares, and every curl option checked.

bats_require_minimum_version 1.5.0

load helpers/common
load helpers/cloudkit

HTTPREQ=$TOP/tests/helpers/httpreq

suite_setup() {
	export RECDELTA_HTTP_BACKOFF=0.05 RECDELTA_HTTP_RETRIES=0
	unset RECDELTA_HTTP_TIMEOUT RECDELTA_LOG RECDELTA_NETRC RECDELTA_FAIL_SETOPT
	unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
	export HOME=$BATS_TEST_TMPDIR/home
	mkdir -p "$HOME"
}

teardown() {
	if [ -n "${DAV_PID:-}" ]; then
		kill "$DAV_PID" 2>/dev/null || true
		wait "$DAV_PID" 2>/dev/null || true
	fi
}

# dav_start: the server on a free loopback port, DAV_PORT; B its base URL.
# DAV_USER and DAV_PASSWORD in the environment make it ask for them.
dav_start() {
	: > dav.log
	node "$TOP/tests/servers/http-dav.js" "$PWD/dav.log" > dav.out 2> dav.err 3>&- &
	DAV_PID=$!
	DAV_PORT=$(listening_port "$DAV_PID" dav.out dav.err) || return 1
	B=http://127.0.0.1:$DAV_PORT
}

# dav_faults JSON: the next requests answered (or dropped) as JSON says.
dav_faults() {
	curl -sS -X POST --data-binary "$1" "$B/_ctl/faults"
}

# seen [JQ]: the requests the server got, one JSON line each, [method, path]
# or what JQ makes of each.
seen() {
	jq -c "${1:-[.method, .path]}" dav.log
}

@test "GET, HEAD, PUT, DELETE, MKCOL, PROPFIND: statuses; ETag, Location and Content-Type at hand, any header by name in any case; If-Match, If-None-Match, Depth and Content-Type sent" {
	dav_start
	run -0 --separate-stderr "$HTTPREQ" MKCOL "$B" /c/
	assert_output 'status 201'
	run -0 --separate-stderr "$HTTPREQ" MKCOL "$B" /c/
	assert_output 'status 405'
	run -0 --separate-stderr "$HTTPREQ" MKCOL "$B" /no/c/
	assert_output 'status 409'

	# A create: If-None-Match: *, 201 with a Location; then again: 412.
	run -0 --separate-stderr "$HTTPREQ" -t application/json -n '*' -d '{"n":1}' PUT "$B" /c/a.json
	assert_equal "$stderr" ''
	assert_output "status 201
location $B/c/a.json
content-type text/html"
	run -0 --separate-stderr "$HTTPREQ" -t application/json -n '*' -d '{"n":9}' PUT "$B" /c/a.json
	assert_output 'status 412'

	run -0 --separate-stderr "$HTTPREQ" -s etag -s CONTENT-LENGTH -s X-None HEAD "$B" /c/a.json
	e1=$(sed -n 's/^etag //p' <<< "$output")
	[[ $e1 == '"'*'"' ]]
	assert_output "status 200
etag $e1
content-type application/json
etag: $e1
CONTENT-LENGTH: 7
X-None: -"
	run -0 --separate-stderr "$HTTPREQ" -b GET "$B" /c/a.json
	assert_output "status 200
etag $e1
content-type application/json

{\"n\":1}"

	# Guarded writes: the right ETag wins, the stale one is refused.
	run -0 --separate-stderr "$HTTPREQ" -t application/json -i "$e1" -d '{"n":2}' PUT "$B" /c/a.json
	assert_output 'status 204'
	run -0 --separate-stderr "$HTTPREQ" -t application/json -i "$e1" -d '{"n":3}' PUT "$B" /c/a.json
	assert_output 'status 412'
	run -0 --separate-stderr "$HTTPREQ" -b GET "$B" /c/a.json
	e2=$(sed -n 's/^etag //p' <<< "$output")
	[ "$e2" != "$e1" ]
	assert_equal "${lines[-1]}" '{"n":2}'
	run -0 --separate-stderr "$HTTPREQ" -n "$e2" GET "$B" /c/a.json
	assert_output "status 304
etag $e2"

	# A listing: Depth 1, 207 with each file's ETag; without Depth, 403.
	run -0 --separate-stderr "$HTTPREQ" -d '' PUT "$B" /c/empty
	assert_output "status 201
location $B/c/empty
content-type text/html"
	propfind='<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>'
	run -0 --separate-stderr "$HTTPREQ" -D 1 -t 'application/xml; charset="utf-8"' -d "$propfind" -b PROPFIND "$B" /c/
	assert_equal "${lines[0]}" 'status 207'
	assert_equal "${lines[1]}" 'content-type application/xml; charset="utf-8"'
	assert_equal "$(grep -o '<D:href>[^<]*</D:href>' <<< "$output")" '<D:href>/c/</D:href>
<D:href>/c/a.json</D:href>
<D:href>/c/empty</D:href>'
	[[ $output == *"<D:href>/c/a.json</D:href><D:propstat><D:prop><lp1:resourcetype/><lp1:getetag>$e2</lp1:getetag>"* ]]
	run -0 --separate-stderr "$HTTPREQ" -d "$propfind" PROPFIND "$B" /c/
	assert_output 'status 403'

	run -0 --separate-stderr "$HTTPREQ" -i "$e1" DELETE "$B" /c/a.json
	assert_output 'status 412'
	run -0 --separate-stderr "$HTTPREQ" -i "$e2" DELETE "$B" /c/a.json
	assert_output 'status 204'
	run -0 --separate-stderr "$HTTPREQ" GET "$B" /c/a.json
	assert_output 'status 404'

	# What went on the wire: each method, the conditional headers as
	# given, a Content-Type only where one was given (no form type made
	# up), no Expect, a body only where one was given.
	assert_equal "$(seen '[.method, .path, .headers["if-match"], .headers["if-none-match"], .headers.depth, .headers["content-type"], .headers["content-length"], .body]')" "[\"MKCOL\",\"/c/\",null,null,null,null,null,\"\"]
[\"MKCOL\",\"/c/\",null,null,null,null,null,\"\"]
[\"MKCOL\",\"/no/c/\",null,null,null,null,null,\"\"]
[\"PUT\",\"/c/a.json\",null,\"*\",null,\"application/json\",\"7\",\"{\\\"n\\\":1}\"]
[\"PUT\",\"/c/a.json\",null,\"*\",null,\"application/json\",\"7\",\"{\\\"n\\\":9}\"]
[\"HEAD\",\"/c/a.json\",null,null,null,null,null,\"\"]
[\"GET\",\"/c/a.json\",null,null,null,null,null,\"\"]
[\"PUT\",\"/c/a.json\",$(jq -n --arg e "$e1" '$e'),null,null,\"application/json\",\"7\",\"{\\\"n\\\":2}\"]
[\"PUT\",\"/c/a.json\",$(jq -n --arg e "$e1" '$e'),null,null,\"application/json\",\"7\",\"{\\\"n\\\":3}\"]
[\"GET\",\"/c/a.json\",null,null,null,null,null,\"\"]
[\"GET\",\"/c/a.json\",null,$(jq -n --arg e "$e2" '$e'),null,null,null,\"\"]
[\"PUT\",\"/c/empty\",null,null,null,null,\"0\",\"\"]
[\"PROPFIND\",\"/c/\",null,null,\"1\",\"application/xml; charset=\\\"utf-8\\\"\",\"${#propfind}\",$(jq -n --arg e "$propfind" '$e')]
[\"PROPFIND\",\"/c/\",null,null,null,null,\"${#propfind}\",$(jq -n --arg e "$propfind" '$e')]
[\"DELETE\",\"/c/a.json\",$(jq -n --arg e "$e1" '$e'),null,null,null,null,\"\"]
[\"DELETE\",\"/c/a.json\",$(jq -n --arg e "$e2" '$e'),null,null,null,null,\"\"]
[\"GET\",\"/c/a.json\",null,null,null,null,null,\"\"]"
	assert_equal "$(seen '.headers.expect')" "$(printf 'null\n%.0s' $(seq 1 17))"
	assert_equal "$(seen '.headers["user-agent"]' | sort -u)" '"recdelta/0.1.0"'

	# Another header by -H; a header value with a line break is refused
	# before anything is sent.
	: > dav.log
	run -0 --separate-stderr "$HTTPREQ" -H 'X-Trace: t1' -H 'Authorization: Bearer tok' GET "$B" /c/empty
	assert_output "status 200
etag \"2jmj7l5rSw0yVb/vlWAYkK/YBwk=\"
content-type application/octet-stream"
	assert_equal "$(seen '[.headers["x-trace"], .headers.authorization]')" '["t1","Bearer tok"]'
	: > dav.log
	run -4 --separate-stderr "$HTTPREQ" -i $'"a"\r\nX-Evil: 1' PUT "$B" /c/empty
	assert_output ''
	assert_equal "$stderr" "httpreq: PUT /c/empty: $B: the If-Match header holds a line break"
	assert_equal "$(cat dav.log)" ''
}

@test "credentials: from ~/.netrc (the entry for the host, for the URL's user name if it has one), RECDELTA_NETRC, or the environment variables the store names; sent as basic authentication, never in a message or a log; a password in the URL is refused before anything is sent" {
	export DAV_USER=alice DAV_PASSWORD=s3cretPW
	dav_start
	basic() { printf 'Basic %s' "$(printf %s "$1" | base64 -w0)"; }

	# No credentials asked for: none sent, the netrc file not read.
	printf 'machine 127.0.0.1 login alice password s3cretPW\n' > "$HOME/.netrc"
	run -0 --separate-stderr "$HTTPREQ" GET "$B" /
	assert_output 'status 401'
	# Asked for (-A): ~/.netrc's entry for the host.
	run -0 --separate-stderr "$HTTPREQ" -A GET "$B" /
	assert_output "status 200
content-type text/html"
	assert_equal "$stderr" ''
	assert_equal "$(seen .headers.authorization)" "null
\"$(basic alice:s3cretPW)\""

	# Several logins for the host: the first, or the URL's user name's;
	# a user name the file does not know gets no password of another's.
	printf '%s\n' 'machine example.org login alice password elsewhere' \
	    'machine 127.0.0.1 login bob password bobPW' \
	    'machine 127.0.0.1' '  login alice' '  password "s3cret\PW"' \
	    'default login nobody password anyPW' > "$HOME/.netrc"
	: > dav.log
	for u in "$B" "http://alice@127.0.0.1:$DAV_PORT" "http://carol@127.0.0.1:$DAV_PORT" \
	    "http://localhost:$DAV_PORT"; do
		run -0 --separate-stderr "$HTTPREQ" -A GET "$u" /
		assert_equal "$stderr" ''
	done
	assert_equal "$(seen .headers.authorization)" "\"$(basic bob:bobPW)\"
\"$(basic alice:s3cretPW)\"
\"$(basic carol:)\"
\"$(basic nobody:anyPW)\""

	# RECDELTA_NETRC names another file, which must be there.
	printf 'machine 127.0.0.1 login alice password wrongPW\n' > other.netrc
	: > dav.log
	RECDELTA_NETRC=other.netrc run -0 --separate-stderr "$HTTPREQ" -A GET "$B" /
	assert_output 'status 401'
	assert_equal "$(seen .headers.authorization)" "\"$(basic alice:wrongPW)\""
	RECDELTA_NETRC=$PWD/missing run -4 --separate-stderr "$HTTPREQ" -A GET "$B" /
	assert_output ''
	assert_equal "$stderr" "httpreq: RECDELTA_NETRC: $PWD/missing: No such file or directory"
	printf 'machine 127.0.0.1 login alice password\n' > bad.netrc
	RECDELTA_NETRC=bad.netrc run -4 --separate-stderr "$HTTPREQ" -A GET "$B" /
	assert_equal "$stderr" 'httpreq: bad.netrc: not a netrc file (machine NAME login NAME password WORD, a line each)'

	# The environment: both variables, or the user name alone with its
	# password from the netrc file; a password alone is refused.
	: > dav.log
	DAVU=alice DAVP=s3cretPW run -0 --separate-stderr "$HTTPREQ" -u DAVU -p DAVP GET "$B" /
	assert_equal "${lines[0]}" 'status 200'
	DAVU=alice run -0 --separate-stderr "$HTTPREQ" -u DAVU -p DAVP GET "$B" /
	assert_equal "${lines[0]}" 'status 200'
	assert_equal "$(seen .headers.authorization)" "\"$(basic alice:s3cretPW)\"
\"$(basic alice:s3cretPW)\""
	DAVP=s3cretPW run -2 --separate-stderr "$HTTPREQ" -u DAVU -p DAVP GET "$B" /
	assert_output ''
	assert_equal "$stderr" 'httpreq: DAVP is set but DAVU is not'
	DAVU=carol run -2 --separate-stderr "$HTTPREQ" -u DAVU -p DAVP GET "$B" /
	assert_equal "$stderr" 'httpreq: DAVU is set but neither DAVP nor the netrc file gives a password'

	# A password in the URL: refused (exit 2), nothing sent, not echoed.
	: > dav.log
	for u in "http://alice:s3cretPW@127.0.0.1:$DAV_PORT" "http://alice:s3cretPW@127.0.0.1:$DAV_PORT/"; do
		run -2 --separate-stderr "$HTTPREQ" -A GET "$u" /
		assert_output ''
		assert_equal "$stderr" 'httpreq: the URL may not hold a password (put it in the netrc file or the environment)'
	done
	assert_equal "$(cat dav.log)" ''

	# Failures with credentials loaded: the messages and the log name the
	# base URL, never a user name or password.
	dav_faults '[{"status":503,"count":2}]'
	DAVU=alice DAVP=s3cretPW RECDELTA_LOG=log RECDELTA_HTTP_RETRIES=1 \
	    run -4 --separate-stderr "$HTTPREQ" -u DAVU -p DAVP GET "http://alice@127.0.0.1:$DAV_PORT" /
	assert_equal "$stderr" 'httpreq: GET /: HTTP 503; gave up after 2 attempts'
	assert_equal "$(seen '.headers.authorization' | tail -n 2 | sort -u)" "\"$(basic alice:s3cretPW)\""
	kill "$DAV_PID"
	wait "$DAV_PID" 2>/dev/null || true
	DAV_PID=
	RECDELTA_LOG=log run -4 --separate-stderr "$HTTPREQ" -A GET "http://alice@127.0.0.1:$DAV_PORT" /
	[[ $stderr == "httpreq: GET /: http://127.0.0.1:$DAV_PORT: Failed to connect to 127.0.0.1 port $DAV_PORT after "*" ms: Couldn't connect to server" ]]
	assert_equal "$(jq -r .msg log)" 'request failed; retrying'
	run ! grep -i -e alice -e s3cret -e "$(basic alice:s3cretPW | cut -d' ' -f2)" log
}

@test "credentials: the password from the first line of the file a variable names, before the netrc file; a missing or empty file is refused, and one others may read" {
	export DAV_USER=alice DAV_PASSWORD=s3cretPW
	dav_start
	basic() { printf 'Basic %s' "$(printf %s "$1" | base64 -w0)"; }
	printf 'machine 127.0.0.1 login alice password wrongPW\n' > "$HOME/.netrc"
	printf 's3cretPW\nnot this line\n' > pw
	chmod 600 pw
	: > dav.log
	DAVU=alice DAVF=$PWD/pw run -0 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_equal "${lines[0]}" 'status 200'
	assert_equal "$stderr" ''
	assert_equal "$(seen .headers.authorization)" "\"$(basic alice:s3cretPW)\""
	chmod 644 pw
	: > dav.log
	DAVU=alice DAVF=$PWD/pw run -2 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_output ''
	assert_equal "$stderr" "httpreq: DAVF: $PWD/pw: others may read the password file (chmod 600 it)"
	assert_equal "$(wc -l < dav.log)" 0
	chmod 600 pw
	: > empty
	chmod 600 empty
	DAVU=alice DAVF=$PWD/empty run -2 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_output ''
	assert_equal "$stderr" "httpreq: DAVF: $PWD/empty: no password in its first line"
	DAVU=alice DAVF=$PWD/missing run -4 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_equal "$stderr" "httpreq: DAVF: $PWD/missing: No such file or directory"
	DAVF=$PWD/pw run -2 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_equal "$stderr" 'httpreq: DAVF is set but DAVU is not'
	# Without the file, the netrc file's password for the user.
	DAVU=alice run -0 --separate-stderr "$HTTPREQ" -u DAVU -f DAVF GET "$B" /
	assert_equal "${lines[0]}" 'status 401'
	assert_equal "$(seen .headers.authorization | tail -n 1)" "\"$(basic alice:wrongPW)\""
}

@test "retries: 503 with Retry-After in seconds or as an HTTP date, 429, 500, a dropped connection are sent again after the wait and logged; 404 and 412 are not; the caller gives the number of retries" {
	dav_start
	"$HTTPREQ" -d x PUT "$B" /r > /dev/null

	dav_faults '[{"status":503,"retryAfter":1}]'
	RECDELTA_LOG=log run -0 --separate-stderr "$HTTPREQ" -r 1 GET "$B" /r
	assert_equal "${lines[0]}" 'status 200'
	assert_equal "$stderr" ''
	assert_equal "$(seen | tail -n 2)" '["GET","/r"]
["GET","/r"]'
	[ "$(tail -n 2 dav.log | jq -s '.[1].ts - .[0].ts')" -ge 1000 ]
	assert_equal "$(jq -c '[.level, .msg, .op, .error, .attempt, .retry_after]' log)" \
	    '["warning","request failed; retrying","GET /r","GET /r: HTTP 503",1,1]'

	# A date 2 s ahead: at least a second's wait (dates are whole seconds).
	when=$(date -u -d "@$(( $(date +%s) + 2 ))" '+%a, %d %b %Y %H:%M:%S GMT')
	dav_faults "[{\"status\":503,\"retryAfter\":\"$when\"}]"
	: > dav.log
	run -0 --separate-stderr "$HTTPREQ" -r 1 GET "$B" /r
	assert_equal "${lines[0]}" 'status 200'
	[ "$(jq -s '.[1].ts - .[0].ts' dav.log)" -ge 1000 ]

	# Retry-After is at hand in any reply: seconds, a date (a past one
	# is 0), nothing for what is neither.
	when=$(date -u -d "@$(( $(date +%s) + 30 ))" '+%a, %d %b %Y %H:%M:%S GMT')
	dav_faults "[{\"status\":301,\"retryAfter\":7},{\"status\":200,\"retryAfter\":\"$when\"},{\"status\":200,\"retryAfter\":\"Sun, 06 Nov 1994 08:49:37 GMT\"},{\"status\":200,\"retryAfter\":\"soon\"}]"
	run -0 --separate-stderr "$HTTPREQ" -r 0 GET "$B" /r
	assert_output 'status 301
retry-after 7'
	run -0 --separate-stderr "$HTTPREQ" -r 0 GET "$B" /r
	[[ $output =~ ^'status 200'$'\n''retry-after '(2[0-9]|30)$ ]]
	run -0 --separate-stderr "$HTTPREQ" -r 0 GET "$B" /r
	assert_output 'status 200
retry-after 0'
	run -0 --separate-stderr "$HTTPREQ" -r 0 GET "$B" /r
	assert_output 'status 200'

	# Each kind once, then success; the retries from the caller, not
	# from RECDELTA_HTTP_RETRIES (0 here).
	# (A connection dropped once reused is tried again by curl itself:
	# the drop comes first, on a fresh one.)
	dav_faults '[{"drop":true},{"status":429},{"status":500},{"status":502},{"status":504}]'
	: > dav.log
	rm -f log
	RECDELTA_LOG=log run -0 --separate-stderr "$HTTPREQ" -r 5 GET "$B" /r
	assert_equal "${lines[0]}" 'status 200'
	assert_equal "$(seen | uniq -c | sed 's/^ *//')" '6 ["GET","/r"]'
	assert_equal "$(jq -c '[.attempt, .error]' log | sed "s|$B|BASE|")" '[1,"GET /r: BASE: Empty reply from server"]
[2,"GET /r: HTTP 429"]
[3,"GET /r: HTTP 500"]
[4,"GET /r: HTTP 502"]
[5,"GET /r: HTTP 504"]'

	# Given up: the last message and the count of attempts.
	dav_faults '[{"status":503,"count":3}]'
	: > dav.log
	run -4 --separate-stderr "$HTTPREQ" -r 2 GET "$B" /r
	assert_output ''
	assert_equal "$stderr" 'httpreq: GET /r: HTTP 503; gave up after 3 attempts'
	assert_equal "$(seen | wc -l)" 3

	# Statuses no retry changes are the answer at once.
	: > dav.log
	run -0 --separate-stderr "$HTTPREQ" -r 3 GET "$B" /nothing
	assert_output 'status 404'
	run -0 --separate-stderr "$HTTPREQ" -r 3 -d y -n '*' PUT "$B" /r
	assert_output 'status 412'
	assert_equal "$(seen | wc -l)" 2
}

@test "every curl option is checked: whichever one libcurl refuses, the request fails (exit 4) naming it, and nothing is sent" {
	export DAV_USER=alice DAV_PASSWORD=s3cretPW
	dav_start
	printf 'machine 127.0.0.1 login alice password s3cretPW\n' > "$HOME/.netrc"
	for req in "-A -t text/plain -D 0 -d x PUT" "-A HEAD" "GET"; do
		n=1
		while :; do
			: > dav.log
			# shellcheck disable=SC2086
			RECDELTA_FAIL_SETOPT=$n run --separate-stderr "$HTTPREQ" $req "$B" /f
			[ "$status" -eq 0 ] && break
			assert_equal "$status" 4
			assert_output ''
			[[ $stderr == "httpreq: "*" /f: $B: libcurl refused CURLOPT_"*": An unknown option was passed in to libcurl" ]]
			assert_equal "$(cat dav.log)" ''
			n=$((n + 1))
			[ "$n" -lt 60 ]
		done
		echo "# $req: $((n - 1)) options" >&3
		[ "$n" -gt 15 ]
		assert_equal "$(seen '.method')" "\"${req##* }\""
	done
}
