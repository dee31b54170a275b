#!/usr/bin/env node
// CloudKit Web Services emulator for recdelta's tests, written from
// ../shared/protocols/cloudkit.md (§10).  Node built-ins only (Node >= 18).
//
//   node cloudkit-emulator.js --port 0 --keys KEYS.json [--skew 300]
//        [--state-file F] [--private-zones] [--clock-offset SECONDS]
//
// --clock-offset: the clock against which request dates are checked runs
// SECONDS ahead (negative: behind) of the host's, to test clock skew.
//
// KEYS.json: {"KEYID":{"publicKey":"PEM","container":"iCloud.x",
//             "environment":"development"}}
// Prints "listening PORT" on stdout when ready; exits on SIGTERM/SIGINT.
//
// Control endpoints (no signature):
//   POST /_emulator/reset                    forget records, faults, log, options
//   POST /_emulator/faults  {path,count,status,serverErrorCode,reason,retryAfter,
//                            retryAfterHeader,drop,delayMs,hold,recordName}
//                           (hold: the request waits for POST /_emulator/release)
//                           (after: N, the fault lets N matching requests by first)
//                           (an array of these is accepted too; DELETE clears)
//   GET  /_emulator/faults
//   POST /_emulator/release lets every held request go on
//   GET  /_emulator/held    {held: N}, the requests waiting for a release
//   GET  /_emulator/log     JSON array of {method,path,op,status,ops,ts,...}
//                           (?format=ndjson for NDJSON); DELETE clears
//   POST /_emulator/options {conflictTopLevel, createExistsCode, indexLagMs,
//                            tokenHorizon, tagPrefix}
//                           (tagPrefix: begins every new recordChangeTag)
//   GET  /_emulator/state   the stored records (for debugging)
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');

// ---------------------------------------------------------------- arguments
function usage(msg) {
	process.stderr.write(`cloudkit-emulator: ${msg}\n` +
	    'usage: cloudkit-emulator.js --port N --keys KEYS.json [--skew S] [--state-file F] [--private-zones] [--clock-offset S]\n');
	process.exit(2);
}
const args = { port: 0, keys: null, skew: 300, stateFile: null, privateZones: false, clockOffset: 0 };
{
	const a = process.argv.slice(2);
	for (let i = 0; i < a.length; i++) {
		const need = () => { if (i + 1 >= a.length) usage(`${a[i]} needs a value`); return a[++i]; };
		switch (a[i]) {
		case '--port': args.port = Number(need()); break;
		case '--keys': args.keys = need(); break;
		case '--skew': args.skew = Number(need()); break;
		case '--state-file': args.stateFile = need(); break;
		case '--private-zones': args.privateZones = true; break;
		case '--clock-offset': args.clockOffset = Number(need()); break;
		default: usage(`unknown argument ${a[i]}`);
		}
	}
	if (!args.keys) usage('--keys is required');
	if (!Number.isFinite(args.port) || !Number.isFinite(args.skew) || !Number.isFinite(args.clockOffset)) usage('bad number');
}

let KEYS;
try {
	KEYS = JSON.parse(fs.readFileSync(args.keys, 'utf8'));
	for (const [id, k] of Object.entries(KEYS)) {
		k.keyObject = crypto.createPublicKey(k.publicKey);
		k.userRecordName = '_' + crypto.createHash('sha256').update(id).digest('hex').slice(0, 32);
	}
} catch (e) {
	usage(`cannot load keys: ${e.message}`);
}

// ------------------------------------------------- JSON with exact integers
// Integer literals outside the safe range become BigInt; everything else is
// as JSON.parse would give.
class JSONError extends Error {}
function parseJSON(text) {
	let i = 0;
	const n = text.length;
	const ws = () => { while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++; };
	const fail = (m) => { throw new JSONError(`${m} at offset ${i}`); };
	function value() {
		ws();
		if (i >= n) fail('unexpected end');
		const c = text[i];
		if (c === '{') {
			i++; const o = {}; ws();
			if (text[i] === '}') { i++; return o; }
			for (;;) {
				ws(); if (text[i] !== '"') fail('expected key');
				const k = str(); ws();
				if (text[i] !== ':') fail('expected :'); i++;
				o[k] = value(); ws();
				if (text[i] === ',') { i++; continue; }
				if (text[i] === '}') { i++; return o; }
				fail('expected , or }');
			}
		}
		if (c === '[') {
			i++; const a = []; ws();
			if (text[i] === ']') { i++; return a; }
			for (;;) {
				a.push(value()); ws();
				if (text[i] === ',') { i++; continue; }
				if (text[i] === ']') { i++; return a; }
				fail('expected , or ]');
			}
		}
		if (c === '"') return str();
		if (text.startsWith('true', i)) { i += 4; return true; }
		if (text.startsWith('false', i)) { i += 5; return false; }
		if (text.startsWith('null', i)) { i += 4; return null; }
		const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
		if (!m) fail('unexpected character');
		i += m[0].length;
		if (!m[2] && !m[3]) {
			const v = Number(m[0]);
			return Number.isSafeInteger(v) ? v : BigInt(m[0]);
		}
		return Number(m[0]);
	}
	function str() {
		const start = i;
		i++;
		for (;;) {
			if (i >= n) fail('unterminated string');
			const c = text[i];
			if (c === '"') break;
			if (c === '\\') i += 2; else if (c < ' ') fail('control character in string'); else i++;
		}
		i++;
		return JSON.parse(text.slice(start, i));
	}
	const v = value(); ws();
	if (i !== n) fail('trailing data');
	return v;
}
function stringify(v) {
	if (typeof v === 'bigint') return v.toString();
	if (v === undefined) return 'null';
	if (v === null || typeof v !== 'object') return JSON.stringify(v);
	if (Array.isArray(v)) return '[' + v.map(stringify).join(',') + ']';
	const parts = [];
	for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(JSON.stringify(k) + ':' + stringify(x));
	return '{' + parts.join(',') + '}';
}

