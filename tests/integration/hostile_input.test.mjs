// hostile_input.test.mjs - one parse, one truth: a body the policy would
// read one way and a provider another is refused whole (400 with the path
// of the field), so what the PDP judged is what the provider receives.
// Each case here was served on the build before the strict reader: a key
// allowed only gpt-4o-mini got mock-small through a duplicate "model", a
// duplicate "max_tokens" escaped a clamp, bytes after the JSON went
// upstream, "gpt-4o-mini\u0000x" was judged as gpt-4o-mini, invalid UTF-8
// made the error body invalid JSON, and SSRF names passed in other cases
// or inside extra_body.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { errorBody, httpRequest, pollUntil, startGateway, userMsg } from './harness.mjs';

/** rawPost sends bytes exactly as given and returns status and raw body. */
function rawPost(port, path, key, bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const parts = [];
    s.on('data', (d) => parts.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const all = Buffer.concat(parts);
      const sep = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, sep).toString('latin1');
      resolve({ status: Number(head.split(' ')[1]), head, body: all.subarray(sep + 4) });
    });
    s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`);
    s.end(bytes);
  });
}

/** dechunk undoes Transfer-Encoding: chunked when the head says so. */
function bodyOf(r) {
  if (!/transfer-encoding:\s*chunked/i.test(r.head)) return r.body;
  const out = [];
  let b = r.body;
  for (;;) {
    const eol = b.indexOf('\r\n');
    const n = parseInt(b.subarray(0, eol).toString(), 16);
    if (!n) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    b = b.subarray(eol + 4 + n);
  }
  return Buffer.concat(out);
}

describe('hostile request bodies', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway();
    ({ key } = await gw.createKey({ tenant: 'hostile', models: ['gpt-4o-mini'] }));
  });
  after(async () => {
    await gw?.stop();
  });

  const post = (text, path = '/v1/chat/completions') => httpRequest(gw.port, {
    method: 'POST', path, body: text,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
  });
  const msgs = JSON.stringify(userMsg('hi'));

  test('the key is allowed gpt-4o-mini and refused mock-small (the policy works)', async () => {
    assert.equal((await post(`{"model":"gpt-4o-mini","messages":${msgs}}`)).status, 200);
    assert.equal((await post(`{"model":"mock-small","messages":${msgs}}`)).status, 403);
  });

  test('a duplicate "model" is refused and nothing reaches the provider', async () => {
    const before = (await gw.mockStats()).requests;
    const r = await post(`{"model":"gpt-4o-mini","messages":${msgs},"model":"mock-small"}`);
    const e = errorBody(r, 400, 'invalid_json');
    assert.equal(e.param, 'model');
    assert.match(e.message, /twice/);
    assert.equal((await gw.mockStats()).requests, before, 'the provider was called');
  });

  test('duplicates at any depth, and through escapes, are refused with their path', async () => {
    let e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs},"max_tokens":1,"max_tokens":100000}`), 400, 'invalid_json');
    assert.equal(e.param, 'max_tokens');
    e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs},"stream":false,"\\u0073tream":true}`), 400, 'invalid_json');
    assert.equal(e.param, 'stream');
    e = errorBody(await post('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"a","content":"b"}]}'), 400, 'invalid_json');
    assert.equal(e.param, 'messages[0].content');
  });

  test('bytes after the JSON are refused', async () => {
    const e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs}} {"model":"mock-small"}`), 400, 'invalid_json');
    assert.match(e.message, /after the JSON value/);
  });

  test('a NUL in a model name is refused, not judged as the name before it', async () => {
    const e = errorBody(await post(`{"model":"gpt-4o-mini\\u0000x","messages":${msgs}}`), 400, 'invalid_json');
    assert.equal(e.param, 'model');
  });

  test('invalid UTF-8 is refused and the error body is valid UTF-8 JSON', async () => {
    const bytes = Buffer.concat([Buffer.from('{"model":"gpt\xff-4o","messages":' + msgs + '}', 'latin1')]);
    const r = await rawPost(gw.port, '/v1/chat/completions', key, bytes);
    assert.equal(r.status, 400);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bodyOf(r));
    const e = JSON.parse(text).error;
    assert.equal(e.code, 'invalid_json');
    assert.equal(e.param, 'model');
  });

  test('an unknown model with a character cut at the 100th byte still gets a valid JSON error', async () => {
    // The PDP quotes at most 100 bytes of the model name; a euro sign
    // across that boundary must not become half a character.
    const model = 'm'.repeat(99) + '\u20ac' + 'x';
    const r = await rawPost(gw.port, '/v1/chat/completions', key,
      Buffer.from(JSON.stringify({ model, messages: userMsg('hi') })));
    assert.ok(r.status >= 400, `status ${r.status}`);
    JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bodyOf(r)));
  });

  test('SSRF names are refused in any case and inside extra_body', async () => {
    let e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs},"API_BASE":"http://169.254.169.254"}`), 400, 'invalid_value');
    assert.equal(e.param, 'api_base');
    e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs},"extra_body":{"api_base":"http://127.0.0.1:1"}}`), 400, 'invalid_value');
    assert.equal(e.param, 'extra_body.api_base');
    e = errorBody(await post(`{"model":"gpt-4o-mini","messages":${msgs},"Base_Url":"http://x"}`), 400, 'invalid_value');
    assert.equal(e.param, 'base_url');
  });

  test('/v1/messages: a duplicate "model" is refused in Anthropic\'s error shape', async () => {
    const r = await post('{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"model":"mock-small"}', '/v1/messages');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.match(r.json.error.message, /twice/);
  });
});

