// alerts.test.mjs - budget threshold alerts: a tenant budget with
// thresholds [50, 80] POSTs exactly one alert per threshold to the
// webhook (pdp.alert_webhook) as the settled spend crosses each, with the
// documented fields; a webhook named by the rule that first answers 500
// gets the alert retried and delivered once.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { pollUntil, promptTokens, sleep, startGateway, userMsg } from './harness.mjs';

// gpt-4o-mini in policies/pricing.json: USD 0.15 in, 0.60 out per 1M tokens.
const IN = 150000;
const OUT = 600000;
const worst = (prompt, out) => Math.ceil((prompt * IN + out * OUT) / 1e6);
const usd = (micro) => (micro / 1e6).toFixed(6);

const MSG = userMsg('[[mock chunks=100]] hi');
const MAX = 100;
const WORST = worst(promptTokens(MSG), MAX);
const LIMIT = 10 * WORST;

/** receiver: a local webhook; statuses are answered in turn (then 200). */
function receiver(statuses = []) {
  const posts = [];
  const all = [];
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const status = statuses.length > 0 ? statuses.shift() : 200;
      const entry = { method: req.method, headers: req.headers, text: Buffer.concat(parts).toString('utf8'), status };
      all.push(entry);
      if (status === 200) posts.push({ ...entry, json: JSON.parse(entry.text) });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'not now');
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => resolve({ srv, posts, all, url: `http://127.0.0.1:${srv.address().port}/hook` }));
  });
}

describe('budget alerts', () => {
  let gw;
  let main;
  let flaky;

  before(async () => {
    main = await receiver();
    flaky = await receiver([500]);
    const bundle = {
      'bundle.json': { name: 'alerts', revision: 7, default: 'deny', timezone: 'UTC' },
      'alerts.policy.json': {
        rules: [
          { id: 'allow-all', kind: 'access', effect: 'allow' },
          {
            id: 'tenant-monthly', kind: 'budget', scope: 'tenant', window: 'monthly', limit_usd: Number(usd(LIMIT)),
            thresholds: [50, 80],
            when: { all: [{ eq: ['tenant.id', 'alert-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
          },
          {
            id: 'retry-monthly', kind: 'budget', scope: 'tenant', window: 'monthly', limit_usd: Number(usd(LIMIT)),
            thresholds: [50], webhook: flaky.url,
            when: { all: [{ eq: ['tenant.id', 'retry-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
          },
        ],
      },
    };
    gw = await startGateway({ bundle, pdpAdmin: true, pdp: { alert_webhook: main.url } });
    await gw.setTenant('alert-co', { tier: 'pro' });
    await gw.setTenant('retry-co', { tier: 'pro' });
  });

  after(async () => {
    await gw?.stop();
    main?.srv.close();
    flaky?.srv.close();
  });

  /** drive sends requests one at a time until the settled spend reaches
   * frac of the limit. */
  async function drive(tenant, frac) {
    const { key } = await gw.createKey({ tenant });
    const body = { model: 'gpt-4o-mini', messages: MSG, max_tokens: MAX };
    for (let i = 0; i < 10; i++) {
      const s = await gw.spendTenant(tenant);
      if (s.cost_micro_usd >= frac * LIMIT) return s;
      const r = await gw.chat(body, { key });
      assert.equal(r.status, 200, r.text);
      await pollUntil(async () => (await gw.spendTenant(tenant)).requests >= i + 1 || null,
        { timeoutMs: 15_000, what: 'the usage to settle' });
    }
    return gw.spendTenant(tenant);
  }

  test('thresholds 50 and 80: exactly one POST each, with the right fields', { timeout: 120_000 }, async () => {
    const s = await drive('alert-co', 0.85);
    assert.ok(s.cost_micro_usd >= 0.8 * LIMIT, `spent ${s.cost_micro_usd} of ${LIMIT}`);
    await pollUntil(() => main.posts.length >= 2 || null, { timeoutMs: 15_000, what: 'two alerts' });
    await sleep(1000); // nothing more comes
    assert.equal(main.posts.length, 2, JSON.stringify(main.posts.map((p) => p.json)));
    const posts = [...main.posts].sort((x, y) => x.json.threshold_percent - y.json.threshold_percent);
    const [a50, a80] = posts.map((p) => p.json);
    for (const [p, t] of [[posts[0], 50], [posts[1], 80]]) {
      assert.equal(p.method, 'POST');
      assert.match(p.headers['content-type'], /^application\/json/);
      const a = p.json;
      assert.equal(a.type, 'budget.threshold');
      assert.equal(a.rule, 'tenant-monthly');
      assert.equal(a.scope, 'tenant');
      assert.equal(a.scope_value, 'alert-co');
      assert.equal(a.window, 'monthly');
      assert.match(a.window_start, /^\d{4}-\d\d-01T00:00:00Z$/);
      assert.equal(a.threshold_percent, t);
      assert.equal(a.limit_usd, usd(LIMIT));
      assert.match(a.spent_usd, /^\d+\.\d{6}$/);
      assert.ok(Number(a.spent_usd) * 1e6 >= (t / 100) * LIMIT, `${a.spent_usd} at ${t}%`);
      assert.equal(a.bundle_revision, 7);
      assert.match(a.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    assert.ok(Number(a50.spent_usd) < Number(a80.spent_usd));
    const m = await gw.pdpMetrics();
    assert.ok(m['tollgate_pdp_alerts_total{result="sent"}'] >= 2);
    assert.equal(m['tollgate_pdp_alerts_total{result="dropped"}'], 0);
  });

  test('a webhook that answers 500 first gets the alert retried and delivered once', { timeout: 120_000 }, async () => {
    await drive('retry-co', 0.55);
    await pollUntil(() => flaky.posts.length >= 1 || null, { timeoutMs: 15_000, what: 'the retried alert' });
    await sleep(1500);
    assert.equal(flaky.posts.length, 1);
    assert.equal(flaky.all.length, 2, 'one 500, then one 200');
    assert.equal(flaky.all[0].status, 500);
    assert.equal(flaky.all[0].text, flaky.all[1].text, 'the same alert, retried');
    const a = flaky.posts[0].json;
    assert.equal(a.rule, 'retry-monthly');
    assert.equal(a.scope_value, 'retry-co');
    assert.equal(a.threshold_percent, 50);
    // The other receiver saw nothing of this rule.
    assert.ok(main.posts.every((p) => p.json.rule === 'tenant-monthly'));
  });
});
