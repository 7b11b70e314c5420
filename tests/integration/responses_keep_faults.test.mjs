// responses_keep_faults.test.mjs - a stored response's invariant under a
// PDP that stops at the worst moment: the client never gets a stream's
// final event saying "store": true before the PDP has stored it, and a
// response the PDP could not store says "store": false (and is not found).
// The PDP is SIGSTOPped while the stream is flowing, so the put at its end
// meets a PDP that does not answer.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { openStream, providerDeployments, readSse, startGateway } from './harness.mjs';

const bundle = {
  'bundle.json': { name: 'responses-keep-faults', revision: 1 },
  'access.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      { id: 'audit', kind: 'audit', capture: 'metadata' },
    ],
  },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** streamWithPause sends a streamed Responses request and SIGSTOPs the
 * PDP at its first text delta; resume(events) decides when to SIGCONT
 * (it may wait); returns the events and when the PDP came back. */
async function streamWithPause(gw, key, model, resume) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  const body = { model, input: '[[mock chunks=4 chunk_delay_ms=50]] tell me', stream: true };
  const s = await openStream(gw.port, { path: '/v1/responses', headers, body });
  assert.equal(s.status, 200);
  let paused = false;
  let resumedAt = null;
  let failed = null;
  const events = [];
  const done = readSse(s.res, s.t0, {
    timeoutMs: 60_000,
    onEvent: (e) => {
      events.push(e);
      if (!paused && e.json?.type === 'response.output_text.delta') {
        paused = true;
        Promise.all([gw.pdp.pause(), resume(events)]).catch((err) => {
          failed = err;
        }).finally(() => {
          resumedAt = performance.now() - s.t0;
          gw.pdp.resume();
        });
      }
    },
  });
  const r = await done;
  assert.equal(r.error, undefined, String(r.error));
  assert.ok(paused, 'the stream had no text delta to pause at');
  while (resumedAt === null) await sleep(20);
  if (failed) throw failed;
  const last = r.events.filter((e) => e.json).at(-1);
  return { last, resumedAt };
}

describe('stored responses when the PDP stops', () => {
  describe('paused for less than the wait', () => {
    let gw;
    let key;
    before(async () => {
      // The put waits max(pdp_timeout_ms, 2 s): 20 s here, far longer
      // than the pause.
      gw = await startGateway({
        deployments: (p) => providerDeployments(p), bundle, pdpAdmin: true,
        dataplane: { pdp_timeout_ms: 20_000 },
      });
      ({ key } = await gw.createKey({ tenant: 'keep-a' }));
    });
    after(async () => {
      gw?.pdp?.resume();
      await gw?.stop();
    });

    test('the final event waits for the PDP, then says stored, and the response is found', async () => {
      const { last, resumedAt } = await streamWithPause(gw, key, 'm-anthropic', async (events) => {
        // The mock's stream ends within ~0.2 s; then only the put holds
        // the final event back.
        await sleep(1500);
        assert.ok(!events.some((e) => e.json?.type === 'response.completed'),
          'response.completed reached the client while the PDP was stopped');
      });
      assert.equal(last.json.type, 'response.completed');
      assert.ok(last.t >= resumedAt, `final event at ${last.t} ms, PDP resumed at ${resumedAt} ms`);
      assert.equal(last.json.response.store, true);
      const g = await gw.request(`/v1/responses/${last.json.response.id}`, { key });
      assert.equal(g.status, 200, g.text);
      assert.deepEqual(g.json, last.json.response);
    });
  });

  describe('paused past the wait', () => {
    let gw;
    let key;
    before(async () => {
      gw = await startGateway({ deployments: (p) => providerDeployments(p), bundle, pdpAdmin: true });
      ({ key } = await gw.createKey({ tenant: 'keep-b' }));
    });
    after(async () => {
      gw?.pdp?.resume();
      await gw?.stop();
    });

    test('the final event comes after the wait, says not stored, and nothing is found', async () => {
      let final;
      const { last } = await streamWithPause(gw, key, 'm-openai', async (events) => {
        // Stay stopped until the gateway gives up on the put (2 s).
        for (;;) {
          final = events.find((e) => e.json?.type === 'response.completed');
          if (final) return;
          await sleep(50);
        }
      });
      assert.equal(last.json.type, 'response.completed');
      assert.equal(last.json.response.store, false);
      const g = await gw.request(`/v1/responses/${last.json.response.id}`, { key });
      assert.equal(g.status, 404, g.text);
    });

    test('a client that leaves while its previous_response_id is fetched sends nothing upstream', async () => {
      const first = await gw.request('/v1/responses', {
        method: 'POST', key, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm-anthropic', input: 'remember this' }),
      });
      assert.equal(first.status, 200, first.text);
      const before = (await gw.mockStats()).requests;
      await gw.pdp.pause();
      const body = JSON.stringify({ model: 'm-anthropic', input: 'and?', previous_response_id: first.json.id });
      const req = http.request({
        host: '127.0.0.1', port: gw.port, method: 'POST', path: '/v1/responses', agent: false,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'content-length': Buffer.byteLength(body) },
      });
      req.on('error', () => {});
      req.end(body);
      await sleep(300); // the lookup waits on the stopped PDP
      req.destroy();
      await sleep(300);
      gw.pdp.resume(); // it answers the lookup now
      await sleep(1000);
      assert.equal((await gw.mockStats()).requests, before, 'a request whose client had left reached the provider');
      // The gateway goes on serving.
      const next = await gw.request('/v1/responses', {
        method: 'POST', key, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm-anthropic', input: 'and?', previous_response_id: first.json.id }),
      });
      assert.equal(next.status, 200, next.text);
    });
  });
});
