# CloudKit emulator helpers (tests/servers/cloudkit-emulator.js).  Load after
# helpers/common.  ck_start in a test (or setup), ck_stop from teardown.
#
#   ck_start [EMULATOR-OPTION]...   start on a free port with a fresh P-256 key
#   ck_stop                         stop it
#   ck_request PATH [BODY]          signed POST (GET when BODY is absent and
#                                   PATH ends in zones/list); prints the body,
#                                   sets CK_STATUS to the HTTP status
#   ck_path OPERATION               /database/1/CONTAINER/ENV/public/OPERATION
#   ck_control METHOD PATH [BODY]   unsigned request to /_emulator/...
#
# Signing is done here with openssl, independently of the emulator and of
# recdelta's own signer.

CK_CONTAINER=iCloud.com.example.test
CK_ENVIRONMENT=development
CK_DATABASE=public
export CK_CONTAINER CK_ENVIRONMENT CK_DATABASE

# ck_keypair DIR: DIR/key.pem (SEC1 private key) and DIR/pub.pem.
ck_keypair() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$1/key.pem" 2>/dev/null &&
	    openssl ec -in "$1/key.pem" -pubout -out "$1/pub.pem" 2>/dev/null
}

# ck_keys_json KEYID PUBPEM [CONTAINER [ENV]]: one KEYS.json entry object.
ck_keys_json() {
	jq -n --arg id "$1" --rawfile pem "$2" --arg c "${3:-$CK_CONTAINER}" \
	    --arg e "${4:-$CK_ENVIRONMENT}" \
	    '{($id): {publicKey: $pem, container: $c, environment: $e}}'
}

# listening_port PID OUT ERR: wait until the server PID started says
# "listening PORT" as the first line of OUT, then print PORT; if it dies or
# never says so, print OUT's line and ERR on stderr and return 1.
listening_port() {
	local line= i
	for i in $(seq 1 200); do
		IFS= read -r line < "$2" || true
		case $line in "listening "*) printf '%s\n' "${line#listening }"; return 0 ;; esac
		kill -0 "$1" 2>/dev/null || break
		sleep 0.05
	done
	echo "server did not start: $line" >&2
	cat "$3" >&2
	return 1
}

# ck_start [OPTION]...: start the emulator with key "testkey"; extra options
# (--skew, --private-zones, --state-file) are passed on.  CK_KEYS_JSON, when
# set, names a keys file to use instead of the generated one.
ck_start() {
	local dir=$BATS_TEST_TMPDIR/ck
	mkdir -p "$dir"
	ck_keypair "$dir" || return 1
	CK_KEY_ID=testkey
	CK_KEY_FILE=$dir/key.pem
	if [ -z "${CK_KEYS_JSON:-}" ]; then
		ck_keys_json "$CK_KEY_ID" "$dir/pub.pem" > "$dir/keys.json"
		CK_KEYS_JSON=$dir/keys.json
	fi
	rm -f "$dir/out"
	node "$TOP/tests/servers/cloudkit-emulator.js" --port 0 \
	    --keys "$CK_KEYS_JSON" "$@" > "$dir/out" 2> "$dir/stderr" 3>&- &
	CK_PID=$!
	if ! CK_PORT=$(listening_port "$CK_PID" "$dir/out" "$dir/stderr"); then
		kill "$CK_PID" 2>/dev/null
		return 1
	fi
	CK_URL=http://127.0.0.1:$CK_PORT
	export CK_URL CK_PORT CK_KEY_ID CK_KEY_FILE CK_PID CK_KEYS_JSON
}

ck_stop() {
	if [ -n "${CK_PID:-}" ]; then
		kill "$CK_PID" 2>/dev/null || true
		wait "$CK_PID" 2>/dev/null || true
		CK_PID=
	fi
}

ck_path() {
	printf '/database/1/%s/%s/%s/%s' "$CK_CONTAINER" "$CK_ENVIRONMENT" "$CK_DATABASE" "$1"
}

# ck_date [OFFSET-SECONDS]: the signing date, now (+ offset), exact format.
ck_date() {
	date -u -d "@$(( $(date +%s) + ${1:-0} ))" +%Y-%m-%dT%H:%M:%SZ
}

# ck_sign DATE BODY PATH [KEYFILE]: the base64 DER signature.
ck_sign() {
	local bodyhash
	bodyhash=$(printf %s "$2" | openssl dgst -sha256 -binary | base64 -w0)
	printf '%s:%s:%s' "$1" "$bodyhash" "$3" |
	    openssl dgst -sha256 -sign "${4:-$CK_KEY_FILE}" | base64 -w0
}

# ck_raw PATH DATE SIGNATURE KEYID BODY [METHOD]: send exactly these headers;
# prints the response body, sets CK_STATUS.
ck_raw() {
	local out=$BATS_TEST_TMPDIR/ck/resp.$$
	local method=${6:-POST}
	local -a data=()
	[ "$method" = POST ] && data=(--data-binary "$5")
	CK_STATUS=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" \
	    -H "Content-Type: application/json" \
	    -H "X-Apple-CloudKit-Request-KeyID: $4" \
	    -H "X-Apple-CloudKit-Request-ISO8601Date: $2" \
	    -H "X-Apple-CloudKit-Request-SignatureV1: $3" \
	    "${data[@]}" "$CK_URL$1") || CK_STATUS=000
	cat "$out" 2>/dev/null
	rm -f "$out"
}

# ck_request PATH [BODY]: PATH is a full /database/... path or an operation
# (records/query) that ck_path completes.  The signature is made with
# $CK_KEY_FILE, the key id is $CK_KEY_ID, the date now + ${CK_DATE_OFFSET:-0}.
ck_request() {
	local path=$1 body=${2-} method=POST d sig
	case $path in /*) ;; *) path=$(ck_path "$path") ;; esac
	[ $# -lt 2 ] && case $path in */zones/list) method=GET ;; esac
	d=$(ck_date "${CK_DATE_OFFSET:-0}")
	sig=$(ck_sign "$d" "$body" "$path")
	ck_raw "$path" "$d" "$sig" "$CK_KEY_ID" "$body" "$method"
}

# ck_control METHOD PATH [BODY]: PATH under /_emulator/ (e.g. faults).
ck_control() {
	if [ $# -ge 3 ]; then
		curl -sS -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$CK_URL/_emulator/$2"
	else
		curl -sS -X "$1" "$CK_URL/_emulator/$2"
	fi
}
