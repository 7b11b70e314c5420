// upstream.test.mjs - what a client sees when the provider fails: errors,
// rate limits, a slow first byte, a provider that is not there, a provider
// that refuses the gateway's credentials.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import { DEAD_PORT, errorBody, mockDeployment, pollUntil, startGateway, userMsg } from './harness.mjs';

/** With first_byte_timeout_ms at 500, an ASan build on a loaded 2-core
 * machine can now and then take that long for a healthy answer, and 504 is
 * then the right answer. Requests that must not time out get two more
 * tries when, and only when, the answer is a first-byte timeout. */
async function unlessLoaded(send) {
  let r;
  for (let i = 0; i < 3; i++) {
    r = await send();
    if (!(r.status === 504 && r.json?.error?.code === 'upstream_timeout')) break;
  }
  return r;
}

describe('upstream failures', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({
      // One attempt per request, no cooldown: this file is about how one
      // failure looks to the client (resilience.test.mjs covers retries,
      // fallbacks and cooldowns).
      dataplane: { first_byte_timeout_ms: 500, connect_timeout_ms: 2000, retries: 0, cooldown_failures: 1000 },
      deployments: (mockPort) => [
        { ...mockDeployment('dead', 'dead-model', mockPort), api_base: `http://127.0.0.1:${DEAD_PORT}/v1` },
        mockDeployment('wrong-key', 'wrong-key-model', mockPort, { api_key: '${TG_TEST_WRONG_PROVIDER_KEY}' }),
      ],
      dataplaneEnv: { TG_TEST_WRONG_PROVIDER_KEY: 'pk-not-the-right-one' },
    });
    ({ key } = await gw.createKey({ tenant: 'upstream' }));
  });

  after(async () => {
    await gw?.stop();
  });

  test('provider 500 -> 502 with an OpenAI error body', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'mock-small', messages: userMsg('[[mock status=500]]') }, { key }));
    const e = errorBody(r, 502);
    assert.equal(e.type, 'server_error');
    assert.equal(e.code, 'upstream_error');
    assert.match(String(r.headers['x-request-id'] ?? ''), /\S/);
  });

  test('provider 503 -> 502', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'mock-small', messages: userMsg('[[mock status=503]]') }, { key }));
    errorBody(r, 502, 'upstream_error');
  });

  test('provider 429 -> 429 with Retry-After', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'mock-small', messages: userMsg('[[mock status=429]]') }, { key }));
    const e = errorBody(r, 429);
    assert.equal(e.type, 'rate_limit_error');
    assert.equal(r.headers['retry-after'], '1', 'the provider\'s Retry-After was not passed on');
  });

  test('provider 400 is passed on as the provider\'s own 400', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'mock-small', messages: userMsg('[[mock status=400]]') }, { key }));
    const e = errorBody(r, 400);
    assert.match(e.message, /mock: injected bad request/);
  });

  test('first byte too slow -> 504 upstream_timeout, soon after first_byte_timeout_ms', async () => {
    const t0 = performance.now();
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('[[mock ttft_ms=3000]]') }, { key });
    const took = performance.now() - t0;
    const e = errorBody(r, 504, 'upstream_timeout');
    assert.equal(e.type, 'server_error');
    assert.ok(took < 2500, `the 500 ms first-byte timeout answered after ${took.toFixed(0)} ms`);
    // Streams too.
    const s = await gw.chat({ model: 'mock-small', messages: userMsg('[[mock ttft_ms=3000]]'), stream: true },
      { key, stream: true });
    errorBody(s, 504, 'upstream_timeout');
  });

  test('a fast first byte then slow chunks is not a first-byte timeout', async () => {
    // Gaps between chunks longer than first_byte_timeout_ms.
    const r = await unlessLoaded(() => gw.chat(
      { model: 'mock-small', messages: userMsg('[[mock chunks=2 chunk_delay_ms=700]]'), stream: true },
      { key, stream: true }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(r.events.at(-1).data, '[DONE]', r.events.map((e) => e.data).join('\n'));
  });

  test('provider not running (nothing on the deployment\'s port) -> 502', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'dead-model', messages: userMsg('hi') }, { key }));
    const e = errorBody(r, 502, 'upstream_error');
    assert.equal(e.type, 'server_error');
  });

  test('provider refuses the gateway\'s key -> 502, and the key is not leaked', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'wrong-key-model', messages: userMsg('hi') }, { key }));
    const e = errorBody(r, 502);
    assert.equal(e.code, 'upstream_auth_failed');
    assert.ok(!r.text.includes('pk-not-the-right-one'), 'the provider key is in the client\'s error');
    assert.ok(!r.text.includes(gw.providerKey));
  });

  test('the gateway still serves after all that', async () => {
    const r = await unlessLoaded(() => gw.chat({ model: 'mock-small', messages: userMsg('fine') }, { key }));
    assert.equal(r.status, 200, r.text);
    const m = await gw.metrics();
    assert.ok(m.tollgate_upstream_errors_total >= 7, `upstream errors counted: ${m.tollgate_upstream_errors_total}`);
    // A worker lets go of a request just after handing over its answer.
    await pollUntil(async () => (await gw.metrics()).tollgate_inflight_requests === 0,
      { timeoutMs: 5000, what: 'no request in flight' });
  });
});
