#!/usr/bin/node
// A FaaS-like Node.js function for cxlfork's real-runtime tests (the
// protocol of pyfunc.py).
//
// At start it loads real core modules (crypto/OpenSSL, zlib, util, events,
// url, querystring, path, buffer, stream) and builds ~32 MiB of warm state,
// deterministically: a Map of string -> array, a Float64Array, a Buffer,
// and a compressed copy of part of it. It runs the way a Node.js service
// does: libuv's event loop in epoll with an eventfd and a signal pipe
// registered, V8's platform worker threads, libuv's thread pool (warmed by
// an async pbkdf2), and a 20 ms interval timer. Then it prints
// "ready <pid>" and waits for requests forever.
//
// A request is one SIGUSR1. Request n computes a digest over the whole warm
// state (every Map entry, the floats' exact sum, a hash of the buffer, an
// inflate of the compressed copy), an async pbkdf2 on libuv's thread pool,
// whether the interval timer ran since the previous request and the
// process's thread count, records the request in the state, and appends
// "result <n> <hexdigest>" to $RT_DIR/<pid>.result and to stdout. The
// original and any clone give the same digest for the same request number:
// a clone whose event loop, timers or thread pool do not work does not
// answer, or answers differently.
//
//   node nodefunc.js [MIB]    warm state in MiB (default 32, or $NODEFUNC_MIB)
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const zlib = require('zlib');
const util = require('util');
const { EventEmitter } = require('events');
const url = require('url');
const querystring = require('querystring');
const path = require('path');
const { Readable } = require('stream');

const RESULT_DIR = process.env.RT_DIR || '/tmp/rt';
const MIB = Number(process.argv[2] || process.env.NODEFUNC_MIB || 32);
const N_KEYS = Math.floor((MIB * 1048576 * 0.5) / 160);
const N_FLOATS = Math.floor((MIB * 1048576 * 0.2) / 8);
const BLOB = Math.floor(MIB * 1048576 * 0.25);

// A deterministic generator (xorshift64*), independent of Math.random.
let seed = 20251128n;
function next() {
    seed ^= seed >> 12n;
    seed ^= (seed << 25n) & 0xffffffffffffffffn;
    seed ^= seed >> 27n;
    return Number(((seed * 2685821657736338717n) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
}

const state = { map: new Map(), floats: new Float64Array(N_FLOATS), blob: Buffer.alloc(BLOB), served: [] };
for (let i = 0; i < N_KEYS; i++) {
    state.map.set(`key-${i}-${Math.floor(next() * 1e9)}`, [i, Math.floor(next() * 1e6), `v${i % 97}`]);
}
for (let i = 0; i < N_FLOATS; i++) state.floats[i] = next() * 1000 - 500;
for (let i = 0; i < BLOB; i += 4) state.blob.writeUInt32LE(Math.floor(next() * 2 ** 32) >>> 0, i);
state.packed = zlib.deflateSync(state.blob.subarray(0, 1 << 20));
state.meta = { url: url.parse('https://example.org/a/b?c=1'), qs: querystring.stringify({ a: 1, b: 'x' }), path: path.join('/a', 'b'), fmt: util.format('%s=%d', 'n', 1) };

let ticks = 0;
let lastTicks = 0;
setInterval(() => { ticks++; }, 20);
const bus = new EventEmitter();

// Node.js caches process.pid at start: a clone (like a fork child) keeps
// its original's there. The kernel's answer is /proc/self.
function pid() {
    return Number(fs.readlinkSync('/proc/self'));
}

function threadCount() {
    try {
        return fs.readdirSync('/proc/self/task').length;
    } catch (e) {
        return -1;
    }
}

function digestOf(n, pbkdf2, ticked, threads) {
    const h = crypto.createHash('sha256');
    h.update(`${n} ${ticked} ${threads} `);
    for (const [k, v] of state.map) {
        h.update(k);
        h.update(String(v[0] + v[1]));
    }
    let sum = 0;
    for (let i = 0; i < state.floats.length; i++) sum += state.floats[i];
    h.update(sum.toString());
    h.update(crypto.createHash('sha1').update(state.blob).digest());
    h.update(zlib.inflateSync(state.packed).subarray(0, 4096));
    h.update(JSON.stringify(state.meta));
    h.update(state.served.join(','));
    h.update(pbkdf2);
    return h.digest('hex');
}

let requests = 0;
let busy = Promise.resolve();
bus.on('request', () => {
    busy = busy.then(async () => {
        const n = ++requests;
        const ticked = ticks > lastTicks;
        lastTicks = ticks;
        const key = await util.promisify(crypto.pbkdf2)(`request-${n}`, 'cxlfork', 2000, 32, 'sha256');
        // The stream machinery on the event loop too.
        const chunks = [];
        for await (const c of Readable.from([`a${n}`, `b${n}`])) chunks.push(c);
        const d = digestOf(n, key, ticked, threadCount()) + chunks.join('').length.toString(16);
        state.served.push(n);
        fs.appendFileSync(path.join(RESULT_DIR, `${pid()}.result`), `result ${n} ${d}\n`);
        console.log(`result ${n} ${d}`);
    });
});
process.on('SIGUSR1', () => bus.emit('request'));

// Warm libuv's thread pool (its threads are created on first use), then
// tell the driver.
crypto.pbkdf2('warm', 'up', 1000, 32, 'sha256', (err) => {
    if (err) throw err;
    fs.mkdirSync(RESULT_DIR, { recursive: true });
    console.log(`# node ${process.version}: ${state.map.size} keys, ${N_FLOATS} floats, ${BLOB} blob bytes, ${threadCount()} threads`);
    console.log(`ready ${pid()}`);
});
