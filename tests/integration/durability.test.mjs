// durability.test.mjs - issue 4, point 6: during a load of 10k requests the
// PDP is killed with SIGKILL at random moments several times and restarted
// at once; afterwards the recorded spend equals the usage the mock provider
// reported for the completed requests: nothing lost, nothing counted twice.
//
// While the PDP is down the data plane fails closed (503 pdp_unavailable):
// those requests never reach the provider and must cost nothing. Requests
// already decided keep going upstream; their usage reports wait in the data
// plane's spool until a PDP acks them (dp_spool.c), and the PDP settles them
// idempotently by request id before the ack (pdp_store.c).
//
// Knobs (environment) for investigating: TG_DUR_REQUESTS (default 10000),
// TG_DUR_CLIENTS (default 32), TG_DUR_KILLS (default: random 4..6),
// TG_DUR_SEED (default: random; printed, so a run can be repeated as far as
// the schedule goes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import { REPO, promptTokens, sleep, startGateway } from './harness.mjs';

const N = Number(process.env.TG_DUR_REQUESTS ?? 10_000);
const CLIENTS = Number(process.env.TG_DUR_CLIENTS ?? 32);
const SEED = Number(process.env.TG_DUR_SEED ?? (Date.now() % 2_147_483_647));
const CHUNKS = 3; // completion tokens per request: [[mock chunks=3]]
const TENANT = 'durable';

// A small deterministic PRNG (mulberry32), so a failing schedule can be rerun.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Prices as the PDP holds them: integer micro-USD per 1M tokens
// (llround(usd * 1e6), pdp_pricing_usd), and cost as pdp_pricing_cost_of
// computes it: tokens * rate summed, then one round-half-up division by 1e6.
const PRICING = JSON.parse(fs.readFileSync(path.join(REPO, 'policies', 'pricing.json'), 'utf8'));
function rate(model, kind) {
  const usd = PRICING.models[model]?.[kind];
  return usd === undefined ? 0n : BigInt(Math.round(usd * 1e6));
}
function costMicro(model, prompt, completion) {
  if (!PRICING.models[model]) return 0n; // unpriced: recorded at cost 0
  const frac = BigInt(prompt) * rate(model, 'input_per_mtok') + BigInt(completion) * rate(model, 'output_per_mtok');
  return (frac + 500_000n) / 1_000_000n;
}

