// faults.test.mjs - the fault tests of the "exactly once, whatever dies"
// issue. The invariant every test here tries to break on purpose:
//
//   For every request, the provider call it caused is counted exactly once
//   in usage and in every budget and limit it fell under, and no request is
//   admitted beyond a limit - whatever process dies, pauses or runs out of
//   disk, at whatever moment. Where it cannot be exact (a cut stream the
//   provider never reported usage for) it is conservative: charged as
//   estimated, never zero.
//
// A. PDP SIGKILLed (and restarted at once) at random moments while 64
//    clients push a nearly spent tenant budget: the spend stays within the
//    limit, one usage record per request the provider completed, and the
//    budget's settled spend is the sum of those records.
// B. PDP SIGSTOPped longer than dataplane.pdp_timeout_ms under a
//    concurrency limit: the decisions the data plane gave up on are
//    abandoned and their slots released (no "in flight 4" with nothing in
//    flight; `tollgate-pdp reservations list` empties).
// C. Data plane SIGKILLed during slow streams and non-streams, restarted on
//    the same spool: a usage intent written before the upstream call is
//    settled as estimated after the restart, so every provider call has
//    exactly one record and every cut stream is charged (estimated, > 0).
// D. The data plane's spool on a full tmpfs: requests are served with
//    their usage kept in memory (honestly counted as pending) or, past
//    dataplane.spool_memory_max_bytes, refused with 503 usage_spool_full;
//    never served without a record. When the space returns the backlog
//    drains, one record per served request - also a backlog of ~3,000
//    reports (built by pausing the PDP once the calls were decided).
// E. The circuit breaker counts requests, not attempts: one hanging
//    request retried twice does not cool the only deployment down; and a
//    connection closed without an answer is not resent by libcurl on its
//    own (retries=2 means exactly 3 upstream requests).
// F. The PDP's state directory (pdp.state_dir) on a full tmpfs, under a
//    rate limit (every decision records a reservation): a decision whose
//    reservation cannot be written is refused with 503 pdp_unavailable,
//    usage reports are not acknowledged (the data plane keeps and retries
//    them), the PDP says "disk full" once a minute, not once per failed
//    write; when the space returns the backlog drains, one record per
//    served request, and what was acknowledged before is still there.
//
// Interfaces these tests assume beyond what the code had before this issue:
//   tollgate-pdp usage list --config F --format json [--tenant T],
//   tollgate-pdp reservations list --format json,
//   dataplane.spool_memory_max_bytes, 503 usage_spool_full, the metric
//   tollgate_usage_spool_bytes, and a data-plane log line saying the disk
//   is full (/No space left on device|ENOSPC|disk full/) when a spool write
//   fails for lack of space.
//
// Knobs: TG_FAULTS_SEED (default random, printed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import {
  decisionRecords, httpRequest, mockDeployment, openStream, pollUntil, promptTokens, readSse, runBinary, sleep,
  startGateway, userMsg,
} from './harness.mjs';

const SEED = Number(process.env.TG_FAULTS_SEED ?? (Date.now() % 2_147_483_647));

// mulberry32: a failing schedule can be rerun with TG_FAULTS_SEED.
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

function log(msg) {
  // eslint-disable-next-line no-console
  console.log(`# ${msg}`);
}

// ---- helpers: processes ------------------------------------------------

/** killDataplane SIGKILLs the data plane and waits for it to be gone. */
async function killDataplane(gw) {
  const r = await gw.dp.kill('SIGKILL');
  assert.equal(r.signal, 'SIGKILL', `the data plane did not die of SIGKILL: ${JSON.stringify(r)}`);
}

/** startDataplane starts a new data plane with the same config (so the
 * same spool_dir) and waits until it is ready. The harness's Proc class is
 * not exported; a new one is made from the old one's constructor, and it
 * becomes gw.dp, so gw.stop() checks it exits 0 on SIGTERM. */
async function startDataplane(gw) {
  assert.ok(!gw.dp.running, 'startDataplane: the data plane is still running');
  const Proc = gw.dp.constructor;
  gw.dp = new Proc('dataplane', gw.dp.name, gw.dp.args, { dir: gw.dir, env: gw.dp.env }).start();
  gw.procs.push(gw.dp);
  await gw.waitReady(200);
}

function sh(cmd, args, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, err });
    });
  });
}

/** startCheckedGateway is startGateway after a quick check that the
 * config's dataplane section is accepted (tollgate-pdp parses it too): a
 * refused key then fails in a second, not after the harness's 30 s wait
 * for /readyz. */
async function startCheckedGateway(opts) {
  const dir = fs.mkdtempSync('/tmp/tgfault-cfg-');
  try {
    const cfg = {
      pdp: { listen: [`ipc://${dir}/x.sock`], state_dir: path.join(dir, 'state') },
      dataplane: { listen: '127.0.0.1:1', pdp_url: `ipc://${dir}/x.sock`, spool_dir: path.join(dir, 'spool'), ...opts.dataplane },
      deployments: [mockDeployment('x', 'x', 1)],
    };
    fs.writeFileSync(path.join(dir, 'c.json'), JSON.stringify(cfg, null, 2));
    const r = await runBinary('tollgate-pdp', ['tenants', 'list', '--config', path.join(dir, 'c.json')]);
    if (r.code === 2) throw new Error(`the config is refused: ${r.stderr.trim()}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return startGateway(opts);
}

// ---- helpers: state as the PDP records it ------------------------------

/** budgetShow is `tollgate-pdp budgets show tenant:T --format json`:
 * {limit_usd, spent_micro_usd, reserved_micro_usd, remaining_micro_usd, ...}. */
async function budgetShow(gw, target) {
  const r = await gw.cli(['budgets', 'show', target, '--config', gw.cfgPath, '--format', 'json']);
  return JSON.parse(r.stdout);
}

/**
 * usageRecords is `tollgate-pdp usage list --format json [--tenant T]`:
 * the PDP's usage records, one per request id, as {"records": [...]} with
 * request_id, tenant, key_id, model, deployment_id, stream, estimated,
 * abandoned, status, prompt/completion/cached tokens and cost_micro_usd.
 * Abandoned records (nothing went upstream) are listed but are not usage.
 */
async function usageRecords(gw, { tenant } = {}) {
  const args = ['usage', 'list', '--config', gw.cfgPath, '--format', 'json'];
  if (tenant) args.push('--tenant', tenant);
  const r = await runBinary('tollgate-pdp', args);
  if (r.code !== 0) {
    throw new Error(`tollgate-pdp ${args.join(' ')} exited ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr}${r.stdout}`);
  }
  const j = JSON.parse(r.stdout);
  assert.ok(Array.isArray(j.records), `usage list printed no {records}: ${r.stdout.slice(0, 300)}`);
  return j.records;
}

/**
 * openReservations is `tollgate-pdp reservations list --format json`: the
 * open reservations, one object per reservation with at least
 * "request_id", as {"reservations": [...]} (a bare array is accepted too).
 */
async function openReservations(gw) {
  const r = await runBinary('tollgate-pdp', ['reservations', 'list', '--config', gw.cfgPath, '--format', 'json']);
  if (r.code !== 0) {
    throw new Error(`tollgate-pdp reservations list --format json exited ${r.code}: ${r.stderr.trim()}`);
  }
  const j = JSON.parse(r.stdout);
  const list = Array.isArray(j) ? j : j.reservations;
  assert.ok(Array.isArray(list), `reservations list printed neither an array nor {reservations}: ${r.stdout}`);
  for (const x of list) assert.equal(typeof x.request_id, 'string', `reservation without request_id: ${JSON.stringify(x)}`);
  return list;
}

/** settle waits until the data plane's spool is empty and fn() (a
 * snapshot, compared as JSON) no longer changes over a few samples. */
async function settle(gw, fn, { timeoutMs = 45_000, what = 'the spool to drain' } = {}) {
  const deadline = performance.now() + timeoutMs;
  let prev = null;
  let stable = 0;
  let m = {};
  let snap;
  while (performance.now() < deadline) {
    m = await gw.metrics();
    snap = JSON.stringify(await fn());
    stable = m.tollgate_usage_spool_pending === 0 && snap === prev ? stable + 1 : 0;
    if (stable >= 3) return { metrics: m, snap: JSON.parse(snap) };
    prev = snap;
    await sleep(300);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: spool_pending ` +
    `${m.tollgate_usage_spool_pending}, last snapshot ${snap} (logs in ${gw.dir})`);
}

