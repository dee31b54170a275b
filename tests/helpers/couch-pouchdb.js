// couch-pouchdb.js - PouchDB's own client, an independent second opinion on
// what recdelta reads and writes (tests/couchdb-store.bats).  With the npm
// package of tests/package.json, over HTTP; the credentials come from
// COUCH_USER and the file COUCH_PASSWORD_FILE.
//
//   node couch-pouchdb.js replicate SOURCE-URL TARGET-URL
//       PouchDB's replicator, one shot; prints {"docs_written":N}
//   node couch-pouchdb.js dump URL
//       every document, design documents aside, as PouchDB reads it: one
//       {"_id","type","key","fields"} a line, sorted by _id (no _rev: revs
//       are compared apart)
//   node couch-pouchdb.js put URL < docs.ndjson
//       bulkDocs of the documents on stdin, one JSON object a line, written
//       by PouchDB's client; prints each result's id and ok or error
'use strict';

const fs = require('fs');
const path = require('path');
const PouchDB = require(path.join(__dirname, '..', 'node_modules', 'pouchdb'));

const auth = {
	username: process.env.COUCH_USER,
	password: fs.readFileSync(process.env.COUCH_PASSWORD_FILE, 'utf8').split('\n')[0],
};

function db(url) {
	return new PouchDB(url, { auth, skip_setup: true });
}

async function main() {
	const [cmd, a, b] = process.argv.slice(2);
	if (cmd === 'replicate') {
		const r = await PouchDB.replicate(db(a), db(b));
		console.log(JSON.stringify({ docs_written: r.docs_written }));
	} else if (cmd === 'dump') {
		const r = await db(a).allDocs({ include_docs: true });
		const out = r.rows.filter((x) => !x.id.startsWith('_'))
			.map((x) => ({ _id: x.doc._id, type: x.doc.type, key: x.doc.key, fields: x.doc.fields }));
		out.sort((x, y) => Buffer.compare(Buffer.from(x._id), Buffer.from(y._id)));
		for (const d of out)
			console.log(JSON.stringify(d));
	} else if (cmd === 'put') {
		const docs = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
		const r = await db(a).bulkDocs(docs);
		for (const x of r)
			console.log(x.id + ' ' + (x.ok ? 'ok' : x.error));
	} else {
		throw new Error('usage: couch-pouchdb.js replicate|dump|put ...');
	}
}

main().catch((e) => {
	console.error('couch-pouchdb: ' + (e.message || e));
	process.exit(1);
});