// Failing open still authenticates: with on_pdp_error: allow and the PDP
// down, only a key the PDP allowed recently is served; a made-up key gets
// 503 (on the build before, any string in Authorization was served).
describe('on_pdp_error: allow with the PDP down', () => {
  let gw;
  let key;

  before(async () => {
    // Every request asks the PDP (no decision reuse): failing open is
    // what happens when it cannot answer.
    gw = await startGateway({ dataplane: { on_pdp_error: 'allow', fail_open_key_ttl_s: 600, decision_reuse_ms: 0 } });
    ({ key } = await gw.createKey({ tenant: 'failopen' }));
  });
  after(async () => {
    await gw?.stop();
  });

  test('a key allowed before is served, a made-up key is not', async () => {
    const body = { model: 'mock-small', messages: userMsg('hi') };
    assert.equal((await gw.chat(body, { key })).status, 200);
    const r = await gw.killPdp('SIGKILL');
    assert.equal(r.signal, 'SIGKILL');
    const known = await gw.chat(body, { key });
    assert.equal(known.status, 200, known.text);
    const madeUp = await gw.chat(body, { key: 'not-a-real-key' });
    const e = errorBody(madeUp, 503, 'pdp_unavailable');
    assert.match(e.message, /allowed recently/);
    const m = await gw.metrics();
    assert.ok(m.tollgate_pdp_fail_open_total >= 1, 'the known key was served failing open');
    assert.ok(m.tollgate_pdp_fail_open_refused_total >= 1, 'the made-up key was counted as refused');
    await gw.startPdp();
  });

  test('a key revoked (and refused once) is not served while the PDP is down', async () => {
    const body = { model: 'mock-small', messages: userMsg('hi') };
    const k = await gw.createKey({ tenant: 'failopen' });
    assert.equal((await gw.chat(body, { key: k.key })).status, 200);
    await gw.revokeKey(k.id);
    // Revocation has a grace of 0 here: the next request is refused by the
    // PDP, and the data plane forgets the key it allowed a moment ago.
    const refused = await pollUntil(async () => {
      const x = await gw.chat(body, { key: k.key });
      return x.status === 401 ? x : null;
    }, { timeoutMs: 5000, what: 'the revoked key to be refused' });
    errorBody(refused, 401, 'invalid_api_key');
    await gw.killPdp('SIGKILL');
    const r = await gw.chat(body, { key: k.key });
    errorBody(r, 503, 'pdp_unavailable');
    assert.equal((await gw.chat(body, { key })).status, 200, 'the other key is still served failing open');
    await gw.startPdp();
  });
});
