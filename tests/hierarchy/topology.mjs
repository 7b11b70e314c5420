// The topology the hierarchy tests share: a central PDP (a Gateway whose
// PDP also listens on loopback TCP), sidecar PDPs each with its data
// plane, and the load and bookkeeping helpers that check their
// invariants.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import {
  Gateway, Proc, PROVIDER_KEY_ENV, freePort, httpRequest, parseMetrics, pollUntil, userMsg,
} from '../integration/harness.mjs';

export const LIMIT_USD = 0.02;
export const BODY = { model: 'gpt-4o-mini', max_tokens: 40, messages: userMsg('hello') };

/** Central: a Gateway whose PDP also listens on loopback TCP for sidecars. */
export async function startCentral({ port, ha, pdp = {} } = {}) {
  const cport = port ?? await freePort();
  const adminPort = await freePort();
  const gw = new Gateway({
    pdp: {
      allow_plain_tcp: true, admin_listen: `127.0.0.1:${adminPort}`, bundle_watch: false, ...(ha ? { ha } : {}), ...pdp,
    },
    bundle: {
      'bundle.json': { name: 'hierarchy', revision: 1 },
      'access.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
    },
  });
  gw.opts.pdp.listen = [gw.ipc, `tcp://127.0.0.1:${cport}`];
  gw.pdpAdminPort = adminPort;
  try {
    await gw.start();
  } catch (e) {
    await gw.abort();
    throw e;
  }
  gw.upstreamUrl = `tcp://127.0.0.1:${cport}`;
  return gw;
}

/** A sidecar PDP and its data plane, configured from the central's config. */
export class Sidecar {
  constructor(central, n, upstream = {}) {
    this.central = central;
    this.n = n;
    this.dir = fs.mkdtempSync(`/tmp/tgsc${n}-`);
    this.ipc = `ipc://${this.dir}/pdp.sock`;
    this.upstream = upstream;
  }

  async start() {
    this.port = await freePort();
    this.adminPort = await freePort();
    const c = this.central.config;
    this.config = {
      pdp: {
        listen: [this.ipc],
        state_dir: path.join(this.dir, 'state'),
        allow_plain_tcp: true,
        admin_listen: `127.0.0.1:${this.adminPort}`,
        drain_timeout_s: 1,
        upstream: {
          url: this.central.upstreamUrl, node_id: `sc${this.n}`,
          lease_ttl_s: 4, lease_use_s: 2, timeout_ms: 400, ...this.upstream,
        },
      },
      dataplane: { ...c.dataplane, listen: `127.0.0.1:${this.port}`, pdp_url: this.ipc,
        spool_dir: path.join(this.dir, 'spool') },
      deployments: c.deployments,
    };
    this.cfgPath = path.join(this.dir, 'tollgate.json');
    fs.writeFileSync(this.cfgPath, `${JSON.stringify(this.config, null, 2)}\n`);
    this.startPdp();
    this.dp = new Proc(`sc${this.n}-dataplane`, 'tollgate-dataplane', ['--config', this.cfgPath], {
      dir: this.dir, env: { [PROVIDER_KEY_ENV]: this.central.providerKey },
    }).start();
    await this.waitReady();
    return this;
  }

  startPdp() {
    this.pdp = new Proc(`sc${this.n}-pdp`, 'tollgate-pdp', ['serve', '--config', this.cfgPath], {
      dir: this.dir, env: { [PROVIDER_KEY_ENV]: '' },
    }).start();
  }

  async waitReady() {
    await pollUntil(async () => {
      if (!this.pdp.running) throw new Error(this.pdp.describe());
      if (!this.dp.running) throw new Error(this.dp.describe());
      return (await httpRequest(this.port, { path: '/readyz' })).status === 200;
    }, { timeoutMs: 30_000, what: `sidecar ${this.n} ready` });
  }

  chat(body, key) {
    return httpRequest(this.port, {
      method: 'POST', path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body,
    });
  }

  async metrics() {
    const r = await httpRequest(this.adminPort, { path: '/metrics' });
    return r.status === 200 ? parseMetrics(r.text) : {};
  }

  async stop() {
    const out = [];
    for (const p of [this.dp, this.pdp]) {
      if (!p?.running) continue;
      const r = await p.kill('SIGTERM');
      // A clean stop, and (ASan builds) nothing leaked.
      assert.ok(r.code === 0 && !r.timedOut, `${p.role} did not stop cleanly:\n${p.describe()}`);
      out.push(r);
    }
    for (const p of [this.dp, this.pdp]) {
      for (const s of this.central.secrets) {
        assert.ok(!p.stderr().includes(s), `${p.role} logged a secret`);
      }
    }
    return out;
  }
}