/** byId indexes usage records by request id and returns the ids listed
 * more than once (there must be none). */
function byId(recs) {
  const map = new Map();
  const dups = [];
  for (const r of recs) {
    if (map.has(r.request_id)) dups.push(r.request_id);
    map.set(r.request_id, r);
  }
  return { map, dups };
}

const sum = (xs, f) => xs.reduce((s, x) => s + f(x), 0);

// ---- helpers: the spool's disk -----------------------------------------

function mountTmpfs(sizeMiB) {
  const dir = fs.mkdtempSync('/tmp/tgfault-spool-');
  return sh('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir]).then((r) => {
    if (r.code !== 0) {
      throw new Error(`mount -t tmpfs on ${dir} failed (these tests need root): ${r.stderr}`);
    }
    return dir;
  });
}

async function unmountTmpfs(dir) {
  if (!dir) return;
  let r = await sh('umount', [dir]);
  if (r.code !== 0) r = await sh('umount', ['-l', dir]);
  if (r.code === 0) fs.rmSync(dir, { recursive: true, force: true });
}

/** fillDisk writes a filler file in dir until the filesystem refuses
 * (ENOSPC) and checks that nothing is left for anyone. */
function fillDisk(dir) {
  const p = path.join(dir, 'filler');
  const fd = fs.openSync(p, 'w');
  try {
    for (const size of [1 << 20, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          fs.writeSync(fd, buf);
        } catch (e) {
          if (e.code !== 'ENOSPC') throw e;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  const st = fs.statfsSync(dir);
  assert.equal(st.bavail, 0, `the tmpfs at ${dir} is not full after filling: ${st.bavail} blocks free`);
  return p;
}

function diskFree(dir) {
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize;
}

/** dpLogSince: what the current data plane wrote to stderr since offset. */
function dpLogSince(gw, offset) {
  return gw.dp.stderr().slice(offset);
}
const DISK_FULL_RE = /No space left on device|ENOSPC|disk (is )?full|spool (is )?full/i;

// gpt-4o-mini and gpt-4o as policies/pricing.json prices them (micro-USD
// per token = USD per 1M tokens).
const PRICE = { 'gpt-4o-mini': [0.15, 0.6], 'gpt-4o': [2.5, 10] };
const worstCost = (model, prompt, out) => Math.ceil(prompt * PRICE[model][0] + out * PRICE[model][1]);

// ========================================================================
// A. PDP kill -9 at random moments against a nearly spent tenant budget.
// ========================================================================

describe('A: PDP SIGKILL during a run against a nearly spent budget', () => {
  let gw;
  const TENANT = 'fault-a';
  const LIMIT_USD = 0.0032;
  const LIMIT = Math.round(LIMIT_USD * 1e6);
  const CHUNKS = 150; // ~92 micro-USD a request: about 34 fit
  // The provider takes 300-1200 ms to answer, so at the kill (0.2-0.6 s in)
  // most admitted requests are still in flight, holding reservations, and
  // the clients joining one by one keep taking new ones.

  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.stop();
  });

  test('64 clients, the PDP SIGKILLed and restarted once or twice: spend <= limit, one record per completed call, budget == sum of records',
    { timeout: 120_000 }, async () => {
      const rnd = prng(SEED ^ 0xa);
      const keys = [];
      for (let i = 0; i < 4; i++) keys.push((await gw.createKey({ tenant: TENANT })).key);
      await gw.cli(['budgets', 'set', `tenant:${TENANT}`, '--limit-usd', String(LIMIT_USD), '--window', 'daily',
        '--config', gw.cfgPath]);
      const base = await gw.mockStats();
      const msg = (i) => userMsg(`[[mock chunks=${CHUNKS} ttft_ms=${300 + (i * 7919) % 900}]] a${i}`);
      const worst = worstCost('gpt-4o-mini', promptTokens(msg(1000)), CHUNKS);
      log(`A: seed ${SEED}, limit ${LIMIT} micro-USD, worst case ~${worst} a request (~${Math.floor(LIMIT / worst)} fit), dir ${gw.dir}`);

      const st = { ok: [], answered: [], budget: 0, unavailable: 0, other: [], inflight: 0, kills: [] };
      let stop = false;
      let seq = 0;
      async function client(c) {
        // Clients join over ~1 s, so admissions go on while the kill lands.
        await sleep(c * 15);
        while (!stop) {
          const i = seq++;
          const stream = rnd() < 0.5;
          const body = { model: 'gpt-4o-mini', messages: msg(i), max_tokens: CHUNKS };
          if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
          let r;
          st.inflight++;
          try {
            r = await gw.chat(body, { key: keys[c % keys.length], stream });
          } catch (e) {
            st.other.push(`#${i}: ${e.message}`);
            continue;
          } finally {
            st.inflight--;
          }
          if (r.headers?.['x-request-id']) st.answered.push(r.headers['x-request-id']);
          if (r.status === 200) {
            if (stream && r.events.at(-1)?.data !== '[DONE]') st.other.push(`stream #${i} did not end with [DONE]: ${r.error}`);
            st.ok.push({ id: r.headers['x-request-id'], stream });
          } else if (r.status === 429 && r.json?.error?.code === 'budget_exceeded') {
            st.budget++;
            await sleep(25);
          } else if (r.status === 503 && r.json?.error?.code === 'pdp_unavailable') {
            st.unavailable++;
            await sleep(25);
          } else {
            st.other.push(`#${i}: HTTP ${r.status} ${String(r.text).slice(0, 300)}`);
          }
        }
      }

      // The kill lands right after a request was admitted (it reached the
      // mock), waiting at most 300 ms for one: a moment when the PDP holds
      // a reservation it may not have written anywhere yet.
      async function afterAnAdmission() {
        const first = (await gw.mockStats()).requests;
        const until = performance.now() + 300;
        while (performance.now() < until && (await gw.mockStats()).requests === first) await sleep(5);
      }
      async function killAndRestart(n) {
        await afterAnAdmission();
        const at = { n, inflight: st.inflight, okSoFar: st.ok.length, t: Math.round(performance.now() - t0) };
        const r = await gw.killPdp('SIGKILL');
        assert.equal(r.signal, 'SIGKILL');
        await gw.startPdp();
        at.restartedAt = Math.round(performance.now() - t0);
        st.kills.push(at);
      }

      const t0 = performance.now();
      const clients = Array.from({ length: 64 }, (_, c) => client(c));
      try {
        // One or two kills, each restarted at once; the clients go on until
        // 3.5 s in (and at least 0.5 s after the last restart).
        await sleep(200 + rnd() * 400);
        await killAndRestart(1);
        if (rnd() < 0.75) {
          await sleep(rnd() * 300);
          await killAndRestart(2);
        }
        const tEnd = Math.max(3500, performance.now() - t0 + 500);
        while (performance.now() - t0 < tEnd) await sleep(50);
      } finally {
        stop = true;
        await Promise.all(clients);
      }
      log(`A: ${st.ok.length} ok, ${st.budget} budget_exceeded, ${st.unavailable} pdp_unavailable, ` +
        `${st.other.length} other; kills ${JSON.stringify(st.kills)}`);

      // The fault really happened, during the run, with requests in flight.
      assert.ok(st.kills.length >= 1, 'the PDP was never killed');
      assert.ok(st.kills[0].inflight > 0, `no request was in flight when the PDP was killed: ${JSON.stringify(st.kills)}`);
      assert.ok(st.budget > 0, 'the budget was never reached: the run did not push against the limit');
      assert.deepEqual(st.other.slice(0, 20), [], `unexpected answers (${st.other.length})`);

      gw.keepLogs = true;
      const { snap } = await settle(gw, async () => {
        const b = await budgetShow(gw, `tenant:${TENANT}`);
        const s = await gw.spendTenant(TENANT);
        return { spent: b.spent_micro_usd, reserved: b.reserved_micro_usd, requests: s.requests, cost: s.cost_micro_usd };
      });
      const mock = await gw.mockStats();
      const completed = mock.completed - base.completed;
      const upstream = mock.requests - base.requests;
      const recs = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned);
      const { map, dups } = byId(recs);
      const recCost = sum(recs, (r) => r.cost_micro_usd);
      log(`A: limit ${LIMIT}, settled spend ${snap.spent}, reserved ${snap.reserved}, ` +
        `spend-total cost ${snap.cost} for ${snap.requests} requests; usage records ${recs.length} costing ${recCost}; ` +
        `mock: ${upstream} requests, ${completed} completed; clients: ${st.ok.length} x 200`);

      assert.ok(recCost <= LIMIT, `admitted beyond the budget: the usage records cost ${recCost} > limit ${LIMIT} ` +
        `micro-USD (${recs.length} requests admitted, ~${Math.floor(LIMIT / worst)} fit)`);
      assert.ok(snap.spent <= LIMIT, `over the limit: settled spend ${snap.spent} > limit ${LIMIT} micro-USD`);
      assert.deepEqual(dups, [], 'request ids recorded twice');
      const missing = st.ok.filter((o) => !map.has(o.id));
      assert.deepEqual(missing.map((o) => o.id), [], `${missing.length} answered (200) requests have no usage record`);
      assert.equal(recs.length, completed,
        `usage records ${recs.length} != requests the provider completed ${completed}`);
      assert.equal(snap.spent, recCost, `the budget's settled spend ${snap.spent} != sum of the usage records ${recCost}`);
      assert.equal(snap.cost, recCost, `spend total ${snap.cost} != sum of the usage records ${recCost}`);
      assert.equal(snap.requests, recs.length, `spend total counts ${snap.requests} requests, usage records ${recs.length}`);
      // Nothing still held for requests long finished (a held reservation
      // counts a settled request a second time).
      const b = await pollUntil(async () => {
        const x = await budgetShow(gw, `tenant:${TENANT}`);
        return x.reserved_micro_usd === 0 ? x : null;
      }, { timeoutMs: 5000, intervalMs: 250, what: 'no reservation left on the budget' }).catch((e) => e);
      assert.ok(!(b instanceof Error), `reservations left after every request finished: ${b.message}`);
      // Every answer a client saw (served, budget_exceeded, pdp_unavailable)
      // has exactly one decision record, across the kills.
      const dec = await decisionRecords(gw);
      assert.deepEqual(dec.dups, [], 'a request has two decision records');
      const unrecorded = st.answered.filter((id) => !dec.byId.has(id));
      assert.deepEqual(unrecorded.slice(0, 10), [], `${unrecorded.length} of ${st.answered.length} answers have no decision record`);
      const v = await gw.cli(['decisions', 'verify', '--config', gw.cfgPath]);
      assert.match(v.stdout, /^ok:/);
      gw.keepLogs = false;
    });
});

