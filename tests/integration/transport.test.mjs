// transport.test.mjs - the link between data planes and a central PDP, and
// what Kubernetes does to both: mutual TLS (the right CA and name, nothing
// else), certificates replaced in place, three data planes spending one
// budget exactly, a local PDP that is missing (fallback to the central
// one), plain tcp:// refused, the PDP's probe listener, draining on
// SIGTERM (PDP and data plane), a ConfigMap's ..data swap, and sockets on
// a root-owned 0777 volume (an emptyDir).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeCa, makeCert } from './certs.mjs';
import {
  decisionRecords, errorBody, Proc, freePort, httpRequest, mockDeployment, openStream, parseMetrics, pollUntil, promptTokens, readSse,
  runBinary, sleep, startGateway, userMsg,
} from './harness.mjs';

const chatOn = (port, key, body) => httpRequest(port, {
  method: 'POST', path: '/v1/chat/completions',
  headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body,
});

const readyOn = async (port) => (await httpRequest(port, { path: '/readyz' })).status;

const metricsOn = async (port) => parseMetrics((await httpRequest(port, { path: '/metrics' })).text);

// gpt-4o-mini in policies/pricing.json: USD 0.15 in, 0.60 out per 1M tokens.
const worst = (prompt, out) => Math.ceil((prompt * 150000 + out * 600000) / 1e6);
const MSG = userMsg('[[mock chunks=100]] hi');
const MAX = 100;
const WORST = worst(promptTokens(MSG), MAX);
const LIMIT = 10 * WORST;