export async function centralMetrics(central) {
  const r = await httpRequest(central.pdpAdminPort, { path: '/metrics' });
  assert.equal(r.status, 200, r.text);
  return parseMetrics(r.text);
}

/** drained: every sidecar has forwarded everything it owes. */
export async function drained(scs) {
  let last = [];
  await pollUntil(async () => {
    last = await Promise.all(scs.map(async (sc) => {
      const m = await sc.metrics();
      return Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith('tollgate_upstream')));
    }));
    for (const sc of scs) {
      if (!sc.pdp.running) continue;
      const m = await sc.metrics();
      if ((m.tollgate_upstream_forward_pending ?? 1) !== 0) return false;
      if (sc.dp.running) {
        const d = parseMetrics((await httpRequest(sc.port, { path: '/metrics' })).text);
        if ((d.tollgate_usage_spool_pending ?? 1) !== 0) return false;
        // The data plane's spool is empty: its reports are in the sidecar's
        // forward queue, or gone from it: check that once more.
        if (((await sc.metrics()).tollgate_upstream_forward_pending ?? 1) !== 0) return false;
      }
    }
    return true;
  }, { timeoutMs: 30_000, what: 'sidecars to forward every report' }).catch((e) => {
    e.message += `\n${JSON.stringify(last, null, 1)}`;
    throw e;
  });
}

/** load sends requests from `clients` concurrent clients round-robin over
 * the sidecars until every client saw `stopAfter` refusals in a row or
 * `ms` passed; returns {ok, refused: {status: n}}. */
export async function load(scs, key, { clients = 64, ms = 20_000, stopAfter = 3, body = BODY } = {}) {
  const res = { ok: 0, refused: {}, okAt: [], refusedAt: [] };
  const end = Date.now() + ms;
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    let streak = 0;
    for (let i = 0; Date.now() < end && streak < stopAfter; i++) {
      const sc = scs[(c + i) % scs.length];
      if (!sc.dp.running || !sc.pdp.running) continue;
      let r;
      try {
        r = await sc.chat(body, key);
      } catch {
        continue; // a data plane being killed
      }
      if (r.status === 200) {
        res.ok++;
        res.okAt.push(Date.now());
        streak = 0;
      } else {
        const code = r.json?.error?.code ?? '';
        res.refusedAt.push([Date.now(), code]);
        res.refused[`${r.status} ${code}`] = (res.refused[`${r.status} ${code}`] ?? 0) + 1;
        streak++;
        await new Promise((f) => setTimeout(f, 20));
      }
    }
  }));
  return res;
}

/** budgetKey makes a key of a new tenant with a monthly budget of usd on
 * the central PDP and waits until every sidecar knows it and has
 * forwarded everything: returns {key, id} and the figures to measure from
 * (the mock's request count, the tenant's spend). */
export async function budgetKey(central, scs, tenant, usd) {
  const k = await central.createKey({ tenant });
  await central.cli(['budgets', 'set', `tenant:${tenant}`, '--limit-usd', String(usd),
    '--window', 'monthly', '--config', central.cfgPath]);
  await waitKey(scs, k.key);
  await synced(central, scs);
  await drained(scs);
  return { ...k, mockBefore: (await central.mockStats()).requests, spentBefore: await central.spendTenant(tenant) };
}

/** synced waits until every sidecar applied the central PDP's last change
 * (a key and its budget are two changes: a sidecar may hold the first
 * without the second for one pull). */
export async function synced(central, scs) {
  const head = (await centralMetrics(central)).tollgate_repl_head_sequence;
  assert.ok(head > 0, 'the central PDP exports no replication head');
  await pollUntil(async () => {
    for (const sc of scs) {
      if ((await sc.metrics()).tollgate_upstream_applied_sequence < head) return false;
    }
    return true;
  }, { timeoutMs: 10_000, what: `sidecars to apply change ${head}` });
}

/** waitKey polls until every sidecar accepts key (replicated). */
export async function waitKey(scs, key) {
  for (const sc of scs) {
    await pollUntil(async () => (await sc.chat(BODY, key)).status !== 401,
      { timeoutMs: 10_000, what: `sidecar ${sc.n} to know the key` });
  }
}