// ------------------------------------------------------------------- state
const INT64_MIN = -(2n ** 63n), INT64_MAX = 2n ** 63n - 1n;
const DEFAULT_ZONE = '_defaultZone';
let state, faults, log, options;
function freshState() {
	// dbs: "db" -> {zoneName -> {records: {name: rec}, tombstones: {name: seq}, created: seq}}
	return { counter: 0, lastTs: 0, dbs: { public: { [DEFAULT_ZONE]: newZone(0) }, private: { [DEFAULT_ZONE]: newZone(0) } }, schema: {} };
}
function newZone(seq) { return { records: {}, tombstones: {}, created: seq }; }
function defaultOptions() { return { conflictTopLevel: false, createExistsCode: 'CONFLICT', indexLagMs: 0, tokenHorizon: 0, tagPrefix: '' }; }
function resetAll() { state = freshState(); faults = []; log = []; options = defaultOptions(); }
resetAll();

function loadState() {
	if (!args.stateFile || !fs.existsSync(args.stateFile)) return;
	const s = parseJSON(fs.readFileSync(args.stateFile, 'utf8'));
	for (const db of Object.values(s.dbs || {}))
		for (const z of Object.values(db))
			for (const r of Object.values(z.records))
				for (const f of Object.values(r.fields)) f.value = normalizeStored(f.type, f.value);
	state = s;
}
function saveState() {
	if (!args.stateFile) return;
	const tmp = args.stateFile + '.tmp';
	fs.writeFileSync(tmp, stringify(state));
	fs.renameSync(tmp, args.stateFile);
}
function normalizeStored(type, v) {
	if (v === null || v === undefined) return v;
	if (type === 'INT64') return BigInt(v);
	if (type === 'INT64_LIST' && Array.isArray(v)) return v.map((x) => BigInt(x));
	return v;
}
try { loadState(); } catch (e) { usage(`cannot load state file: ${e.message}`); }

function nextTag() { state.counter++; return { seq: state.counter, tag: options.tagPrefix + state.counter.toString(36) }; }
function now() { const t = Math.max(Date.now(), state.lastTs); state.lastTs = t; return t; }

// ------------------------------------------------------------------ errors
const STATUS = {
	ACCESS_DENIED: 403, ATOMIC_ERROR: 400, AUTHENTICATION_FAILED: 401, AUTHENTICATION_REQUIRED: 421,
	BAD_REQUEST: 400, CONFLICT: 409, EXISTS: 409, INTERNAL_ERROR: 500, NOT_FOUND: 404,
	QUOTA_EXCEEDED: 413, THROTTLED: 429, TRY_AGAIN_LATER: 503, VALIDATING_REFERENCE_ERROR: 412,
	ZONE_NOT_FOUND: 404, CHANGE_TOKEN_EXPIRED: 410, // not in Apple's table; our pick
};
class HttpError extends Error {
	constructor(status, code, reason, extra) { super(reason); this.status = status; this.code = code; this.extra = extra || {}; }
}
const err = (code, reason, extra) => new HttpError(STATUS[code] || 400, code, reason, extra);
const uuid = () => crypto.randomUUID();
const recErr = (recordName, code, reason) => ({ recordName, serverErrorCode: code, reason, uuid: uuid() });

// -------------------------------------------------------------- signatures
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function authenticate(req, rawBody, path, fullPath) {
	const fail = (why) => { const e = err('AUTHENTICATION_FAILED', 'Authentication failed'); e.why = why; return e; };
	const keyID = req.headers['x-apple-cloudkit-request-keyid'];
	const date = req.headers['x-apple-cloudkit-request-iso8601date'];
	const sig = req.headers['x-apple-cloudkit-request-signaturev1'];
	if (!keyID || !date || !sig) throw fail('missing header');
	const key = Object.prototype.hasOwnProperty.call(KEYS, keyID) ? KEYS[keyID] : null;
	if (!key) throw fail('unknown key id');
	const m = DATE_RE.exec(date);
	if (!m) throw fail('bad date format');
	const t = Date.parse(date);
	if (!Number.isFinite(t) || new Date(t).toISOString().replace('.000Z', 'Z') !== date) throw fail('bad date');
	if (Math.abs(Date.now() + args.clockOffset * 1000 - t) > args.skew * 1000) throw fail('date outside allowed skew');
	if (!B64_RE.test(sig) || sig.length === 0) throw fail('bad signature base64');
	const sigBuf = Buffer.from(sig, 'base64');
	const bodyHash = crypto.createHash('sha256').update(rawBody).digest('base64');
	let ok = false;
	for (const p of fullPath === path ? [path] : [path, fullPath]) {
		try {
			ok = crypto.verify('sha256', Buffer.from(`${date}:${bodyHash}:${p}`, 'utf8'),
			    { key: key.keyObject, dsaEncoding: 'der' }, sigBuf);
		} catch (e) { ok = false; }
		if (ok) break;
	}
	if (!ok) throw fail('bad signature');
	return { keyID, key };
}

