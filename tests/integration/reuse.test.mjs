// Decision reuse (dataplane.decision_reuse_ms): a decision the PDP marks
// reusable serves later requests with the same key, model and inputs
// without a round trip, and stops the moment anything it depends on
// changes: a key revoked (by the running PDP or by the command line), a
// tenant disabled, a quota set, a new bundle in effect, a policy input
// that differs. Budgets and rate limits are never reused. Every reused
// request still leaves its own decision record.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import {
  decisionRecords, errorBody, httpRequest, parseMetrics, pollUntil, startGateway, userMsg,
} from './harness.mjs';

const body = { model: 'mock-small', messages: userMsg('hi') };
// Long enough that nothing expires on a slow (sanitizer) build: every
// refusal below comes from the generation, not from the clock.
const REUSE_MS = 60_000;

const reused = async (gw) => (await gw.metrics()).tollgate_decisions_reused_total ?? 0;
const pdpAllows = async (gw) => (await gw.pdpMetrics())['tollgate_pdp_decisions_total{verdict="allow"}'] ?? 0;

async function okChat(gw, key, extra = {}) {
  const r = await gw.chat({ ...body, ...extra.body }, { key, headers: extra.headers });
  assert.equal(r.status, 200, r.text);
  return r;
}

describe('decision reuse: no bundle', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ pdpAdmin: true, dataplane: { decision_reuse_ms: REUSE_MS } });
  });
  after(async () => gw?.stop());

  test('later requests reuse the decision; the PDP is not asked; each keeps its record', async () => {
    const k = await gw.createKey({ tenant: 'reuse-a' });
    await okChat(gw, k.key);
    const r0 = await reused(gw);
    const p0 = await pdpAllows(gw);
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await okChat(gw, k.key)).headers['x-request-id']);
    assert.equal(await reused(gw) - r0, 10, 'every later request should reuse the decision');
    assert.equal(await pdpAllows(gw) - p0, 0, 'the PDP was asked although the decision was reusable');
    // Each reused request is recorded as such, with the decision's revision.
    const recs = await pollUntil(async () => {
      const d = await decisionRecords(gw);
      return ids.every((id) => d.byId.has(id)) ? d : null;
    }, { what: 'the decision records of the reused requests' });
    for (const id of ids) {
      const rec = recs.byId.get(id);
      assert.equal(rec.origin, 'reused', JSON.stringify(rec));
      assert.equal(rec.verdict, 'allow', JSON.stringify(rec));
    }
  });

  test('a key revoked by the command line is refused on its very next request', async () => {
    const k = await gw.createKey({ tenant: 'reuse-revoke' });
    await okChat(gw, k.key);
    const r0 = await reused(gw);
    await okChat(gw, k.key);
    assert.equal(await reused(gw) - r0, 1, 'the second request should have been reused');
    await gw.revokeKey(k.id);
    errorBody(await gw.chat(body, { key: k.key }), 401, 'invalid_api_key');
  });

  test('a tenant disabled is refused on its next request; a quota set is counted at once', async () => {
    const k = await gw.createKey({ tenant: 'reuse-tenant' });
    await okChat(gw, k.key);
    await okChat(gw, k.key);
    await gw.cli(['tenants', 'disable', 'reuse-tenant', '--config', gw.cfgPath]);
    errorBody(await gw.chat(body, { key: k.key }), 403, 'tenant_disabled');
    await gw.cli(['tenants', 'enable', 'reuse-tenant', '--config', gw.cfgPath]);

    // A rate limit is exact: with 2 a minute, the third request is refused,
    // however many allows were reused before the limit was set.
    const q = await gw.createKey({ tenant: 'reuse-quota' });
    await okChat(gw, q.key);
    await okChat(gw, q.key);
    await gw.cli(['ratelimits', 'set', `key:${q.id}`, '--rpm', '2', '--config', gw.cfgPath]);
    const r0 = await reused(gw);
    await okChat(gw, q.key);
    await okChat(gw, q.key);
    errorBody(await gw.chat(body, { key: q.key }), 429, 'rate_limit_exceeded');
    assert.equal(await reused(gw), r0, 'a decision under a rate limit was reused');
  });

  test('a budget is never served from reuse; each allow records what it reserved', async () => {
    const k = await gw.createKey({ tenant: 'reuse-budget' });
    await gw.cli(['budgets', 'set', `key:${k.id}`, '--limit-usd', '5', '--window', 'monthly', '--config', gw.cfgPath]);
    const r0 = await reused(gw);
    const ids = [];
    // gpt-4o-mini has a price (mock-small has none: a budget refuses it).
    const priced = { body: { model: 'gpt-4o-mini' } };
    for (let i = 0; i < 3; i++) ids.push((await okChat(gw, k.key, priced)).headers['x-request-id']);
    assert.equal(await reused(gw), r0, 'a decision under a budget was reused');
    const recs = await pollUntil(async () => {
      const d = await decisionRecords(gw);
      return ids.every((id) => d.byId.has(id)) ? d : null;
    }, { what: 'the budgeted requests\' records' });
    for (const id of ids) {
      const rec = recs.byId.get(id);
      assert.notEqual(rec.origin, 'reused', JSON.stringify(rec));
      assert.ok(rec.reserved_micro_usd > 0, `an allow under a budget recorded no reservation: ${JSON.stringify(rec)}`);
    }
  });

  test('a key revoked while the PDP is down is not served from reuse', async () => {
    const k = await gw.createKey({ tenant: 'reuse-down' });
    await okChat(gw, k.key);
    await okChat(gw, k.key);
    await gw.killPdp('SIGKILL');
    try {
      // The command line writes the store directly and bumps the
      // generation the data plane reads: the next request asks the PDP,
      // which is down (503, never the stale allow).
      await gw.revokeKey(k.id);
      const r = await gw.chat(body, { key: k.key });
      assert.notEqual(r.status, 200, 'a key revoked while the PDP was down was served from reuse');
      errorBody(r, 503, 'pdp_unavailable');
    } finally {
      await gw.startPdp();
    }
    errorBody(await gw.chat(body, { key: k.key }), 401, 'invalid_api_key');
  });
});

