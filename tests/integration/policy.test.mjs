// policy.test.mjs - the PDP serving a policy bundle: what clients see when
// a rule allows or denies, where a route rule sends them, and how a bundle
// is rolled out: `tollgate-pdp reload` under load without a failed request,
// refusals (compile error, failing test, lower revision) that leave traffic
// on the old revision, rollback on purpose, SIGHUP, a change in the
// directory, and the history of all of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';

import {
  DEAD_PORT, errorBody, mockDeployment, pollUntil, runBinary, startGateway, userMsg, writeBundleFiles,
} from './harness.mjs';

const ALLOW_ALL = { id: 'allow-all', kind: 'access', effect: 'allow' };

/** bundle builds the files of a bundle at revision rev. extraRules are
 * appended; tests replace the passing test file when given. */
function bundle(rev, { extraRules = [], tests, message = 'The free tier may not use gpt-4o-mini.' } = {}) {
  return {
    'bundle.json': { name: 'it', revision: rev, default: 'deny' },
    'access.policy.json': {
      rules: [
        ALLOW_ALL,
        {
          id: 'free-no-mini',
          kind: 'access',
          effect: 'deny',
          on_error: 'skip', // keys of tenants without a record have no tier
          when: { all: [{ eq: ['tenant.tier', 'free'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
          status: 403,
          code: 'tier_model_denied',
          message,
        },
        {
          id: 'ci-keys-limited',
          kind: 'access',
          effect: 'deny',
          on_error: 'skip',
          when: { eq: ['principal.labels.env', 'ci'] },
          status: 429,
          code: 'ci_quota',
          message: 'CI keys are paused.',
        },
        ...extraRules,
      ],
    },
    'routing.policy.json': {
      rules: [
        { id: 'routed-live-only', kind: 'route', when: { eq: ['request.model', 'routed'] }, deployments: ['r-live'] },
        { id: 'pinned-dead-only', kind: 'route', when: { eq: ['request.model', 'pinned'] }, deployments: ['p-dead'] },
        { id: 'audit-everything', kind: 'audit', mode: 'audit', capture: 'metadata' },
      ],
    },
    'access.test.json': tests ?? {
      tests: [
        {
          name: 'free tier is refused gpt-4o-mini',
          input: { tenant: { id: 't', tier: 'free' }, request: { endpoint: 'chat', model: 'gpt-4o-mini' } },
          expect: { decision: 'deny', status: 403, code: 'tier_model_denied' },
        },
        {
          name: 'pro tier may use it',
          input: { tenant: { id: 't', tier: 'pro' }, request: { endpoint: 'chat', model: 'gpt-4o-mini' } },
          expect: { decision: 'allow' },
        },
      ],
    },
  };
}

// x-tollgate-policy-revision: 7; hash=ab12cd34 -> 7 (NaN when malformed)
const revision = (r) => {
  const m = /^(\d+); hash=[0-9a-f]{8}$/.exec(r.headers['x-tollgate-policy-revision'] ?? '');
  return m ? Number(m[1]) : NaN;
};
const revisionHash = (r) => String(r.headers['x-tollgate-policy-revision'] ?? '').split('hash=')[1];

/** Each model has a live and a dead deployment: "routed" lists the dead one
 * first and its rule allows only the live one; "pinned" lists the live one
 * first and its rule allows only the dead one. */
function routeDeployments(deadPort) {
  const dead = (id, model, mockPort) => ({ ...mockDeployment(id, model, mockPort), api_base: `http://127.0.0.1:${deadPort}/v1` });
  return (mockPort) => [
    dead('r-dead', 'routed', mockPort),
    mockDeployment('r-live', 'routed', mockPort),
    mockDeployment('p-live', 'pinned', mockPort),
    dead('p-dead', 'pinned', mockPort),
  ];
}

describe('policy serving and rollout', () => {
  let gw;
  let proKey;
  let freeKey;
  let ciKey;
  const body = { model: 'mock-small', messages: userMsg('hello') };

  before(async () => {
    gw = await startGateway({
      pdpAdmin: true,
      pdp: { bundle_watch: false }, // reloads here are explicit; the watcher has its own test
      bundle: bundle(1),
      deployments: routeDeployments(DEAD_PORT),
    });
    await gw.setTenant('free-co', { tier: 'free', labels: { region: 'eu' } });
    await gw.setTenant('pro-co', { tier: 'pro' });
    ({ key: proKey } = await gw.createKey({ tenant: 'pro-co' }));
    ({ key: freeKey } = await gw.createKey({ tenant: 'free-co' }));
    ({ key: ciKey } = await gw.createKey({ tenant: 'pro-co', labels: { env: 'ci' } }));
  });

  after(async () => {
    await gw?.stop();
  });

  test('a rule denies with its status, code and message; others pass; every answer carries the revision', async () => {
    const ok = await gw.chat(body, { key: freeKey });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(revision(ok), 1);

    const denied = await gw.chat({ ...body, model: 'gpt-4o-mini' }, { key: freeKey });
    const e = errorBody(denied, 403, 'tier_model_denied');
    assert.equal(e.message, 'The free tier may not use gpt-4o-mini.');
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(revision(denied), 1);

    const pro = await gw.chat({ ...body, model: 'gpt-4o-mini' }, { key: proKey });
    assert.equal(pro.status, 200, pro.text);

    // principal.labels comes from `keys create --label`.
    const ci = await gw.chat(body, { key: ciKey });
    assert.equal(errorBody(ci, 429, 'ci_quota').message, 'CI keys are paused.');

    // /v1/models lists only what the policy would allow this key.
    const models = await gw.request('/v1/models', { key: freeKey });
    assert.equal(models.status, 200, models.text);
    const ids = models.json.data.map((m) => m.id);
    assert.ok(ids.includes('mock-small') && !ids.includes('gpt-4o-mini'), `free key models: ${ids}`);
    assert.equal(revision(models), 1);

    // Key checks still come first: an unknown key is 401, not a policy deny.
    errorBody(await gw.chat(body, { key: 'sk-tg-nope' }), 401, 'invalid_api_key');
  });

  test('a route rule restricts the deployments a model may use', async () => {
    const before = (await gw.mockStats()).requests;
    const r = await gw.chat({ model: 'routed', messages: userMsg('route me') }, { key: proKey });
    assert.equal(r.status, 200, `routed to the live deployment only: ${r.text}`);
    assert.equal((await gw.mockStats()).requests, before + 1);
    // Pinned to its dead deployment: it fails although a live one is first
    // in the catalog, so the rule, not catalog order or a fallback, decides.
    const p = await gw.chat({ model: 'pinned', messages: userMsg('pinned') }, { key: proKey });
    assert.ok(p.status >= 502, `pinned: expected an upstream error, got ${p.status} ${p.text}`);
    assert.equal((await gw.mockStats()).requests, before + 1);
  });

  test('reload under load: no request fails and the new revision follows at once', async () => {
    gw.writeBundle(bundle(2, { message: 'Revision 2 says no.' }), { replace: true });
    const statuses = [];
    const revisions = [];
    let next = 0;
    const total = 200;
    let reloading = false;
    let reloadDone = false;
    let duringReload = 0; // answers that arrived while the reload ran
    const afterReload = [];
    let sentAfter = 0; // requests started once the reload had returned
    // The load lasts until some requests start after the reload returned,
    // however long the reload takes on a busy machine.
    const worker = async () => {
      while (next < total || sentAfter < 16) {
        next++;
        const started = reloadDone;
        if (started) sentAfter++;
        const r = await gw.chat(body, { key: proKey });
        statuses.push(r.status);
        revisions.push(revision(r));
        if (reloading) duringReload++;
        if (started) afterReload.push(revision(r));
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, worker));
    while (next < total / 4) await new Promise((res) => setTimeout(res, 5));
    const t0 = performance.now();
    reloading = true;
    const rl = await gw.reloadPdp({ expectCode: 0 });
    reloading = false;
    const reloadMs = performance.now() - t0;
    reloadDone = true;
    await load;
    assert.match(rl.stdout, /^reloaded: bundle it revision 2 \(hash [0-9a-f]{12}\), was revision 1\n$/);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'a request failed during the reload');
    assert.equal(statuses.length, next);
    assert.ok(next >= total);
    assert.ok(revisions.every((v) => v === 1 || v === 2), `revisions: ${[...new Set(revisions)]}`);
    assert.ok(revisions.includes(1) && duringReload > 0, `no overlap: ${duringReload} answers during the reload`);
    assert.ok(afterReload.length > 0 && afterReload.every((v) => v === 2),
      `requests sent after reload returned must see revision 2: ${afterReload}`);
    const denied = await gw.chat({ ...body, model: 'gpt-4o-mini' }, { key: freeKey });
    assert.equal(errorBody(denied, 403, 'tier_model_denied').message, 'Revision 2 says no.');
    assert.equal(revision(denied), 2);
    // The header names the bundle too: its hash's first 8 hex digits.
    assert.equal(revisionHash(denied), /hash ([0-9a-f]{12})/.exec(rl.stdout)[1].slice(0, 8));
    console.log(`# reload command (process start + compile + tests + swap) took ${reloadMs.toFixed(0)} ms; ` +
      `${duringReload} answers arrived meanwhile`);
  });

  test('a bundle that does not compile is refused with file:line and traffic stays on the old revision', async () => {
    gw.writeBundle({
      ...bundle(3),
      'broken.policy.json': { rules: [{ id: 'typo', kind: 'access', effect: 'deny', when: { eq: ['request.modle', 'x'] } }] },
    });
    const r = await gw.reloadPdp({ expectCode: 1 });
    const out = r.stdout + r.stderr;
    assert.match(out, /reload refused/);
    assert.match(out, /broken\.policy\.json:\d+:\d+: rule typo: .*request\.modle/);
    assert.match(out, /revision 2 .*stays in effect/);
    const ok = await gw.chat(body, { key: proKey });
    assert.equal(ok.status, 200);
    assert.equal(revision(ok), 2);
  });

  test('a bundle whose own test fails is refused', async () => {
    gw.writeBundle(bundle(3, {
      tests: {
        tests: [{
          name: 'expects the wrong thing',
          input: { tenant: { id: 't', tier: 'free' }, request: { endpoint: 'chat', model: 'gpt-4o-mini' } },
          expect: { decision: 'allow' },
        }],
      },
    }), { replace: true });
    const r = await gw.reloadPdp({ expectCode: 1 });
    const out = r.stdout + r.stderr;
    assert.match(out, /reload refused: the tests of bundle it revision 3 failed/);
    assert.match(out, /expects the wrong thing/);
    assert.equal(revision(await gw.chat(body, { key: proKey })), 2);
  });

  test('a lower revision is refused unless --allow-rollback', async () => {
    gw.writeBundle(bundle(1), { replace: true });
    const r = await gw.reloadPdp({ expectCode: 1 });
    assert.match(r.stderr, /revision 1 is lower than the active revision 2/);
    assert.equal(revision(await gw.chat(body, { key: proKey })), 2);

    const rb = await gw.reloadPdp({ allowRollback: true, expectCode: 0 });
    assert.match(rb.stdout, /reloaded: bundle it revision 1 .*was revision 2 \(rollback\)/);
    assert.equal(revision(await gw.chat(body, { key: proKey })), 1);
    // The same again is a no-op, not an error.
    const again = await gw.reloadPdp({ expectCode: 0 });
    assert.match(again.stdout, /already active: bundle it revision 1/);
  });

  test('SIGHUP reloads; history and metrics record every activation', async () => {
    gw.writeBundle(bundle(4), { replace: true });
    gw.signalPdp('SIGHUP');
    await pollUntil(async () => revision(await gw.chat(body, { key: proKey })) === 4,
      { timeoutMs: 10_000, what: 'revision 4 after SIGHUP' });

    const all = await gw.policyHistory();
    // The refused reloads are there too, with why (three of them).
    const refused = all.filter((a) => a.refused);
    assert.equal(refused.length, 3);
    assert.ok(refused.every((a) => /^token:\S+ for cli:[^@\s]+@\S+$/.test(a.actor)), JSON.stringify(refused));
    assert.ok(all.filter((a) => a.refused).every((a) => a.why.length > 0));
    const h = all.filter((a) => !a.refused);
    assert.deepEqual(h.map((a) => [a.revision, a.how, a.rollback]), [
      [4, 'sighup', false],
      [1, 'command', true],
      [2, 'command', false],
      [1, 'start', false],
    ]);
    assert.ok(h.every((a) => /^[0-9a-f]{64}$/.test(a.hash) && a.bundle === 'it'));
    assert.equal(h[1].previous_revision, 2);
    const text = await gw.cli(['policy', 'history', '--config', gw.cfgPath]);
    assert.match(text.stdout.split('\n')[1], /^\S+Z\s+4\s+it\s+sighup\s+[0-9a-f]{12}\s+signal:SIGHUP/);

    const m = await gw.pdpMetrics();
    assert.equal(m.tollgate_pdp_policy_revision, 4);
    assert.equal(m['tollgate_pdp_reloads_total{result="ok"}'], 3); // 2, rollback to 1, SIGHUP to 4
    assert.equal(m['tollgate_pdp_reloads_total{result="refused"}'], 3);
    assert.ok(m['tollgate_pdp_decisions_total{verdict="deny"}'] >= 3);
    // Allows the data plane reused (dataplane.decision_reuse_ms) were made
    // once by the PDP and counted there once.
    const reused = (await gw.metrics()).tollgate_decisions_reused_total ?? 0;
    assert.ok(m['tollgate_pdp_decisions_total{verdict="allow"}'] + reused >= 200);
  });

  test('serve refuses to start on a bundle that does not compile, listing every error', async () => {
    const dir = path.join(gw.dir, 'bad-start');
    writeBundleFiles(path.join(dir, 'bundle'), {
      'bundle.json': { name: 'bad', revision: 1 },
      'a.policy.json': {
        rules: [
          { id: 'one', kind: 'access', effect: 'maybe' },
          { id: 'two', kind: 'budget', effect: 'deny' },
        ],
      },
    });
    const cfg = { ...gw.config, pdp: { ...gw.config.pdp, bundle: path.join(dir, 'bundle'), state_dir: path.join(dir, 'state'), listen: [`ipc://${dir}/p.sock`] } };
    delete cfg.pdp.admin_listen;
    fs.writeFileSync(path.join(dir, 'tollgate.json'), JSON.stringify(cfg));
    const r = await runBinary('tollgate-pdp', ['serve', '--config', path.join(dir, 'tollgate.json')]);
    assert.equal(r.code, 2, `serve exited ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, /a\.policy\.json:\d+:\d+: rule one:/);
    assert.match(r.stderr, /a\.policy\.json:\d+:\d+: rule two:/);
  });

  test('reload without an admin listener says what to configure', async () => {
    const dir = path.join(gw.dir, 'no-admin');
    fs.mkdirSync(dir, { recursive: true });
    const cfg = { ...gw.config, pdp: { ...gw.config.pdp } };
    delete cfg.pdp.admin_listen;
    fs.writeFileSync(path.join(dir, 'tollgate.json'), JSON.stringify(cfg));
    const r = await runBinary('tollgate-pdp', ['reload', '--config', path.join(dir, 'tollgate.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pdp\.admin_listen is not set/);
  });
});

describe('policy bundle directory watch', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({ bundle: bundle(1), deployments: routeDeployments(DEAD_PORT) });
    ({ key } = await gw.createKey({ tenant: 'watch' }));
  });

  after(async () => {
    await gw?.stop();
  });

  test('a change in the directory (rename or in-place write) is picked up; a broken one is not', async () => {
    const body = { model: 'mock-small', messages: userMsg('hi') };
    const rev = async () => revision(await gw.chat(body, { key }));
    assert.equal(await rev(), 1);

    gw.writeBundle(bundle(2)); // temp file + rename, as editors do
    await pollUntil(async () => (await rev()) === 2, { timeoutMs: 10_000, what: 'revision 2 from the watcher' });

    // A broken save is refused and the running revision stays...
    fs.writeFileSync(path.join(gw.bundleDir, 'bundle.json'), '{"name": "it", "revision": 3,');
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(await rev(), 2);
    // ...until the file is fixed in place.
    fs.writeFileSync(path.join(gw.bundleDir, 'bundle.json'), JSON.stringify({ name: 'it', revision: 3 }));
    await pollUntil(async () => (await rev()) === 3, { timeoutMs: 10_000, what: 'revision 3 from the watcher' });

    const all = await gw.policyHistory();
    const h = all.filter((a) => !a.refused);
    assert.deepEqual(h.map((a) => [a.revision, a.how]), [[3, 'watch'], [2, 'watch'], [1, 'start']]);
    assert.ok(all.some((a) => a.refused && a.actor === 'file-watch' && /does not compile/.test(a.why)));
    assert.match(gw.pdp.stderr(), /reload on watch refused, revision 2 stays in effect: the bundle in \S+ does not compile/);
  });
});