// ------------------------------------------------------------ field values
const SCALARS = ['STRING', 'INT64', 'DOUBLE', 'TIMESTAMP', 'BYTES', 'LOCATION', 'REFERENCE', 'ASSETID', 'ASSET'];
function inferType(v) {
	if (typeof v === 'string') return 'STRING';
	if (typeof v === 'bigint') return 'INT64';
	if (typeof v === 'boolean') return 'INT64';
	if (typeof v === 'number') return Number.isInteger(v) ? 'INT64' : 'DOUBLE';
	if (Array.isArray(v)) {
		if (v.length === 0) return 'STRING_LIST';
		return inferType(v[0]) + '_LIST';
	}
	if (v && typeof v === 'object') {
		if ('latitude' in v && 'longitude' in v) return 'LOCATION';
		if ('recordName' in v) return 'REFERENCE';
		if ('fileChecksum' in v || 'downloadURL' in v || 'receipt' in v) return 'ASSETID';
	}
	return null;
}
function toInt64(v) {
	let b;
	if (typeof v === 'bigint') b = v;
	else if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
	else if (typeof v === 'boolean') b = v ? 1n : 0n;
	else if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) b = BigInt(v);
	else throw new Error('not an integer');
	if (b < INT64_MIN || b > INT64_MAX) throw new Error('integer out of int64 range');
	return b;
}
function coerce(type, v) {
	switch (type) {
	case 'STRING': if (typeof v !== 'string') throw new Error('not a string'); return v;
	case 'INT64': return toInt64(v);
	case 'DOUBLE': {
		const d = typeof v === 'string' ? Number(v) : Number(v);
		if (typeof v === 'object' || !Number.isFinite(d)) throw new Error('not a number'); return d;
	}
	case 'TIMESTAMP': {
		const b = toInt64(v); return Number(b);
	}
	case 'BYTES': if (typeof v !== 'string' || !B64_RE.test(v)) throw new Error('not base64'); return v;
	case 'LOCATION':
		if (!v || typeof v !== 'object' || typeof v.latitude !== 'number' || typeof v.longitude !== 'number') throw new Error('bad location');
		return v;
	case 'REFERENCE':
		if (!v || typeof v !== 'object' || typeof v.recordName !== 'string') throw new Error('bad reference');
		return v;
	case 'ASSETID': case 'ASSET':
		if (!v || typeof v !== 'object') throw new Error('bad asset'); return v;
	default:
		if (type.endsWith('_LIST') && SCALARS.includes(type.slice(0, -5))) {
			if (!Array.isArray(v)) throw new Error('not a list');
			return v.map((x) => coerce(type.slice(0, -5), x));
		}
		throw new Error(`unknown type ${type}`);
	}
}
// fieldsIn: request fields; returns {name: {value,type}|null} (null clears)
function normalizeFields(recordType, fieldsIn) {
	const out = {};
	if (fieldsIn === undefined || fieldsIn === null) return out;
	if (typeof fieldsIn !== 'object' || Array.isArray(fieldsIn)) throw new Error('fields must be an object');
	const schema = state.schema[recordType] || (state.schema[recordType] = {});
	for (const [name, f] of Object.entries(fieldsIn)) {
		if (!f || typeof f !== 'object' || Array.isArray(f) || !('value' in f)) throw new Error(`field ${name}: expected {"value":…}`);
		if (f.value === null) { out[name] = null; continue; }
		let type = f.type;
		if (type === undefined || type === null) type = schema[name] || inferType(f.value);
		if (!type) throw new Error(`field ${name}: cannot infer a type`);
		if (type === 'ASSET') type = 'ASSETID';
		let value;
		try { value = coerce(type, f.value); } catch (e) { throw new Error(`field ${name}: ${e.message}`); }
		if (schema[name] && schema[name] !== type) throw new Error(`field ${name}: type ${type} does not match ${schema[name]}`);
		if (!schema[name]) schema[name] = type;
		out[name] = { value, type };
	}
	return out;
}

function recordOut(r, desiredKeys, zoneName) {
	let fields = r.fields;
	if (Array.isArray(desiredKeys)) {
		fields = {};
		for (const k of desiredKeys) if (r.fields[k]) fields[k] = r.fields[k];
	}
	return {
		recordName: r.recordName, recordType: r.recordType, recordChangeTag: r.recordChangeTag,
		fields, created: r.created, modified: r.modified, deleted: false, zoneID: { zoneName },
	};
}

// ------------------------------------------------------------------ zones
function zoneNameOf(body) {
	const z = body && body.zoneID;
	if (z === undefined || z === null) return DEFAULT_ZONE;
	if (typeof z !== 'object' || typeof z.zoneName !== 'string') throw err('BAD_REQUEST', 'zoneID must be {"zoneName":…}');
	return z.zoneName;
}
function getZone(db, zoneName) {
	const zones = state.dbs[db] || (state.dbs[db] = { [DEFAULT_ZONE]: newZone(0) });
	const z = zones[zoneName];
	if (!z) throw err('ZONE_NOT_FOUND', `Zone '${zoneName}' does not exist`);
	return z;
}

