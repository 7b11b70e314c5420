// bad_input.test.mjs - malformed, oversized and slow clients get precise
// answers (or a closed socket), and never stall the gateway for others.
import assert from 'node:assert/strict';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import { errorBody, httpRequest, pollUntil, startGateway, userMsg, withTimeout } from './harness.mjs';

const MAX_BODY = 65536;

describe('bad input', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({ dataplane: { max_body_bytes: MAX_BODY, client_timeout_s: 2 } });
    ({ key } = await gw.createKey({ tenant: 'bad-input' }));
  });

  after(async () => {
    await gw?.stop();
  });

  const post = (body, headers = {}) => httpRequest(gw.port, {
    method: 'POST', path: '/v1/chat/completions', body,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
  });

  const bigBody = () => JSON.stringify({ model: 'mock-small', messages: userMsg('x'.repeat(MAX_BODY + 4096)) });

  test('body over max_body_bytes with Content-Length -> 413', async () => {
    const r = await post(bigBody());
    const e = errorBody(r, 413, 'request_too_large');
    assert.match(e.message, /65536/);
  });

  test('body over max_body_bytes, chunked -> 413', async () => {
    const b = Buffer.from(bigBody());
    const chunks = [];
    for (let i = 0; i < b.length; i += 8192) chunks.push(b.subarray(i, i + 8192));
    const r = await post(chunks);
    errorBody(r, 413, 'request_too_large');
  });

  test('a body just under the limit is accepted', async () => {
    const body = { model: 'mock-small', messages: userMsg('') };
    const room = MAX_BODY - Buffer.byteLength(JSON.stringify(body)) - 16;
    body.messages[0].content = 'y'.repeat(room);
    const r = await post(body);
    assert.equal(r.status, 200, r.text);
  });

  test('headers up to max_header_bytes (16 KB) are accepted, streams included', async () => {
    const big = { 'x-big': 'h'.repeat(15 * 1024) };
    const r = await post({ model: 'mock-small', messages: userMsg('hi') }, big);
    assert.equal(r.status, 200, r.text);
    // The connection's memory also holds the stream's write buffer.
    const s = await gw.chat({ model: 'mock-small', stream: true, messages: userMsg('[[mock chunks=40]] hi') },
      { key, stream: true, headers: big });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.events.at(-1).data, '[DONE]');
    assert.equal(s.events.length, 40 + 3); // role, 40 words, finish, [DONE]
  });

  test('a 40 KB header -> 431', async () => {
    const r = await post({ model: 'mock-small', messages: userMsg('hi') }, { 'x-big': 'h'.repeat(40 * 1024) });
    assert.equal(r.status, 431, r.text);
  });

  test('malformed JSON -> 400 saying line and column', async () => {
    const r = await post('{"model": "mock-small",\n "messages": [}\n');
    const e = errorBody(r, 400);
    assert.equal(e.type, 'invalid_request_error');
    assert.match(e.message, /line/);
    assert.match(e.message, /column/);
    assert.match(e.message, /line 2\b/, `the error is on line 2: ${e.message}`);
  });

  test('missing model -> 400 param model; missing messages -> param messages', async () => {
    const a = await post({ messages: userMsg('hi') });
    const ea = errorBody(a, 400);
    assert.equal(ea.param, 'model');
    assert.equal(ea.type, 'invalid_request_error');
    const b = await post({ model: 'mock-small' });
    const eb = errorBody(b, 400);
    assert.equal(eb.param, 'messages');
  });

  test('wrong field types -> 400 naming the field', async () => {
    const a = await post({ model: 'mock-small', messages: userMsg('hi'), stream: 'yes' });
    assert.equal(errorBody(a, 400).param, 'stream');
    const b = await post({ model: 'mock-small', messages: userMsg('hi'), max_tokens: -1 });
    assert.equal(errorBody(b, 400).param, 'max_tokens');
    const c = await post({ model: 'mock-small', messages: [] });
    assert.equal(errorBody(c, 400).param, 'messages');
  });

  test('Content-Type: text/plain -> 415', async () => {
    const r = await post(JSON.stringify({ model: 'mock-small', messages: userMsg('hi') }), { 'content-type': 'text/plain' });
    errorBody(r, 415);
    assert.match(r.headers['x-request-id'] ?? '', /^req_[0-9a-f]{28}$/, 'every response carries x-request-id');
  });

  test('unknown path -> 404 JSON', async () => {
    const r = await gw.request('/v1/nope', { key });
    const e = errorBody(r, 404);
    assert.equal(e.type, 'invalid_request_error');
    assert.match(r.headers['x-request-id'] ?? '', /^req_[0-9a-f]{28}$/, 'every response carries x-request-id');
  });

  test('wrong method -> 405 with Allow', async () => {
    const r = await gw.request('/v1/chat/completions', { method: 'DELETE', key });
    errorBody(r, 405);
    assert.equal(r.headers.allow, 'POST');
    const m = await gw.request('/v1/models', { method: 'POST', key, body: '{}', headers: { 'content-type': 'application/json' } });
    errorBody(m, 405);
    assert.equal(m.headers.allow, 'GET');
  });

  test('slow client: half a request, then silence -> closed within ~5 s; others served meanwhile', async () => {
    const socks = [];
    const closed = [];
    const t0 = performance.now();
    for (let i = 0; i < 4; i++) {
      const s = net.connect(gw.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', () => {});
      closed.push(new Promise((resolve) => s.on('close', () => resolve(performance.now() - t0))));
      await new Promise((resolve) => s.on('connect', resolve));
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
      socks.push(s);
    }
    try {
      // Meanwhile the gateway answers everyone else: before it gives up on
      // the slow ones, not after.
      for (let i = 0; i < 3; i++) {
        const r = await post({ model: 'mock-small', messages: userMsg('[[mock chunks=2]]') });
        assert.equal(r.status, 200, r.text);
      }
      const served = performance.now() - t0;
      const times = await withTimeout(Promise.all(closed), 8000);
      assert.ok(times !== null, 'the gateway did not close half-sent requests within 8 s');
      assert.ok(served < Math.min(...times),
        `others were served only after ${served.toFixed(0)} ms, once the slow clients were closed (${times.map((t) => t.toFixed(0))})`);
      for (const t of times) {
        assert.ok(t <= 5000, `a slow client was closed only after ${t.toFixed(0)} ms`);
        assert.ok(t >= 1000, `a slow client was closed after ${t.toFixed(0)} ms, before client_timeout_s`);
      }
    } finally {
      for (const s of socks) s.destroy();
    }
    assert.equal(await gw.readyz(), 200);
  });

  test('over-long API key -> 401, not a crash', async () => {
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('hi') }, { key: 'k'.repeat(4000) });
    errorBody(r, 401, 'invalid_api_key');
  });

  test('the gateway is healthy after all that', async () => {
    await pollUntil(async () => (await gw.metrics()).tollgate_inflight_requests === 0,
      { timeoutMs: 5000, what: 'no request in flight' });
    const r = await post({ model: 'mock-small', messages: userMsg('fine') });
    assert.equal(r.status, 200, r.text);
  });
});
