'use strict';
// http-dav.js LOG: a small in-memory WebDAV server for tests/http.bats, on
// a free loopback port ("listening PORT" on stdout).  It answers as Apache
// httpd with mod_dav_fs and "FileETag Digest" does (../shared/protocols/
// webdav.md §1-3): GET and HEAD with a strong ETag, Content-Type and 304 for
// a matching If-None-Match; PUT 201 with Location (new) or 204 (replaced),
// 409 without the parent collection, 412 when If-Match or If-None-Match
// fails; DELETE 204; MKCOL 201, 405 when it exists, 409 without the parent,
// 415 with a body; PROPFIND 207 with Depth 0 or 1, 403 without Depth or
// with infinity.
//
// Every request (but /_ctl/) is appended to LOG as one JSON line before it
// is answered: ts (ms), method, path, headers (lower-case names), body.
// With DAV_USER and DAV_PASSWORD in the environment, a request without that
// basic authentication gets 401.  POST /_ctl/faults with a JSON array of
// {status, retryAfter, count} or {drop: true, count} answers (or drops) the
// next requests so instead.
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

const log = process.argv[2];
const files = new Map();		// path -> {body, etag, type, mtime}
const cols = new Set(['/']);		// collection paths, ending in '/'
let faults = [];

const parent = (p) => p.replace(/[^/]+\/?$/, '');
const etagOf = (b) => '"' + crypto.createHash('sha1').update(b).digest('base64') + '"';

function answer(res, status, headers, body) {
	res.writeHead(status, headers || {});
	res.end(body || '');
}

// The preconditions of RFC 7232 as mod_dav checks them: strong comparison.
function preconditionFails(req, f) {
	const im = req.headers['if-match'], inm = req.headers['if-none-match'];
	if (im !== undefined && (im === '*' ? !f : !f || im.startsWith('W/') || im !== f.etag))
		return true;
	if (inm !== undefined && req.method !== 'GET' && req.method !== 'HEAD' &&
	    (inm === '*' ? !!f : f && inm === f.etag))
		return true;
	return false;
}

function propEntry(href, f) {
	const props = f ? `<lp1:resourcetype/><lp1:getetag>${f.etag}</lp1:getetag>` +
	    `<lp1:getcontentlength>${f.body.length}</lp1:getcontentlength>` +
	    `<lp1:getlastmodified>${f.mtime.toUTCString()}</lp1:getlastmodified>` :
	    '<lp1:resourcetype><D:collection/></lp1:resourcetype>';
	return `<D:response xmlns:lp1="DAV:"><D:href>${href}</D:href><D:propstat><D:prop>` +
	    `${props}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n`;
}

function handle(req, res, body) {
	const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
	const f = files.get(p);
	switch (req.method) {
	case 'GET':
	case 'HEAD':
		if (cols.has(p))
			return answer(res, 200, { 'Content-Type': 'text/html' }, req.method === 'GET' ? '<html/>' : '');
		if (!f)
			return answer(res, 404);
		if (req.headers['if-none-match'] === f.etag)
			return answer(res, 304, { ETag: f.etag });
		res.writeHead(200, { ETag: f.etag, 'Content-Type': f.type,
		    'Content-Length': f.body.length, 'Last-Modified': f.mtime.toUTCString() });
		return res.end(req.method === 'GET' ? f.body : undefined);
	case 'PUT':
		if (!cols.has(parent(p)) || cols.has(p))
			return answer(res, 409);
		if (preconditionFails(req, f))
			return answer(res, 412);
		files.set(p, { body, etag: etagOf(body), mtime: new Date(),
		    type: req.headers['content-type'] || 'application/octet-stream' });
		if (f)
			return answer(res, 204);
		return answer(res, 201, { Location: `http://${req.headers.host}${p}`,
		    'Content-Type': 'text/html' }, '<html><body>Created</body></html>\n');
	case 'DELETE':
		if (!f)
			return answer(res, 404);
		if (preconditionFails(req, f))
			return answer(res, 412);
		files.delete(p);
		return answer(res, 204);
	case 'MKCOL':
		if (body.length)
			return answer(res, 415);
		if (cols.has(p) || files.has(p) || cols.has(p + '/'))
			return answer(res, 405);
		if (!cols.has(parent(p)))
			return answer(res, 409);
		cols.add(p.endsWith('/') ? p : p + '/');
		return answer(res, 201);
	case 'PROPFIND': {
		const depth = req.headers.depth;
		if (depth !== '0' && depth !== '1')
			return answer(res, 403);
		if (!f && !cols.has(p))
			return answer(res, 404);
		let xml = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">\n';
		xml += propEntry(p, f);
		if (!f && depth === '1') {
			for (const c of cols)
				if (c !== p && parent(c) === p)
					xml += propEntry(c, null);
			for (const [k, v] of files)
				if (parent(k) === p)
					xml += propEntry(k, v);
		}
		xml += '</D:multistatus>\n';
		return answer(res, 207, { 'Content-Type': 'application/xml; charset="utf-8"' }, xml);
	}
	default:
		return answer(res, 405);
	}
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (d) => chunks.push(d));
	req.on('end', () => {
		const body = Buffer.concat(chunks);
		if (req.url === '/_ctl/faults' && req.method === 'POST') {
			faults = JSON.parse(body.toString());
			return answer(res, 204);
		}
		fs.appendFileSync(log, JSON.stringify({ ts: Date.now(), method: req.method,
		    path: req.url, headers: req.headers, body: body.toString() }) + '\n');
		if (faults.length) {
			const f = faults[0];
			f.count = (f.count || 1) - 1;
			if (f.count <= 0)
				faults.shift();
			if (f.drop)
				return req.socket.destroy();
			const h = {};
			if (f.retryAfter !== undefined)
				h['Retry-After'] = String(f.retryAfter);
			return answer(res, f.status, h, `fault ${f.status}\n`);
		}
		const user = process.env.DAV_USER, pw = process.env.DAV_PASSWORD;
		if (user !== undefined && req.headers.authorization !==
		    'Basic ' + Buffer.from(`${user}:${pw}`).toString('base64'))
			return answer(res, 401, { 'WWW-Authenticate': 'Basic realm="dav"' });
		handle(req, res, body);
	});
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
