# Apache httpd with mod_dav and mod_dav_fs, for the webdav: store's tests.
# Load after helpers/common.  dav_start in a test (or setup), dav_stop from
# teardown.  Debian's apache2 (tools/install-deps --test installs it, and
# apache2-utils for htpasswd).
#
#   dav_start [ETAG]   start on a free loopback port, Basic auth for user
#                      "alice"; ETAG is the FileETag setting (default
#                      Digest; "MTime Size" gives weak ETags for a second
#                      after a write).  Sets DAV_ROOT (the document root, a
#                      folder), DAV_URL (http://127.0.0.1:PORT), DAV_PORT,
#                      DAV_PID, DAV_RUN (config, logs) and the store's
#                      credentials: RECDELTA_WEBDAV_USER and
#                      RECDELTA_WEBDAV_PASSWORD_FILE.
#   dav_stop           stop it (by pid) and wait for it
#   dav_requests       the access log: "METHOD PATH STATUS", a line each
#
# Run as root, the children run as www-data (the User directive): the
# document root is then www-data's, and the folders above it are made
# searchable by others.  Run as another user, Apache ignores User and runs
# as that user.

DAV_USER=alice
DAV_PASSWORD='s3cret pass'

# A port nobody listens on now: the kernel's choice for a socket bound to
# port 0.  Apache cannot bind port 0 itself, so dav_start retries when
# another process took the port in between.
_dav_free_port() {
	node -e 'const s = require("net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

_dav_config() {
	local m=/usr/lib/apache2/modules
	cat <<EOF
ServerName 127.0.0.1
Listen 127.0.0.1:\${DAV_PORT}
DefaultRuntimeDir \${DAV_RUN}
PidFile \${DAV_RUN}/httpd.pid
Mutex file:\${DAV_RUN} default
ErrorLog \${DAV_RUN}/error.log
LogLevel warn
LogFormat "%r %>s" dav
CustomLog \${DAV_RUN}/access.log dav
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule authz_user_module $m/mod_authz_user.so
LoadModule authn_core_module $m/mod_authn_core.so
LoadModule authn_file_module $m/mod_authn_file.so
LoadModule auth_basic_module $m/mod_auth_basic.so
LoadModule dav_module $m/mod_dav.so
LoadModule dav_fs_module $m/mod_dav_fs.so
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
KeepAliveTimeout 30
MaxKeepAliveRequests 0
User www-data
Group www-data
DavLockDB \${DAV_RUN}/DavLock
DocumentRoot \${DAV_ROOT}
<Directory />
    Require all denied
</Directory>
<Directory \${DAV_ROOT}>
    Dav On
    Options None
    AllowOverride None
    AuthType Basic
    AuthName dav
    AuthUserFile \${DAV_RUN}/htpasswd
    Require valid-user
    FileETag \${DAV_ETAG}
</Directory>
EOF
}

dav_start() {
	local tries i code
	DAV_ETAG=${1:-Digest}
	DAV_RUN=$BATS_TEST_TMPDIR/apache
	DAV_ROOT=$BATS_TEST_TMPDIR/davroot
	mkdir -p "$DAV_RUN" "$DAV_ROOT"
	_dav_config > "$DAV_RUN/dav.conf"
	printf '%s\n' "$DAV_PASSWORD" | htpasswd -ci "$DAV_RUN/htpasswd" "$DAV_USER" 2>/dev/null || return 1
	printf '%s\n' "$DAV_PASSWORD" > "$DAV_RUN/password"
	chmod 600 "$DAV_RUN/password"
	if [ "$(id -u)" = 0 ]; then
		chown -R www-data: "$DAV_RUN" "$DAV_ROOT"
		chown root: "$DAV_RUN/password"
		# www-data must reach the two folders.
		local d=$BATS_TEST_TMPDIR
		while [ "$d" != / ] && [ -n "$d" ]; do
			chmod o+x "$d"
			d=${d%/*}
		done
	fi
	export DAV_RUN DAV_ROOT DAV_ETAG
	for tries in 1 2 3 4 5; do
		DAV_PORT=$(_dav_free_port) || return 1
		export DAV_PORT
		rm -f "$DAV_RUN/error.log" "$DAV_RUN/stderr"
		apache2 -f "$DAV_RUN/dav.conf" -DFOREGROUND > "$DAV_RUN/stderr" 2>&1 3>&- &
		DAV_PID=$!
		# Ready when it answers (401: no credentials sent); gone when
		# it could not start (the port taken since, say).
		for i in $(seq 1 400); do
			code=$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' \
			    "http://127.0.0.1:$DAV_PORT/" 2>/dev/null) || true
			[ "$code" = 401 ] && break
			kill -0 "$DAV_PID" 2>/dev/null || break
			sleep 0.025
		done
		if [ "$code" = 401 ]; then
			DAV_URL=http://127.0.0.1:$DAV_PORT
			RECDELTA_WEBDAV_USER=$DAV_USER
			RECDELTA_WEBDAV_PASSWORD_FILE=$DAV_RUN/password
			export DAV_URL DAV_PID RECDELTA_WEBDAV_USER RECDELTA_WEBDAV_PASSWORD_FILE
			return 0
		fi
		kill "$DAV_PID" 2>/dev/null || true
		wait "$DAV_PID" 2>/dev/null || true
		cat "$DAV_RUN/error.log" "$DAV_RUN/stderr" 2>/dev/null | grep -q "could not bind\\|Address already in use" || break
	done
	echo "apache did not start:" >&2
	cat "$DAV_RUN/error.log" "$DAV_RUN/stderr" >&2 2>/dev/null
	DAV_PID=
	return 1
}

dav_stop() {
	if [ -n "${DAV_PID:-}" ]; then
		kill -TERM "$DAV_PID" 2>/dev/null || true
		wait "$DAV_PID" 2>/dev/null || true
		DAV_PID=
	fi
}

# The requests Apache served since it started, "METHOD PATH STATUS".
dav_requests() {
	sed 's/ HTTP\/1\.[01]//' "$DAV_RUN/access.log"
}