// ----------------------------------------------------------- records/modify
const OPTYPES = ['create', 'update', 'forceUpdate', 'replace', 'forceReplace', 'delete', 'forceDelete'];
function modify(ctx, body) {
	const ops = body.operations;
	if (!Array.isArray(ops)) throw err('BAD_REQUEST', 'operations must be an array');
	if (ops.length === 0) throw err('BAD_REQUEST', 'operations is empty');
	if (ops.length > 200) throw err('BAD_REQUEST', `too many operations (${ops.length} > 200)`);
	const seen = new Set();
	for (const op of ops) {
		if (!op || typeof op !== 'object') throw err('BAD_REQUEST', 'bad operation');
		if (!OPTYPES.includes(op.operationType)) throw err('BAD_REQUEST', `unknown operationType ${JSON.stringify(op.operationType)}`);
		const r = op.record;
		if (!r || typeof r !== 'object') throw err('BAD_REQUEST', 'operation without record');
		if (r.recordName !== undefined && typeof r.recordName !== 'string') throw err('BAD_REQUEST', 'recordName must be a string');
		if (r.recordName === undefined && op.operationType !== 'create') throw err('BAD_REQUEST', `${op.operationType} needs a recordName`);
		if (r.recordName !== undefined) {
			if (seen.has(r.recordName)) throw err('BAD_REQUEST', `record ${r.recordName} appears more than once in one request`);
			seen.add(r.recordName);
		}
	}
	const zoneName = zoneNameOf(body);
	const zone = getZone(ctx.db, zoneName);
	const atomic = zoneName !== DEFAULT_ZONE && body.atomic !== false;
	// Work on a copy when atomic, so a failure leaves nothing written.
	const work = atomic ? { records: { ...zone.records }, tombstones: { ...zone.tombstones } } : zone;
	const schemaBackup = atomic ? JSON.parse(JSON.stringify(state.schema)) : null;
	const results = [];
	let failed = 0;
	for (const op of ops) {
		const fault = takeRecordFault(ctx.op, op.record.recordName);
		let res;
		if (fault) res = recErr(op.record.recordName, fault.serverErrorCode || 'INTERNAL_ERROR', fault.reason || 'injected fault');
		else res = applyOp(ctx, work, zoneName, op);
		if (res.serverErrorCode) failed++;
		else if (!res.deleted) res = recordOut(res, op.desiredKeys !== undefined ? op.desiredKeys : body.desiredKeys, zoneName);
		results.push(res);
	}
	if (atomic && failed) {
		state.schema = schemaBackup;
		const out = results.map((r, idx) => r.serverErrorCode ? r
		    : recErr(ops[idx].record.recordName || r.recordName, 'ATOMIC_ERROR', 'Atomic operation failed'));
		return { status: 400, body: { records: out } };
	}
	if (atomic) { zone.records = work.records; zone.tombstones = work.tombstones; }
	if (results.length - failed > 0) saveState();
	if (options.conflictTopLevel && ops.length === 1 && failed === 1) {
		const e = results[0];
		throw new HttpError(STATUS[e.serverErrorCode] || 409, e.serverErrorCode, e.reason);
	}
	return { status: 200, body: { records: results } };
}

function applyOp(ctx, zone, zoneName, op) {
	const t = op.operationType;
	const rin = op.record;
	const name = rin.recordName !== undefined ? rin.recordName : uuid().toUpperCase();
	const cur = Object.prototype.hasOwnProperty.call(zone.records, name) ? zone.records[name] : null;
	const needTag = t === 'update' || t === 'replace' || t === 'delete';
	if (t === 'create' && cur) {
		return recErr(name, options.createExistsCode, options.createExistsCode === 'EXISTS'
		    ? 'Record already exists' : 'record to insert already exists');
	}
	if (!cur && (needTag || t === 'forceDelete')) return recErr(name, 'NOT_FOUND', 'Record not found');
	if (needTag && rin.recordChangeTag !== cur.recordChangeTag) {
		return recErr(name, 'CONFLICT', 'oplock error');
	}
	if (t === 'delete' || t === 'forceDelete') {
		delete zone.records[name];
		zone.tombstones[name] = nextTag().seq;
		return { recordName: name, deleted: true, zoneID: { zoneName } };
	}
	const recordType = cur ? cur.recordType : rin.recordType;
	if (typeof recordType !== 'string' || recordType === '') return recErr(name, 'BAD_REQUEST', 'recordType is required');
	if (cur && rin.recordType !== undefined && rin.recordType !== cur.recordType) {
		return recErr(name, 'BAD_REQUEST', `record ${name} has type ${cur.recordType}, not ${rin.recordType}`);
	}
	let fields;
	try { fields = normalizeFields(recordType, rin.fields); } catch (e) { return recErr(name, 'BAD_REQUEST', e.message); }
	const merge = cur && (t === 'update' || t === 'forceUpdate');
	const newFields = merge ? { ...cur.fields } : {};
	for (const [k, v] of Object.entries(fields)) {
		if (v === null) delete newFields[k]; else newFields[k] = v;
	}
	const ts = now();
	const stamp = { timestamp: ts, userRecordName: ctx.key.userRecordName, deviceID: '2' };
	const { seq, tag } = nextTag();
	const rec = {
		recordName: name, recordType, recordChangeTag: tag, fields: newFields,
		created: cur ? cur.created : stamp, modified: stamp, seq,
	};
	zone.records[name] = rec;
	delete zone.tombstones[name];
	return rec;
}

