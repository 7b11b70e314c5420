// resilience.test.mjs - a provider failing is a fallback, not an incident:
// 429 then 200 is retried; a 500 on one deployment falls back to the next;
// a first byte too slow moves on; a stream dropped after its first bytes
// ends with an error event and is never retried; a prompt too long for one
// model goes to the larger-context group, content refused by one goes to
// the content fallback; a deployment that keeps failing cools down (seen
// in /metrics and /admin/deployments), is probed and comes back; and a
// backend killed mid-load costs no client a failed request that had not
// started streaming.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import {
  bin, errorBody, freePort, httpRequest, mockDeployment, mockWords, pollUntil, sleep, startGateway, userMsg,
} from './harness.mjs';

const SECOND_KEY = 'pk-second-mock-key';

/** A second mock provider process (a backend we can kill). */
async function startMock(port) {
  const child = spawn(bin('tollgate-mock-llm'), ['--port', String(port), '--api-key', SECOND_KEY],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  await pollUntil(async () => (await httpRequest(port, { path: '/healthz' }).catch(() => ({ status: 0 }))).status === 200,
    { timeoutMs: 10_000, what: `the second mock on ${port}: ${log}` });
  return child;
}

describe('resilience', () => {
  let gw;
  let key;
  let port2;
  let mock2;

  before(async () => {
    port2 = await freePort();
    mock2 = await startMock(port2);
    gw = await startGateway({
      dataplane: {
        first_byte_timeout_ms: 800, retries: 1, retry_backoff_ms: 50, retry_backoff_max_ms: 2000,
        cooldown_failures: 2, cooldown_window_ms: 10000, cooldown_ms: 1500,
      },
      deployments: (p) => [
        mockDeployment('single', 'r-single', p),
        mockDeployment('streamer', 'r-stream', p),
        mockDeployment('pair-a', 'r-pair', p, { upstream_model: 'pair-a' }),
        mockDeployment('pair-b', 'r-pair', p, { upstream_model: 'pair-b' }),
        mockDeployment('cool-a', 'r-cool', p, { upstream_model: 'cool-a' }),
        mockDeployment('cool-b', 'r-cool', p, { upstream_model: 'cool-b' }),
        mockDeployment('small', 'r-small-ctx', p, { upstream_model: 'small-up' }),
        mockDeployment('big', 'r-big-ctx', p, { upstream_model: 'big-up' }),
        mockDeployment('strict', 'r-strict', p, { upstream_model: 'strict-up' }),
        mockDeployment('lenient', 'r-lenient', p, { upstream_model: 'lenient-up' }),
        { ...mockDeployment('kill-a', 'r-kill', p), api_base: `http://127.0.0.1:${port2}/v1`, api_key: '${TG_TEST_SECOND_KEY}' },
        mockDeployment('kill-b', 'r-kill', p, { upstream_model: 'kill-b' }),
        mockDeployment('dear', 'r-price', p, { pricing: { input_per_mtok: 5, output_per_mtok: 15 } }),
        mockDeployment('cheap', 'r-price', p, { pricing: { input_per_mtok: 0.1, output_per_mtok: 0.3 } }),
        mockDeployment('x-a', 'r-ctx2', p, { upstream_model: 'x-a' }),
        mockDeployment('fb', 'r-fb', p, { upstream_model: 'fb-up' }),
        mockDeployment('big2', 'r-bigctx2', p, { upstream_model: 'big2-up' }),
        mockDeployment('w-a', 'r-weighted', p, { weight: 1 }),
        mockDeployment('w-b', 'r-weighted', p, { weight: 3 }),
      ],
      dataplaneEnv: { TG_TEST_SECOND_KEY: SECOND_KEY },
      modelGroups: [
        { model: 'r-small-ctx', context_window_fallbacks: ['r-big-ctx'] },
        { model: 'r-strict', content_policy_fallbacks: ['r-lenient'] },
        { model: 'r-weighted', strategy: 'weighted' },
        { model: 'r-ctx2', fallbacks: ['r-fb'], context_window_fallbacks: ['r-bigctx2'] },
      ],
    });
    ({ key } = await gw.createKey({ tenant: 'resilience' }));
  });

  after(async () => {
    await gw?.stop();
    mock2?.kill('SIGKILL');
  });

  const chat = (model, text, extra = {}) => gw.chat({ model, messages: userMsg(text), max_tokens: 50, ...extra }, { key });

  test('strategies: ordered by default, :floor picks the cheapest, weighted spreads by weight', async () => {
    let r = await chat('r-price', 'hi');
    assert.equal(r.headers['x-tollgate-deployment'], 'dear', 'ordered: the catalog order');
    r = await chat('r-price:floor', 'hi');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'cheap');
    r = await chat('r-price:nitro', 'hi');
    assert.equal(r.status, 200, r.text);
    const seen = { 'w-a': 0, 'w-b': 0 };
    for (let i = 0; i < 60; i++) {
      const x = await chat('r-weighted', 'hi');
      seen[x.headers['x-tollgate-deployment']]++;
    }
    assert.ok(seen['w-a'] > 3 && seen['w-b'] > seen['w-a'], JSON.stringify(seen));
  });

  test('429 then 200: retried on the same deployment, the client sees 200', async () => {
    const r = await chat('r-single', '[[mock status=429 times=1 tag=t429 chunks=3]] hi');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, mockWords(3));
    assert.equal(r.headers['x-tollgate-deployment'], 'single');
  });

  test('500 on one deployment: the next one answers', async () => {
    const r = await chat('r-pair', '[[mock status=500 only=pair-a chunks=2]] hi');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'pair-b');
  });

  test('first byte too slow: the next deployment, soon after first_byte_timeout_ms', async () => {
    const t0 = performance.now();
    const r = await chat('r-pair', '[[mock ttft_ms=5000 only=pair-a chunks=2]] hi', { stream: true });
    const took = performance.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'pair-b');
    assert.ok(took < 3500, `took ${took.toFixed(0)} ms`);
  });

  test('a stream dropped mid-way ends with an error event and is not retried', async () => {
    const before = await gw.mockStats();
    const s = await gw.chat({ model: 'r-stream', messages: userMsg('[[mock chunks=10 drop_after=3]] go'), stream: true }, { key, stream: true });
    assert.equal(s.status, 200);
    const last = s.events.at(-1);
    assert.ok(last.json?.error, `the last event is not an error: ${JSON.stringify(last)}`);
    assert.equal(last.json.error.code, 'upstream_error');
    const text = s.events.filter((e) => e.json?.choices).map((e) => e.json.choices[0]?.delta?.content ?? '').join('');
    assert.ok(text.length > 0 && text.length < mockWords(10).length, `text: ${text}`);
    const now = await gw.mockStats();
    assert.equal(now.requests - before.requests, 1, 'the dropped stream was retried');
  });

  test('a stream that errors mid-way (provider error event) is passed on, not retried', async () => {
    const s = await gw.chat({ model: 'r-stream', messages: userMsg('[[mock chunks=10 error_after=2]] go'), stream: true }, { key, stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.events.some((e) => e.json?.error), JSON.stringify(s.events.map((e) => e.data)));
  });

  test('prompt too long for the model: its context-window fallback answers', async () => {
    const long = `[[mock context=20 only=small-up chunks=2]] ${'many words '.repeat(40)}`;
    const r = await chat('r-small-ctx', long);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'big');
    // Without that fallback the provider's 400 reaches the client as is.
    const s = await chat('r-big-ctx', `[[mock context=20]] ${'many words '.repeat(40)}`);
    errorBody(s, 400, 'context_length_exceeded');
  });

  test('content refused by one provider: the content-policy fallback answers', async () => {
    const r = await chat('r-strict', '[[mock content_filter=1 only=strict-up chunks=2]] hi');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'lenient');
  });

  test('a deployment that keeps failing cools down, is probed, and comes back', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await chat('r-cool', '[[mock status=503 only=cool-a]] hi');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['x-tollgate-deployment'], 'cool-b');
    }
    let m = await gw.metrics();
    assert.equal(m['tollgate_deployment_up{deployment="cool-a",state="cooldown"}'], 0);
    assert.ok(m['tollgate_deployment_cooldowns_total{deployment="cool-a"}'] >= 1);
    let d = (await httpRequest(gw.port, { path: '/admin/deployments' })).json.deployments.find((x) => x.id === 'cool-a');
    assert.equal(d.state, 'cooldown');
    assert.ok(d.cooldown_remaining_ms > 0);
    // While it cools down, nothing is sent to it (even with no fault).
    const r = await chat('r-cool', 'hi');
    assert.equal(r.headers['x-tollgate-deployment'], 'cool-b');
    // After the cooldown, one probe; it succeeds and the circuit closes.
    await sleep(1600);
    await pollUntil(async () => {
      const x = await chat('r-cool', 'hi');
      return x.headers['x-tollgate-deployment'] === 'cool-a';
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'a probe to cool-a' });
    m = await gw.metrics();
    assert.equal(m['tollgate_deployment_up{deployment="cool-a",state="ok"}'], 1);
    d = (await httpRequest(gw.port, { path: '/admin/deployments' })).json.deployments.find((x) => x.id === 'cool-a');
    assert.equal(d.state, 'ok');
  });

  test('an ordinary failure never lands on a context-window fallback, even past a cooling one', async () => {
    // Cool the general fallback down.
    for (let i = 0; i < 2; i++) await chat('r-fb', '[[mock status=500 only=fb-up]] hi');
    const m = await gw.metrics();
    assert.equal(m['tollgate_deployment_up{deployment="fb",state="cooldown"}'], 0);
    const r = await chat('r-ctx2', '[[mock status=503 only=x-a]] hi');
    assert.notEqual(r.headers['x-tollgate-deployment'], 'big2', 'an ordinary 503 went to the context-window fallback');
    errorBody(r, 502, 'upstream_error');
    await sleep(1600);
  });

  test('every deployment cooling down: 503 saying so, never a pick outside the decision', async () => {
    for (let i = 0; i < 2; i++) {
      await chat('r-single', '[[mock status=500]] hi');
    }
    const r = await chat('r-single', 'hi');
    const e = errorBody(r, 503, 'no_healthy_deployment');
    assert.match(e.message, /cooling down/);
    assert.match(String(r.headers['retry-after']), /^\d+$/);
    await sleep(1600); // let it come back for the tests after this one
  });

  test('a backend killed mid-load: fallbacks, no client-visible errors for requests that had not started streaming', { timeout: 60_000 }, async () => {
    const results = [];
    let killed = false;
    const worker = async (id) => {
      for (let i = 0; i < 25; i++) {
        if (id === 0 && i === 8 && !killed) {
          killed = true;
          mock2.kill('SIGKILL');
        }
        results.push(await chat('r-kill', `[[mock chunks=3 ttft_ms=20]] load ${id}/${i}`));
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => worker(i)));
    const bad = results.filter((r) => r.status !== 200);
    assert.deepEqual(bad.map((r) => `${r.status} ${r.text}`), [], 'client-visible errors');
    assert.ok(results.some((r) => r.headers['x-tollgate-deployment'] === 'kill-b'));
    const m = await gw.metrics();
    assert.ok(m['tollgate_deployment_cooldowns_total{deployment="kill-a"}'] >= 1, 'kill-a never cooled down');
    // The backend returns; after the cooldown a probe finds it and it is back.
    mock2 = await startMock(port2);
    await pollUntil(async () => {
      const x = await chat('r-kill', 'hi');
      return x.status === 200 && x.headers['x-tollgate-deployment'] === 'kill-a';
    }, { timeoutMs: 15_000, intervalMs: 200, what: 'kill-a to come back' });
    const m2 = await gw.metrics();
    assert.equal(m2['tollgate_deployment_up{deployment="kill-a",state="ok"}'], 1);
  });
});
