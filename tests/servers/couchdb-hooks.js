// couchdb-hooks.js - test hooks loaded into pouchdb-server itself
// (node -r tests/servers/couchdb-hooks.js .../pouchdb-server ...), so that
// the suites run the real server and still see and steer it:
//
//   - it listens on the port COUCH_HOOK_PORT (0: one the kernel picks, so a
//     free one, where pouchdb-server itself would take 0 for its default
//     5984) and prints "listening PORT" on stdout once it does;
//   - every request is appended, before it is handled, to the file
//     COUCH_HOOK_LOG as "METHOD URL", so that a test counts the requests a
//     program made once the program has ended;
//   - POST /_test/stop {"path":P,"after":N} (P a path segment such as
//     "_bulk_docs"): N more requests whose path has that segment are served,
//     and the next one stops the service, as a server that goes down in the
//     middle of an exchange: its connection is dropped unanswered, the
//     listening socket closed and every other connection cut.  The
//     databases stay in the process's memory; SIGUSR2 opens the same port
//     again ("restarted"), and "listening PORT" is printed again;
//   - POST /_test/hold {"path":P,"after":N}: N more such requests are
//     served, and every one after it waits, unanswered and not yet
//     handled, until POST /_test/release, which hands them to the server
//     (a client killed meanwhile has sent its request whole: it is handled
//     as a server that took it would); GET /_test/held says {"held":N}.
//
// Nothing here changes what pouchdb-server answers to a request it serves.
'use strict';

const http = require('http');
const fs = require('fs');

const logPath = process.env.COUCH_HOOK_LOG || '';
const wantPort = Number(process.env.COUCH_HOOK_PORT || 0);
let server = null;
let host = '127.0.0.1';
let port = 0;
let stopRule = null;
let holdRule = null;
let held = [];
const sockets = new Set();

function logRequest(req) {
	if (logPath)
		fs.appendFileSync(logPath, req.method + ' ' + req.url + '\n');
}

function segments(url) {
	return url.split('?')[0].split('/').filter((s) => s !== '');
}

function stopService(req) {
	stopRule = null;
	server.close();
	req.socket.destroy();
	for (const s of sockets)
		s.destroy();
	sockets.clear();
}

function control(req, res) {
	let body = '';
	req.setEncoding('utf8');
	req.on('data', (d) => { body += d; });
	req.on('end', () => {
		const send = (status, obj) => {
			res.writeHead(status, { 'Content-Type': 'application/json' });
			res.end(JSON.stringify(obj) + '\n');
		};
		if (req.method === 'POST' && segments(req.url)[1] === 'stop') {
			let r;
			try {
				r = JSON.parse(body);
			} catch (e) {
				return send(400, { error: 'bad_request', reason: 'not JSON' });
			}
			if (typeof r.path !== 'string' || !Number.isInteger(r.after) || r.after < 0)
				return send(400, { error: 'bad_request', reason: 'expected {"path":P,"after":N}' });
			stopRule = { path: r.path, left: r.after };
			return send(200, { ok: true });
		}
		if (req.method === 'POST' && segments(req.url)[1] === 'hold') {
			let r;
			try {
				r = JSON.parse(body);
			} catch (e) {
				return send(400, { error: 'bad_request', reason: 'not JSON' });
			}
			holdRule = { path: r.path, left: r.after };
			return send(200, { ok: true });
		}
		if (req.method === 'GET' && segments(req.url)[1] === 'held')
			return send(200, { held: held.length });
		if (req.method === 'POST' && segments(req.url)[1] === 'release') {
			const h = held;
			held = [];
			holdRule = null;
			for (const f of h)
				f();
			return send(200, { released: h.length });
		}
		send(404, { error: 'not_found', reason: 'no such test hook' });
	});
}

function install(srv) {
	const app = srv.listeners('request');
	srv.removeAllListeners('request');
	srv.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	srv.on('request', (req, res) => {
		if (segments(req.url)[0] === '_test')
			return control(req, res);
		if (stopRule && segments(req.url).includes(stopRule.path)) {
			if (stopRule.left === 0)
				return stopService(req);
			stopRule.left--;
		}
		const serve = () => {
			logRequest(req);
			for (const f of app)
				f.call(srv, req, res);
		};
		if (holdRule && segments(req.url).includes(holdRule.path)) {
			if (holdRule.left === 0) {
				req.pause();
				held.push(serve);
				return;
			}
			holdRule.left--;
		}
		serve();
	});
	srv.on('listening', () => {
		port = srv.address().port;
		process.stdout.write('listening ' + port + '\n');
	});
}

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
	if (!server) {
		server = this;
		install(this);
		if (typeof args[0] === 'number')
			args[0] = wantPort;
		if (typeof args[1] === 'string')
			host = args[1];
	}
	return listen.apply(this, args);
};

process.on('SIGUSR2', () => {
	if (server && !server.listening)
		listen.call(server, port, host);
});