const budgetBundle = {
  'bundle.json': { name: 'central', revision: 1, default: 'deny' },
  'central.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      { id: 'audit', kind: 'audit', capture: 'metadata' },
      {
        id: 'shared-daily', kind: 'budget', scope: 'tenant', window: 'daily', limit_usd: Number((LIMIT / 1e6).toFixed(6)),
        when: { all: [{ eq: ['tenant.id', 'shared-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
      },
    ],
  },
};

describe('central PDP over mutual TLS', () => {
  let gw;
  let certs;
  let tlsUrl;
  let key;
  const tlsFor = (c, extra = {}) => ({ cert_file: c.cert, key_file: c.key, ca_file: certs.ca.cert, server_name: 'pdp.test', ...extra });

  before(async () => {
    const dir = fs.mkdtempSync('/tmp/tgcert-');
    const ca = makeCa(dir, 'ca');
    const rogue = makeCa(dir, 'rogue');
    certs = {
      dir, ca, rogue,
      pdp: makeCert(dir, ca, 'pdp.test'),
      pdpNext: makeCert(dir, ca, 'pdp-next', { dns: 'pdp.test' }),
      dp: [1, 2, 3, 4].map((i) => makeCert(dir, ca, `dp${i}`, { usage: 'client' })),
      impostor: makeCert(dir, rogue, 'impostor', { usage: 'client' }),
    };
    // The PDP reads the files it is configured with; rotation replaces them.
    fs.copyFileSync(certs.pdp.cert, path.join(dir, 'live.crt'));
    fs.copyFileSync(certs.pdp.key, path.join(dir, 'live.key'));
    tlsUrl = `tls+tcp://127.0.0.1:${await freePort()}`;
    gw = await startGateway({
      bundle: budgetBundle,
      pdpAdmin: true,
      pdp: {
        listen: [tlsUrl],
        tls: { cert_file: path.join(dir, 'live.crt'), key_file: path.join(dir, 'live.key'), client_ca_file: ca.cert },
      },
      dataplane: { pdp_url: tlsUrl, pdp_tls: tlsFor(certs.dp[0]) },
    });
    await gw.setTenant('shared-co', { tier: 'pro' });
    key = (await gw.createKey({ tenant: 'shared-co' })).key;
  });

  after(async () => {
    await gw?.stop();
    if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
  });

  test('a data plane with a certificate of the configured CA is served', async () => {
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('hello over TLS') }, { key });
    assert.equal(r.status, 200, r.text);
    const m = await gw.pdpMetrics();
    assert.ok(m.tollgate_pdp_connections >= 1, JSON.stringify(m));
  });

  test('a client certificate from another CA is refused: that data plane never becomes ready and fails closed', async () => {
    const bad = await gw.addDataplane({ pdp_tls: tlsFor(certs.impostor) }, { waitStatus: 503 });
    await sleep(1500); // several reconnect attempts
    assert.equal(await readyOn(bad.port), 503);
    const r = await chatOn(bad.port, key, { model: 'mock-small', messages: userMsg('let me in') });
    errorBody(r, 503, 'pdp_unavailable');
    // nng gives no reason for a refused handshake: after 10 s the data
    // plane says there is no connection and what to check.
    await pollUntil(() => /no connection for \d+ s\..*pdp\.tls\.client_ca_file/.test(bad.proc.stderr()),
      { timeoutMs: 20_000, what: 'the data plane to say what to check' });
    assert.doesNotMatch(gw.dp.stderr(), /no connection for/);
    assert.match(gw.dp.stderr(), /PDP tls\+tcp:\/\/127\.0\.0\.1:\d+: connected/);
  });

  test('a PDP whose certificate does not name dataplane.pdp_tls.server_name is refused by the data plane', async () => {
    const bad = await gw.addDataplane({ pdp_tls: tlsFor(certs.dp[1], { server_name: 'other.test' }) }, { waitStatus: 503 });
    await sleep(1000);
    assert.equal(await readyOn(bad.port), 503);
  });

  test('three data planes share one tenant budget: 64 clients at once never overspend it', { timeout: 120_000 }, async () => {
    const two = await gw.addDataplane({ pdp_tls: tlsFor(certs.dp[2]) });
    const three = await gw.addDataplane({ pdp_tls: tlsFor(certs.dp[3]) });
    const ports = [gw.port, two.port, three.port];
    const body = { model: 'gpt-4o-mini', messages: MSG, max_tokens: MAX };
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => chatOn(ports[i % 3], key, body)));
    const ok = results.filter((r) => r.status === 200);
    for (const r of results.filter((x) => x.status !== 200)) errorBody(r, 429, 'budget_exceeded');
    assert.ok(ok.length >= 1 && ok.length <= 10, `${ok.length} passed`);
    const s = await pollUntil(async () => {
      const t = await gw.spendTenant('shared-co');
      const pend = await Promise.all(ports.map(async (p) => (await metricsOn(p)).tollgate_usage_spool_pending));
      return pend.every((n) => n === 0) && t.requests >= ok.length ? t : null;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'every spool to drain' });
    assert.ok(s.cost_micro_usd <= LIMIT, `spent ${s.cost_micro_usd} of ${LIMIT}`);
    assert.ok(s.cost_micro_usd > 0);
  });

  test('a data plane whose local PDP is missing falls back to the central one, and says so', async () => {
    const fb = await gw.addDataplane({
      pdp_url: [`ipc://${gw.dir}/no-local-pdp/pdp.sock`, tlsUrl],
      pdp_tls: tlsFor(certs.dp[3]),
    });
    const other = (await gw.createKey({ tenant: 'fallback-co' })).key;
    const r = await chatOn(fb.port, other, { model: 'mock-small', messages: userMsg('decided centrally') });
    assert.equal(r.status, 200, r.text);
    const m = await metricsOn(fb.port);
    assert.equal(m['tollgate_pdp_link_connected{pdp="0"}'], 0);
    assert.equal(m['tollgate_pdp_link_connected{pdp="1"}'], 1);
    assert.ok(m.tollgate_pdp_fallback_decisions_total >= 1, JSON.stringify(m));
    // The usage went to the PDP that decided (and holds the reservation).
    const t = await pollUntil(async () => {
      const x = await gw.spendTenant('fallback-co');
      return x.requests >= 1 ? x : null;
    }, { timeoutMs: 20_000, what: 'the fallback request to be metered centrally' });
    assert.equal(t.requests, 1);
    assert.match(fb.proc.stderr(), /fallback 1: tls\+tcp:\/\/127\.0\.0\.1/);
    // The decision record says it was a fallback; the main data plane's
    // requests (its first PDP) do not.
    const rid = r.headers['x-request-id'];
    const { byId, list } = await decisionRecords(gw);
    assert.equal(byId.get(rid)?.pdp_fallback, 1, JSON.stringify(byId.get(rid)));
    assert.ok(list.some((x) => x.request_id !== rid && x.pdp_fallback === undefined));
  });

  test('stored responses go to dataplane.responses_pdp: the central PDP named second keeps them', async () => {
    const key = (await gw.createKey({ tenant: 'resp-co' })).key;
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    for (const [n, kept] of [[2, true], [1, false]]) {
      const d = await gw.addDataplane({
        pdp_url: [`ipc://${gw.dir}/no-local-pdp/pdp.sock`, tlsUrl],
        pdp_tls: tlsFor(certs.dp[3]),
        responses_pdp: n,
      });
      const r = await httpRequest(d.port, {
        method: 'POST', path: '/v1/responses', headers, body: { model: 'mock-small', input: `keep me ${n}` },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.store, kept, r.text);
      assert.equal(r.headers['x-tollgate-store'], kept ? 'stored' : 'not stored; the PDP could not be reached');
      // The gateway's own data plane talks to the central PDP only.
      const g = await gw.request(`/v1/responses/${r.json.id}`, { key });
      assert.equal(g.status, kept ? 200 : 404, g.text);
      assert.equal((await d.proc.kill('SIGTERM')).code, 0, d.proc.describe());
      gw.extraDps.splice(gw.extraDps.indexOf(d.proc), 1);
    }
  });

  test('local first, central while the local PDP is down, local again once it is back', { timeout: 90_000 }, async () => {
    // A sidecar PDP of its own (own state: without replication it knows
    // only its own keys) before the central one.
    const localCfg = structuredClone(gw.config);
    const sock = `ipc://${gw.dir}/local/pdp.sock`;
    localCfg.pdp = { ...localCfg.pdp, listen: [sock], state_dir: path.join(gw.dir, 'local-state') };
    delete localCfg.pdp.tls;
    delete localCfg.pdp.admin_listen;
    const localPath = path.join(gw.dir, 'local.json');
    fs.writeFileSync(localPath, JSON.stringify(localCfg));
    const startLocal = async () => {
      const p = new Proc('pdp-local', 'tollgate-pdp', ['serve', '--config', localPath], { dir: gw.dir }).start();
      await pollUntil(() => {
        if (!p.running) throw new Error(p.describe());
        return /ready: tollgate-pdp/.test(p.stderr().slice(p.stderrStart));
      }, { timeoutMs: 30_000, what: 'the local PDP to start' });
      return p;
    };
    let local = await startLocal();
    await runBinary('tollgate-pdp', ['tenants', 'set', '--config', localPath, 'local-co']);
    const lk = JSON.parse((await runBinary('tollgate-pdp', ['keys', 'create', '--config', localPath,
      '--tenant', 'local-co', '--format', 'json'])).stdout).key;
    gw.secrets.push(lk);
    const central = (await gw.createKey({ tenant: 'central-co' })).key;
    const dp = await gw.addDataplane({ pdp_url: [sock, tlsUrl], pdp_tls: tlsFor(certs.dp[3]) });
    const ask = (k) => chatOn(dp.port, k, { model: 'mock-small', messages: userMsg('who decides?') });

    await pollUntil(async () => {
      const m = await metricsOn(dp.port);
      return m['tollgate_pdp_link_connected{pdp="0"}'] === 1 && m['tollgate_pdp_link_connected{pdp="1"}'] === 1;
    }, { timeoutMs: 10_000, what: 'both PDP links' });
    assert.equal((await ask(lk)).status, 200, 'the local PDP decides while it is up');
    errorBody(await ask(central), 401, 'invalid_api_key'); // unknown locally
    const fb0 = (await metricsOn(dp.port)).tollgate_pdp_fallback_decisions_total;

    const ex = await local.kill('SIGKILL');
    assert.equal(ex.signal ?? 'SIGKILL', 'SIGKILL');
    await pollUntil(async () => (await metricsOn(dp.port))['tollgate_pdp_link_connected{pdp="0"}'] === 0,
      { timeoutMs: 10_000, what: 'the data plane to see the local PDP gone' });
    const r = await ask(central);
    assert.equal(r.status, 200, `${r.text}\n${JSON.stringify(await metricsOn(dp.port))}\n${dp.proc.stderr()}`);
    assert.ok((await metricsOn(dp.port)).tollgate_pdp_fallback_decisions_total > fb0);
    assert.equal(await readyOn(dp.port), 200, 'ready while one PDP is connected');

    local = await startLocal();
    // Two steps, so a failure says which did not happen: the link comes
    // back (nng redials every <= 500 ms), then the local PDP decides; the
    // last answer and both logs go into the message.
    let last;
    const explain = (e) => {
      throw new Error(`${e.message}\nlast answer: ${last?.status} ${last?.text}\n` +
        `data plane log: ${dp.proc.stderr().slice(-3000)}\nlocal PDP log: ${local.stderr().slice(-2000)}`);
    };
    await pollUntil(async () => (await metricsOn(dp.port))['tollgate_pdp_link_connected{pdp="0"}'] === 1,
      { timeoutMs: 30_000, what: 'the data plane to reconnect to the restarted local PDP' }).catch(explain);
    await pollUntil(async () => (last = await ask(lk)).status === 200,
      { timeoutMs: 30_000, what: 'the local PDP to decide again' }).catch(explain);
    const fb1 = (await metricsOn(dp.port)).tollgate_pdp_fallback_decisions_total;
    assert.equal((await ask(lk)).status, 200);
    assert.equal((await metricsOn(dp.port)).tollgate_pdp_fallback_decisions_total, fb1, 'back on the local PDP');
    // This data plane before its local PDP (as Kubernetes stops them).
    assert.equal((await dp.proc.kill('SIGTERM')).code, 0, dp.proc.describe());
    gw.extraDps.splice(gw.extraDps.indexOf(dp.proc), 1);
    assert.equal((await local.kill('SIGTERM')).code, 0, local.describe());
  });

  test('replacing the PDP certificate files takes effect without a restart', { timeout: 60_000 }, async () => {
    const before = (await gw.pdpMetrics()).tollgate_pdp_tls_reloads_total;
    const dir = certs.dir;
    // An atomic replacement, as the kubelet or cert-manager does it.
    fs.copyFileSync(certs.pdpNext.key, path.join(dir, 'next.key'));
    fs.copyFileSync(certs.pdpNext.cert, path.join(dir, 'next.crt'));
    fs.renameSync(path.join(dir, 'next.key'), path.join(dir, 'live.key'));
    fs.renameSync(path.join(dir, 'next.crt'), path.join(dir, 'live.crt'));
    await pollUntil(async () => (await gw.pdpMetrics()).tollgate_pdp_tls_reloads_total > before,
      { timeoutMs: 20_000, what: 'the PDP to reload its certificate' });
    await pollUntil(async () => (await gw.chat({ model: 'mock-small', messages: userMsg('after rotation') }, { key: (await gw.createKey({ tenant: 'rot-co' })).key })).status === 200,
      { timeoutMs: 20_000, what: 'requests to pass with the new certificate' });
    assert.match(gw.pdp.stderr(), /pdp\.tls certificates reloaded/);

    // A replacement that does not load is refused and changes nothing.
    const k2 = (await gw.createKey({ tenant: 'rot-co' })).key;
    fs.writeFileSync(path.join(dir, 'bad.crt'), '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n');
    fs.renameSync(path.join(dir, 'bad.crt'), path.join(dir, 'live.crt'));
    await pollUntil(() => /pdp\.tls changed but cannot be used: .*live\.crt/.test(gw.pdp.stderr()),
      { timeoutMs: 20_000, what: 'the PDP to refuse the broken certificate' });
    for (let i = 0; i < 5; i++) {
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('still the old pair') }, { key: k2 });
      assert.equal(r.status, 200, r.text);
    }
    fs.copyFileSync(certs.pdpNext.cert, path.join(dir, 'live.crt'));

    // The data plane's own pair is replaced in place too.
    for (const [from, to] of [[certs.dp[2].cert, 'dplive.crt'], [certs.dp[2].key, 'dplive.key']]) {
      fs.copyFileSync(from, path.join(dir, to));
    }
    const live = await gw.addDataplane({ pdp_tls: tlsFor({ cert: path.join(dir, 'dplive.crt'), key: path.join(dir, 'dplive.key') }) });
    fs.copyFileSync(certs.dp[3].key, path.join(dir, 'dpnext.key'));
    fs.copyFileSync(certs.dp[3].cert, path.join(dir, 'dpnext.crt'));
    fs.renameSync(path.join(dir, 'dpnext.key'), path.join(dir, 'dplive.key'));
    fs.renameSync(path.join(dir, 'dpnext.crt'), path.join(dir, 'dplive.crt'));
    await pollUntil(() => /dataplane\.pdp_tls certificates reloaded/.test(live.proc.stderr()),
      { timeoutMs: 20_000, what: 'the data plane to reload its certificate' });
    await pollUntil(async () => (await chatOn(live.port, k2, { model: 'mock-small', messages: userMsg('new client pair') })).status === 200,
      { timeoutMs: 20_000, what: 'requests through the data plane with its new pair' });
  });
});