// ----------------------------------------------------------- records/lookup
function lookup(ctx, body) {
	if (!Array.isArray(body.records)) throw err('BAD_REQUEST', 'records must be an array');
	if (body.records.length > 200) throw err('BAD_REQUEST', `too many records (${body.records.length} > 200)`);
	const zoneName = zoneNameOf(body);
	const zone = getZone(ctx.db, zoneName);
	const out = body.records.map((x) => {
		if (!x || typeof x.recordName !== 'string') throw err('BAD_REQUEST', 'each entry needs a recordName');
		const r = zone.records[x.recordName];
		if (!r || !Object.prototype.hasOwnProperty.call(zone.records, x.recordName)) return recErr(x.recordName, 'NOT_FOUND', 'Record not found');
		return recordOut(r, x.desiredKeys !== undefined ? x.desiredKeys : body.desiredKeys, zoneName);
	});
	return { status: 200, body: { records: out } };
}

// ------------------------------------------------------------ records/query
const SYSTEM = {
	recordName: (r) => r.recordName,
	___recordId: (r) => r.recordName,
	createdTimestamp: (r) => r.created.timestamp,
	___createTime: (r) => r.created.timestamp,
	modifiedTimestamp: (r) => r.modified.timestamp,
	___modTime: (r) => r.modified.timestamp,
	createdUserRecordName: (r) => r.created.userRecordName,
	___createdBy: (r) => r.created.userRecordName,
	modifiedUserRecordName: (r) => r.modified.userRecordName,
	___modifiedBy: (r) => r.modified.userRecordName,
};
// A comparable scalar: strings, numbers, bigints; references by name.
function scalar(v) {
	if (v === null || v === undefined) return undefined;
	if (typeof v === 'object' && !Array.isArray(v)) {
		if (typeof v.recordName === 'string') return v.recordName;
		return JSON.stringify(v);
	}
	if (typeof v === 'boolean') return v ? 1n : 0n;
	return v;
}
function cmpScalar(a, b) {
	if (a === undefined && b === undefined) return 0;
	if (a === undefined) return -1;
	if (b === undefined) return 1;
	const sa = typeof a === 'string', sb = typeof b === 'string';
	if (sa !== sb) { a = String(a); b = String(b); }
	return a < b ? -1 : a > b ? 1 : 0;
}
function getter(spec) {
	if (typeof spec.systemFieldName === 'string') {
		const g = SYSTEM[spec.systemFieldName];
		if (!g) throw err('BAD_REQUEST', `unknown systemFieldName ${spec.systemFieldName}`);
		return g;
	}
	if (typeof spec.fieldName === 'string') {
		if (SYSTEM[spec.fieldName] && spec.fieldName.startsWith('___')) return SYSTEM[spec.fieldName];
		const n = spec.fieldName;
		return (r) => (r.fields[n] ? r.fields[n].value : undefined);
	}
	throw err('BAD_REQUEST', 'filter/sort needs fieldName or systemFieldName');
}
function filterValue(fv, comparator) {
	if (!fv || typeof fv !== 'object' || !('value' in fv)) throw err('BAD_REQUEST', `${comparator} needs fieldValue {"value":…}`);
	let v = fv.value;
	if (fv.type && fv.type !== 'REFERENCE' && fv.type !== 'LOCATION') {
		try { v = coerce(fv.type === 'ASSET' ? 'ASSETID' : fv.type, v); } catch (e) { throw err('BAD_REQUEST', `fieldValue: ${e.message}`); }
	}
	return v;
}
function makeFilter(f) {
	if (!f || typeof f !== 'object') throw err('BAD_REQUEST', 'bad filter');
	const get = getter(f);
	const c = f.comparator;
	const v = filterValue(f.fieldValue, c);
	const one = (x) => scalar(x);
	switch (c) {
	case 'EQUALS': return (r) => { const x = one(get(r)); return x !== undefined && cmpScalar(x, one(v)) === 0; };
	case 'NOT_EQUALS': return (r) => { const x = one(get(r)); return x === undefined || cmpScalar(x, one(v)) !== 0; };
	case 'LESS_THAN': return (r) => { const x = one(get(r)); return x !== undefined && cmpScalar(x, one(v)) < 0; };
	case 'LESS_THAN_OR_EQUALS': return (r) => { const x = one(get(r)); return x !== undefined && cmpScalar(x, one(v)) <= 0; };
	case 'GREATER_THAN': return (r) => { const x = one(get(r)); return x !== undefined && cmpScalar(x, one(v)) > 0; };
	case 'GREATER_THAN_OR_EQUALS': return (r) => { const x = one(get(r)); return x !== undefined && cmpScalar(x, one(v)) >= 0; };
	case 'IN': case 'NOT_IN': {
		if (!Array.isArray(v)) throw err('BAD_REQUEST', `${c} needs a list value`);
		const set = v.map(one);
		const has = (r) => { const x = one(get(r)); return x !== undefined && set.some((y) => cmpScalar(x, y) === 0); };
		return c === 'IN' ? has : (r) => !has(r);
	}
	case 'BEGINS_WITH': case 'NOT_BEGINS_WITH': {
		if (typeof v !== 'string') throw err('BAD_REQUEST', `${c} needs a string value`);
		const b = (r) => { const x = get(r); return typeof x === 'string' && x.startsWith(v); };
		return c === 'BEGINS_WITH' ? b : (r) => !b(r);
	}
	case 'LIST_CONTAINS': case 'NOT_LIST_CONTAINS': {
		const b = (r) => { const x = get(r); return Array.isArray(x) && x.some((y) => cmpScalar(one(y), one(v)) === 0); };
		return c === 'LIST_CONTAINS' ? b : (r) => !b(r);
	}
	default: throw err('BAD_REQUEST', `unsupported comparator ${JSON.stringify(c)}`);
	}
}
function encodeKey(v) { return typeof v === 'bigint' ? { i: v.toString() } : v === undefined ? { u: 1 } : v; }
function decodeKey(v) {
	if (v && typeof v === 'object') { if ('i' in v) return BigInt(v.i); if ('u' in v) return undefined; }
	return v;
}
function query(ctx, body) {
	const q = body.query;
	if (!q || typeof q !== 'object' || typeof q.recordType !== 'string' || !q.recordType) throw err('BAD_REQUEST', 'query.recordType is required');
	let limit = 200;
	if (body.resultsLimit !== undefined && body.resultsLimit !== null) {
		limit = Number(body.resultsLimit);
		if (!Number.isInteger(limit) || limit < 1) throw err('BAD_REQUEST', 'resultsLimit must be a positive integer');
		limit = Math.min(limit, 200);
	}
	const filters = (q.filterBy || []).map(makeFilter);
	const sorts = (q.sortBy || []).map((s) => ({ get: getter(s), asc: s.ascending !== false }));
	const zoneName = zoneNameOf(body);
	const zone = getZone(ctx.db, zoneName);
	const cutoff = options.indexLagMs > 0 ? Date.now() - options.indexLagMs : Infinity;
	const keyOf = (r) => sorts.map((s) => scalar(s.get(r)));
	const cmpKeys = (ka, na, kb, nb) => {
		for (let i = 0; i < sorts.length; i++) {
			const c = cmpScalar(ka[i], kb[i]);
			if (c) return sorts[i].asc ? c : -c;
		}
		return na < nb ? -1 : na > nb ? 1 : 0;
	};
	let rows = Object.values(zone.records)
	    .filter((r) => r.recordType === q.recordType && r.modified.timestamp <= cutoff && filters.every((f) => f(r)))
	    .map((r) => ({ r, k: keyOf(r) }));
	rows.sort((a, b) => cmpKeys(a.k, a.r.recordName, b.k, b.r.recordName));
	if (body.continuationMarker !== undefined && body.continuationMarker !== null) {
		let m;
		try {
			m = parseJSON(Buffer.from(String(body.continuationMarker), 'base64').toString('utf8'));
			if (m.t !== q.recordType || !Array.isArray(m.k) || m.k.length !== sorts.length || typeof m.n !== 'string') throw new Error('mismatch');
		} catch (e) {
			throw err('BAD_REQUEST', 'continuationMarker does not match this query');
		}
		const mk = m.k.map(decodeKey);
		rows = rows.filter((x) => cmpKeys(x.k, x.r.recordName, mk, m.n) > 0);
	}
	const page = rows.slice(0, limit);
	const out = { records: page.map((x) => recordOut(x.r, body.desiredKeys, zoneName)) };
	if (rows.length > limit) {
		const last = page[page.length - 1];
		out.continuationMarker = Buffer.from(stringify({ t: q.recordType, k: last.k.map(encodeKey), n: last.r.recordName })).toString('base64');
	}
	return { status: 200, body: out };
}

