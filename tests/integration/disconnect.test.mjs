// disconnect.test.mjs - a client that goes away: mid-stream, the upstream
// transfer is cancelled, the gateway stays healthy and what was used is
// still metered; while waiting for a non-stream answer, the gateway must
// notice too rather than wait for (and bill) the provider's whole answer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { openStream, pollUntil, readSse, startGateway, userMsg } from './harness.mjs';

describe('client disconnect', () => {
  let gw;

  before(async () => {
    gw = await startGateway();
  });

  after(async () => {
    await gw?.stop();
  });

  test('abort mid-stream: upstream cancelled, usage still reported, gateway healthy', async () => {
    const { key } = await gw.createKey({ tenant: 'gone' });
    const other = await gw.createKey({ tenant: 'still-here' });
    const m0 = await gw.metrics();
    const s0 = await gw.mockStats();

    // 200 chunks 20 ms apart: 4 s if nobody stops it.
    const ac = new AbortController();
    const s = await openStream(gw.port, {
      signal: ac.signal,
      headers: { authorization: `Bearer ${key}` },
      body: { model: 'gpt-4o-mini', messages: userMsg('[[mock chunks=200 chunk_delay_ms=20]] go'), stream: true },
    });
    assert.equal(s.status, 200);
    let content = 0;
    let aborted = false;
    const read = readSse(s.res, s.t0, {
      onEvent: (e) => {
        if (e.json?.choices?.[0]?.delta?.content) content++;
        if (content >= 3 && !aborted) {
          aborted = true;
          ac.abort(); // the client closes its connection
        }
      },
    });
    await read;
    assert.ok(aborted, `the stream ended before 3 content chunks arrived (${content})`);

    await pollUntil(async () => (await gw.metrics()).tollgate_client_disconnects_total > m0.tollgate_client_disconnects_total,
      { timeoutMs: 5000, what: 'tollgate_client_disconnects_total to increase' });

    // The mock sees its reply cut off, well before its 4 s would be over.
    await pollUntil(async () => (await gw.mockStats()).aborted > s0.aborted,
      { timeoutMs: 3000, what: 'the mock to see the upstream transfer cancelled (stats.aborted)' });
    const s1 = await gw.mockStats();
    assert.equal(s1.completed, s0.completed, 'the upstream reply ran to completion');

    // Usage: the request is counted, with estimated (non-zero) tokens.
    const t = await pollUntil(async () => {
      const x = await gw.spendTenant('gone');
      return x.requests >= 1 ? x : null;
    }, { timeoutMs: 10_000, intervalMs: 200, what: 'the aborted request to be counted' });
    assert.equal(t.requests, 1);
    assert.ok(t.prompt_tokens > 0, `prompt tokens ${t.prompt_tokens}`);
    assert.ok(t.completion_tokens > 0, `completion tokens ${t.completion_tokens}`);
    assert.ok(t.completion_tokens < 200, `completion tokens ${t.completion_tokens}: counted the whole reply?`);

    // Healthy: it answers others, nothing is left in flight.
    const ok = await gw.chat({ model: 'mock-small', messages: userMsg('hi') }, { key: other.key });
    assert.equal(ok.status, 200, ok.text);
    await pollUntil(async () => (await gw.metrics()).tollgate_inflight_requests === 0,
      { timeoutMs: 5000, what: 'no request in flight' });
    assert.equal(await gw.readyz(), 200);
  });

  test('abort while waiting for a non-stream answer: noticed, upstream cancelled', async () => {
    // A client that gives up on a slow completion must not leave the gateway
    // waiting for (and paying for) the provider's whole answer.
    const { key } = await gw.createKey({ tenant: 'gone-early' });
    const m0 = await gw.metrics();
    const s0 = await gw.mockStats();
    const ac = new AbortController();
    const p = fetch(`${gw.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      signal: ac.signal,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-small', messages: userMsg('[[mock ttft_ms=3000]]') }),
    });
    await pollUntil(async () => (await gw.mockStats()).requests > s0.requests,
      { timeoutMs: 5000, intervalMs: 20, what: 'the request to reach the mock' });
    ac.abort();
    await assert.rejects(p, { name: 'AbortError' });
    // Well before the provider's first byte (3 s) would come.
    await pollUntil(async () => (await gw.metrics()).tollgate_client_disconnects_total > m0.tollgate_client_disconnects_total,
      { timeoutMs: 1500, what: 'tollgate_client_disconnects_total to increase before the provider answers' });
    await pollUntil(async () => (await gw.metrics()).tollgate_inflight_requests === 0,
      { timeoutMs: 1000, what: 'no request in flight' });
    // The provider's answer, once it comes, goes nowhere.
    await pollUntil(async () => (await gw.mockStats()).aborted > s0.aborted,
      { timeoutMs: 5000, what: 'the mock to see its reply undelivered (stats.aborted)' });
    assert.equal((await gw.mockStats()).completed, s0.completed, 'the provider\'s reply was delivered to the gateway');
  });
});