describe('plain tcp:// and TLS settings are checked before anything starts', () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync('/tmp/tgcfg-');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = async (name, cfg) => {
    const p = path.join(dir, `${name}.json`);
    fs.writeFileSync(p, JSON.stringify({
      pdp: { listen: [`ipc://${dir}/s/pdp.sock`], state_dir: path.join(dir, 'state'), ...cfg.pdp },
      dataplane: { listen: '127.0.0.1:1', pdp_url: `ipc://${dir}/s/pdp.sock`, spool_dir: path.join(dir, 'spool'), ...cfg.dataplane },
      deployments: [mockDeployment('m', 'm', 1)],
      ...cfg.top,
    }, null, 2));
    const bin = cfg.pdp ? 'tollgate-pdp' : 'tollgate-dataplane';
    return runBinary(bin, bin === 'tollgate-pdp' ? ['serve', '--config', p] : ['--config', p], { timeoutMs: 20_000 });
  };

  test('a data plane refuses plain tcp:// to another host', async () => {
    const r = await run('dp-tcp', { dataplane: { pdp_url: 'tcp://10.1.2.3:7070' } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /dp-tcp\.json:\d+:\d+: dataplane\.pdp_url: tcp:\/\/10\.1\.2\.3:7070 is plain tcp:\/\/.*tls\+tcp:\/\//);
  });

  test('plain tcp:// to loopback needs pdp.allow_plain_tcp', async () => {
    const r = await run('pdp-tcp', { pdp: { listen: ['tcp://127.0.0.1:7999'] } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pdp\.listen: tcp:\/\/127\.0\.0\.1:7999 is plain tcp:\/\/.*allow_plain_tcp/);
    const r2 = await run('pdp-tcp-any', { pdp: { listen: ['tcp://0.0.0.0:7999'], allow_plain_tcp: true } });
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /only to a loopback address/);
  });

  test('a tls+tcp:// listener without pdp.tls, and unknown keys in pdp.tls, are errors with file:line', async () => {
    const r = await run('pdp-notls', { pdp: { listen: ['tls+tcp://0.0.0.0:7999'] } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pdp-notls\.json:\d+:\d+: pdp\.listen: a tls\+tcp:\/\/ listener needs "tls"/);
    const r2 = await run('pdp-tlskey', { pdp: { listen: ['tls+tcp://0.0.0.0:7999'], tls: { cert_file: 'a', key_file: 'b', client_ca_file: 'c', ca_file: 'd' } } });
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /pdp-tlskey\.json:\d+:\d+: .*ca_file/);
    const r3 = await run('dp-notls', { dataplane: { pdp_url: ['ipc:///x/y.sock', 'tls+tcp://pdp:7070'] } });
    assert.equal(r3.code, 2, r3.stderr);
    assert.match(r3.stderr, /needs "pdp_tls"/);
  });

  test('a certificate file that is missing is named in the error', async () => {
    const r = await run('pdp-nofile', { pdp: { listen: ['tls+tcp://127.0.0.1:7998'], tls: { cert_file: 'none.crt', key_file: 'none.key', client_ca_file: 'none-ca.crt' } } });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /pdp\.tls: cannot read .*none-ca\.crt/);
  });
});

