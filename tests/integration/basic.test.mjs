// basic.test.mjs - allow, deny and /v1/models through the real gateway.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { errorBody, mockDeployment, mockWords, pollUntil, promptTokens, startGateway, userMsg } from './harness.mjs';

describe('basic', () => {
  let gw;
  let all; // a key for every model
  let mini; // a key for gpt-4o-mini only

  before(async () => {
    gw = await startGateway({
      // A deployment whose secret is not set: it must not be offered.
      deployments: (mockPort) => [
        mockDeployment('needs-env', 'unset-model', mockPort, { api_key: '${TG_TEST_NEVER_SET_VAR}' }),
      ],
    });
    all = await gw.createKey({ tenant: 'basic-all' });
    mini = await gw.createKey({ tenant: 'basic-mini', models: ['gpt-4o-mini'] });
  });

  after(async () => {
    await gw?.stop();
  });

  test('allow: a non-stream completion returns the mock\'s content and usage', async () => {
    const messages = userMsg('Hello, gateway');
    const before = await gw.mockStats();
    const r = await gw.chat({ model: 'gpt-4o-mini', messages }, { key: all.key });
    assert.equal(r.status, 200, r.text);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.match(String(r.headers['x-request-id'] ?? ''), /\S/, 'x-request-id header missing');
    assert.match(String(r.headers['x-tollgate-policy-revision'] ?? ''), /^\d+(; hash=[0-9a-f]{8})?$/,
      `x-tollgate-policy-revision missing or not a number: ${r.headers['x-tollgate-policy-revision']}`);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.model, 'gpt-4o-mini');
    assert.equal(r.json.choices.length, 1);
    assert.equal(r.json.choices[0].message.role, 'assistant');
    assert.equal(r.json.choices[0].message.content, mockWords(8));
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const p = promptTokens(messages);
    assert.deepEqual(r.json.usage, { prompt_tokens: p, completion_tokens: 8, total_tokens: p + 8 });
    // It really went through the mock, once.
    const now = await gw.mockStats();
    assert.equal(now.requests - before.requests, 1);
    assert.equal(now.completed - before.completed, 1);
  });

  test('each response gets its own request id', async () => {
    const body = { model: 'mock-small', messages: userMsg('[[mock chunks=1]]') };
    const a = await gw.chat(body, { key: all.key });
    const b = await gw.chat(body, { key: all.key });
    assert.equal(a.status, 200, a.text);
    assert.equal(b.status, 200, b.text);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });

  test('deny: unknown, revoked, missing key; model not allowed; unknown model', async () => {
    const body = { model: 'gpt-4o-mini', messages: userMsg('hi') };
    const before = await gw.mockStats();

    const bogus = `sk-tg-${'0'.repeat(48)}`;
    const unknown = await gw.chat(body, { key: bogus });
    const e1 = errorBody(unknown, 401, 'invalid_api_key');
    assert.equal(e1.type, 'invalid_request_error');
    assert.ok(!unknown.text.includes(bogus), 'the error echoes the presented key');

    const missing = await gw.chat(body, {});
    errorBody(missing, 401);
    assert.match(String(missing.json.error.code), /api_key/);

    const viaHeader = await gw.chat(body, { headers: { 'x-api-key': bogus } });
    errorBody(viaHeader, 401, 'invalid_api_key');

    const notAllowed = await gw.chat({ model: 'mock-small', messages: userMsg('hi') }, { key: mini.key });
    const e3 = errorBody(notAllowed, 403);
    assert.equal(e3.type, 'invalid_request_error');
    assert.equal(e3.code, 'model_not_allowed');

    const noModel = await gw.chat({ model: 'no-such-model', messages: userMsg('hi') }, { key: all.key });
    const e4 = errorBody(noModel, 404, 'model_not_found');
    assert.equal(e4.type, 'invalid_request_error');

    // None of the denied requests reached the provider.
    const after = await gw.mockStats();
    assert.equal(after.requests, before.requests, 'a denied request was sent upstream');
  });

  test('deny: a revoked key is refused with 401', async () => {
    const k = await gw.createKey({ tenant: 'basic-revoke' });
    const body = { model: 'mock-small', messages: userMsg('hi') };
    const ok = await gw.chat(body, { key: k.key });
    assert.equal(ok.status, 200, ok.text);
    await gw.revokeKey(k.id);
    const listed = (await gw.listKeys()).keys.find((x) => x.id === k.id);
    assert.equal(listed?.status, 'revoked');
    // "takes effect on the next request": allow a short grace, no more.
    const r = await pollUntil(async () => {
      const x = await gw.chat(body, { key: k.key });
      return x.status !== 200 ? x : null;
    }, { timeoutMs: 3000, what: 'the revoked key to be refused' });
    errorBody(r, 401, 'invalid_api_key');
  });

  test('GET /v1/models lists the models the key may use', async () => {
    const a = await gw.request('/v1/models', { key: all.key });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.object, 'list');
    for (const m of a.json.data) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.owned_by, 'string');
    }
    // unset-model's deployment has no secret: it cannot serve, so it is not listed.
    assert.deepEqual(a.json.data.map((m) => m.id).sort(), ['gpt-4o-mini', 'mock-small']);

    const m = await gw.request('/v1/models', { key: mini.key });
    assert.equal(m.status, 200, m.text);
    assert.deepEqual(m.json.data.map((x) => x.id), ['gpt-4o-mini']);

    const bad = await gw.request('/v1/models', { key: `sk-tg-${'1'.repeat(48)}` });
    errorBody(bad, 401, 'invalid_api_key');
  });

  test('a model whose deployment lacks its secret answers 503, not a crash', async () => {
    const r = await gw.chat({ model: 'unset-model', messages: userMsg('hi') }, { key: all.key });
    const e = errorBody(r, 503, 'no_deployment_available');
    assert.match(e.message, /TG_TEST_NEVER_SET_VAR/);
  });
});