describe('durability', () => {
  let gw;

  before(async () => {
    // The harness defaults (2 workers, pdp_timeout_ms 1000): 10k requests
    // with 32 clients take ~15-25 s with the ASan build on 2 cores.
    gw = await startGateway();
  });

  after(async () => {
    await gw?.stop();
  });

  test(`${N} requests, the PDP SIGKILLed and restarted several times: spend == completed usage`, { timeout: 600_000 }, async () => {
    const rnd = prng(SEED);
    const kills = Number(process.env.TG_DUR_KILLS ?? (4 + Math.floor(rnd() * 3)));
    // eslint-disable-next-line no-console
    console.log(`# durability: N=${N} clients=${CLIENTS} kills=${kills} seed=${SEED} dir=${gw.dir}`);
    const { key } = await gw.createKey({ tenant: TENANT });
    const base = await gw.mockStats();
    assert.equal(base.completed, 0, 'the mock served requests before this test');

    // Kill points: request numbers spread over 5%..85% of the load, each in
    // its own slice, plus a random delay so the kill lands at a random
    // moment relative to decisions, settlements and group commits.
    const killAt = [];
    for (let i = 0; i < kills; i++) {
      const lo = 0.05 + (0.80 * i) / kills;
      killAt.push(Math.floor(N * (lo + rnd() * (0.80 / kills))));
    }

    const st = {
      sent: 0, ok: 0, okStream: 0, unavailable: 0, other: [], prompt: 0, completion: 0,
      cost: 0n, costByModel: {}, kills: 0, restartMs: [],
    };
    let next = 0;
    let killing = null; // the running kill+restart, one at a time

    async function killAndRestart(delayMs) {
      await sleep(delayMs);
      const t0 = performance.now();
      const r = await gw.killPdp('SIGKILL');
      assert.equal(r.signal, 'SIGKILL', `the PDP did not die of SIGKILL: ${JSON.stringify(r)}`);
      st.kills++;
      try {
        await gw.startPdp(); // waits for the data plane's /readyz 200
      } catch (e) {
        let m = {};
        try {
          m = await gw.metrics();
        } catch { /* the data plane is gone: the message says so */ }
        e.message = `after SIGKILL #${st.kills} of the PDP and its restart, the data plane did not ` +
          `become ready again (tollgate_pdp_connected ${m.tollgate_pdp_connected}, ` +
          `spool_pending ${m.tollgate_usage_spool_pending}; seed ${SEED}): ${e.message}`;
        throw e;
      }
      st.restartMs.push(Math.round(performance.now() - t0));
    }

    async function one(i) {
      const r1 = prng(SEED ^ Math.imul(i + 1, 0x9e3779b1));
      const model = r1() < 0.8 ? 'gpt-4o-mini' : 'mock-small';
      const stream = r1() < 0.5;
      const withUsage = stream && r1() < 0.5;
      // Prompts of varying length, so the per-request rounding varies.
      const pad = 'x'.repeat(Math.floor(r1() * 120));
      const messages = [{ role: 'user', content: `[[mock chunks=${CHUNKS}]] req ${i} ${pad}` }];
      const body = { model, messages };
      if (stream) {
        body.stream = true;
        if (withUsage) body.stream_options = { include_usage: true };
      }
      let r;
      try {
        r = await gw.chat(body, { key, stream });
      } catch (e) {
        st.other.push(`#${i}: ${e.message}`);
        return;
      }
      if (r.status === 200) {
        const p = promptTokens(messages);
        if (stream) {
          assert.equal(r.error, undefined, `stream #${i} broke: ${r.error}`);
          const last = r.events.at(-1)?.data;
          assert.equal(last, '[DONE]', `stream #${i} did not end with [DONE]`);
          if (withUsage) {
            const u = r.events.map((e) => e.json?.usage).filter(Boolean).at(-1);
            assert.deepEqual([u?.prompt_tokens, u?.completion_tokens], [p, CHUNKS], `stream #${i} usage`);
          }
          st.okStream++;
        } else {
          const u = r.json?.usage;
          assert.deepEqual([u?.prompt_tokens, u?.completion_tokens], [p, CHUNKS], `#${i} usage: ${r.text}`);
        }
        st.ok++;
        st.prompt += p;
        st.completion += CHUNKS;
        const c = costMicro(model, p, CHUNKS);
        st.cost += c;
        st.costByModel[model] = (st.costByModel[model] ?? 0n) + c;
      } else if (r.status === 503 && r.json?.error?.code === 'pdp_unavailable') {
        st.unavailable++;
        await sleep(20); // fail-closed answers are instant: do not spin
      } else {
        st.other.push(`#${i}: HTTP ${r.status} ${String(r.text).slice(0, 300)}`);
      }
    }

    async function client() {
      for (;;) {
        const i = next++;
        if (i >= N) return;
        st.sent++;
        if (killAt.length > 0 && i >= killAt[0] && killing === null) {
          killAt.shift();
          killing = killAndRestart(Math.floor(rnd() * 300)).catch((e) => {
            st.killErr ??= e;
          }).finally(() => {
            killing = null;
          });
        }
        await one(i);
      }
    }

    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, client));
    while (killing !== null || killAt.length > 0) {
      // A kill still pending (the load ran faster than the schedule): do it.
      if (killing === null) {
        if (st.killErr) break;
        killAt.shift();
        killing = killAndRestart(0).catch((e) => {
          st.killErr ??= e;
        }).finally(() => {
          killing = null;
        });
      }
      await killing;
    }
    const loadMs = Math.round(performance.now() - t0);
    // eslint-disable-next-line no-console
    console.log(`# load: ${st.sent} sent in ${loadMs} ms: ${st.ok} ok (${st.okStream} stream), ` +
      `${st.unavailable} pdp_unavailable, ${st.other.length} other; ` +
      `${st.kills} kills, restarts took ${st.restartMs.join('/')} ms`);

    if (st.killErr) throw st.killErr;
    assert.equal(st.kills, kills, 'not every scheduled kill happened');
    assert.deepEqual(st.other.slice(0, 20), [], `unexpected answers (${st.other.length})`);
    assert.equal(st.ok + st.unavailable, N);

    // The provider's own view: it counts a response only once delivered.
    const mock = await gw.mockStats();
    assert.equal(mock.completed, st.ok, `the mock completed ${mock.completed} requests, the gateway answered 200 to ${st.ok}`);
    assert.equal(mock.prompt_tokens, st.prompt, 'mock prompt tokens vs the 200 answers');
    assert.equal(mock.completion_tokens, st.completion, 'mock completion tokens vs the 200 answers');

    // Settle: the data plane's spool drains (every report acked) and the
    // tenant's spend stops moving. Keep the logs until the verdict.
    gw.keepLogs = true;
    const deadline = performance.now() + 60_000;
    let m;
    let s;
    let stable = 0;
    let prev = null;
    while (performance.now() < deadline) {
      m = await gw.metrics();
      s = await gw.spendTenant(TENANT);
      const same = prev !== null && prev.requests === s.requests && prev.cost_micro_usd === s.cost_micro_usd;
      stable = m.tollgate_usage_spool_pending === 0 && same ? stable + 1 : 0;
      if (stable >= 3) break; // drained and unchanged over ~1.5 s
      prev = s;
      await sleep(500);
    }
    const diag = `spend ${JSON.stringify(s)}; spool_pending ${m.tollgate_usage_spool_pending}, ` +
      `acked ${m.tollgate_usage_reports_acked_total}; mock ${JSON.stringify(mock)}; ` +
      `expected requests ${st.ok}, prompt ${st.prompt}, completion ${st.completion}, cost ${st.cost} ` +
      `(${JSON.stringify(Object.fromEntries(Object.entries(st.costByModel).map(([k, v]) => [k, String(v)])))}); ` +
      `seed ${SEED}; logs in ${gw.dir}`;
    // eslint-disable-next-line no-console
    console.log(`# settled: ${diag}`);
    assert.equal(m.tollgate_usage_spool_pending, 0, `the spool never drained: ${diag}`);
    assert.ok(stable >= 3, `spend never became stable: ${diag}`);

    assert.ok(s.requests <= st.ok, `counted twice: ${s.requests} requests recorded for ${st.ok} completed: ${diag}`);
    assert.ok(s.requests >= st.ok, `lost: ${s.requests} requests recorded for ${st.ok} completed: ${diag}`);
    assert.equal(s.prompt_tokens, mock.prompt_tokens, `prompt tokens: ${diag}`);
    assert.equal(s.completion_tokens, mock.completion_tokens, `completion tokens: ${diag}`);
    assert.equal(BigInt(s.cost_micro_usd), st.cost, `cost (micro-USD): ${diag}`);
    assert.ok(st.cost > 0n);

    // The totals agree with the tenant (one tenant, one key).
    const all = await gw.spend();
    assert.equal(all.total.requests, st.ok, `spend total: ${JSON.stringify(all.total)}`);
    assert.equal(all.keys.length, 1);
    assert.equal(all.keys[0].requests, st.ok);
    gw.keepLogs = false;
  });
});
