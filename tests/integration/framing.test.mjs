// framing.test.mjs - HTTP/1.1 framing (RFC 9112) and slow clients: requests
// whose length is ambiguous are refused and their connection closed, the
// header limit is max_header_bytes with a JSON 431, and one address that
// opens hundreds of trickling connections cannot starve probes from another.
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import { httpRequest, pollUntil, sleep, startGateway, withTimeout } from './harness.mjs';

/* raw sends bytes on a fresh connection and collects what comes back until
 * the server closes it or waitMs passes. */
function raw(port, bytes, { waitMs = 3000, localAddress } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    const chunks = [];
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    s.on('error', () => finish(true));
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => finish(true));
    s.on('connect', () => s.write(bytes));
  });
}

const statuses = (text) => [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));

function jsonError(text, status, code) {
  assert.deepEqual(statuses(text), [status], `expected exactly one ${status}, got:\n${text.slice(0, 400)}`);
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
  assert.equal(body.error.code, code, text);
  return body;
}

/* trickle opens n connections from localAddress that send a request line
 * and then one header byte every stepMs, for ever. */
async function trickle(port, n, localAddress, stepMs = 500) {
  const socks = [];
  const opened = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    s.on('error', () => resolve(false));
    s.on('close', () => { s.closedAt = performance.now(); });
    s.on('data', () => {});
    s.on('connect', () => { s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: '); resolve(true); });
    socks.push(s);
  })));
  const timer = setInterval(() => {
    for (const s of socks) if (!s.destroyed) s.write('a');
  }, stepMs);
  return {
    socks,
    opened: opened.filter(Boolean).length,
    stop() { clearInterval(timer); for (const s of socks) s.destroy(); },
  };
}

async function probesAnswer(port, path, n = 5) {
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await httpRequest(port, { path, timeoutMs: 2000 }).catch((e) => ({ status: 0, text: String(e) }));
    assert.equal(r.status, 200, `probe ${i} of ${path}: ${r.text}`);
    assert.ok(performance.now() - t0 < 2000);
    await sleep(200);
  }
}

describe('framing', () => {
  let gw;

  before(async () => {
    // 280 total, 256 per address (the default): one address cannot take all.
    gw = await startGateway({ pdpAdmin: true, dataplane: { max_connections: 280 } });
  });

  after(async () => {
    await gw?.stop();
  });

  test('Content-Length with Transfer-Encoding -> 400 and the connection closed', async () => {
    const body = '{"model":"mock-small"}';
    const r = await raw(gw.port,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
    jsonError(r.text, 400, 'invalid_framing');
    assert.match(r.text, /^connection: close/im);
    assert.ok(r.closed, 'the connection was kept open');
  });

  test('two different Content-Length headers -> 400; the smuggled request is not answered', async () => {
    const smuggled = 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n';
    const body = `{}${smuggled}`;
    const r = await raw(gw.port,
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      `Content-Length: 2\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    jsonError(r.text, 400, 'invalid_framing');
    assert.ok(r.closed, 'the connection was kept open');
  });

  test('headers between max_header_bytes and the old real limit -> 431 with a JSON body', async () => {
    // 16 KB is documented; 24 KB was the real limit, and just under it the
    // connection was dropped without an answer.
    for (const size of [17 * 1024, 23 * 1024 + 512, 30 * 1024]) {
      const r = await raw(gw.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(size)}\r\n\r\n`);
      jsonError(r.text, 431, 'request_header_fields_too_large');
      assert.ok(r.closed);
    }
  });

  test('300 trickling connections from 127.0.0.2: probes from 127.0.0.1 still answer', async () => {
    const t = await trickle(gw.port, 300, '127.0.0.2');
    try {
      await sleep(500);
      await probesAnswer(gw.port, '/healthz');
      await probesAnswer(gw.port, '/readyz', 2);
      const r = await gw.request('/v1/models', { key: (await gw.createKey({ tenant: 'framing' })).key });
      assert.equal(r.status, 200, r.text);
    } finally {
      t.stop();
    }
  });

  test('PDP admin: 70 trickling connections from 127.0.0.2: its probes still answer', async () => {
    const t = await trickle(gw.pdpAdminPort, 70, '127.0.0.2');
    try {
      await sleep(500);
      await probesAnswer(gw.pdpAdminPort, '/healthz');
    } finally {
      t.stop();
    }
  });
});

describe('request deadline', () => {
  let gw;

  before(async () => {
    gw = await startGateway({ dataplane: { request_timeout_s: 2, client_timeout_s: 30 } });
  });

  after(async () => {
    await gw?.stop();
  });

  test('a request trickled a byte at a time is closed at request_timeout_s', async () => {
    const t0 = performance.now();
    const t = await trickle(gw.port, 5, '127.0.0.2', 200);
    try {
      const closed = await withTimeout(Promise.all(t.socks.map((s) => new Promise((resolve) => {
        if (s.closedAt) resolve(s.closedAt);
        s.on('close', () => resolve(performance.now()));
      }))), 8000);
      assert.ok(closed !== null, 'trickling connections were still open after 8 s (client_timeout_s restarts on every byte)');
      for (const c of closed) {
        assert.ok(c - t0 >= 1500 && c - t0 <= 4500, `closed after ${(c - t0).toFixed(0)} ms`);
      }
      const r = await httpRequest(gw.port, { path: '/healthz' });
      assert.equal(r.status, 200);
    } finally {
      t.stop();
    }
  });

  test('a kept-alive connection serves requests past request_timeout_s, one after another', async () => {
    const { key } = await gw.createKey({ tenant: 'keepalive' });
    const s = net.connect({ port: gw.port, host: '127.0.0.1' });
    let text = '';
    s.on('data', (d) => { text += d.toString('latin1'); });
    try {
      await new Promise((resolve) => s.on('connect', resolve));
      for (let i = 1; i <= 3; i++) {
        s.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n\r\n`);
        await pollUntil(() => statuses(text).length === i, { timeoutMs: 2000, what: `answer ${i}` });
        await sleep(1500); // idle between requests; 3 x 1.5 s > request_timeout_s
      }
      assert.deepEqual(statuses(text), [200, 200, 200]);
    } finally {
      s.destroy();
    }
  });
});

describe('PDP admin request deadline', () => {
  let gw;

  before(async () => {
    gw = await startGateway({ pdpAdmin: true });
  });

  after(async () => {
    await gw?.stop();
  });

  test('a trickled request to the PDP admin listener is closed within ~10 s', async () => {
    const t0 = performance.now();
    const t = await trickle(gw.pdpAdminPort, 2, '127.0.0.2', 500);
    try {
      const closed = await withTimeout(Promise.all(t.socks.map((s) => new Promise((resolve) => {
        if (s.closedAt) resolve(s.closedAt);
        s.on('close', () => resolve(performance.now()));
      }))), 14000);
      assert.ok(closed !== null, 'trickling connections were still open after 14 s');
      for (const c of closed) assert.ok(c - t0 >= 9000, `closed after ${(c - t0).toFixed(0)} ms`);
    } finally {
      t.stop();
    }
  });
});