// ------------------------------------------- private zones: changes, zones
const syncToken = (seq) => Buffer.from(`ck-sync:${seq}`).toString('base64');
function parseSyncToken(t) {
	const m = /^ck-sync:(\d+)$/.exec(Buffer.from(String(t), 'base64').toString('utf8'));
	if (!m) throw err('BAD_REQUEST', 'bad syncToken');
	return Number(m[1]);
}
function zoneDict(name, z) {
	let seq = z.created;
	for (const r of Object.values(z.records)) seq = Math.max(seq, r.seq);
	for (const s of Object.values(z.tombstones)) seq = Math.max(seq, s);
	return { zoneID: { zoneName: name }, syncToken: syncToken(seq), atomic: true };
}
function requireCustomZones(ctx) {
	if (ctx.db === 'public') throw err('BAD_REQUEST', `${ctx.op} is not available in the public database`);
}
function recordChanges(ctx, body) {
	requireCustomZones(ctx);
	const zoneName = zoneNameOf(body);
	if (zoneName === DEFAULT_ZONE) throw err('BAD_REQUEST', 'records/changes needs a custom zone');
	const zone = getZone(ctx.db, zoneName);
	let since = 0;
	if (body.syncToken !== undefined && body.syncToken !== null) {
		since = parseSyncToken(body.syncToken);
		if (options.tokenHorizon > 0 && since < state.counter - options.tokenHorizon) {
			throw err('CHANGE_TOKEN_EXPIRED', 'sync token expired');
		}
	}
	let limit = 200;
	if (body.resultsLimit !== undefined && body.resultsLimit !== null) limit = Math.max(1, Math.min(200, Number(body.resultsLimit) || 200));
	const changes = [];
	for (const r of Object.values(zone.records)) if (r.seq > since) changes.push({ seq: r.seq, r });
	for (const [n, s] of Object.entries(zone.tombstones)) if (s > since) changes.push({ seq: s, n });
	changes.sort((a, b) => a.seq - b.seq);
	const page = changes.slice(0, limit);
	const moreComing = changes.length > limit;
	const seq = moreComing ? page[page.length - 1].seq : Math.max(since, parseSyncToken(zoneDict(zoneName, zone).syncToken));
	return {
		status: 200,
		body: {
			records: page.map((c) => (c.r ? recordOut(c.r, body.desiredKeys, zoneName)
			    : { recordName: c.n, deleted: true, zoneID: { zoneName } })),
			syncToken: syncToken(seq), moreComing, reverse: false,
		},
	};
}
function zonesList(ctx) {
	const zones = state.dbs[ctx.db] || {};
	return { status: 200, body: { zones: Object.entries(zones).map(([n, z]) => zoneDict(n, z)) } };
}
function zonesLookup(ctx, body) {
	if (!Array.isArray(body.zones)) throw err('BAD_REQUEST', 'zones must be an array');
	const zones = state.dbs[ctx.db] || {};
	return {
		status: 200,
		body: { zones: body.zones.map((x) => {
			const n = x && x.zoneName;
			return zones[n] ? zoneDict(n, zones[n]) : { zoneID: { zoneName: n }, serverErrorCode: 'ZONE_NOT_FOUND', reason: 'Zone not found', uuid: uuid() };
		}) },
	};
}
function zonesModify(ctx, body) {
	requireCustomZones(ctx);
	if (!Array.isArray(body.operations)) throw err('BAD_REQUEST', 'operations must be an array');
	const zones = state.dbs[ctx.db];
	const out = body.operations.map((op) => {
		const n = op && op.zone && op.zone.zoneID && op.zone.zoneID.zoneName;
		if (typeof n !== 'string' || !n) throw err('BAD_REQUEST', 'zone.zoneID.zoneName is required');
		if (op.operationType === 'create') {
			if (!zones[n]) zones[n] = newZone(nextTag().seq);
			return zoneDict(n, zones[n]);
		}
		if (op.operationType === 'delete') {
			if (n === DEFAULT_ZONE) return { zoneID: { zoneName: n }, serverErrorCode: 'BAD_REQUEST', reason: 'cannot delete the default zone', uuid: uuid() };
			if (!zones[n]) return { zoneID: { zoneName: n }, serverErrorCode: 'ZONE_NOT_FOUND', reason: 'Zone not found', uuid: uuid() };
			delete zones[n];
			return { zoneID: { zoneName: n }, deleted: true };
		}
		throw err('BAD_REQUEST', `unknown zone operationType ${op.operationType}`);
	});
	saveState();
	return { status: 200, body: { zones: out } };
}

