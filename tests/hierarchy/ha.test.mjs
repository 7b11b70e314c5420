// A central PDP with a standby (pdp.ha) under three sidecars, each with
// its data plane. The invariants: the standby holds every write the
// active acknowledged (usage, leases, reservations), so after the active
// is killed mid-run and the standby promoted, the new active's spend is
// exactly what the provider completed and the budget is never overshot
// (a lease the old active granted is not granted again); and the old
// active cannot come back as a second active, only as the new one's
// standby. It loads the machine: tests/run.sh runs it with the other
// hierarchy tests, alone.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  Proc, PROVIDER_KEY_ENV, freePort, httpRequest, parseMetrics, pollUntil, runBinary,
} from '../integration/harness.mjs';
import {
  BODY, Sidecar, budgetKey, centralMetrics, drained, load, startCentral, waitKey,
} from './topology.mjs';

const LIMIT_USD = 0.03;

/** A standby PDP of central (the same config: bundle, pricing,
 * deployments) on its own state directory and loopback port. */
class Standby {
  constructor(central, port) {
    this.central = central;
    this.port = port;
    this.url = `tcp://127.0.0.1:${port}`;
  }

  async start() {
    this.dir = fs.mkdtempSync('/tmp/tgsb-');
    this.adminPort = await freePort();
    const c = this.central.config;
    this.config = {
      ...c,
      pdp: {
        ...c.pdp,
        listen: [`ipc://${this.dir}/pdp.sock`, this.url],
        state_dir: path.join(this.dir, 'state'),
        admin_listen: `127.0.0.1:${this.adminPort}`,
        ha: { role: 'standby', peer: this.central.upstreamUrl },
      },
    };
    this.cfgPath = path.join(this.dir, 'tollgate.json');
    fs.writeFileSync(this.cfgPath, `${JSON.stringify(this.config, null, 2)}\n`);
    this.pdp = new Proc('standby-pdp', 'tollgate-pdp', ['serve', '--config', this.cfgPath], {
      dir: this.dir, env: { [PROVIDER_KEY_ENV]: '' },
    }).start();
    return this;
  }

  promote(extra = []) {
    return runBinary('tollgate-pdp', ['promote', '--config', this.cfgPath, '--wait', '10', ...extra]);
  }

  async metrics() {
    const r = await httpRequest(this.adminPort, { path: '/metrics' });
    return r.status === 200 ? parseMetrics(r.text) : {};
  }

