// admin.test.mjs - administration as a platform team does it: tenants and
// keys through the CLI and through the PDP's JSON admin API (a hashed
// admin token, an audit trail of who changed what), bad input refused with
// what to do, and a tenant given a $1 monthly budget and 60 requests per
// minute: both trip with the right 429s and headers, the threshold alerts
// reach a local webhook, spend agrees with the provider's usage to the
// micro-dollar, and all of it survives a kill -9 of the PDP.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { errorBody, httpRequest, mockDeployment, pollUntil, startGateway, userMsg } from './harness.mjs';

// gpt-4o in policies/pricing.json: USD 2.50 in, 10.00 out per 1M tokens,
// so a request costs round(2.5 x prompt + 10 x completion) micro-USD.
const cost = (u) => Math.round(2.5 * u.prompt_tokens + 10 * u.completion_tokens);

const bundle = {
  'bundle.json': { name: 'admin', revision: 1, default: 'allow', timezone: 'UTC' },
  'admin.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
};

/** adminError checks an admin API error: {"error":{"code","message"}}. */
function adminError(r, status, code) {
  assert.equal(r.status, status, `expected HTTP ${status}, got ${r.status}: ${r.text}`);
  assert.equal(r.json?.error?.code, code, r.text);
  assert.ok(r.json.error.message.length > 10, r.text);
  return r.json.error;
}

function receiver() {
  const posts = [];
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      posts.push(JSON.parse(Buffer.concat(parts).toString('utf8')));
      res.writeHead(200);
      res.end('ok');
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => resolve({ srv, posts, url: `http://127.0.0.1:${srv.address().port}/hook` }));
  });
}