const OPERATIONS = {
	'records/modify': { method: 'POST', fn: modify, count: (b) => (Array.isArray(b.operations) ? b.operations.length : 0) },
	'records/lookup': { method: 'POST', fn: lookup, count: (b) => (Array.isArray(b.records) ? b.records.length : 0) },
	'records/query': { method: 'POST', fn: query, count: () => 1 },
	'records/changes': { method: 'POST', fn: recordChanges, count: () => 1 },
	'zones/list': { method: 'GET', fn: zonesList, count: () => 0 },
	'zones/lookup': { method: 'POST', fn: zonesLookup, count: (b) => (Array.isArray(b.zones) ? b.zones.length : 0) },
	'zones/modify': { method: 'POST', fn: zonesModify, count: (b) => (Array.isArray(b.operations) ? b.operations.length : 0) },
};

// ------------------------------------------------------------------ faults
function matches(f, op) { return !f.path || f.path === op || op.endsWith('/' + f.path) || f.path === '*'; }
function takeFault(op) {
	for (let i = 0; i < faults.length; i++) {
		const f = faults[i];
		if (f.recordName !== undefined || !matches(f, op)) continue;
		if (f.after > 0) { f.after--; continue; }
		if (--f.count <= 0) faults.splice(i, 1);
		return f;
	}
	return null;
}
function takeRecordFault(op, recordName) {
	for (let i = 0; i < faults.length; i++) {
		const f = faults[i];
		if (f.recordName === undefined || f.recordName !== recordName || !matches(f, op)) continue;
		if (--f.count <= 0) faults.splice(i, 1);
		return f;
	}
	return null;
}

