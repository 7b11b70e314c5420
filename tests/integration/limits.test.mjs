// limits.test.mjs - rate_limit rules as a client sees them: the request
// over rpm is a 429 rate_limit_exceeded with retry-after, a concurrency
// slot is held until the request finishes (its usage report releases it),
// and every answer under a limit carries OpenAI's x-ratelimit-* headers;
// the counts survive a kill -9 of the PDP (it snapshots them every second).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { errorBody, pollUntil, sleep, startGateway, userMsg } from './harness.mjs';

const bundle = {
  'bundle.json': { name: 'limits', revision: 1, default: 'deny' },
  'limits.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      { id: 'rpm-5', kind: 'rate_limit', scope: 'key', rpm: 5, tpm: 100000, on_error: 'skip', when: { eq: ['principal.labels.plan', 'rpm'] } },
      { id: 'two-at-once', kind: 'rate_limit', scope: 'tenant', concurrent: 2, when: { eq: ['tenant.id', 'conc-co'] } },
      { id: 'shadow', kind: 'rate_limit', mode: 'audit', scope: 'key', rpm: 1 },
      { id: 'one-at-once', kind: 'rate_limit', scope: 'tenant', concurrent: 1, when: { eq: ['tenant.id', 'one-co'] } },
    ],
  },
};

describe('rate limits', () => {
  let gw;
  let rpmKey;
  let concKey;
  let freeKey;

  before(async () => {
    gw = await startGateway({
      bundle,
      // A deployment whose key variable is unset: allowed, but unusable.
      deployments: (mockPort) => [{
        id: 'off-dep', model: 'off-model', provider: 'openai',
        api_base: `http://127.0.0.1:${mockPort}/v1`, api_key: '${TG_TEST_UNSET_KEY}',
      }],
    });
    await gw.setTenant('rpm-co', { tier: 'pro' });
    await gw.setTenant('conc-co', { tier: 'pro' });
    ({ key: rpmKey } = await gw.createKey({ tenant: 'rpm-co', labels: { plan: 'rpm' } }));
    ({ key: concKey } = await gw.createKey({ tenant: 'conc-co' }));
    ({ key: freeKey } = await gw.createKey({ tenant: 'rpm-co' }));
  });

  after(async () => {
    await gw?.stop();
  });

  test('a request that never went upstream gives its concurrency slot back at once', async () => {
    await gw.setTenant('one-co', { tier: 'pro' });
    const { key } = await gw.createKey({ tenant: 'one-co' });
    const off = await gw.chat({ model: 'off-model', messages: userMsg('hi') }, { key });
    errorBody(off, 503, 'no_deployment_available');
    // Without a release report the slot would stay taken for reservation_ttl_s.
    const ok = await pollUntil(async () => {
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('hi') }, { key });
      return r.status === 200 ? r : null;
    }, { timeoutMs: 5000, intervalMs: 100, what: 'the slot to be released' });
  });

  test('rpm=5: five pass with counting-down headers, the sixth is a 429 with retry-after', async () => {
    const body = { model: 'mock-small', messages: userMsg('hi'), max_tokens: 10 };
    for (let i = 0; i < 5; i++) {
      const r = await gw.chat(body, { key: rpmKey });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-ratelimit-limit-requests'], '5');
      assert.equal(r.headers['x-ratelimit-remaining-requests'], String(4 - i));
      assert.match(r.headers['x-ratelimit-reset-requests'], /^(\d+ms|\d+s|\d+m\d+s)$/);
      assert.equal(r.headers['x-ratelimit-limit-tokens'], '100000');
      assert.ok(Number(r.headers['x-ratelimit-remaining-tokens']) < 100000);
      assert.match(r.headers['x-ratelimit-reset-tokens'], /^(\d+ms|\d+s|\d+m\d+s)$/);
      assert.equal(r.headers['retry-after'], undefined);
    }
    const denied = await gw.chat(body, { key: rpmKey });
    const e = errorBody(denied, 429, 'rate_limit_exceeded');
    assert.equal(e.type, 'requests');
    assert.match(e.message, /requests per min \(RPM\) per key \(rule rpm-5\): limit 5, used 5.*try again in (\d+s|1m0s)\./);
    const ra = Number(denied.headers['retry-after']);
    assert.ok(ra >= 1 && ra <= 60, `retry-after ${denied.headers['retry-after']}`);
    assert.equal(denied.headers['x-ratelimit-limit-requests'], '5');
    assert.equal(denied.headers['x-ratelimit-remaining-requests'], '0');
    assert.ok(denied.headers['x-ratelimit-reset-requests']);

    // Another key of the same tenant is not limited by a per-key rule and
    // has no headers (no enforced rate_limit rule applies; audit ones only
    // count).
    const other = await gw.chat(body, { key: freeKey });
    assert.equal(other.status, 200, other.text);
    assert.equal(other.headers['x-ratelimit-limit-requests'], undefined);
    const again = await gw.chat(body, { key: freeKey });
    assert.equal(again.status, 200, again.text);
  });

  test('concurrent=2: the third in flight is a 429; when they finish a new one passes', async () => {
    const slow = { model: 'mock-small', messages: userMsg('[[mock ttft_ms=800]] slow') };
    const first = [gw.chat(slow, { key: concKey }), gw.chat(slow, { key: concKey })];
    // Give both time to be decided while they wait on the mock.
    await new Promise((r) => setTimeout(r, 300));
    const third = await gw.chat({ model: 'mock-small', messages: userMsg('quick') }, { key: concKey });
    const e = errorBody(third, 429, 'rate_limit_exceeded');
    assert.match(e.message, /concurrent requests.*rule two-at-once.*limit 2/);
    assert.ok(Number(third.headers['retry-after']) >= 1);
    for (const r of await Promise.all(first)) assert.equal(r.status, 200, r.text);
    // The slots come back when the usage reports reach the PDP.
    const ok = await pollUntil(async () => {
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('after') }, { key: concKey });
      return r.status === 200 ? r : null;
    }, { what: 'a request after the slow ones finished' });
    assert.equal(ok.status, 200);
  });

  test('rpm=5 survives a kill -9 of the PDP: 3 used before, exactly 2 pass after', async () => {
    // A key of its own: a fresh window.
    const { key } = await gw.createKey({ tenant: 'rpm-co', labels: { plan: 'rpm' } });
    const body = { model: 'mock-small', messages: userMsg('hi'), max_tokens: 10 };
    for (let i = 0; i < 3; i++) {
      const r = await gw.chat(body, { key });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-ratelimit-remaining-requests'], String(4 - i));
    }
    // The PDP writes its rate-limit snapshot once a second; the margin is
    // for an LMDB write while the other test files load the machine.
    await sleep(2500);
    await gw.killPdp('SIGKILL');
    await gw.startPdp();
    for (let i = 0; i < 2; i++) {
      const r = await gw.chat(body, { key });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-ratelimit-remaining-requests'], String(1 - i));
    }
    const denied = await gw.chat(body, { key });
    const e = errorBody(denied, 429, 'rate_limit_exceeded');
    assert.match(e.message, /rule rpm-5\): limit 5, used 5/);
  });
});
