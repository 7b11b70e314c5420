// budgets.test.mjs - budget rules as a client sees them: 64 clients at
// once against a tenant budget that pays for about 10 requests never make
// the settled spend exceed it (the PDP reserves the worst case before it
// allows), the rest get 429 budget_exceeded; a clamp budget lowers
// max_tokens to what the remaining budget can pay for.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { errorBody, pollUntil, promptTokens, startGateway, userMsg } from './harness.mjs';

// gpt-4o-mini in policies/pricing.json: USD 0.15 in, 0.60 out per 1M tokens.
const IN = 150000;
const OUT = 600000;
const worst = (prompt, out) => Math.ceil((prompt * IN + out * OUT) / 1e6);
const usd = (micro) => (micro / 1e6).toFixed(6);

const MSG = userMsg('[[mock chunks=100]] hi');
const MAX = 100;
const WORST = worst(promptTokens(MSG), MAX);
const LIMIT = 10 * WORST; // about 10 requests

const CLAMP_MSG = userMsg('[[mock chunks=500]] go');
const CLAMP_LIMIT = worst(promptTokens(CLAMP_MSG), 50); // pays for 50 tokens

const bundle = {
  'bundle.json': { name: 'budgets', revision: 1, default: 'deny', timezone: 'Europe/Berlin' },
  'budgets.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      {
        id: 'tenant-daily', kind: 'budget', scope: 'tenant', window: 'daily', limit_usd: Number(usd(LIMIT)),
        when: { all: [{ eq: ['tenant.id', 'budget-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
      },
      {
        id: 'key-clamp', kind: 'budget', scope: 'key', window: 'rolling:24h', limit_usd: Number(usd(CLAMP_LIMIT)), action: 'clamp',
        when: { all: [{ eq: ['tenant.id', 'clamp-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
      },
    ],
  },
};

describe('budgets', () => {
  let gw;

  before(async () => {
    gw = await startGateway({ bundle });
    await gw.setTenant('budget-co', { tier: 'pro' });
    await gw.setTenant('clamp-co', { tier: 'pro' });
  });

  after(async () => {
    await gw?.stop();
  });

  test('64 concurrent clients against a budget for about 10 requests: the settled spend stays within it', { timeout: 120_000 }, async () => {
    const keys = [];
    for (let i = 0; i < 4; i++) keys.push((await gw.createKey({ tenant: 'budget-co' })).key);
    const body = { model: 'gpt-4o-mini', messages: MSG, max_tokens: MAX };
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => gw.chat(body, { key: keys[i % 4] })));
    const ok = results.filter((r) => r.status === 200);
    const denied = results.filter((r) => r.status !== 200);
    assert.ok(ok.length >= 1 && ok.length <= 10, `${ok.length} requests passed`);
    assert.ok(denied.length >= 54, `${denied.length} denied`);
    for (const r of denied) {
      const e = errorBody(r, 429, 'budget_exceeded');
      assert.equal(e.type, 'insufficient_quota');
      assert.match(e.message, /rule tenant-daily.*limit \$0\.000\d+, spent \$[\d.]+.*remaining \$[\d.]+.*resets at \d{4}-\d\d-\d\dT/);
    }

    // After the spool drains, the recorded spend is within the limit, to
    // the micro-dollar; the requests that fit then are still refused.
    const t = await pollUntil(async () => {
      const m = await gw.metrics();
      const s = await gw.spendTenant('budget-co');
      return m.tollgate_usage_spool_pending === 0 && s.requests >= ok.length ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'the spool to drain' });
    assert.equal(t.requests, ok.length);
    assert.ok(t.cost_micro_usd <= LIMIT, `spent ${t.cost_micro_usd} of ${LIMIT}`);
    assert.ok(t.cost_micro_usd > 0);
    let more = 0;
    for (let i = 0; i < 20; i++) {
      const r = await gw.chat(body, { key: keys[0] });
      if (r.status === 200) more++;
      else errorBody(r, 429, 'budget_exceeded');
    }
    const t2 = await pollUntil(async () => {
      const m = await gw.metrics();
      const s = await gw.spendTenant('budget-co');
      return m.tollgate_usage_spool_pending === 0 && s.requests >= ok.length + more ? s : null;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'the spool to drain again' });
    assert.ok(t2.cost_micro_usd <= LIMIT, `spent ${t2.cost_micro_usd} of ${LIMIT}`);
    assert.ok(LIMIT - t2.cost_micro_usd < WORST, `a request that fit was refused: ${t2.cost_micro_usd} of ${LIMIT}`);

    // The spend survives a kill -9 of the PDP: still refused afterwards.
    await gw.killPdp('SIGKILL');
    await gw.startPdp();
    const after = await gw.chat(body, { key: keys[1] });
    errorBody(after, 429, 'budget_exceeded');
  });

  test('a clamp budget lowers max_tokens to what the budget can pay for', async () => {
    const { key } = await gw.createKey({ tenant: 'clamp-co' });
    const r = await gw.chat({ model: 'gpt-4o-mini', messages: CLAMP_MSG, max_tokens: 1000 }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.usage.completion_tokens, 50);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    // The budget is now used up: not even one output token fits.
    await pollUntil(async () => (await gw.metrics()).tollgate_usage_spool_pending === 0,
      { timeoutMs: 20_000, what: 'the spool to drain' });
    const e = errorBody(await gw.chat({ model: 'gpt-4o-mini', messages: CLAMP_MSG, max_tokens: 1000 }, { key }), 429, 'budget_exceeded');
    assert.match(e.message, /rule key-clamp/);
  });
});