describe('administration', () => {
  let gw;
  let hook;
  let token; // the "ops" admin token

  const api = (method, p, body, tok = token) => httpRequest(gw.pdpAdminPort, {
    method,
    path: `/admin/v1/${p}`,
    headers: { 'content-type': 'application/json', ...(tok ? { authorization: `Bearer ${tok}` } : {}) },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const adminUrl = () => `http://127.0.0.1:${gw.pdpAdminPort}`;

  before(async () => {
    hook = await receiver();
    gw = await startGateway({
      bundle,
      pdpAdmin: true,
      pdp: { alert_webhook: hook.url },
      deployments: (port) => [
        mockDeployment('mock-gpt-4o', 'gpt-4o', port),
        // A negotiated rate: $1 in / $2 out per 1M tokens, not the table's.
        mockDeployment('mock-gpt-4o-deal', 'gpt-4o-deal', port,
          { upstream_model: 'gpt-4o', pricing: { input_per_mtok: 1, output_per_mtok: 2 } }),
        // Named for clients, priced as the model it calls upstream.
        mockDeployment('vendor-gpt-4o', 'vendor/gpt-4o', port, { upstream_model: 'gpt-4o' }),
      ],
    });
    const r = await gw.cli(['admin-tokens', 'create', 'ops', '--config', gw.cfgPath]);
    token = r.stdout.trim();
    assert.match(token, /^tga-[0-9a-f]{64}$/);
    gw.secrets.push(token);
    gw.secrets.push(fs.readFileSync(path.join(gw.dir, 'pdp-state', 'admin.token'), 'utf8').trim());
  });

  after(async () => {
    await gw?.stop();
    hook?.srv.close();
  });

  test('the admin API needs a token, which is stored only hashed', async () => {
    let r = await api('GET', 'tenants', undefined, null);
    adminError(r, 401, 'admin_token_required');
    r = await api('GET', 'tenants', undefined, 'tga-wrong');
    adminError(r, 401, 'invalid_admin_token');
    r = await httpRequest(gw.pdpAdminPort, { path: '/healthz' });
    assert.equal(r.status, 200, 'probes stay open');
    const db = fs.readFileSync(path.join(gw.dir, 'pdp-state', 'data.mdb'));
    assert.ok(!db.includes(Buffer.from(token)), 'the token itself is not stored');
    assert.ok(db.includes(crypto.createHash('sha256').update(token).digest()), 'its SHA-256 is');
  });

  test('tenants and keys through the API and the CLI, with an audit trail of who did what', async () => {
    let r = await api('POST', 'tenants', { id: 'acme', name: 'Acme Corp', tier: 'pro', labels: { region: 'eu' } });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.name, 'Acme Corp');
    adminError(await api('POST', 'tenants', { id: 'acme' }), 409, 'tenant_exists');
    r = await api('PATCH', 'tenants/acme', { tier: 'enterprise', labels: { region: null } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.tier, 'enterprise');
    assert.deepEqual(r.json.labels, {});
    adminError(await api('PATCH', 'tenants/nobody', { tier: 'x' }), 404, 'tenant_not_found');

    // The CLI and the API see the same state.
    r = await gw.cli(['tenants', 'show', 'acme', '--config', gw.cfgPath, '--format', 'json']);
    assert.equal(JSON.parse(r.stdout).tier, 'enterprise');
    await gw.cli(['tenants', 'create', 'beta', '--config', gw.cfgPath, '--tier', 'free']);
    r = await gw.cli(['tenants', 'show', 'beta', '--url', adminUrl(), '--token', token, '--format', 'json']);
    assert.equal(JSON.parse(r.stdout).tier, 'free');

    r = await api('POST', 'keys', { tenant: 'acme', name: 'api-made', models: ['gpt-4o'] });
    assert.equal(r.status, 201, r.text);
    const k = r.json;
    gw.secrets.push(k.key);
    assert.match(k.key, /^sk-tg-[0-9a-f]{48}$/);
    const chat = (key) => gw.chat({ model: 'gpt-4o', messages: userMsg('[[mock chunks=3]] hi'), max_tokens: 10 }, { key });
    assert.equal((await chat(k.key)).status, 200);
    r = await api('GET', `keys/${k.id}`);
    assert.equal(r.json.status, 'active');
    // "last used" is when its latest settled request started.
    r = await pollUntil(async () => {
      const x = await api('GET', `keys/${k.id}`);
      return x.json.last_used_ms ? x : null;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'last_used' });
    assert.ok(Math.abs(r.json.last_used_ms - Date.now()) < 60_000);
    assert.ok((await api('GET', 'keys?tenant=acme')).json.keys.find((x) => x.id === k.id).last_used_ms > 0);
    assert.equal(r.json.key, undefined, 'a key is shown once, at creation');

    // Rotation keeps the old secret for the grace period; revoke ends both.
    r = await api('POST', `keys/${k.id}/rotate`, { grace: '1h' });
    assert.equal(r.status, 200, r.text);
    gw.secrets.push(r.json.key);
    assert.equal((await chat(r.json.key)).status, 200);
    assert.equal((await chat(k.key)).status, 200);
    r = await api('POST', `keys/${k.id}/revoke`);
    assert.equal(r.json.status, 'revoked');
    assert.equal((await chat(k.key)).status, 401);

    // A key made with the CLI through the API by URL.
    r = await gw.cli(['keys', 'create', '--tenant', 'beta', '--url', adminUrl(), '--token', token, '--format', 'json']);
    gw.secrets.push(JSON.parse(r.stdout).key);
    assert.equal((await chat(JSON.parse(r.stdout).key)).status, 200);

    r = await api('GET', 'audit?limit=50');
    assert.equal(r.status, 200);
    const a = r.json.audit;
    const find = (action, target) => a.find((e) => e.action === action && e.target === target);
    assert.equal(find('tenants.create', 'tenant:acme').actor, 'token:ops');
    assert.equal(find('tenants.update', 'tenant:acme').actor, 'token:ops');
    assert.match(find('tenants.create', 'tenant:beta').actor, /^cli:/);
    assert.equal(find('keys.rotate', `key:${k.id}`).actor, 'token:ops');
    assert.equal(find('keys.revoke', `key:${k.id}`).actor, 'token:ops');
    assert.ok(a[0].seq > a[a.length - 1].seq, 'newest first');
    for (const s of gw.secrets) assert.ok(!r.text.includes(s), 'no secret in the audit trail');
  });

  test('a key issued to a user counts as that user, whatever the request says', async () => {
    let r = await api('POST', 'tenants', { id: 'users-co' });
    assert.equal(r.status, 201, r.text);
    r = await api('POST', 'keys', { tenant: 'users-co', user: 'alice@example.com' });
    assert.equal(r.status, 201, r.text);
    gw.secrets.push(r.json.key);
    assert.equal(r.json.user, 'alice@example.com');
    const res = await gw.chat({ model: 'gpt-4o', messages: userMsg('[[mock chunks=3]] hi'), max_tokens: 10, user: 'mallory' },
      { key: r.json.key });
    assert.equal(res.status, 200, res.text);
    const rows = await pollUntil(async () => {
      const out = await gw.cli(['spend', '--by', 'user', '--tenant', 'users-co', '--config', gw.cfgPath, '--format', 'json']);
      const j = JSON.parse(out.stdout);
      return j.rows.length > 0 ? j.rows : null;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the usage to settle' });
    assert.deepEqual(rows.map((x) => x.user), ['alice@example.com']);
  });

  test("a deployment's own pricing overrides the price table, for spend and for budgets", async () => {
    let r = await api('POST', 'tenants', { id: 'deal-co' });
    assert.equal(r.status, 201, r.text);
    const k = await gw.createKey({ tenant: 'deal-co' });
    // A budget of $0.0001 pays for 20 output tokens at $2/M plus the
    // prompt at $1/M; at gpt-4o's table price it would pay for 5.
    r = await api('PUT', 'budgets/tenant/deal-co', { limit_usd: 0.0001, window: 'daily' });
    assert.equal(r.status, 200, r.text);
    const res = await gw.chat({ model: 'gpt-4o-deal', messages: userMsg('[[mock chunks=20]] hi'), max_tokens: 20 }, { key: k.key });
    assert.equal(res.status, 200, res.text);
    const u = res.json.usage;
    const s = await pollUntil(async () => {
      const t = await gw.spendTenant('deal-co');
      return t.requests === 1 ? t : null;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the usage to settle' });
    assert.equal(s.cost_micro_usd, Math.round(u.prompt_tokens + 2 * u.completion_tokens));
  });

  test('a deployment named for clients ("vendor/gpt-4o") is priced as its upstream model, for spend and for budgets', async () => {
    let r = await api('POST', 'tenants', { id: 'vendor-co' });
    assert.equal(r.status, 201, r.text);
    const k = await gw.createKey({ tenant: 'vendor-co' });
    // Under a budget, a model without any price would be refused (403).
    r = await api('PUT', 'budgets/tenant/vendor-co', { limit_usd: 1, window: 'daily' });
    assert.equal(r.status, 200, r.text);
    const res = await gw.chat({ model: 'vendor/gpt-4o', messages: userMsg('[[mock chunks=12]] hi'), max_tokens: 20 }, { key: k.key });
    assert.equal(res.status, 200, res.text);
    const u = res.json.usage;
    const s = await pollUntil(async () => {
      const t = await gw.spendTenant('vendor-co');
      return t.requests === 1 ? t : null;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the usage to settle' });
    // gpt-4o in policies/pricing.json: $2.50 in, $10 out per 1M tokens.
    assert.equal(s.cost_micro_usd, Math.round(2.5 * u.prompt_tokens + 10 * u.completion_tokens));
  });

  test('bad input is refused with what was wrong and what to do', async () => {
    adminError(await api('POST', 'tenants', '{"id": "x",'), 400, 'invalid_json');
    let e = adminError(await api('POST', 'tenants', { id: 'x', colour: 'red' }), 400, 'unknown_field');
    assert.match(e.message, /colour/);
    adminError(await api('POST', 'tenants', { id: 'has space' }), 400, 'invalid_id');
    e = adminError(await api('POST', 'keys', { tenant: 'ghost' }), 404, 'tenant_not_found');
    assert.match(e.message, /tenants create ghost/);
    adminError(await api('POST', 'keys', { tenant: 'acme', models: ['gpt-9'] }), 400, 'unknown_model');
    adminError(await api('GET', 'keys/key_0000000000000000'), 404, 'key_not_found');
    adminError(await api('POST', 'keys/key_0000000000000000/revoke'), 404, 'key_not_found');
    adminError(await api('PUT', 'budgets/tenant/ghost', { limit_usd: 1, window: 'daily' }), 404, 'tenant_not_found');
    adminError(await api('PUT', 'budgets/key/key_0000000000000000', { limit_usd: 1, window: 'daily' }), 404, 'key_not_found');
    e = adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: -5, window: 'daily' }), 400, 'invalid_limit');
    assert.match(e.message, /-5/);
    adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: 1e12, window: 'daily' }), 400, 'invalid_limit');
    adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: 0.0000001, window: 'daily' }), 400, 'invalid_limit');
    e = adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: 1, window: 'fortnightly' }), 400, 'invalid_window');
    assert.match(e.message, /daily.*weekly.*monthly.*rolling/);
    adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: 1, window: 'rolling:9999h' }), 400, 'invalid_window');
    adminError(await api('PUT', 'budgets/tenant/acme', { limit_usd: 1, window: 'daily', thresholds: [80, 50] }), 400, 'invalid_field');
    adminError(await api('PUT', 'ratelimits/tenant/acme', { rpm: 1e12 }), 400, 'invalid_limit');
    adminError(await api('PUT', 'ratelimits/tenant/acme', { rpm: -1 }), 400, 'invalid_limit');
    adminError(await api('PUT', 'ratelimits/tenant/acme', {}), 400, 'missing_field');
    adminError(await api('GET', 'nothing-here'), 404, 'not_found');
    // The CLI says the same, with exit status 2 for bad input.
    const r = await gw.cli(['budgets', 'set', 'tenant:acme', '--limit-usd', '1', '--window', 'fortnightly',
      '--config', gw.cfgPath], { expectCode: 2 });
    assert.match(r.stderr, /not a window the budget calendar knows/);
    await gw.cli(['budgets', 'set', 'tenant:ghost', '--limit-usd', '1', '--window', 'daily',
      '--config', gw.cfgPath], { expectCode: 1 });
  });

  test('free text from API callers never reaches a terminal raw', async () => {
    // Control characters in names are refused where they enter.
    adminError(await api('POST', 'tenants', { id: 'esc-co', name: 'x\u001b]0;pwn\u0007' }), 400, 'invalid_field');
    assert.equal((await api('POST', 'tenants', { id: 'esc-co' })).status, 201);
    adminError(await api('POST', 'keys', { tenant: 'esc-co', name: 'x\u001b[2J\nforged' }), 400, 'invalid_field');
    // An error message that quotes what the caller sent is escaped by the
    // CLI that prints it (this one came back from the API over --url).
    const r = await gw.cli(['keys', 'create', '--tenant', 'esc-co', '--label', 'a\u001b[2J\nb=v',
      '--url', adminUrl(), '--token', token], { expectCode: 2 });
    assert.ok(!r.stderr.includes('\u001b'), JSON.stringify(r.stderr));
    assert.equal(r.stderr.trim().split('\n').length, 1, JSON.stringify(r.stderr));
    assert.match(r.stderr, /\\x1b\[2J\\nb/);
  });

  test('a $1 monthly budget and 60 requests/minute: both trip, alerts arrive, spend matches the provider exactly and survives kill -9',
    { timeout: 180_000 }, async () => {
      let r = await api('POST', 'tenants', { id: 'quota-co', tier: 'pro' });
      assert.equal(r.status, 201, r.text);
      const key = (await gw.createKey({ tenant: 'quota-co' })).key;
      r = await api('PUT', 'budgets/tenant/quota-co', { limit_usd: 1, window: 'monthly', thresholds: [50, 80] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.limit_usd, '1.000000');
      await gw.cli(['ratelimits', 'set', 'tenant:quota-co', '--rpm', '60', '--url', adminUrl(), '--token', token]);

      const usages = [];
      const send = async (chunks) => {
        const res = await gw.chat({ model: 'gpt-4o', messages: userMsg(`[[mock chunks=${chunks}]] spend`), max_tokens: chunks }, { key });
        if (res.status === 200) usages.push(res.json.usage);
        return res;
      };

      // 60 requests in the minute pass, counting down; the 61st is refused.
      for (let i = 0; i < 60; i++) {
        const res = await send(5);
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers['x-ratelimit-limit-requests'], '60');
        assert.equal(res.headers['x-ratelimit-remaining-requests'], String(59 - i));
        assert.match(res.headers['x-ratelimit-reset-requests'], /^(\d+ms|\d+s|\d+m\d+s)$/);
      }
      r = await send(5);
      const e = errorBody(r, 429, 'rate_limit_exceeded');
      assert.equal(e.type, 'requests');
      assert.match(r.headers['retry-after'], /^\d+$/);
      assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');

      // The platform team lifts the rate limit; it applies at once.
      r = await api('PUT', 'ratelimits/tenant/quota-co', { rpm: 1000 });
      assert.equal(r.status, 200, r.text);

      // About $0.20 a request (20,000 output tokens at $10/M): the budget
      // trips within a handful, with 429 budget_exceeded.
      let denied = null;
      for (let i = 0; i < 10 && !denied; i++) {
        const res = await send(20000);
        if (res.status !== 200) denied = res;
      }
      assert.ok(denied, 'the budget never tripped');
      const be = errorBody(denied, 429, 'budget_exceeded');
      assert.equal(be.type, 'insufficient_quota');
      assert.match(be.message, /rule admin\.tenant, monthly budget per tenant.*limit \$1\.000000/);

      // Spend equals what the provider reported, to the micro-dollar.
      const expected = usages.reduce((s, u) => s + cost(u), 0);
      const spent = await pollUntil(async () => {
        const m = await gw.metrics();
        const s = await gw.spendTenant('quota-co');
        return m.tollgate_usage_spool_pending === 0 && s.requests === usages.length ? s : null;
      }, { timeoutMs: 30_000, intervalMs: 200, what: 'the spool to drain' });
      assert.equal(spent.cost_micro_usd, expected);
      assert.equal(spent.prompt_tokens, usages.reduce((s, u) => s + u.prompt_tokens, 0));
      assert.equal(spent.completion_tokens, usages.reduce((s, u) => s + u.completion_tokens, 0));
      assert.ok(expected <= 1_000_000, `spent ${expected} of a $1 budget`);
      r = await api('GET', 'budgets/tenant/quota-co');
      assert.equal(r.json.spent_micro_usd, expected);
      assert.equal(r.json.reserved_micro_usd, 0);
      assert.equal(r.json.remaining_micro_usd, 1_000_000 - expected);
      assert.equal(r.json.remaining_usd, ((1_000_000 - expected) / 1e6).toFixed(6));

      // Each threshold alerted exactly once.
      await pollUntil(() => hook.posts.length >= 2, { timeoutMs: 15_000, what: 'two alerts' });
      const mine = hook.posts.filter((p) => p.scope_value === 'quota-co');
      assert.deepEqual(mine.map((p) => p.threshold_percent).sort((x, y) => x - y), [50, 80]);
      assert.ok(mine.every((p) => p.rule === 'admin.tenant'));

      // kill -9: nothing lost, nothing counted twice, still refused.
      await gw.killPdp('SIGKILL');
      await gw.startPdp();
      assert.equal((await gw.spendTenant('quota-co')).cost_micro_usd, expected);
      r = await api('GET', 'budgets/tenant/quota-co');
      assert.equal(r.json.spent_micro_usd, expected);
      errorBody(await send(20000), 429, 'budget_exceeded');
      const local = await gw.cli(['budgets', 'show', 'tenant:quota-co', '--config', gw.cfgPath, '--format', 'json']);
      assert.equal(JSON.parse(local.stdout).spent_micro_usd, expected);
    });

  test('budgets list on the state directory asks the running PDP for what is reserved', async () => {
    await gw.cli(['tenants', 'create', 'resv-co', '--config', gw.cfgPath]);
    await gw.cli(['budgets', 'set', 'tenant:resv-co', '--limit-usd', '5', '--window', 'daily', '--config', gw.cfgPath]);
    const r = await gw.cli(['budgets', 'list', '--config', gw.cfgPath, '--format', 'json']);
    const b = JSON.parse(r.stdout).budgets.find((x) => x.id === 'resv-co');
    assert.ok(b, r.stdout);
    assert.equal(typeof b.reserved_usd, 'string', `reserved_usd is ${b.reserved_usd}: the running PDP was not asked`);
  });

  test('a tenant is disabled, enabled and deleted; a key made with its limits has them at once; spend names it', async () => {
    let r = await api('POST', 'tenants', { id: 'off-co' });
    assert.equal(r.status, 201, r.text);
    // One request makes the key and its rate limit.
    r = await api('POST', 'keys', { tenant: 'off-co', name: 'limited-bot', rpm: 2 });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.ratelimits.rpm, 2);
    const k = r.json;
    gw.secrets.push(k.key);
    // A wrong limit makes no key.
    adminError(await api('POST', 'keys', { tenant: 'off-co', limit_usd: 1, window: 'fortnightly' }), 400, 'invalid_window');
    assert.equal((await api('GET', 'keys?tenant=off-co')).json.keys.length, 1);
    const body = { model: 'gpt-4o', messages: userMsg('[[mock chunks=2]] hi'), max_tokens: 5 };
    assert.equal((await gw.chat(body, { key: k.key })).status, 200);

    // Disabled: its keys are refused with a code and what to do.
    await gw.cli(['tenants', 'disable', 'off-co', '--url', adminUrl(), '--token', token]);
    const e = errorBody(await gw.chat(body, { key: k.key }), 403, 'tenant_disabled');
    assert.match(e.message, /off-co.*administrator/);
    r = await api('GET', 'tenants/off-co');
    assert.equal(r.json.status, 'disabled');
    r = await api('POST', 'tenants/off-co/enable');
    assert.equal(r.json.status, 'active');
    assert.equal((await gw.chat(body, { key: k.key })).status, 200);
    // Two requests in the minute, then the key's own limit.
    errorBody(await gw.chat(body, { key: k.key }), 429, 'rate_limit_exceeded');

    // The spend report names the key, from a relative date.
    const rows = await pollUntil(async () => {
      const out = await gw.cli(['spend', '--by', 'key', '--from', '1d', '--tenant', 'off-co',
        '--url', adminUrl(), '--token', token, '--format', 'json']);
      const j = JSON.parse(out.stdout);
      return j.rows.length > 0 && j.rows[0].requests === 2 ? j.rows : null;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the usage to settle' });
    assert.equal(rows[0].key_id, k.id);
    assert.equal(rows[0].key_name, 'limited-bot');
    const csv = await gw.cli(['spend', '--by', 'key', '--from', '2h', '--tenant', 'off-co', '--config', gw.cfgPath,
      '--format', 'csv']);
    assert.match(csv.stdout, /,key_name\r\n/);
    assert.match(csv.stdout, /,limited-bot\r\n/);

    // Deleted once no key of it works; its spend stays.
    r = await gw.cli(['tenants', 'delete', 'off-co', '--config', gw.cfgPath], { expectCode: 1 });
    assert.match(r.stderr, new RegExp(`${k.id}.*keys revoke`));
    await api('POST', `keys/${k.id}/revoke`);
    r = await api('DELETE', 'tenants/off-co');
    assert.equal(r.status, 200, r.text);
    adminError(await api('GET', 'tenants/off-co'), 404, 'tenant_not_found');
    assert.equal((await gw.spendTenant('off-co')).requests, 2);

    r = await api('GET', 'audit?limit=100');
    const find = (action) => r.json.audit.find((x) => x.action === action && x.target === 'tenant:off-co');
    // The CLI says who it runs for; the token stays the authority.
    assert.match(find('tenants.disable').actor, /^token:ops for cli:[^@\s]+@\S+$/);
    assert.equal(find('tenants.enable').actor, 'token:ops');
    assert.match(find('tenants.delete').actor, /^token:ops$/);
  });

  test('a revoked admin token stops working', async () => {
    await gw.cli(['admin-tokens', 'revoke', 'ops', '--config', gw.cfgPath]);
    adminError(await api('GET', 'tenants'), 401, 'invalid_admin_token');
    const r = await gw.cli(['tenants', 'show', 'acme', '--url', adminUrl(), '--token', token], { expectCode: 1 });
    assert.match(r.stderr, /not valid/);
  });
});