  async spendTenant(tenant) {
    const r = await runBinary('tollgate-pdp', ['spend', '--config', this.cfgPath, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).tenants.find((t) => t.tenant === tenant) ?? { requests: 0, cost_micro_usd: 0 };
  }
}

/** inSync waits until the active PDP (metrics at adminPort) says its
 * standby holds every write. */
async function inSync(metrics, what) {
  await pollUntil(async () => (await metrics()).tollgate_ha_standby_in_sync === 1,
    { timeoutMs: 30_000, what: `${what}'s standby to be in sync` });
}

describe('a central PDP and its standby under three sidecars', { concurrency: false }, () => {
  let central;
  let sb;
  let scs = [];

  before(async () => {
    const sbPort = await freePort();
    const cport = await freePort();
    central = await startCentral({
      port: cport, ha: { role: 'active', peer: `tcp://127.0.0.1:${sbPort}`, ack_timeout_ms: 2000 },
    });
    sb = await new Standby(central, sbPort).start();
    scs = await Promise.all([1, 2, 3].map((n) => new Sidecar(central, n, {
      url: [central.upstreamUrl, sb.url],
    }).start()));
    await inSync(() => centralMetrics(central), 'the active PDP');
  });

  after(async () => {
    const problems = [];
    for (const sc of scs) await sc.stop().catch((e) => problems.push(e.message));
    if (sb?.pdp.running) {
      const r = await sb.pdp.kill('SIGTERM');
      if (r.code !== 0) problems.push(`${sb.pdp.role} did not stop cleanly:\n${sb.pdp.describe()}`);
      for (const s of central.secrets) {
        if (sb.pdp.stderr().includes(s)) problems.push('the standby logged a secret');
      }
    }
    // The old active, back as a standby, is the central's PDP by then.
    if (central) await central.stop().catch((e) => problems.push(e.message));
    assert.deepEqual(problems, [], 'a process did not stop cleanly');
  });

  test('active killed mid-run, standby promoted: no acknowledged usage lost, no lease honoured twice', async () => {
    const { key, mockBefore, spentBefore } = await budgetKey(central, scs, 'haco', LIMIT_USD);
    await inSync(() => centralMetrics(central), 'the active PDP');
    let killedAt = 0;
    let promotedAt = 0;
    const refusals = [];
    const failover = (async () => {
      await new Promise((f) => setTimeout(f, 2000));
      // The worst moment: the standby stalls (its pulls stop) while
      // reports keep coming, and the active dies before it catches up.
      // Nothing the active acknowledged may be missing from the standby.
      await sb.pdp.pause();
      await new Promise((f) => setTimeout(f, 400));
      await central.killPdp('SIGKILL');
      sb.pdp.resume();
      killedAt = Date.now();
      // It refuses while the active answered moments ago: ask again.
      await pollUntil(async () => {
        const r = await sb.promote();
        if (r.code !== 0) refusals.push(r.stderr.trim());
        return r.code === 0;
      }, { timeoutMs: 30_000, intervalMs: 200, what: 'the standby to accept the promotion' });
      promotedAt = Date.now();
    })();
    // Phase 1: 16 clients across the kill and the promotion.
    const r1 = await load(scs, key, { clients: 16, ms: 8000, stopAfter: 1e9 });
    await failover;
    console.log(`# failover: killed at +0, promoted after ${promotedAt - killedAt} ms ` +
      `(refused ${refusals.length} times first: ${[...new Set(refusals)].join(' | ').slice(0, 300)})`);
    const servedAfter = r1.okAt.filter((t) => t > promotedAt + 200).length;
    // Phase 2: 64 clients until the budget runs out on the new active,
    // while the sidecars still hold slices the old active granted.
    const r2 = await load(scs, key, { clients: 64, ms: 20_000, stopAfter: 3 });
    await drained(scs);
    const spent = await sb.spendTenant('haco');
    const completed = (await central.mockStats()).requests - mockBefore;
    const ok = r1.ok + r2.ok;
    console.log(`# promotion under load: ${r1.ok} admitted in phase 1 (${servedAfter} after the promotion), ` +
      `${r2.ok} in phase 2; refused ${JSON.stringify(r1.refused)} ${JSON.stringify(r2.refused)}; ` +
      `new active's spend ${spent.cost_micro_usd} of ${LIMIT_USD * 1e6} micro-USD over ` +
      `${spent.requests - spentBefore.requests} requests, provider completed ${completed}`);
    assert.ok(servedAfter > 0, 'nothing was served through the promoted standby');
    assert.equal(ok, completed, 'every 200 was a provider-completed request');
    assert.equal(spent.requests - spentBefore.requests, completed,
      'the promoted standby counted every completed request exactly once');
    assert.ok(Object.keys(r2.refused).some((k) => /budget/.test(k)), `the budget never ran out: ${JSON.stringify(r2.refused)}`);
    assert.ok(spent.cost_micro_usd <= LIMIT_USD * 1e6, `overshoot: ${spent.cost_micro_usd}`);
    const m = await sb.metrics();
    assert.equal(m.tollgate_ha_epoch, 1, 'the promotion did not raise the epoch');
  });

  test('the old active cannot come back as a second active; as a standby it copies the new active and follows it', async () => {
    assert.ok(!central.pdp.running, 'the old active is still running');
    const asActive = new Proc('old-active', 'tollgate-pdp', ['serve', '--config', central.cfgPath], {
      dir: central.dir, env: { [PROVIDER_KEY_ENV]: '' },
    }).start();
    const ex = await asActive.exited;
    assert.equal(ex.code, 2, asActive.describe());
    assert.match(asActive.stderr(), /another PDP was promoted over this one/);
    // Started as active with no peer to ask, it serves until the first
    // sidecar's pull says a later epoch: then it refuses everything.
    const cfg = JSON.parse(fs.readFileSync(central.cfgPath, 'utf8'));
    cfg.pdp.ha = { role: 'active' };
    fs.writeFileSync(central.cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    const stale = new Proc('stale-active', 'tollgate-pdp', ['serve', '--config', central.cfgPath], {
      dir: central.dir, env: { [PROVIDER_KEY_ENV]: '' },
    }).start();
    await pollUntil(() => /another PDP was promoted over this one/.test(stale.stderr()),
      { timeoutMs: 15_000, what: 'a sidecar to fence the stale active' });
    // The sidecars dial it too, and still follow the promoted PDP only.
    const k = await runBinary('tollgate-pdp', ['keys', 'create', '--config', sb.cfgPath, '--tenant', 'haco',
      '--format', 'json']);
    const key = JSON.parse(k.stdout).key;
    await waitKey(scs, key);
    assert.match(stale.stderr(), /sidecar sc\d:\d+ follows HA epoch 1, this PDP is at 0/);
    assert.equal((await stale.kill('SIGTERM')).code, 0, stale.describe());
    cfg.pdp.ha = { role: 'standby', peer: sb.url };
    fs.writeFileSync(central.cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    const oldActive = new Proc('old-active-standby', 'tollgate-pdp', ['serve', '--config', central.cfgPath], {
      dir: central.dir, env: { [PROVIDER_KEY_ENV]: '' },
    }).start();
    central.pdp = oldActive; // stopped (and its log checked) by central.stop()
    central.procs.push(oldActive);
    await inSync(() => sb.metrics(), 'the promoted PDP');
    assert.match(oldActive.stderr(), /took a copy of the active's store/);
    // A standby refuses administration: a change made there alone would
    // be lost at the next copy, or differ from the active's.
    const local = await runBinary('tollgate-pdp', ['tenants', 'set', '--config', central.cfgPath, 'on-standby']);
    assert.notEqual(local.code, 0, 'a tenant was created on a standby');
    assert.match(local.stderr + local.stdout, /make the change on the central PDP/);
    // A change on the new active reaches the old one's store.
    const r = await runBinary('tollgate-pdp', ['tenants', 'set', '--config', sb.cfgPath, 'after-failover']);
    assert.equal(r.code, 0, r.stderr);
    await pollUntil(async () => {
      const t = await runBinary('tollgate-pdp', ['tenants', 'list', '--config', central.cfgPath, '--format', 'json']);
      return t.code === 0 && t.stdout.includes('after-failover');
    }, { timeoutMs: 10_000, what: 'the tenant to reach the old active, now a standby' });
    // And it refuses a promotion while the new active answers it.
    const p = await runBinary('tollgate-pdp', ['promote', '--config', central.cfgPath, '--wait', '10']);
    assert.equal(p.code, 1, p.stdout + p.stderr);
    assert.match(p.stderr, /the active PDP answered .* ago; stop it first/);
  });
});

/** pair starts an active central PDP (its own data plane talks to it over
 * ipc) with pdp and ha settings, and its standby, in sync. */
async function pair(pdp, ha = {}) {
  const sbPort = await freePort();
  const central = await startCentral({
    pdp, ha: { role: 'active', peer: `tcp://127.0.0.1:${sbPort}`, ...ha },
  });
  const sb = await new Standby(central, sbPort).start();
  await inSync(() => centralMetrics(central), 'the active PDP');
  return { central, sb };
}

async function unpair({ central, sb }) {
  if (sb?.pdp.running) {
    const r = await sb.pdp.kill('SIGTERM');
    assert.equal(r.code, 0, sb.pdp.describe());
  }
  await central?.stop();
}

/** burst sends n requests from c concurrent clients through the central's
 * own data plane; returns the statuses seen, counted. */
async function burst(central, key, n, c) {
  const seen = {};
  let left = n;
  await Promise.all(Array.from({ length: c }, async () => {
    while (left-- > 0) {
      const r = await central.chat(BODY, { key });
      seen[r.status] = (seen[r.status] ?? 0) + 1;
    }
  }));
  return seen;
}

describe('a central PDP and its standby, data planes asking the active directly', { concurrency: false }, () => {
  test('held replies keep no worker: 16 clients with 2 workers all get through, each decision waiting for the standby', async () => {
    const p = await pair({ workers: 2 });
    try {
      const k = await p.central.createKey({ tenant: 'few' });
      await p.central.cli(['budgets', 'set', 'tenant:few', '--limit-usd', '100', '--window', 'monthly',
        '--config', p.central.cfgPath]);
      const seen = await burst(p.central, k.key, 200, 16);
      const m = await centralMetrics(p.central);
      console.log(`# 2 workers, 16 clients: ${JSON.stringify(seen)}; held ${m.tollgate_ha_held_total}, ` +
        `timeouts ${m.tollgate_ha_ack_timeouts_total}`);
      assert.deepEqual(seen, { 200: 200 });
      assert.ok(m.tollgate_ha_held_total >= 200, 'the decisions did not wait for the standby');
      assert.equal(m.tollgate_ha_ack_timeouts_total, 0, 'the standby was lost under load');
    } finally {
      await unpair(p);
    }
  });

  test('standby paused: "alone" acknowledges without it after ack_timeout_ms, and it catches up', async () => {
    const p = await pair({}, { ack_timeout_ms: 300 });
    try {
      const k = await p.central.createKey({ tenant: 'alone' });
      await p.central.cli(['budgets', 'set', 'tenant:alone', '--limit-usd', '100', '--window', 'monthly',
        '--config', p.central.cfgPath]);
      await p.sb.pdp.pause();
      const seen = await burst(p.central, k.key, 20, 2);
      const m = await centralMetrics(p.central);
      assert.deepEqual(seen, { 200: 20 });
      assert.ok(m.tollgate_ha_ack_timeouts_total > 0, 'nothing waited for the paused standby');
      assert.equal(m.tollgate_ha_standby_in_sync, 0);
      assert.match(p.central.pdp.stderr(), /did not acknowledge within 300 ms; writes are acknowledged without it/);
      // Back, under steady writes (the log's head never waits for it): it
      // is in sync again, and the decisions wait for it again.
      let writing = true;
      const steady = (async () => {
        while (writing) await burst(p.central, k.key, 64, 16);
      })();
      p.sb.pdp.resume();
      try {
        await inSync(() => centralMetrics(p.central), 'the active PDP, once its standby is back under load,');
        const held = (await centralMetrics(p.central)).tollgate_ha_held_total;
        await pollUntil(async () => (await centralMetrics(p.central)).tollgate_ha_held_total > held,
          { timeoutMs: 10_000, what: 'decisions to wait for the standby again' });
      } finally {
        writing = false;
        await steady;
      }
    } finally {
      await unpair(p);
    }
  });

  test('standby paused: "refuse" acknowledges nothing it lacks; the usage waits in the spool and is counted once', async () => {
    const p = await pair({}, { ack_timeout_ms: 300, on_standby_lost: 'refuse' });
    try {
      const k = await p.central.createKey({ tenant: 'strict' });
      await p.central.cli(['budgets', 'set', 'tenant:strict', '--limit-usd', '100', '--window', 'monthly',
        '--config', p.central.cfgPath]);
      const before = (await p.central.mockStats()).requests;
      assert.equal((await p.central.chat(BODY, { key: k.key })).status, 200);
      await p.sb.pdp.pause();
      const r = await p.central.chat(BODY, { key: k.key });
      p.sb.pdp.resume();
      const m = await centralMetrics(p.central);
      assert.equal(r.status, 503, `a decision was acknowledged without the standby: ${r.status} ${r.text}`);
      assert.ok(m.tollgate_ha_refused_total > 0 || m.tollgate_ha_ack_timeouts_total > 0, JSON.stringify(m));
      await inSync(() => centralMetrics(p.central), 'the active PDP, once its standby is back,');
      // The first request's report (refused or not meanwhile) is counted
      // exactly once once the spool delivers it.
      await pollUntil(async () => (await p.central.spendTenant('strict')).requests === 1,
        { timeoutMs: 20_000, what: 'the report to be counted' });
      assert.equal((await p.central.mockStats()).requests - before, 1);
      assert.equal((await p.sb.spendTenant('strict')).requests, 1, 'the standby does not hold the counted report');
    } finally {
      await unpair(p);
    }
  });
});