describe('probes and draining', () => {
  let gw;
  let probe;
  let key;

  before(async () => {
    probe = await freePort();
    gw = await startGateway({
      pdp: { probe_listen: `127.0.0.1:${probe}`, drain_timeout_s: 6 },
      dataplane: { drain_timeout_s: 20, drain_accept_s: 3 },
    });
    key = (await gw.createKey({ tenant: 'drain-co' })).key;
  });

  after(async () => {
    await gw?.stop();
  });

  test('the PDP probe listener answers probes and metrics, never the admin API', async () => {
    assert.equal((await httpRequest(probe, { path: '/readyz' })).status, 200);
    assert.equal((await httpRequest(probe, { path: '/healthz' })).status, 200);
    const m = await httpRequest(probe, { path: '/metrics' });
    assert.equal(m.status, 200);
    assert.match(m.text, /tollgate_pdp_decisions_total/);
    const a = await httpRequest(probe, { path: '/admin/v1/tenants', headers: { authorization: 'Bearer x' } });
    assert.equal(a.status, 404);
    assert.match(a.text, /pdp\.admin_listen/);
  });

  test('SIGTERM to the PDP: it stops being ready at once, keeps deciding while a data plane is connected, then exits 0', { timeout: 60_000 }, async () => {
    const t0 = Date.now();
    gw.signalPdp('SIGTERM');
    await pollUntil(async () => (await httpRequest(probe, { path: '/readyz' })).status === 503,
      { timeoutMs: 3000, what: 'the PDP readiness to fail' });
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('during the PDP drain') }, { key });
    assert.equal(r.status, 200, r.text);
    const ex = await gw.pdp.exited;
    assert.equal(ex.code, 0, gw.pdp.describe());
    assert.ok(Date.now() - t0 >= 4000, 'the PDP left before its drain time with a data plane connected');
    assert.match(gw.pdp.stderr(), /draining: 1 data plane connection/);
    await gw.startPdp();
  });

  test('SIGTERM to the data plane: readiness fails, a stream in flight ends whole, new work is taken for drain_accept_s, then it exits 0', { timeout: 60_000 }, async () => {
    // About 6 s of stream: still going when the accept window (3 s) ends.
    const body = { model: 'mock-small', stream: true, messages: userMsg('[[mock chunks=50 chunk_delay_ms=120]] long answer') };
    const s = await openStream(gw.port, { headers: { authorization: `Bearer ${key}` }, body });
    assert.equal(s.status, 200);
    const reading = readSse(s.res, s.t0, { timeoutMs: 30_000 });
    await sleep(300);
    gw.dp.child.kill('SIGTERM');
    await pollUntil(async () => (await gw.readyz()) === 503, { timeoutMs: 2000, what: 'the data plane readiness to fail' });
    // Within drain_accept_s a new request is still served.
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('just in time') }, { key });
    assert.equal(r.status, 200, r.text);
    const got = await reading;
    assert.equal(got.error, undefined, `the stream was cut: ${got.error}`);
    assert.equal(got.events.at(-1).data, '[DONE]');
    assert.ok(got.tEnd > 5000, `the stream ended after ${got.tEnd} ms`);
    // After the accept window, new requests are not taken.
    const late = await gw.chat({ model: 'mock-small', messages: userMsg('too late') }, { key }).catch((e) => ({ error: e }));
    assert.ok(late.error || late.status === 503, `a request after the window got ${late.status}`);
    const ex = await gw.dp.exited;
    assert.equal(ex.code, 0, gw.dp.describe());
    assert.match(gw.dp.stderr(), /draining: nothing in flight/);
    gw.dp = null; // stopped and checked here; stop() checks the rest
  });
});