// ------------------------------------------------------------------- HTTP
function send(res, status, obj, headers) {
	const body = stringify(obj);
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(headers || {}) });
	res.end(body);
}
function errorBody(e) {
	const b = { uuid: uuid(), serverErrorCode: e.code, reason: e.message };
	Object.assign(b, e.extra);
	return b;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Requests held by a fault with "hold", until /_emulator/release.
let held = [];
const holdUntilReleased = () => new Promise((r) => held.push(r));

function control(req, res, url, raw) {
	const p = url.pathname;
	let body = {};
	if (raw.length) {
		try { body = parseJSON(raw.toString('utf8')); } catch (e) { return send(res, 400, { uuid: uuid(), serverErrorCode: 'BAD_REQUEST', reason: e.message }); }
	}
	if (p === '/_emulator/held' && req.method === 'GET') return send(res, 200, { held: held.length });
	if (p === '/_emulator/release' && req.method === 'POST') {
		const n = held.length;
		held.forEach((r) => r());
		held = [];
		return send(res, 200, { released: n });
	}
	if (p === '/_emulator/reset' && req.method === 'POST') { resetAll(); saveState(); return send(res, 200, { ok: true }); }
	if (p === '/_emulator/faults') {
		if (req.method === 'GET') return send(res, 200, faults);
		if (req.method === 'DELETE') { faults = []; return send(res, 200, { ok: true }); }
		if (req.method === 'POST') {
			const list = Array.isArray(body) ? body : [body];
			for (const f of list) {
				if (!f || typeof f !== 'object') return send(res, 400, { uuid: uuid(), serverErrorCode: 'BAD_REQUEST', reason: 'fault must be an object' });
				const g = { ...f, count: f.count === undefined ? 1 : Number(f.count) };
				if (typeof g.retryAfter === 'bigint') g.retryAfter = Number(g.retryAfter);
				if (g.after !== undefined) g.after = Number(g.after);
				if (g.status !== undefined) g.status = Number(g.status);
				if (g.status && !g.serverErrorCode) g.serverErrorCode = Object.keys(STATUS).find((k) => STATUS[k] === g.status) || 'INTERNAL_ERROR';
				if (g.serverErrorCode && !g.status && g.recordName === undefined) g.status = STATUS[g.serverErrorCode] || 500;
				faults.push(g);
			}
			return send(res, 200, { ok: true, faults: faults.length });
		}
	}
	if (p === '/_emulator/log') {
		if (req.method === 'DELETE') { log = []; return send(res, 200, { ok: true }); }
		if (url.searchParams.get('format') === 'ndjson') {
			const text = log.map((l) => stringify(l) + '\n').join('');
			res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
			return res.end(text);
		}
		return send(res, 200, log);
	}
	if (p === '/_emulator/options' && req.method === 'POST') {
		for (const k of Object.keys(body)) {
			if (!(k in options)) return send(res, 400, { uuid: uuid(), serverErrorCode: 'BAD_REQUEST', reason: `unknown option ${k}` });
			options[k] = typeof body[k] === 'bigint' ? Number(body[k]) : body[k];
		}
		return send(res, 200, options);
	}
	if (p === '/_emulator/options' && req.method === 'GET') return send(res, 200, options);
	if (p === '/_emulator/state' && req.method === 'GET') return send(res, 200, state);
	return send(res, 404, { uuid: uuid(), serverErrorCode: 'NOT_FOUND', reason: `no control endpoint ${req.method} ${p}` });
}

const PATH_RE = /^\/database\/1\/([^/]+)\/([^/]+)\/([^/]+)\/(.+)$/;
async function handle(req, res, raw) {
	const url = new URL(req.url, 'http://127.0.0.1');
	if (url.pathname.startsWith('/_emulator/')) return control(req, res, url, raw);
	const entry = { method: req.method, path: url.pathname, op: null, status: 0, ops: 0, ts: Date.now() };
	let extraHeaders;
	try {
		const m = PATH_RE.exec(url.pathname);
		if (!m) throw err('NOT_FOUND', `no such endpoint ${url.pathname}`);
		const [, container, environment, db, op] = m;
		entry.op = op;
		const auth = authenticate(req, raw, url.pathname, url.pathname + url.search);
		entry.keyID = auth.keyID;
		if (auth.key.container !== container || auth.key.environment !== environment) {
			const e = err('AUTHENTICATION_FAILED', 'Authentication failed'); e.why = 'key not valid for this container/environment'; throw e;
		}
		if (!(db === 'public' || (db === 'private' && args.privateZones))) {
			const e = err('AUTHENTICATION_FAILED', 'Authentication failed'); e.why = `database ${db} not available to a server-to-server key`; throw e;
		}
		const opdef = OPERATIONS[op];
		if (!opdef) throw err('BAD_REQUEST', `unsupported operation ${op}`);
		if (req.method !== opdef.method) throw err('BAD_REQUEST', `${op} needs ${opdef.method}`);
		let body = {};
		if (raw.length) {
			try { body = parseJSON(raw.toString('utf8')); } catch (e) { throw err('BAD_REQUEST', `invalid JSON: ${e.message}`); }
			if (!body || typeof body !== 'object' || Array.isArray(body)) throw err('BAD_REQUEST', 'body must be a JSON object');
		} else if (opdef.method === 'POST') throw err('BAD_REQUEST', 'empty body');
		entry.ops = opdef.count(body);
		const f = takeFault(op);
		if (f) {
			entry.fault = f.drop ? 'drop' : f.status ? f.serverErrorCode : 'delay';
			if (f.delayMs) await sleep(Number(f.delayMs));
			if (f.hold) await holdUntilReleased();
			if (f.drop) { entry.status = 0; log.push(entry); req.socket.destroy(); return; }
			if (f.status) {
				const extra = {};
				if (f.retryAfter !== undefined) extra.retryAfter = f.retryAfter;
				if (f.retryAfterHeader !== undefined) extraHeaders = { 'Retry-After': String(f.retryAfterHeader) };
				throw new HttpError(f.status, f.serverErrorCode, f.reason || `injected ${f.serverErrorCode}`, extra);
			}
		}
		const out = opdef.fn({ db, op, key: auth.key, keyID: auth.keyID }, body);
		entry.status = out.status;
		log.push(entry);
		send(res, out.status, out.body);
	} catch (e) {
		if (!(e instanceof HttpError)) {
			process.stderr.write(`cloudkit-emulator: internal error: ${e.stack}\n`);
			e = err('INTERNAL_ERROR', 'internal emulator error');
		}
		entry.status = e.status;
		entry.serverErrorCode = e.code;
		if (e.why) entry.why = e.why;
		log.push(entry);
		send(res, e.status, errorBody(e), extraHeaders);
	}
}

const server = http.createServer((req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		handle(req, res, Buffer.concat(chunks)).catch((e) => {
			process.stderr.write(`cloudkit-emulator: ${e.stack}\n`);
			try { send(res, 500, { uuid: uuid(), serverErrorCode: 'INTERNAL_ERROR', reason: 'internal emulator error' }); } catch (e2) { /* gone */ }
		});
	});
});
server.keepAliveTimeout = 5000;
server.listen(args.port, '127.0.0.1', () => {
	process.stdout.write(`listening ${server.address().port}\n`);
});
const stop = () => { server.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
