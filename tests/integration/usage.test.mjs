// usage.test.mjs - every request is metered exactly once, with the
// provider's own token counts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { pollUntil, sleep, startGateway, userMsg } from './harness.mjs';

describe('usage', () => {
  let gw;

  before(async () => {
    gw = await startGateway();
  });

  after(async () => {
    await gw?.stop();
  });

  test('N requests, stream and non-stream, are counted once with the provider\'s tokens', async () => {
    const k = await gw.createKey({ tenant: 'usage-t' });
    const k2 = await gw.createKey({ tenant: 'usage-t' }); // same tenant, second key
    const base = await gw.mockStats();
    assert.equal(base.completed, 0, 'the mock served requests before this test');
    const reqs = [
      [k, { model: 'gpt-4o-mini', messages: userMsg('one') }],
      [k, { model: 'mock-small', messages: userMsg('[[mock chunks=3]] two'), stream: true }],
      [k, { model: 'gpt-4o-mini', messages: userMsg('[[mock chunks=12]] three, a longer prompt'), stream: true,
        stream_options: { include_usage: true } }],
      [k2, { model: 'mock-small', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'four' }] }],
      [k2, { model: 'gpt-4o-mini', messages: userMsg('[[mock chunks=1]] five'), stream: true }],
      [k, { model: 'gpt-4o-mini', messages: userMsg('six'), max_tokens: 3 }],
    ];
    const results = await Promise.all(reqs.map(([key, body]) => gw.chat(body, { key: key.key, stream: Boolean(body.stream) })));
    for (const r of results) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.error, undefined, String(r.error));
    }
    const N = reqs.length;
    const mock = await gw.mockStats();
    assert.equal(mock.completed, N);

    // Settled: the data plane has no report left unacknowledged and the
    // tenant shows at least N requests. Then it must be exactly N.
    const t = await pollUntil(async () => {
      const m = await gw.metrics();
      const s = await gw.spendTenant('usage-t');
      return m.tollgate_usage_spool_pending === 0 && s.requests >= N ? s : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: `spend for usage-t to reach ${N} requests with the spool drained` });
    assert.equal(t.requests, N, `counted ${t.requests} requests for ${N}`);
    assert.equal(t.prompt_tokens, mock.prompt_tokens, 'prompt tokens differ from what the provider reported');
    assert.equal(t.completion_tokens, mock.completion_tokens, 'completion tokens differ from what the provider reported');
    assert.ok(t.cost_micro_usd > 0, `gpt-4o-mini is priced, yet cost is ${t.cost_micro_usd}`);

    // Per key: the two keys add up to the tenant.
    const a = await gw.spendKey(k.id);
    const b = await gw.spendKey(k2.id);
    assert.equal(a.requests, 4);
    assert.equal(b.requests, 2);
    assert.equal(a.prompt_tokens + b.prompt_tokens, t.prompt_tokens);
    assert.equal(a.completion_tokens + b.completion_tokens, t.completion_tokens);
    assert.equal(a.tenant, 'usage-t');

    // The data plane's own counters agree.
    const m = await gw.metrics();
    assert.equal(m['tollgate_tokens_total{kind="prompt"}'], mock.prompt_tokens);
    assert.equal(m['tollgate_tokens_total{kind="completion"}'], mock.completion_tokens);
    assert.equal(m.tollgate_usage_reports_acked_total, N);

    // And it stays that way (a resend must not count twice).
    await sleep(1500);
    const again = await gw.spendTenant('usage-t');
    assert.equal(again.requests, N);
    assert.equal(again.prompt_tokens, t.prompt_tokens);
    assert.equal(again.completion_tokens, t.completion_tokens);
  });

  test('denied requests cost nothing', async () => {
    const k = await gw.createKey({ tenant: 'usage-deny', models: ['gpt-4o-mini'] });
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('no') }, { key: k.key });
    assert.equal(r.status, 403, r.text);
    const ok = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg('yes') }, { key: k.key });
    assert.equal(ok.status, 200, ok.text);
    const s = await pollUntil(async () => {
      const x = await gw.spendTenant('usage-deny');
      return x.requests >= 1 ? x : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'the allowed request to be counted' });
    assert.equal(s.requests, 1, 'the denied request was counted');
  });
});