describe('a policy bundle mounted from a ConfigMap', () => {
  let gw;
  let cm;
  const files = (rev) => ({
    'bundle.json': JSON.stringify({ name: 'cm', revision: rev, default: 'deny' }),
    'cm.policy.json': JSON.stringify({ rules: [{ id: `allow-r${rev}`, kind: 'access', effect: 'allow' }] }),
  });
  // The kubelet's layout: the files are symlinks through ..data, which
  // points at a timestamped directory and is swapped by one rename.
  const publish = (rev) => {
    const ts = `..2026_12_07_00_00_0${rev}.123456`;
    fs.mkdirSync(path.join(cm, ts));
    for (const [n, text] of Object.entries(files(rev))) fs.writeFileSync(path.join(cm, ts, n), text);
    fs.symlinkSync(ts, path.join(cm, '..data_tmp'));
    fs.renameSync(path.join(cm, '..data_tmp'), path.join(cm, '..data'));
    for (const n of Object.keys(files(rev))) {
      if (!fs.existsSync(path.join(cm, n))) fs.symlinkSync(`..data/${n}`, path.join(cm, n));
    }
    return ts;
  };

  before(async () => {
    const dir = fs.mkdtempSync('/tmp/tgit-');
    cm = path.join(dir, 'cm');
    fs.mkdirSync(cm);
    publish(1);
    gw = await startGateway({ dir, pdp: { bundle: cm } });
  });

  after(async () => {
    await gw?.stop();
  });

  test('the watcher follows the ..data swap: the new revision serves without a reload', { timeout: 30_000 }, async () => {
    const { key } = await gw.createKey({ tenant: 'cm-co' });
    const rev = async () => {
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('which revision?') }, { key });
      assert.equal(r.status, 200, r.text);
      return Number(String(r.headers['x-tollgate-policy-revision']).split(';')[0]);
    };
    assert.equal(await rev(), 1);
    const old = fs.readlinkSync(path.join(cm, '..data'));
    publish(2);
    fs.rmSync(path.join(cm, old), { recursive: true });
    await pollUntil(async () => (await rev()) === 2, { timeoutMs: 10_000, what: 'revision 2 to serve' });
  });
});

