// pdp.test.mjs - the data plane without its PDP: deny with 503 while it is
// down, recover when it is back, and never lose (or double) a usage report
// across a PDP crash.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { errorBody, mockWords, pollUntil, promptTokens, sleep, startGateway, userMsg } from './harness.mjs';

describe('pdp', () => {
  let gw;

  before(async () => {
    gw = await startGateway();
  });

  after(async () => {
    await gw?.stop();
  });

  test('PDP down: 503 pdp_unavailable and /readyz 503; back up: 200 again', async () => {
    const { key } = await gw.createKey({ tenant: 'pdp-down' });
    const body = { model: 'mock-small', messages: userMsg('hi') };
    assert.equal((await gw.chat(body, { key })).status, 200);

    await gw.killPdp('SIGTERM'); // must exit 0, checked inside
    await pollUntil(async () => (await gw.readyz()) === 503, { timeoutMs: 10_000, what: '/readyz to turn 503' });
    const before = await gw.mockStats();
    const [r, s, m] = await Promise.all([
      gw.chat(body, { key }),
      gw.chat({ ...body, stream: true }, { key, stream: true }),
      gw.request('/v1/models', { key }),
    ]);
    const e = errorBody(r, 503, 'pdp_unavailable');
    assert.equal(e.type, 'server_error');
    errorBody(s, 503, 'pdp_unavailable');
    errorBody(m, 503, 'pdp_unavailable');
    assert.equal((await gw.mockStats()).requests, before.requests, 'a request went upstream without a decision');
    assert.equal(await gw.readyz(), 503);
    const health = await gw.request('/healthz');
    assert.equal(health.status, 200, 'liveness must not depend on the PDP');

    await gw.startPdp(); // waits for /readyz 200
    const ok = await gw.chat(body, { key });
    assert.equal(ok.status, 200, ok.text);
  });

  test('usage survives a PDP crash mid-request and is counted exactly once', async () => {
    const { key } = await gw.createKey({ tenant: 'pdp-crash' });
    const messages = userMsg('[[mock ttft_ms=1500]] slow one');
    const before = await gw.mockStats();
    const pending = gw.chat({ model: 'gpt-4o-mini', messages }, { key });
    // The decision is made once the request reaches the provider.
    await pollUntil(async () => (await gw.mockStats()).requests > before.requests,
      { timeoutMs: 5000, intervalMs: 20, what: 'the request to reach the mock' });
    await gw.killPdp('SIGKILL');
    const r = await pending;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, mockWords(8));

    // Nothing can have been counted: the PDP died before the request ended.
    assert.equal((await gw.spendTenant('pdp-crash')).requests, 0);
    await gw.startPdp();
    const s = await pollUntil(async () => {
      const x = await gw.spendTenant('pdp-crash');
      return x.requests >= 1 ? x : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'the request to be counted after the PDP restart' });
    assert.equal(s.requests, 1);
    assert.equal(s.prompt_tokens, promptTokens(messages));
    assert.equal(s.completion_tokens, 8);
    await pollUntil(async () => (await gw.metrics()).tollgate_usage_spool_pending === 0,
      { timeoutMs: 10_000, intervalMs: 200, what: 'the spool to drain' });
    await sleep(2000);
    const again = await gw.spendTenant('pdp-crash');
    assert.equal(again.requests, 1, 'the report was counted more than once');
    assert.equal(again.completion_tokens, 8);
  });
});