// ========================================================================
// B. PDP paused past the data plane's timeout under a concurrency limit.
// ========================================================================

describe('B: PDP SIGSTOP/SIGCONT under a concurrency limit', () => {
  let gw;
  const PDP_TIMEOUT_MS = 100;
  const PAUSE_MS = 300;
  const LIMIT = 4;

  before(async () => {
    gw = await startGateway({ dataplane: { pdp_timeout_ms: PDP_TIMEOUT_MS } });
  });
  after(async () => {
    gw?.pdp?.resume();
    await gw?.stop();
  });

  test('decisions given up on are abandoned: once it is quiet the whole limit is free and no reservation is left', { timeout: 60_000 }, async () => {
    const { key, id } = await gw.createKey({ tenant: 'fault-b' });
    await gw.cli(['ratelimits', 'set', `key:${id}`, '--concurrent', String(LIMIT), '--config', gw.cfgPath]);
    // Short calls and paced clients: the limit is reached now and then but
    // mostly has free slots, so decisions the PDP answers late (after the
    // pause) would take slots for requests the data plane gave up on.
    const body = (i, ttft = 30) => ({ model: 'mock-small', messages: userMsg(`[[mock chunks=2 ttft_ms=${ttft}]] b${i}`), max_tokens: 10 });
    await pollUntil(async () => (await gw.chat(body('warm', 0), { key })).status === 200,
      { timeoutMs: 10_000, what: 'a first request to pass' });

    const st = { ok: 0, conc: 0, unavailable: 0, other: [], inflight: 0, inflightAtPause: -1, unavailableInPause: 0 };
    let stop = false;
    let paused = false;
    let seq = 0;
    const client = async () => {
      while (!stop) {
        const i = seq++;
        st.inflight++;
        let r;
        try {
          r = await gw.chat(body(i), { key });
        } catch (e) {
          st.other.push(e.message);
          continue;
        } finally {
          st.inflight--;
        }
        if (r.status === 200) {
          st.ok++;
          await sleep(50 + Math.random() * 150);
        } else if (r.status === 429 && r.json?.error?.code === 'rate_limit_exceeded') {
          st.conc++;
          await sleep(20);
        } else if (r.status === 503 && r.json?.error?.code === 'pdp_unavailable') {
          st.unavailable++;
          if (paused) st.unavailableInPause++;
          await sleep(10);
        } else st.other.push(`HTTP ${r.status} ${String(r.text).slice(0, 200)}`);
      }
    };
    const errorsBefore = (await gw.metrics()).tollgate_pdp_errors_total;
    const clients = Array.from({ length: 16 }, client);
    try {
      // Pause at a moment with a request or two in flight (most slots free,
      // so a decision answered after the pause could take one), at most
      // 1 s after the first 400 ms.
      await sleep(400);
      const until = performance.now() + 1000;
      while (performance.now() < until && !(st.inflight >= 1 && st.inflight <= 2)) await sleep(2);
      st.inflightAtPause = st.inflight;
      await gw.pdp.pause();
      paused = true;
      await sleep(PAUSE_MS);
      gw?.pdp?.resume();
      paused = false;
      await sleep(700);
    } finally {
      gw?.pdp?.resume();
      stop = true;
      await Promise.all(clients);
    }
    const m = await pollUntil(async () => {
      const x = await gw.metrics();
      return x.tollgate_inflight_requests === 0 && x.tollgate_usage_spool_pending === 0 ? x : null;
    }, { timeoutMs: 15_000, what: 'nothing in flight and the spool drained' });
    log(`B: ${st.ok} ok, ${st.conc} concurrency 429s, ${st.unavailable} pdp_unavailable ` +
      `(${st.unavailableInPause} while paused), ${st.inflightAtPause} in flight at SIGSTOP, ` +
      `pdp errors +${m.tollgate_pdp_errors_total - errorsBefore}`);

    // The fault happened: requests were in flight and decisions timed out.
    assert.ok(st.inflightAtPause > 0, 'no request was in flight when the PDP was paused');
    assert.ok(st.unavailableInPause > 0, `no decision timed out during the ${PAUSE_MS} ms pause (pdp_timeout_ms ${PDP_TIMEOUT_MS})`);
    assert.deepEqual(st.other.slice(0, 10), [], 'unexpected answers');

    // Nothing in flight now, so the whole limit is free: of LIMIT + 1 slow
    // requests at once exactly LIMIT pass (within a couple of seconds, for
    // the releases to land) and one is refused - never more than LIMIT.
    const tries = [];
    const batch = await pollUntil(async () => {
      const rs = await Promise.all(Array.from({ length: LIMIT + 1 }, (_, j) => gw.chat(body(`q${j}`, 400), { key })));
      const ok = rs.filter((r) => r.status === 200).length;
      const refused = rs.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.json?.error?.message ?? r.text}`);
      tries.push({ ok, refused: refused[0] });
      return ok >= LIMIT ? rs : null;
    }, { timeoutMs: 2500, intervalMs: 100, what: `${LIMIT} requests at once to pass` }).catch((e) => e);
    log(`B: with nothing in flight, ${LIMIT + 1} at once, ${tries.length} tries passed ` +
      `${tries.map((t) => t.ok).join('/')}; last refusal: ${tries.at(-1)?.refused}`);
    const over = tries.filter((t) => t.ok > LIMIT);
    assert.deepEqual(over, [], `more than ${LIMIT} requests admitted at once`);
    assert.ok(!(batch instanceof Error),
      `with nothing in flight only ${tries.at(-1)?.ok} of ${LIMIT} slots are free (slots held by decisions the ` +
      `data plane gave up on), ${tries.length} tries; refused with: ${tries.at(-1)?.refused}`);
    // A slot comes back when the request's usage report reaches the PDP,
    // a moment after its answer: wait for the reports, then one at a time.
    await pollUntil(async () => {
      const x = await gw.metrics();
      return x.tollgate_inflight_requests === 0 && x.tollgate_usage_spool_pending === 0;
    }, { timeoutMs: 10_000, what: 'the batch finished and reported' });
    for (let i = 0; i < 4; i++) {
      const r = await gw.chat(body(`seq${i}`, 0), { key });
      assert.equal(r.status, 200, `sequential request ${i} with nothing in flight: ${r.text}`);
    }
    let lastList;
    const left = await pollUntil(async () => {
      lastList = await openReservations(gw);
      return lastList.length === 0 ? lastList : null;
    }, { timeoutMs: 3000, intervalMs: 200, what: 'no open reservation' }).catch((e) => e);
    assert.ok(!(left instanceof Error), `open reservations remain with nothing in flight: ${left.message}`);
  });
});

// ========================================================================
// C. Data plane kill -9 during streams and non-streams.
// ========================================================================

describe('C: data plane SIGKILL during streams and non-streams', () => {
  let gw;
  const TENANT = 'fault-c';
  const MODEL = 'gpt-4o';
  const STREAMS = 10;
  const STREAM_CHUNKS = 30;
  const LOOPS = 8;
  const NS_CHUNKS = 5;

  before(async () => {
    gw = await startGateway({ deployments: (p) => [mockDeployment('mock-gpt-4o', MODEL, p)] });
  });
  after(async () => {
    await gw?.stop();
  });

  test('after a restart on the same spool: one record per provider call, cut streams charged as estimated, no id twice',
    { timeout: 90_000 }, async () => {
      const rnd = prng(SEED ^ 0xc);
      const { key } = await gw.createKey({ tenant: TENANT });
      const base = await gw.mockStats();
      const auth = { authorization: `Bearer ${key}` };
      const reqs = [];
      let killed = false;

      const streamOne = async (i) => {
        const messages = userMsg(`[[mock chunks=${STREAM_CHUNKS} chunk_delay_ms=100]] stream ${i}`);
        const rec = { kind: 'stream', i, messages, id: null, status: null, content: 0, done: false, error: null };
        reqs.push(rec);
        try {
          const s = await openStream(gw.port, { headers: auth, body: { model: MODEL, messages, stream: true } });
          rec.status = s.status;
          rec.id = s.headers['x-request-id'] ?? null;
          const r = await readSse(s.res, s.t0, {
            onEvent: (e) => {
              if (e.json?.choices?.[0]?.delta?.content) rec.content++;
            },
          });
          rec.done = !r.error && r.events.at(-1)?.data === '[DONE]';
          rec.error = r.error?.message ?? null;
        } catch (e) {
          rec.error = e.message;
        }
      };
      const loop = async (c) => {
        for (let j = 0; !killed; j++) {
          const messages = userMsg(`[[mock chunks=${NS_CHUNKS} ttft_ms=${100 + Math.floor(rnd() * 500)}]] ns ${c}/${j}`);
          const rec = { kind: 'nonstream', messages, id: null, status: null, done: false, error: null };
          reqs.push(rec);
          try {
            const r = await gw.chat({ model: MODEL, messages, max_tokens: 50 }, { key });
            rec.status = r.status;
            rec.id = r.headers['x-request-id'] ?? null;
            rec.done = r.status === 200;
            if (!rec.done) rec.error = `HTTP ${r.status} ${r.text.slice(0, 200)}`;
          } catch (e) {
            rec.error = e.message;
            return; // the data plane is gone: this client stops
          }
        }
      };

      const streams = Array.from({ length: STREAMS }, (_, i) => streamOne(i));
      const loops = Array.from({ length: LOOPS }, (_, c) => loop(c));
      // Kill once most streams are mid-way and non-streams are in flight.
      await pollUntil(() => reqs.filter((r) => r.kind === 'stream' && r.content >= 3).length >= STREAMS / 2 &&
        reqs.some((r) => r.kind === 'nonstream' && r.done),
      { timeoutMs: 20_000, what: 'streams under way and non-streams answered' });
      await sleep(rnd() * 300);
      const atKill = {
        streamsUnderWay: reqs.filter((r) => r.kind === 'stream' && r.content > 0 && !r.done && !r.error).length,
        nonstreamsInFlight: reqs.filter((r) => r.kind === 'nonstream' && r.status === null && !r.error).length,
      };
      killed = true;
      await killDataplane(gw);
      await Promise.all([...streams, ...loops]);
      const mockAtKill = await gw.mockStats();
      await startDataplane(gw);
      // The restarted data plane's own requests: new ids, their own records.
      const afterRestart = [];
      for (let j = 0; j < 3; j++) {
        const messages = userMsg(`[[mock chunks=${NS_CHUNKS}]] after restart ${j}`);
        const r = await gw.chat({ model: MODEL, messages, max_tokens: 50 }, { key });
        assert.equal(r.status, 200, `a request after the restart: ${r.text}`);
        afterRestart.push({ kind: 'nonstream', messages, id: r.headers['x-request-id'], status: 200, done: true });
      }
      const oldIds = new Set(reqs.map((r) => r.id).filter(Boolean));
      assert.deepEqual(afterRestart.filter((r) => oldIds.has(r.id)).map((r) => r.id), [],
        'the restarted data plane reuses request ids of the one killed');
      reqs.push(...afterRestart);

      gw.keepLogs = true;
      const { snap } = await settle(gw, async () => {
        const s = await gw.spendTenant(TENANT);
        return { requests: s.requests, cost: s.cost_micro_usd };
      });
      const mock = await gw.mockStats();
      const upstream = mock.requests - base.requests;
      const completed = mock.completed - base.completed;
      const all = await usageRecords(gw, { tenant: TENANT });
      const recs = all.filter((r) => !r.abandoned);
      const { map, dups } = byId(recs);
      const finished = reqs.filter((r) => r.done);
      const cut = reqs.filter((r) => r.kind === 'stream' && !r.done && r.id && r.content > 0);
      const cutNs = reqs.filter((r) => r.kind === 'nonstream' && !r.done && r.error);
      log(`C: seed ${SEED}; at the kill ${JSON.stringify(atKill)}; ${reqs.length} requests sent, ` +
        `${finished.length} finished, ${cut.length} streams cut (with id), ${cutNs.length} non-streams cut; ` +
        `mock ${upstream} requests, ${completed} completed (at kill: ${mockAtKill.requests - base.requests}/` +
        `${mockAtKill.completed - base.completed}); usage records ${recs.length} ` +
        `(${recs.filter((r) => r.estimated).length} estimated), spend total ${JSON.stringify(snap)}; dir ${gw.dir}`);
      const cutRec = cut.map((r) => map.get(r.id)).find(Boolean);
      if (cutRec) {
        log(`C: e.g. a cut stream's record: ${JSON.stringify((({ request_id, estimated, prompt_tokens, completion_tokens,
          cost_micro_usd }) => ({ request_id, estimated, prompt_tokens, completion_tokens, cost_micro_usd }))(cutRec))}`);
      }

      // The fault happened: streams were cut and non-streams were in flight.
      assert.ok(cut.length >= 3, `only ${cut.length} streams were cut by the kill`);
      assert.ok(cutNs.length >= 1 || atKill.nonstreamsInFlight >= 1, 'no non-stream was in flight at the kill');

      assert.deepEqual(dups, [], 'request ids recorded twice');
      const expected = (r) => [promptTokens(r.messages), r.kind === 'stream' ? STREAM_CHUNKS : NS_CHUNKS];
      const badFinished = finished.filter((r) => {
        const u = map.get(r.id);
        return !u || u.estimated || u.prompt_tokens !== expected(r)[0] || u.completion_tokens !== expected(r)[1];
      }).map((r) => `${r.kind} ${r.id}: ${JSON.stringify(map.get(r.id) ?? null)}`);
      assert.deepEqual(badFinished, [], 'finished requests without their exact (provider-reported) usage record');
      const badCut = cut.filter((r) => {
        const u = map.get(r.id);
        return !u || !u.estimated || !(u.prompt_tokens > 0) || !(u.cost_micro_usd > 0);
      }).map((r) => `${r.id} (${r.content} chunks seen): ${JSON.stringify(map.get(r.id) ?? null)}`);
      assert.deepEqual(badCut, [], `streams cut by the kill must be charged as estimated, never zero (${badCut.length} of ${cut.length})`);
      assert.ok(recs.length >= upstream,
        `${upstream} requests reached the provider but there are only ${recs.length} usage records`);
      assert.ok(recs.length <= reqs.length, `${recs.length} usage records for ${reqs.length} requests sent`);
      assert.ok(recs.filter((r) => !r.estimated).length <= completed,
        'more provider-reported records than requests the provider completed');
      assert.equal(snap.requests, recs.length, `spend total counts ${snap.requests} requests, usage records ${recs.length}`);
      assert.equal(snap.cost, sum(recs, (r) => r.cost_micro_usd), 'spend total cost != sum of the usage records');
      // Every request the client got an answer for (whole or cut) has one
      // decision record; a cut stream's says what was decided.
      const dec = await decisionRecords(gw);
      assert.deepEqual(dec.dups, [], 'a request has two decision records');
      const seen = reqs.filter((r) => r.id);
      const unrecorded = seen.filter((r) => !dec.byId.has(r.id)).map((r) => `${r.kind} ${r.id}`);
      assert.deepEqual(unrecorded, [], 'answered requests without a decision record');
      const badCutDec = cut.filter((r) => dec.byId.get(r.id).verdict !== 'allow' ||
        dec.byId.get(r.id).deployment === '').map((r) => JSON.stringify(dec.byId.get(r.id)));
      assert.deepEqual(badCutDec, [], 'a cut stream\'s decision record lost its decision');
      gw.keepLogs = false;
    });
});

// ========================================================================
// D. The data plane's spool on a full disk.
// ========================================================================

/** sendAll sends n requests at once; each promise resolves to a summary. */
function sendAll(gw, n, bodyOf, key) {
  return Array.from({ length: n }, (_, i) => gw.chat(bodyOf(i), { key }).then(
    (r) => ({ i, status: r.status, code: r.json?.error?.code ?? null, id: r.headers['x-request-id'] ?? null, text: r.text, done: true }),
    (e) => ({ i, status: null, error: e.message, done: true }),
  ));
}

describe('D: usage spool on a full disk (served with usage in memory, drained when space returns)', () => {
  let gw;
  let mnt;
  const TENANT = 'fault-d';
  let key;

  before(async () => {
    mnt = await mountTmpfs(8);
    // 3,000 calls at once from one address: above the per-address limit.
    gw = await startGateway({ dataplane: { spool_dir: path.join(mnt, 'spool'), max_connections_per_ip: 8192 } });
    ({ key } = await gw.createKey({ tenant: TENANT }));
  });
  after(async () => {
    gw?.pdp?.resume();
    try {
      fs.rmSync(path.join(mnt ?? '/nonexistent', 'filler'), { force: true });
      await gw?.stop();
    } finally {
      await unmountTmpfs(mnt);
    }
  });

  test('disk full, PDP paused after the decisions: served requests stay pending (honestly), then drain, one record each',
    { timeout: 60_000 }, async () => {
      const N = 48;
      const logAt = gw.dp.stderr().length;
      const filler = fillDisk(mnt);
      try {
        const base = await gw.mockStats();
        const body = (i) => ({ model: 'mock-small', messages: userMsg(`[[mock chunks=3 ttft_ms=2000]] d1-${i}`), max_tokens: 10 });
        const pend = sendAll(gw, N, body, key);
        const results = [];
        pend.forEach((p) => p.then((r) => results.push(r)));
        // Every request decided and at the provider (or refused for lack of
        // memory), then the PDP stops: no report can be acknowledged.
        await pollUntil(async () => {
          const s = await gw.mockStats();
          return s.requests - base.requests + results.filter((r) => r.status !== 200).length >= N;
        }, { timeoutMs: 15_000, intervalMs: 25, what: `all ${N} requests at the mock` });
        const answeredBeforePause = results.filter((r) => r.status === 200).length;
        await gw.pdp.pause();
        const out = await Promise.all(pend);
        const served = out.filter((r) => r.status === 200);
        const bad = out.filter((r) => r.status !== 200 && !(r.status === 503 && r.code === 'usage_spool_full'));
        assert.deepEqual(bad.map((r) => `${r.status} ${r.error ?? r.text}`), [], 'answers other than 200 or 503 usage_spool_full');
        assert.ok(served.length > 0, 'nothing was served');
        assert.equal(answeredBeforePause, 0, 'some requests finished before the PDP was paused (the mock was too fast)');

        // Still full; the spool said it could not write; reports only in memory.
        await sleep(300);
        assert.equal(fs.statfsSync(mnt).bavail, 0, 'the disk is no longer full');
        const dpLog = dpLogSince(gw, logAt);
        assert.match(dpLog, DISK_FULL_RE, 'the data plane never reported a failed spool write (was the disk really full for it?)');
        // Nothing can be acknowledged now, so the gauge must reach (within a
        // second or two) and then keep the number served, and never say 0.
        const samples = [];
        const sample = async () => {
          const m = await gw.metrics();
          samples.push({ pending: m.tollgate_usage_spool_pending, bytes: m.tollgate_usage_spool_bytes });
          return m;
        };
        const reached = await pollUntil(async () => (await sample()).tollgate_usage_spool_pending >= served.length,
          { timeoutMs: 2000, intervalMs: 200, what: 'spool_pending to count every report' }).catch(() => false);
        const kept = [];
        for (let k = 0; k < 3; k++) {
          await sleep(300);
          kept.push((await sample()).tollgate_usage_spool_pending);
        }
        log(`D1: ${served.length} served, ${out.length - served.length} refused (usage_spool_full) with the disk full ` +
          `and the PDP paused; metrics: ${JSON.stringify(samples)}`);
        assert.ok(samples.every((x) => x.pending > 0), `tollgate_usage_spool_pending said 0 with ${served.length} ` +
          `reports unacknowledged: ${JSON.stringify(samples.map((x) => x.pending))}`);
        assert.ok(reached && kept.every((x) => x >= served.length), `tollgate_usage_spool_pending must count the ` +
          `${served.length} unacknowledged reports kept in memory while the disk is full: ${JSON.stringify(samples.map((x) => x.pending))}`);
        assert.ok(samples.every((x) => typeof x.bytes === 'number' && Number.isFinite(x.bytes) && x.bytes > 0),
          `metric tollgate_usage_spool_bytes is missing or 0: ${JSON.stringify(samples.map((x) => x.bytes))}`);

        // Space returns, the PDP resumes: the backlog drains, once each.
        fs.rmSync(filler);
        gw?.pdp?.resume();
        gw.keepLogs = true;
        const { snap } = await settle(gw, async () => (await gw.spendTenant(TENANT)).requests);
        const recs = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned);
        const { map, dups } = byId(recs);
        assert.deepEqual(dups, []);
        const missing = served.filter((r) => !map.has(r.id)).map((r) => r.id);
        assert.deepEqual(missing, [], `${missing.length} served requests have no usage record`);
        for (const r of out.filter((x) => x.status === 503)) assert.ok(!map.has(r.id), `refused ${r.id} has a usage record`);
        assert.equal(recs.length, served.length, `${recs.length} usage records for ${served.length} served requests`);
        assert.equal(snap, recs.length, `spend total counts ${snap} requests`);
        for (const r of served) {
          const u = map.get(r.id);
          assert.deepEqual([u.prompt_tokens, u.completion_tokens, u.estimated], [promptTokens(body(r.i).messages), 3, false],
            `usage of ${r.id}`);
        }
        gw.keepLogs = false;
      } finally {
        // Whatever failed, leave a usable gateway for the next test.
        gw?.pdp?.resume();
        fs.rmSync(filler, { force: true });
      }
    });

  test('a backlog of ~3,000 reports (PDP paused after the decisions, disk full) drains once space returns, one record each',
    { timeout: 150_000 }, async () => {
      const N = Number(process.env.TG_FAULTS_BACKLOG ?? 3000);
      // Every call's answer is due this long after the start: time for an
      // ASan PDP to decide them all, also beside another test file.
      const DUE_MS = 14_000;
      // Start from a quiet gateway whatever the test before left behind.
      gw?.pdp?.resume();
      fs.rmSync(path.join(mnt, 'filler'), { force: true });
      await settle(gw, async () => (await gw.spendTenant(TENANT)).requests);
      const before0 = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned).length;
      const filler = fillDisk(mnt);
      try {
        // N calls held at the provider until DUE_MS: all decided while the
        // PDP runs, all answered while it is paused, so none of their
        // reports can be acknowledged until it resumes.
        const base = await gw.mockStats();
        const out = [];
        const t0 = performance.now();
        const one = async (i) => {
          await sleep(i * 2); // ~500 a second: what an ASan PDP decides
          const ttft = Math.max(0, Math.round(DUE_MS - (performance.now() - t0)));
          const messages = userMsg(`[[mock chunks=1 ttft_ms=${ttft}]] d3-${i}`);
          try {
            const r = await gw.chat({ model: 'mock-small', messages, max_tokens: 5 }, { key });
            out.push({ i, status: r.status, code: r.json?.error?.code ?? null, id: r.headers['x-request-id'], messages, text: r.text });
          } catch (e) {
            out.push({ i, status: null, error: e.message });
          }
        };
        const all = Array.from({ length: N }, (_, i) => one(i));
        let atMock = 0;
        await pollUntil(async () => {
          atMock = (await gw.mockStats()).requests - base.requests;
          return atMock + out.length >= N || performance.now() - t0 > DUE_MS - 1500;
        }, { timeoutMs: DUE_MS + 10_000, intervalMs: 100, what: 'the calls to reach the mock' });
        const answeredBeforePause = out.filter((r) => r.status === 200).length;
        await gw.pdp.pause();
        const tPause = Math.round(performance.now() - t0);
        await Promise.all(all);
        const loadMs = Math.round(performance.now() - t0);
        const served = out.filter((r) => r.status === 200);
        const notDecided = out.filter((r) => r.status === 503 && r.code === 'pdp_unavailable');
        const refused = out.filter((r) => r.status === 503 && r.code === 'usage_spool_full');
        const bad = out.filter((r) => r.status !== 200 && !notDecided.includes(r) && !refused.includes(r));
        // What the PDP has not settled is not acknowledged, so it must be
        // counted as pending (the gauge may take a moment to catch up; the
        // PDP is paused, so nothing settles meanwhile).
        const settledDuring = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned).length - before0;
        const unacked = served.length - settledDuring;
        let m = {};
        await pollUntil(async () => {
          m = await gw.metrics();
          return m.tollgate_usage_spool_pending >= unacked;
        }, { timeoutMs: 2000, intervalMs: 200, what: 'spool_pending to count the backlog' }).catch(() => false);
        log(`D3: ${N} calls, ${atMock} at the mock when the PDP was paused at ${tPause} ms (${answeredBeforePause} ` +
          `answered before), all done at ${loadMs} ms: ${served.length} served, ${notDecided.length} pdp_unavailable, ` +
          `${refused.length} usage_spool_full, ${bad.length} other; ${settledDuring} settled in the PDP, so >= ${unacked} ` +
          `unacknowledged; spool_pending ${m.tollgate_usage_spool_pending}, spool_bytes ${m.tollgate_usage_spool_bytes}, ` +
          `disk free ${diskFree(mnt)}`);
        assert.deepEqual(bad.slice(0, 10).map((r) => `${r.status} ${r.error ?? r.text}`), [], 'unexpected answers');
        assert.equal(fs.statfsSync(mnt).bavail, 0, 'the disk did not stay full');
        assert.ok(unacked >= Math.min(2500, N * 0.8), `only ${unacked} reports were unacknowledged when the PDP was ` +
          `paused and the disk full (${served.length} served): no backlog to drain`);
        assert.ok(m.tollgate_usage_spool_pending >= unacked,
          `the backlog is not counted: spool_pending ${m.tollgate_usage_spool_pending} while at least ${unacked} ` +
          'reports are unacknowledged');
        assert.ok(typeof m.tollgate_usage_spool_bytes === 'number', 'metric tollgate_usage_spool_bytes is missing');

        // Space returns, then the PDP resumes: the backlog drains, once each.
        fs.rmSync(filler);
        gw?.pdp?.resume();
        gw.keepLogs = true;
        const t1 = performance.now();
        const { snap } = await settle(gw, async () => (await gw.spendTenant(TENANT)).requests, { timeoutMs: 90_000 });
        const drainMs = Math.round(performance.now() - t1);
        const recs = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned);
        const { map, dups } = byId(recs);
        log(`D3: drained in ${drainMs} ms; ${recs.length - before0} new usage records for ${served.length} served`);
        assert.deepEqual(dups, []);
        const missing = served.filter((r) => !map.has(r.id));
        assert.equal(missing.length, 0, `${missing.length} served requests have no usage record, e.g. ${missing.slice(0, 3).map((r) => r.id)}`);
        assert.equal(recs.length - before0, served.length, `${recs.length - before0} new records for ${served.length} served`);
        assert.equal(snap, recs.length, `spend total counts ${snap} requests, usage records ${recs.length}`);
        const wrong = served.filter((r) => {
          const u = map.get(r.id);
          return u.prompt_tokens !== promptTokens(r.messages) || u.completion_tokens !== 1 || u.estimated;
        });
        assert.equal(wrong.length, 0, `records with wrong usage, e.g. ${JSON.stringify(wrong.slice(0, 2).map((r) => map.get(r.id)))}`);
        gw.keepLogs = false;
      } finally {
        gw?.pdp?.resume();
        fs.rmSync(filler, { force: true });
      }
    });
});

describe('D: usage spool on a full disk past dataplane.spool_memory_max_bytes', () => {
  let gw;
  let mnt;
  const TENANT = 'fault-d2';
  const CEILING = 16384;

  before(async () => {
    mnt = await mountTmpfs(8);
    gw = await startCheckedGateway({ dataplane: { spool_dir: path.join(mnt, 'spool'), spool_memory_max_bytes: CEILING } });
  });
  after(async () => {
    try {
      fs.rmSync(path.join(mnt ?? '/nonexistent', 'filler'), { force: true });
      await gw?.stop();
    } finally {
      await unmountTmpfs(mnt);
    }
  });

  test('past the memory ceiling requests are refused with 503 usage_spool_full, never served without a record',
    { timeout: 60_000 }, async () => {
      const N = 64;
      const { key } = await gw.createKey({ tenant: TENANT });
      const logAt = gw.dp.stderr().length;
      const filler = fillDisk(mnt);
      const base = await gw.mockStats();
      const body = (i) => ({ model: 'mock-small', messages: userMsg(`[[mock chunks=3 ttft_ms=1000]] d2-${i}`), max_tokens: 10 });
      const out = await Promise.all(sendAll(gw, N, body, key));
      const served = out.filter((r) => r.status === 200);
      const refused = out.filter((r) => r.status === 503 && r.code === 'usage_spool_full');
      const bad = out.filter((r) => r.status !== 200 && !(r.status === 503 && r.code === 'usage_spool_full'));
      const mockMid = await gw.mockStats();
      const m = await gw.metrics();
      log(`D2: ceiling ${CEILING} bytes, ${N} at once with the disk full: ${served.length} served, ${refused.length} ` +
        `usage_spool_full, ${bad.length} other; mock +${mockMid.requests - base.requests} requests; spool_pending ` +
        `${m.tollgate_usage_spool_pending}, spool_bytes ${m.tollgate_usage_spool_bytes}`);
      assert.deepEqual(bad.map((r) => `${r.status} ${r.error ?? r.text}`).slice(0, 10), [], 'answers other than 200 or 503 usage_spool_full');
      assert.equal(fs.statfsSync(mnt).bavail, 0, 'the disk is no longer full');
      assert.match(dpLogSince(gw, logAt), DISK_FULL_RE, 'the data plane never reported a failed spool write');
      assert.ok(refused.length > 0, `the memory ceiling (${CEILING} bytes) was never reached with ${N} requests in flight`);
      assert.ok(served.length > 0, 'nothing was served below the ceiling');
      for (const r of refused) {
        const e = JSON.parse(r.text).error;
        assert.equal(e.code, 'usage_spool_full');
        assert.ok(e.message.length > 0);
      }
      assert.equal(mockMid.requests - base.requests, served.length, 'a refused request reached the provider (or a served one did not)');
      assert.ok(typeof m.tollgate_usage_spool_bytes === 'number', 'metric tollgate_usage_spool_bytes is missing');

      fs.rmSync(filler);
      gw.keepLogs = true;
      const { snap } = await settle(gw, async () => (await gw.spendTenant(TENANT)).requests);
      const recs = (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned);
      const { map } = byId(recs);
      assert.deepEqual(served.filter((r) => !map.has(r.id)).map((r) => r.id), [], 'served requests without a usage record');
      assert.deepEqual(refused.filter((r) => map.has(r.id)).map((r) => r.id), [], 'refused requests with a usage record');
      assert.equal(recs.length, served.length);
      assert.equal(snap, served.length);
      // With space back, nothing is refused for the spool any more.
      const r = await gw.chat(body('after'), { key });
      assert.equal(r.status, 200, r.text);
      gw.keepLogs = false;
    });
});

// ========================================================================
// E. The circuit breaker counts requests, not attempts; libcurl never
//    resends on its own.
// ========================================================================

describe('E: retries and the circuit breaker', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({
      dataplane: {
        first_byte_timeout_ms: 400, retries: 2, retry_backoff_ms: 20, retry_backoff_max_ms: 100,
        cooldown_failures: 3, cooldown_window_ms: 60_000, cooldown_ms: 30_000,
      },
      deployments: (p) => [
        mockDeployment('e-hang', 'e-hang', p),
        mockDeployment('e-drop', 'e-drop', p),
      ],
    });
    ({ key } = await gw.createKey({ tenant: 'fault-e' }));
  });
  after(async () => {
    await gw?.stop();
  });

  const deployment = async (id) => (await httpRequest(gw.port, { path: '/admin/deployments' })).json.deployments.find((d) => d.id === id);

  test('one request that hangs through 3 attempts does not cool the only deployment down (cooldown_failures 3)', async () => {
    const base = await gw.mockStats();
    const t0 = performance.now();
    const r = await gw.chat({ model: 'e-hang', messages: userMsg('[[mock ttft_ms=5000 chunks=2]] hang'), max_tokens: 10 }, { key });
    const took = Math.round(performance.now() - t0);
    const attempts = (await gw.mockStats()).requests - base.requests;
    const d = await deployment('e-hang');
    log(`E1: the hanging request: HTTP ${r.status} ${r.json?.error?.code} after ${took} ms, ${attempts} upstream ` +
      `attempts; deployment then ${JSON.stringify(d)}`);
    assert.notEqual(r.status, 200, 'the hanging request was answered');
    assert.equal(attempts, 3, 'retries=2: the request should have been tried 3 times');
    const ok = await gw.chat({ model: 'e-hang', messages: userMsg('[[mock chunks=2]] fine'), max_tokens: 10 }, { key });
    assert.equal(ok.status, 200, `a normal request right after one failed request: ${ok.text}`);
    const d2 = await deployment('e-hang');
    assert.equal(d2.state, 'ok', `the deployment cooled down after one failed request: ${JSON.stringify(d2)}`);
    const m = await gw.metrics();
    assert.equal(m['tollgate_deployment_up{deployment="e-hang",state="ok"}'], 1);
  });

  test('a connection closed without an answer, retries=2: exactly 3 upstream requests (libcurl resends nothing)', async () => {
    // Warm connections, so libcurl has idle ones to reuse (its own resend
    // happens only on a reused connection).
    const warm = await Promise.all(Array.from({ length: 4 }, () =>
      gw.chat({ model: 'e-drop', messages: userMsg('[[mock chunks=2 ttft_ms=50]] warm'), max_tokens: 10 }, { key })));
    for (const w of warm) assert.equal(w.status, 200, w.text);
    const base = await gw.mockStats();
    const r = await gw.chat({ model: 'e-drop', messages: userMsg('[[mock drop_after=0]] drop'), max_tokens: 10 }, { key });
    const now = await gw.mockStats();
    const upstream = now.requests - base.requests;
    log(`E2: dropped request: HTTP ${r.status} ${r.json?.error?.code}; mock saw ${upstream} requests, ` +
      `${now.dropped - base.dropped} dropped`);
    assert.notEqual(r.status, 200, r.text);
    assert.ok(now.dropped - base.dropped >= 1, 'the mock never dropped a connection');
    assert.equal(upstream, 3, `retries=2 must mean exactly 3 upstream requests, the mock saw ${upstream}`);
    const d = await deployment('e-drop');
    assert.equal(d.state, 'ok', `one failed request cooled the deployment down: ${JSON.stringify(d)}`);
  });
});

// ========================================================================
// F. The PDP's state directory on a full disk.
// ========================================================================

/** An error line of the PDP's state store ("store: write failed in ...",
 * "store: disk full: ..."). */
const STORE_ERR_RE = /\berror\b.*\bstore: /;

describe('F: PDP state directory on a full disk', () => {
  let gw;
  let mnt;
  const TENANT = 'fault-f';
  let key;

  before(async () => {
    // The PDP's LMDB state on a small tmpfs; the data plane's spool stays
    // on the ordinary disk (in the gateway's directory).
    mnt = await mountTmpfs(4);
    gw = await startGateway({ pdp: { state_dir: path.join(mnt, 'pdp-state') } });
    let id;
    ({ key, id } = await gw.createKey({ tenant: TENANT }));
    // A rate limit far above what the test sends: every decision takes a
    // reservation, which the PDP records before it answers.
    await gw.cli(['ratelimits', 'set', `key:${id}`, '--rpm', '1000', '--concurrent', '100', '--config', gw.cfgPath]);
  });
  after(async () => {
    try {
      fs.rmSync(path.join(mnt ?? '/nonexistent', 'filler'), { force: true });
      await gw?.stop();
    } finally {
      await unmountTmpfs(mnt);
    }
  });

  test('reports kept and retried, reserving decisions refused with 503, "disk full" logged once, nothing lost',
    { timeout: 60_000 }, async () => {
      // Tags padded to one length: every request has the same prompt tokens.
      const body = (tag) => ({ model: 'mock-small', messages: userMsg(`[[mock chunks=3 ttft_ms=20]] f-${tag.padEnd(12, '.')}`), max_tokens: 10 });
      const PROMPT = promptTokens(body('x').messages);
      const served = []; // every 200, whatever the phase
      const refused = []; // 503 state_unavailable: the reservation could not be recorded
      const bad = [];
      const tally = (phase, out) => {
        for (const r of out) {
          if (r.status === 200 && r.id) served.push({ ...r, phase });
          else if (r.status === 503 && r.code === 'state_unavailable') refused.push({ ...r, phase });
          else bad.push(`${phase} #${r.i}: ${r.status} ${r.error ?? String(r.text).slice(0, 300)}`);
        }
        return out;
      };
      const nonAbandoned = async () => (await usageRecords(gw, { tenant: TENANT })).filter((r) => !r.abandoned);

      // 1. Space left: served and acknowledged.
      const pre = tally('before', await Promise.all(sendAll(gw, 8, (i) => body(`pre-${i}`), key)));
      assert.deepEqual(pre.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error ?? r.text}`), [],
        'requests refused before the disk was full');
      const { snap: acked } = await settle(gw, nonAbandoned, { timeoutMs: 15_000 });
      assert.equal(acked.length, pre.length, `${acked.length} usage records for ${pre.length} requests served with space left`);

      // 2. The state's filesystem full.
      const logAt = gw.pdp.stderr().length;
      const filler = fillDisk(mnt);
      const tFill = performance.now();
      const freeAtFill = diskFree(mnt);
      const samples = [];
      let fullOut = [];
      try {
        const tFull = performance.now();
        const waves = [];
        for (let w = 0; w < 10; w++) {
          const out = tally('full', await Promise.all(sendAll(gw, 4, (i) => body(`full-${w}-${i}`), key)));
          waves.push(out.map((r) => (r.status === 200 ? '+' : r.status === 503 ? 'x' : '?')).join(''));
          fullOut = fullOut.concat(out);
          samples.push((await gw.metrics()).tollgate_usage_spool_pending);
          await sleep(100);
        }
        // Past the data plane's resend interval (3 s) with nothing new: a
        // report the PDP could not record is still pending now.
        const until = performance.now() + 3500;
        while (performance.now() < until) {
          samples.push((await gw.metrics()).tollgate_usage_spool_pending);
          await sleep(250);
        }
        const m = await gw.metrics();
        const stillFull = fs.statfsSync(mnt).bavail === 0;
        gw.checkAlive();
        const fullServed = fullOut.filter((r) => r.status === 200).length;
        const fullRefused = fullOut.filter((r) => r.status === 503 && r.code === 'state_unavailable').length;
        log(`F: disk full (${freeAtFill} bytes free) for ${Math.round(performance.now() - tFull)} ms: ` +
          `${fullOut.length} requests, ${fullServed} served, ${fullRefused} state_unavailable, ` +
          `${fullOut.length - fullServed - fullRefused} other (waves of 4, + served, x refused: ${waves.join(' ')}); ` +
          `spool_pending samples ${JSON.stringify(samples)}; ` +
          `at the end pending ${m.tollgate_usage_spool_pending}, still full ${stillFull}`);
        assert.deepEqual(bad, [], 'answers other than 200 or 503 state_unavailable');
        assert.equal(freeAtFill, 0, 'the filesystem had space left after filling');
        assert.ok(stillFull, 'the filesystem did not stay full');
        // The fault really happened: a decision was refused, or a report
        // was not acknowledged (still pending after the resend interval).
        assert.ok(fullRefused > 0 || m.tollgate_usage_spool_pending > 0,
          `the full disk changed nothing: all ${fullOut.length} requests served and every report acknowledged`);
        for (const r of fullOut.filter((x) => x.status === 503)) {
          const e = JSON.parse(r.text).error;
          assert.equal(e.code, 'state_unavailable');
          assert.match(e.message, /disk is full/);
        }
      } finally {
        fs.rmSync(filler, { force: true });
      }
      const pdpLogFull = gw.pdp.stderr().slice(logAt);

      // 3. Space back: new requests pass, the backlog drains, once each.
      gw.keepLogs = true;
      const first = await pollUntil(async () => {
        const r = await gw.chat(body('back-0'), { key });
        tally('after', [{ i: 0, status: r.status, code: r.json?.error?.code ?? null, id: r.headers['x-request-id'], text: r.text }]);
        return r.status === 200 ? r : null;
      }, { timeoutMs: 10_000, intervalMs: 250, what: 'a request to pass once space returned' });
      assert.equal(first.status, 200);
      const post = tally('after', await Promise.all(sendAll(gw, 6, (i) => body(`back-${i + 1}`), key)));
      assert.deepEqual(post.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error ?? r.text}`), [],
        'requests refused after space returned');
      const t1 = performance.now();
      const { snap: recs, metrics: mEnd } = await settle(gw, nonAbandoned, { timeoutMs: 20_000 });
      const drainMs = Math.round(performance.now() - t1);
      const all = await usageRecords(gw, { tenant: TENANT });
      const { map, dups } = byId(recs);
      const { dups: dupsAll } = byId(all);
      const pdpLog = gw.pdp.stderr().slice(logAt);
      // What the PDP said about its disk: the disk-full line, and any error
      // its store logged (a failed write however worded: LMDB reports a
      // short write on a full filesystem as EIO, not ENOSPC).
      const fullLines = pdpLog.split('\n').filter((l) => DISK_FULL_RE.test(l) || STORE_ERR_RE.test(l));
      log(`F: drained in ${drainMs} ms (spool_pending ${mEnd.tollgate_usage_spool_pending}); ${served.length} served ` +
        `(${served.filter((r) => r.phase === 'full').length} while full), ${refused.length} refused; ` +
        `${recs.length} usage records (${all.length - recs.length} abandoned); PDP error lines about its store: ` +
        `${fullLines.length}${fullLines.length ? `:\n#   ${fullLines.slice(0, 4).map((l) => l.slice(0, 200)).join('\n#   ')}` : ''}`);

      assert.deepEqual(bad, [], 'unexpected answers');
      assert.equal(mEnd.tollgate_usage_spool_pending, 0);
      assert.deepEqual(dupsAll, [], 'request ids with more than one usage record');
      assert.deepEqual(dups, []);
      const missing = served.filter((r) => !map.has(r.id)).map((r) => `${r.phase} ${r.id}`);
      assert.deepEqual(missing, [], `${missing.length} served requests have no usage record`);
      assert.deepEqual(refused.filter((r) => map.has(r.id)).map((r) => r.id), [], 'refused requests with a usage record');
      assert.equal(recs.length, served.length, `${recs.length} usage records for ${served.length} served requests`);
      // What was acknowledged before the disk filled is still there, unchanged.
      const changed = acked.filter((a) => JSON.stringify(map.get(a.request_id)) !== JSON.stringify(a)).map((a) => a.request_id);
      assert.deepEqual(changed, [], 'acknowledged usage records lost or changed');
      for (const r of served) {
        const u = map.get(r.id);
        assert.deepEqual([u.prompt_tokens, u.completion_tokens, u.estimated], [PROMPT, 3, false], `usage of ${r.id}`);
      }
      // Said, and said once a minute (the test is well under a minute), not
      // once per failed write.
      assert.match(pdpLogFull, /disk full/i, 'the PDP never said its disk is full');
      assert.ok(fullLines.length <= 2, `the PDP logged ${fullLines.length} errors about its full disk in ` +
        `${Math.round((performance.now() - tFill) / 1000)} s (README: 'disk full' once a minute):\n` +
        `${fullLines.slice(0, 8).join('\n')}`);
      // Nothing is held for requests long finished or refused.
      let lastList;
      const left = await pollUntil(async () => {
        lastList = await openReservations(gw);
        return lastList.length === 0 ? lastList : null;
      }, { timeoutMs: 3000, intervalMs: 200, what: 'no open reservation' }).catch((e) => e);
      assert.ok(!(left instanceof Error), `open reservations remain with nothing in flight: ${JSON.stringify(lastList?.slice(0, 3))}`);
      gw.keepLogs = false;
    });
});