describe('sockets on a volume writable by everyone (a Kubernetes emptyDir)', () => {
  test('refused unless the config lists it in private_volumes; then served', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync('/tmp/tgit-');
    const vol = path.join(dir, 'vol');
    fs.mkdirSync(vol);
    fs.chmodSync(vol, 0o777);
    const sock = `ipc://${vol}/pdp/pdp.sock`;
    const cfgPath = path.join(dir, 'plain.json');
    fs.writeFileSync(cfgPath, JSON.stringify({
      pdp: { listen: [sock], state_dir: path.join(vol, 'state') },
      dataplane: { listen: '127.0.0.1:1', pdp_url: sock, spool_dir: path.join(dir, 'spool') },
      deployments: [mockDeployment('m', 'm', 1)],
    }));
    const refused = await runBinary('tollgate-pdp', ['serve', '--config', cfgPath], { timeoutMs: 20_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`inside ${vol} \\(mode 0777\\)`));

    const gw = await startGateway({
      dir,
      top: { private_volumes: [vol] },
      pdp: { listen: [sock], state_dir: path.join(vol, 'state') },
      dataplane: { pdp_url: sock, spool_dir: path.join(vol, 'spool') },
    });
    try {
      const { key } = await gw.createKey({ tenant: 'vol-co' });
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('through the volume') }, { key });
      assert.equal(r.status, 200, r.text);
      assert.equal(fs.statSync(path.join(vol, 'pdp')).mode & 0o777, 0o700);
    } finally {
      await gw.stop();
    }
  });
});