describe('administration without a policy bundle', () => {
  let gw;

  before(async () => {
    gw = await startGateway({ deployments: (port) => [mockDeployment('mock-gpt-4o', 'gpt-4o', port)] });
  });

  after(async () => {
    await gw?.stop();
  });

  test('a budget set while a catalog model has no price warns, and that model is refused as model_unpriced', async () => {
    await gw.cli(['tenants', 'create', 'warned', '--config', gw.cfgPath]);
    const { key } = await gw.createKey({ tenant: 'warned' });
    const r = await gw.cli(['budgets', 'set', 'tenant:warned', '--limit-usd', '5', '--window', 'daily', '--config', gw.cfgPath]);
    assert.match(r.stderr, /warning: Model "mock-small" has no price.*403 model_unpriced/);
    assert.doesNotMatch(r.stderr, /"gpt-4o"/);
    const body = { model: 'mock-small', messages: userMsg('[[mock chunks=2]] hi'), max_tokens: 10 };
    errorBody(await gw.chat(body, { key }), 403, 'model_unpriced');
    assert.equal((await gw.chat({ ...body, model: 'gpt-4o' }, { key })).status, 200);
  });

  test('budgets and rate limits set through administration still apply', async () => {
    await gw.cli(['tenants', 'create', 'nobundle', '--config', gw.cfgPath]);
    const { key } = await gw.createKey({ tenant: 'nobundle' });
    await gw.cli(['ratelimits', 'set', 'tenant:nobundle', '--rpm', '2', '--config', gw.cfgPath]);
    const body = { model: 'gpt-4o', messages: userMsg('[[mock chunks=2]] hi'), max_tokens: 10 };
    assert.equal((await gw.chat(body, { key })).status, 200);
    assert.equal((await gw.chat(body, { key })).status, 200);
    errorBody(await gw.chat(body, { key }), 429, 'rate_limit_exceeded');
    // A budget too small for one request's worst case (priced with
    // pdp.pricing_file) refuses it.
    await gw.cli(['ratelimits', 'delete', 'tenant:nobundle', '--config', gw.cfgPath]);
    await gw.cli(['budgets', 'set', 'tenant:nobundle', '--limit-usd', '0.000001', '--window', 'daily', '--config', gw.cfgPath]);
    errorBody(await gw.chat(body, { key }), 429, 'budget_exceeded');
    // A model with no price cannot be held to a budget: refused, saying
    // so (it was a budget_exceeded that no budget explained).
    const e = errorBody(await gw.chat({ ...body, model: 'mock-small' }, { key }), 403, 'model_unpriced');
    assert.match(e.message, /has no price/);
  });
});