describe('decision reuse: with a bundle', () => {
  let gw;
  const bundle = (rev, extraRules = []) => ({
    'bundle.json': { name: 'reuse', revision: rev },
    'access.policy.json': {
      rules: [
        { id: 'allow-all', kind: 'access', effect: 'allow', when: { exists: 'principal.key_id' } },
        { id: 'no-team-x', kind: 'access', effect: 'deny', on_error: 'skip',
          when: { eq: ['request.metadata.team', 'x'] } },
        { id: 'small-only', kind: 'access', effect: 'deny', on_error: 'skip',
          when: { gt: ['request.max_tokens', 100] } },
        ...extraRules,
      ],
    },
  });
  before(async () => {
    gw = await startGateway({ pdpAdmin: true, bundle: bundle(1), dataplane: { decision_reuse_ms: REUSE_MS } });
  });
  after(async () => gw?.stop());

  test('an input the rules read is compared: another value is decided by the PDP', async () => {
    const k = await gw.createKey({ tenant: 'reuse-inputs' });
    const team = (t) => ({ headers: { 'x-tollgate-meta-team': t } });
    await okChat(gw, k.key, team('y'));
    const r0 = await reused(gw);
    await okChat(gw, k.key, team('y'));
    assert.equal(await reused(gw) - r0, 1, 'the same inputs should reuse');
    errorBody(await gw.chat(body, { key: k.key, headers: { 'x-tollgate-meta-team': 'x' } }), 403, 'policy_denied');
    errorBody(await gw.chat({ ...body, max_tokens: 500 }, { key: k.key, headers: { 'x-tollgate-meta-team': 'y' } }),
      403, 'policy_denied');
    await okChat(gw, k.key, { body: { max_tokens: 50 }, ...team('y') });
  });

  test('a new bundle in effect is applied on the next request', async () => {
    const k = await gw.createKey({ tenant: 'reuse-bundle' });
    await okChat(gw, k.key);
    await okChat(gw, k.key);
    gw.writeBundle(bundle(2, [{ id: 'no-reuse-bundle', kind: 'access', effect: 'deny',
      when: { eq: ['tenant.id', 'reuse-bundle'] } }]), { replace: true });
    await gw.reloadPdp({ expectCode: 0 });
    errorBody(await gw.chat(body, { key: k.key }), 403, 'policy_denied');
  });

  test('a bundle whose rules read the time is never reused', async () => {
    gw.writeBundle(bundle(3, [{ id: 'office-hours', kind: 'access', effect: 'deny',
      when: { all: [{ eq: ['time.weekday', 'mon'] }, { eq: ['tenant.id', 'nobody'] }] } }]), { replace: true });
    await gw.reloadPdp({ expectCode: 0 });
    const k = await gw.createKey({ tenant: 'reuse-time' });
    const r0 = await reused(gw);
    for (let i = 0; i < 3; i++) await okChat(gw, k.key);
    assert.equal(await reused(gw), r0, 'a time-dependent decision was reused');
  });
});

describe('decision reuse: the generation file', () => {
  let gw;
  before(async () => {
    gw = await startGateway({ pdpAdmin: true, dataplane: { decision_reuse_ms: REUSE_MS } });
  });
  after(async () => gw?.stop());

  test('the PDP makes it beside its socket, writable by its user alone', () => {
    const st = fs.statSync(`${gw.dir}/pdp.sock.gen`);
    assert.equal(st.size, 4096);
    assert.equal(st.mode & 0o022, 0, `mode ${(st.mode & 0o777).toString(8)}`);
  });

  test('a generation file others may write is not trusted: nothing is reused', async () => {
    // Before the chmod: the command line, writing as the PDP's user, would
    // put the mode right again.
    const k = await gw.createKey({ tenant: 'reuse-file' });
    fs.chmodSync(`${gw.dir}/pdp.sock.gen`, 0o666);
    try {
      // A data plane maps the file only after checking it.
      const dp2 = await gw.addDataplane({ decision_reuse_ms: REUSE_MS });
      for (let i = 0; i < 3; i++) {
        const r = await httpRequest(dp2.port, {
          method: 'POST', path: '/v1/chat/completions', body: JSON.stringify(body),
          headers: { 'content-type': 'application/json', authorization: `Bearer ${k.key}` },
        });
        assert.equal(r.status, 200, r.text);
      }
      const m = parseMetrics((await httpRequest(dp2.port, { path: '/metrics' })).text);
      assert.equal(m.tollgate_decisions_reused_total, 0, 'reused under a generation file others may write');
      assert.match(dp2.proc.stderr(), /decision reuse: off: .*pdp\.sock\.gen/);
    } finally {
      fs.chmodSync(`${gw.dir}/pdp.sock.gen`, 0o644);
    }
  });
});