// G. Rate windows across a PDP SIGKILL. The PDP writes its rate-limit
// windows to a snapshot about once a second; what was admitted since is
// in its reservation records (open or settled), so a restart right after a
// burst still counts every request of the burst: a key with rpm N that
// used M just before the kill gets exactly N - M more, not N.
describe('G: rate windows across a PDP SIGKILL', () => {
  let gw;
  const RPM = 20;
  const BURST = 14;

  before(async () => {
    gw = await startGateway({ dataplane: { pdp_timeout_ms: 1000 } });
  });
  after(async () => {
    await gw?.stop();
  });

  test('a burst settled just before the kill still counts after the restart: exactly rpm - burst more are admitted', { timeout: 60_000 }, async () => {
    const { key, id } = await gw.createKey({ tenant: 'fault-g' });
    await gw.cli(['ratelimits', 'set', `key:${id}`, '--rpm', String(RPM), '--config', gw.cfgPath]);
    const body = (i) => ({ model: 'mock-small', messages: userMsg(`[[mock chunks=1]] g${i}`), max_tokens: 5 });
    // Wait out the snapshot beat so the burst lands just after a snapshot.
    await sleep(1100);
    const t0 = performance.now();
    const first = await Promise.all(Array.from({ length: BURST }, (_, i) => gw.chat(body(i), { key })));
    const burstMs = performance.now() - t0;
    assert.deepEqual(first.map((r) => r.status), Array(BURST).fill(200),
      `the burst is admitted: ${first.map((r) => r.status)}`);
    // Their usage reports are settled (acked) before the kill.
    await pollUntil(async () => (await gw.metrics()).tollgate_usage_spool_pending === 0,
      { timeoutMs: 5_000, what: 'the burst\'s reports to be acknowledged' });
    const killedAfterMs = performance.now() - t0;
    const r = await gw.killPdp('SIGKILL');
    assert.equal(r.signal, 'SIGKILL');
    log(`G: burst of ${BURST} in ${Math.round(burstMs)} ms, PDP killed ${Math.round(killedAfterMs)} ms after it began`);
    // The fault must hit the window the snapshot had not saved yet.
    assert.ok(killedAfterMs < 1000, `the kill came ${Math.round(killedAfterMs)} ms after the burst: too late to test anything`);
    await gw.startPdp();
    const after = [];
    for (let i = 0; i < RPM; i++) after.push((await gw.chat(body(100 + i), { key })).status);
    const admitted = after.filter((s) => s === 200).length;
    assert.ok(after.every((s) => s === 200 || s === 429), `only 200 and 429 expected: ${after}`);
    assert.equal(admitted, RPM - BURST,
      `after the restart ${admitted} more were admitted; rpm ${RPM} with ${BURST} used allows ${RPM - BURST}: ${after}`);
  });
});
