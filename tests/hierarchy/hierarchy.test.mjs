// Sidecar PDPs under a central PDP (pdp.upstream): three sidecars, each
// with its data plane, replicate keys, tenants and budgets from one
// central PDP and admit against the leases it grants. The invariants:
// the central PDP's spend is exactly what the provider completed and
// never above the budget (overshoot 0), a key revoked centrally is refused
// everywhere within a bounded time, and kills (central, sidecar) lose or
// double count nothing. It loads the machine (seven processes, 64
// clients), so tests/run.sh runs it alone, after the other suites.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { freePort, httpRequest, pollUntil } from '../integration/harness.mjs';
import {
  BODY, LIMIT_USD, Sidecar, budgetKey, centralMetrics, drained, load, startCentral, synced, waitKey,
} from './topology.mjs';

describe('sidecar PDPs under a central PDP', { concurrency: false }, () => {
  let central;
  let scs = [];

  before(async () => {
    central = await startCentral();
    scs = await Promise.all([1, 2, 3].map((n) => new Sidecar(central, n).start()));
  });

  after(async () => {
    const problems = [];
    for (const sc of scs) await sc.stop().catch((e) => problems.push(e.message));
    if (central) await central.stop();
    assert.deepEqual(problems, [], 'a sidecar did not stop cleanly');
  });

  test('64 clients on three sidecars spend one tenant budget exactly, never over', async () => {
    const { key, mockBefore, spentBefore } = await budgetKey(central, scs, 'acme', LIMIT_USD);
    const r = await load(scs, key);
    await drained(scs);
    const spentAll = await central.spendTenant('acme');
    const spent = { requests: spentAll.requests - spentBefore.requests, cost_micro_usd: spentAll.cost_micro_usd };
    const completed = (await central.mockStats()).requests - mockBefore;
    console.log(`# budget: ${r.ok} admitted, refused ${JSON.stringify(r.refused)}, ` +
      `central spend ${spent.cost_micro_usd} of ${LIMIT_USD * 1e6} micro-USD over ${spent.requests} requests`);
    assert.ok(r.ok > 50, `too few requests admitted: ${r.ok}`);
    assert.ok(Object.keys(r.refused).some((k) => /budget/.test(k)), `the budget never ran out: ${JSON.stringify(r.refused)}`);
    assert.ok(spent.cost_micro_usd <= LIMIT_USD * 1e6, `overshoot: ${spent.cost_micro_usd}`);
    assert.equal(r.ok, completed, 'every 200 was a provider-completed request');
    assert.equal(spent.requests, completed, 'central requests == requests the provider completed');
    // Every sidecar spent from the same budget.
    for (const sc of scs) {
      const m = await sc.metrics();
      console.log(`# sidecar ${sc.n}: ${Object.entries(m).filter(([k]) => k.startsWith('tollgate_upstream')).map(([k, v]) => `${k.slice(18)}=${v}`).join(' ')}`);
      assert.ok(m.tollgate_upstream_leases_granted_total > 0, `sidecar ${sc.n} got no lease`);
    }
  });

  test('a key\'s rate limit is shared by the three sidecars: 64 clients never get more than rpm in a minute', async () => {
    const k = await central.createKey({ tenant: 'rateco' });
    const RPM = 40;
    await central.cli(['ratelimits', 'set', `key:${k.id}`, '--rpm', String(RPM), '--config', central.cfgPath]);
    await synced(central, scs);
    await waitKey(scs, k.key); // one request per sidecar: 3 of the 40
    const r = await load(scs, k.key, { ms: 6000, stopAfter: 4 });
    console.log(`# rpm ${RPM}: ${r.ok} admitted in ~6 s after 3 probes, refused ${JSON.stringify(r.refused)}`);
    assert.ok(r.ok + 3 <= RPM, `${r.ok + 3} requests admitted within a minute under rpm ${RPM}`);
    assert.ok(r.ok + 3 >= RPM / 4, `only ${r.ok + 3} of ${RPM} admitted: the slices stayed stranded`);
    assert.ok(Object.keys(r.refused).some((c) => /rate_limit/.test(c)), JSON.stringify(r.refused));
  });

  test('a key revoked centrally is refused on every sidecar within a bounded time', async () => {
    const k = await central.createKey({ tenant: 'revoco' });
    await waitKey(scs, k.key);
    const t0 = Date.now();
    await central.revokeKey(k.id);
    const seen = scs.map(() => ({}));
    const took = await Promise.all(scs.map(async (sc, i) => {
      await pollUntil(async () => {
        const rr = await sc.chat(BODY, k.key);
        const st = rr.status;
        seen[i][st] = (seen[i][st] ?? 0) + 1;
        if (st === 503) seen[i].why = rr.text.slice(0, 300);
        return st === 401;
      },
        { timeoutMs: 10_000, intervalMs: 10, what: `sidecar ${sc.n} to refuse the revoked key` });
      return Date.now() - t0;
    }));
    console.log(`# revocation seen by the three sidecars after ${took.join(', ')} ms (includes the CLI's own run); answers meanwhile ${JSON.stringify(seen)}`);
    assert.ok(Math.max(...took) < 5000, `revocation took ${Math.max(...took)} ms`);
  });

  test('a change larger than a decision message (a 20,000-term list) reaches every sidecar', async () => {
    const file = path.join(central.dir, 'big-list.txt');
    fs.writeFileSync(file, Array.from({ length: 20000 }, (_, i) => `blocked-term-${i}`).join('\n'));
    await central.cli(['lists', 'set', 'big', '--file', file, '--config', central.cfgPath]);
    await synced(central, scs);
  });

  test('central PDP killed mid-run: sidecars serve on their leases, then refuse; after a restart everything reconciles exactly', async () => {
    const { key, mockBefore, spentBefore } = await budgetKey(central, scs, 'killco', LIMIT_USD);
    let killedAt = 0;
    const killer = (async () => {
      await new Promise((f) => setTimeout(f, 1500));
      await central.killPdp('SIGKILL');
      killedAt = Date.now();
    })();
    const r = await load(scs, key, { clients: 16, ms: 7000, stopAfter: 1e9 });
    await killer;
    const servedAfter = r.okAt.filter((t) => t > killedAt + 50).length;
    const unavailable = r.refusedAt.filter(([t, c]) => t > killedAt && /upstream_unavailable|pdp_unavailable/.test(c)).length;
    console.log(`# central down: ${servedAfter} requests served on leases after the kill, then ${unavailable} refused; ${JSON.stringify(r.refused)}`);
    assert.ok(servedAfter > 0, 'no request was served on the leases after the central PDP died');
    assert.ok(unavailable > 0, 'requests kept being admitted with the central PDP down and its leases spent');
    // Without a connection for 4 s, each sidecar dials the central PDP
    // afresh (nng 1.5's dialer can stop for good when a peer dies
    // mid-handshake).
    for (const sc of scs) {
      await pollUntil(async () => (await sc.metrics()).tollgate_upstream_redials_total >= 1,
        { timeoutMs: 15_000, what: `sidecar ${sc.n} to dial the central PDP afresh` });
      assert.match(sc.pdp.stderr(), /no connection to the central PDP for 4 s; dialling it afresh/);
    }
    await central.startPdp();
    await drained(scs);
    const spent = await central.spendTenant('killco');
    const completed = (await central.mockStats()).requests - mockBefore;
    assert.equal(r.ok, completed, 'every 200 was a provider-completed request');
    assert.equal(spent.requests - spentBefore.requests, completed, 'the central PDP counted every completed request exactly once');
    assert.ok(spent.cost_micro_usd <= LIMIT_USD * 1e6, `overshoot: ${spent.cost_micro_usd}`);
  });

  test('a sidecar killed: its leases go back to the central PDP after their TTL, nothing is counted twice', async () => {
    const { key, mockBefore, spentBefore } = await budgetKey(central, scs, 'scdie', LIMIT_USD);
    const victim = scs[2];
    const killer = (async () => {
      await new Promise((f) => setTimeout(f, 1000));
      await victim.pdp.kill('SIGKILL');
    })();
    const r = await load(scs, key, { clients: 16, ms: 2500, stopAfter: 1e9 });
    await killer;
    const open = (await centralMetrics(central)).tollgate_leases_open;
    // The dead node stops pulling: its leases expire (lease_ttl_s 4) and
    // are freed even though nobody returns them.
    await pollUntil(async () => (await centralMetrics(central)).tollgate_leases_expired_total > 0,
      { timeoutMs: 20_000, what: 'the dead sidecar\'s leases to expire' });
    // Back up: its forward queue and its data plane's spool replay.
    victim.startPdp();
    await victim.waitReady();
    await drained(scs);
    const spent = await central.spendTenant('scdie');
    const completed = (await central.mockStats()).requests - mockBefore;
    console.log(`# sidecar killed: ${open} leases open at the kill; spend ${spent.cost_micro_usd} over ${spent.requests - spentBefore.requests} requests, provider ${completed}`);
    assert.equal(spent.requests - spentBefore.requests, completed, 'every completed request counted once at the central PDP');
    assert.ok(spent.cost_micro_usd <= LIMIT_USD * 1e6, `overshoot: ${spent.cost_micro_usd}`);
  });

  test('a sidecar is read-only: administration goes to the central PDP', async () => {
    const r = await central.cli(['tenants', 'set', '--config', scs[0].cfgPath, 'local-co'], { expectCode: null });
    assert.notEqual(r.code, 0, 'a tenant was created on a replica');
    assert.match(r.stderr + r.stdout, /replica of its upstream; make the change on the central PDP/);
  });
});