describe('the admin API over HTTPS (pdp.admin_tls)', () => {
  test('the admin listener speaks TLS only, and the command line reaches it with the configured CA', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync('/tmp/tgcert-');
    const ca = makeCa(dir, 'admin-ca');
    const srv = makeCert(dir, ca, 'localhost', { ip: '127.0.0.1' });
    const port = await freePort();
    const gw = await startGateway({
      bundle: budgetBundle,
      pdp: { admin_listen: `127.0.0.1:${port}`, admin_tls: { cert_file: srv.cert, key_file: srv.key, ca_file: ca.cert } },
    });
    try {
      // `reload` finds the running PDP from the config: https, the CA.
      const r = await gw.reloadPdp({ expectCode: 0 });
      assert.match(r.stdout, /reloaded|unchanged|already/);
      // Plain HTTP to that port gets no answer.
      const plain = await httpRequest(port, { path: '/readyz', timeoutMs: 3000 }).catch((e) => ({ error: e }));
      assert.ok(plain.error || plain.status !== 200, `plain HTTP answered ${plain.status}`);
      // Without the CA the certificate is not trusted.
      const url = `https://localhost:${port}`;
      const bad = await runBinary('tollgate-pdp', ['tenants', 'list', '--url', url], {
        env: { TOLLGATE_ADMIN_TOKEN: 'x', TOLLGATE_ADMIN_CA: '' },
      });
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /cannot reach the admin API.*(certificate|SSL)/i);
    } finally {
      await gw.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