describe('a sidecar that never synced', () => {
  test('fails closed: not ready, and no request passes, until the central PDP answers', async () => {
    const central = await startCentral();
    const deadPort = await freePort();
    const sc = new Sidecar({ ...central, config: central.config, upstreamUrl: `tcp://127.0.0.1:${deadPort}`,
      secrets: central.secrets, providerKey: central.providerKey }, 9);
    try {
      const { key } = await central.createKey({ tenant: 'early' });
      sc.start().catch(() => {});
      await new Promise((f) => setTimeout(f, 2500));
      assert.ok(sc.pdp.running, sc.pdp.describe());
      assert.notEqual((await httpRequest(sc.port, { path: '/readyz' })).status, 200);
      const r = await sc.chat(BODY, key);
      assert.equal(r.status, 503, r.text);
      assert.match(sc.pdp.stderr(), /syncing from .* before serving/);
    } finally {
      await sc.stop().catch(() => {});
      if (central.pdp.running) {
        await central.stop();
      } else {
        await central.abort(); // a failure above left it killed: keep that error
      }
    }
  });
});

describe('on_upstream_error: allow', () => {
  test('with the central PDP down, a sidecar spends its emergency allowance, then refuses; every such request is counted and recorded', async () => {
    const central = await startCentral();
    const sc = new Sidecar(central, 7, { on_upstream_error: 'allow', emergency_allowance_usd: 0.0005 });
    try {
      await sc.start();
      const { key, mockBefore, spentBefore } = await budgetKey(central, [sc], 'emco', 1);
      await central.killPdp('SIGKILL');
      // Leases last lease_use_s (2 s); past them, only the allowance.
      await new Promise((f) => setTimeout(f, 2500));
      const r = await load([sc], key, { clients: 4, ms: 4000, stopAfter: 5 });
      const m = await sc.metrics();
      console.log(`# allowance: ${r.ok} served with the central PDP down, refused ${JSON.stringify(r.refused)}; ` +
        `emergency admitted ${m.tollgate_upstream_emergency_admitted_total}, ${m.tollgate_upstream_emergency_micro_usd} micro-USD`);
      assert.ok(m.tollgate_upstream_emergency_admitted_total > 0, 'nothing was admitted on the allowance');
      assert.ok(m.tollgate_upstream_emergency_micro_usd <= 500, 'the allowance was overspent');
      assert.ok(Object.keys(r.refused).some((k) => /upstream_unavailable/.test(k)),
        `the allowance never ran out: ${JSON.stringify(r.refused)}`);
      assert.match(sc.pdp.stderr(), /emergency allowance/);
      await central.startPdp();
      await drained([sc]);
      const cm = await centralMetrics(central);
      const spent = await central.spendTenant('emco');
      const completed = (await central.mockStats()).requests - mockBefore;
      assert.equal(spent.requests - spentBefore.requests, completed, 'every served request reached the central PDP');
      assert.ok(cm.tollgate_emergency_reports_total >= m.tollgate_upstream_emergency_admitted_total,
        'the central PDP did not record the emergency admissions');
    } finally {
      await sc.stop().catch(() => {});
      if (central.pdp.running) {
        await central.stop();
      } else {
        await central.abort(); // a failure above left it killed: keep that error
      }
    }
  });
});
