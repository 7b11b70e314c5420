// migrate_litellm.test.mjs - `tollgate-pdp import litellm` end to end: the
// corpus config tests/migrate/litellm/mock.yaml (its api_base rewritten to
// this run's mock provider) and its /key/list export are imported; the
// bundle passes `check` and `test`; the PDP and the data plane start ON THE
// GENERATED tollgate.json (only its ports adjusted) and route each
// model_name to the deployments the LiteLLM config gives it, in order, fall
// back as its fallbacks say when the mock fails the first ones, and the
// keys keys.sh makes work with the models their LiteLLM keys had.
// --dry-run writes nothing; a second import into the same directory is
// refused. Then export --to litellm turns the generated config back.
// Last, a config without prices imported with --pricing
// policies/pricing.json: its generated tollgate.json names the table, and a
// gpt-4o-mini request served by the mock is recorded at a non-zero cost.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Proc, REPO, bin, freePort, httpRequest, pollUntil, runBinary, userMsg } from './harness.mjs';

const CORPUS = path.join(REPO, 'tests', 'migrate', 'litellm');

/** sh runs a shell script to its end: {code, stdout, stderr}. */
function sh(script, env) {
  return new Promise((resolve) => {
    execFile('sh', [script], { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

describe('import litellm', () => {
  // Short: the PDP's ipc socket lives under the output directory.
  const root = fs.mkdtempSync('/tmp/tglt-');
  const out = path.join(root, 'out');
  const cfgPath = path.join(out, 'tollgate.json');
  const providerKey = `pk-test-${crypto.randomBytes(16).toString('hex')}`;
  const secrets = [providerKey];
  let mock;
  let mockPort;
  let pdp;
  let dp;
  let port;
  let source; // the LiteLLM config, pointed at the mock
  const keys = {}; // key_alias -> the new secret keys.sh made

  async function chat(model, content, key) {
    return httpRequest(port, {
      method: 'POST', path: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model, messages: userMsg(content), max_tokens: 5 }),
    });
  }

  before(async () => {
    mock = new Proc('mock', 'tollgate-mock-llm', ['--port', '0', '--api-key', providerKey], { dir: root }).start();
    mockPort = await pollUntil(() => {
      if (!mock.running) throw new Error(mock.describe());
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(mock.stderr());
      return m ? Number(m[1]) : null;
    }, { timeoutMs: 30_000, what: 'the mock to listen' });
    // api_base is not a secret: the test points the corpus at its mock.
    source = path.join(root, 'litellm.yaml');
    const yaml = fs.readFileSync(path.join(CORPUS, 'mock.yaml'), 'utf8');
    assert.match(yaml, /127\.0\.0\.1:9090/);
    fs.writeFileSync(source, yaml.replaceAll('127.0.0.1:9090', `127.0.0.1:${mockPort}`));
  });

  after(async () => {
    const problems = [];
    for (const p of [dp, pdp, mock]) {
      if (!p || !p.child) continue;
      const r = await p.kill('SIGTERM');
      if (r.code !== 0 || r.timedOut) problems.push(p.describe());
      const log = p.stderr();
      for (const s of secrets) if (log.includes(s)) problems.push(`${p.role} logged a secret`);
    }
    if (problems.length === 0) fs.rmSync(root, { recursive: true, force: true });
    assert.deepEqual(problems, [], `(logs in ${root})`);
  });

  test('--dry-run prints the findings and writes nothing', async () => {
    const dry = path.join(root, 'dry');
    const r = await runBinary('tollgate-pdp', ['import', 'litellm', source, '--out', dry, '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\s+7\s+mapped\s+model_list\[0\]\.litellm_params\.model: provider openai/m);
    assert.match(r.stdout, /nothing was written/);
    assert.equal(fs.existsSync(dry), false);
  });

  test('import, then check and test pass on what was written', async () => {
    const r = await runBinary('tollgate-pdp', ['import', 'litellm', source, '--out', out,
      '--keys', path.join(CORPUS, 'keys.json')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const f of ['tollgate.json', 'findings.txt', 'keys.sh', 'bundle/bundle.json',
      'bundle/imported.policy.json', 'bundle/catalog.json', 'bundle/imported.test.json', 'bundle/pricing.json']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    assert.equal(fs.readFileSync(path.join(out, 'findings.txt'), 'utf8'), r.stdout.slice(0, r.stdout.indexOf('\nWrote ')));
    const bundle = path.join(out, 'bundle');
    const check = await runBinary('tollgate-pdp', ['check', '--config', cfgPath, bundle]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const t = await runBinary('tollgate-pdp', ['test', '--config', cfgPath, bundle]);
    assert.equal(t.code, 0, t.stdout + t.stderr);
    assert.match(t.stdout, /^3 passed, 0 failed/m);
  });

  test('a second import into the same directory is refused', async () => {
    const before = fs.readFileSync(cfgPath, 'utf8');
    const r = await runBinary('tollgate-pdp', ['import', 'litellm', path.join(CORPUS, 'basic.yaml'), '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not empty; nothing was written/);
    assert.equal(fs.readFileSync(cfgPath, 'utf8'), before);
  });

  test('the PDP and the data plane start on the generated tollgate.json', async () => {
    // Only what this machine needs changes: free ports, and timeouts an
    // ASan build on a busy machine needs. Paths stay as generated.
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    port = await freePort();
    cfg.dataplane.listen = `127.0.0.1:${port}`;
    cfg.dataplane.pdp_timeout_ms = 1000;
    cfg.dataplane.workers = 2;
    cfg.dataplane.drain_timeout_s = 3;
    cfg.pdp.admin_listen = `127.0.0.1:${await freePort()}`;
    cfg.pdp.drain_timeout_s = 2;
    fs.writeFileSync(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    pdp = new Proc('pdp', 'tollgate-pdp', ['serve', '--config', cfgPath], { dir: root }).start();
    dp = new Proc('dataplane', 'tollgate-dataplane', ['--config', cfgPath],
      { dir: root, env: { TOLLGATE_MOCK_KEY: providerKey } }).start();
    await pollUntil(async () => {
      for (const p of [pdp, dp]) if (!p.running) throw new Error(p.describe());
      return (await httpRequest(port, { path: '/readyz' })).status === 200;
    }, { timeoutMs: 30_000, what: 'data plane /readyz' });
  });

  test('keys.sh makes the keys, with their tenants and models', async () => {
    const r = await sh(path.join(out, 'keys.sh'), { TOLLGATE_PDP: bin('tollgate-pdp'), TOLLGATE_CONFIG: cfgPath });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const block of r.stdout.split('\n== LiteLLM ').slice(1)) {
      const name = /^\s*name:\s+(.+)$/m.exec(block)?.[1];
      const key = /^\s*key:\s+(\S+)$/m.exec(block)?.[1];
      assert.ok(name && key, block);
      keys[name] = key;
      secrets.push(key);
    }
    assert.deepEqual(Object.keys(keys).sort(), ['batch jobs', 'ci-bot', 'no-team']);
    const list = await runBinary('tollgate-pdp', ['keys', 'list', '--config', cfgPath, '--format', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const byName = Object.fromEntries(JSON.parse(list.stdout).keys.map((k) => [k.name, k]));
    assert.equal(byName['ci-bot'].tenant, 'platform');
    assert.deepEqual(byName['ci-bot'].models, ['team-chat', 'chat']);
    assert.equal(byName['batch jobs'].tenant, 'research');
    assert.equal(byName['no-team'].tenant, 'default');
  });

  test('each model_name routes to its deployments in the order LiteLLM gives', async () => {
    let r = await chat('team-chat', 'hi', keys['ci-bot']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'chat-primary');
    r = await chat('chat', 'hi', keys['ci-bot']); // model_group_alias
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'chat-1');
    r = await chat('team-backup', 'hi', keys['batch jobs']); // an Anthropic deployment
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'team-backup-1');
    // the key's LiteLLM models hold: ci-bot may not use team-backup
    r = await chat('team-backup', 'hi', keys['ci-bot']);
    assert.equal(r.status, 403, r.text);
  });

  test('order, then fallbacks, when the mock fails the first', async () => {
    // The first deployment fails: the next one of the model (order 2).
    let r = await chat('team-chat', '[[mock status=503 only=mock-primary]] hi', keys['ci-bot']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'chat-secondary');
    // Both fail (num_retries: 0): the fallback model's deployment.
    const tag = `lt-${crypto.randomBytes(4).toString('hex')}`;
    r = await chat('team-chat', `[[mock status=502 times=2 tag=${tag}]] hi`, keys['batch jobs']);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'team-backup-1');
  });

  // A test case's expect has no field for the rate_limit and budget rules
  // that match (only the rules that decided); eval --explain says which
  // matched, so each generated case's request is evaluated here and the
  // matches compared with what the LiteLLM configs give each model.
  test('each limit and budget applies to the models the LiteLLM config gives it', async () => {
    const want = {
      'loadbalance.yaml': {
        'gpt-4o': ['litellm-limits-gpt-4o'], 'gpt-4o-mini': ['litellm-limits-gpt-4o-mini'],
        'claude-sonnet': [], 'gpt-4': [], 'gpt-4-turbo': [],
      },
      'budgets.yaml': {
        'gpt-4o-mini': ['litellm-budget', 'litellm-parallel'], 'mistral-large': ['litellm-budget', 'litellm-parallel'],
        'deepseek-chat': ['litellm-budget', 'litellm-parallel'], 'llama3-local': ['litellm-parallel'],
        'qwen-local': ['litellm-parallel'], mixtral: ['litellm-parallel'], 'router-auto': ['litellm-parallel'],
      },
      'mock.yaml': { 'team-chat': ['litellm-budget'], 'team-backup': ['litellm-budget'], chat: ['litellm-budget'] },
    };
    for (const [file, models] of Object.entries(want)) {
      const dir = path.join(root, `eval-${file}`);
      const r = await runBinary('tollgate-pdp', ['import', 'litellm', path.join(CORPUS, file), '--out', dir]);
      assert.equal(r.code, 0, r.stderr);
      const cases = JSON.parse(fs.readFileSync(path.join(dir, 'bundle', 'imported.test.json'), 'utf8')).tests;
      const input = path.join(dir, 'inputs.jsonl');
      fs.writeFileSync(input, cases.map((c) => JSON.stringify(c.input)).join('\n') + '\n');
      const e = await runBinary('tollgate-pdp', ['eval', '--bundle', path.join(dir, 'bundle'),
        '--config', path.join(dir, 'tollgate.json'), '--input', input, '--jsonl', '--explain']);
      assert.equal(e.code, 0, e.stderr);
      const got = {};
      e.stdout.trim().split('\n').forEach((l, i) => {
        const j = JSON.parse(l);
        assert.equal(j.decision, 'allow');
        assert.deepEqual(j.route, cases[i].expect.route);
        got[cases[i].input.request.model] = [...j.explain.matchAll(/^ {2}MATCHED +(\S+)/gm)].map((m) => m[1]).sort();
      });
      assert.deepEqual(got, models, file);
    }
  });

  test('export --to litellm writes a config LiteLLM reads, and it imports again', async () => {
    const exp = path.join(root, 'exp');
    const r = await runBinary('tollgate-pdp', ['export', '--to', 'litellm', '--config', cfgPath, '--out', exp]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const yaml = fs.readFileSync(path.join(exp, 'config.yaml'), 'utf8');
    assert.match(yaml, /api_key: os\.environ\/TOLLGATE_MOCK_KEY/);
    assert.ok(!yaml.includes(providerKey));
    assert.match(fs.readFileSync(path.join(exp, 'findings.txt'), 'utf8'), /rule litellm-budget \(budget\)/);
    const back = path.join(root, 'back');
    const again = await runBinary('tollgate-pdp', ['import', 'litellm', path.join(exp, 'config.yaml'), '--out', back]);
    assert.equal(again.code, 0, again.stderr);
    const a = JSON.parse(fs.readFileSync(cfgPath, 'utf8')).deployments.map((d) => [d.id, d.model, d.upstream_model]);
    const b = JSON.parse(fs.readFileSync(path.join(back, 'tollgate.json'), 'utf8')).deployments.map((d) => [d.id, d.model, d.upstream_model]);
    assert.deepEqual(b, a);
  });

  // LiteLLM prices models from its built-in cost map; an import carries
  // that over only as --pricing: without it gpt-4o-mini would cost $0,
  // and its budget would have no model to count. The PDP starts (its
  // rollout runs the bundle's tests) and the request passes the budget.
  test('--pricing policies/pricing.json: gpt-4o-mini through the mock costs more than 0', async () => {
    const dir = path.join(root, 'priced');
    const cfgP = path.join(dir, 'tollgate.json');
    const src = path.join(root, 'unpriced.yaml');
    fs.writeFileSync(src, [
      'model_list:',
      '  - model_name: gpt-4o-mini',
      '    litellm_params:',
      '      model: openai/gpt-4o-mini',
      `      api_base: http://127.0.0.1:${mockPort}/v1`,
      '      api_key: os.environ/TOLLGATE_MOCK_KEY',
      'litellm_settings:',
      '  max_budget: 10',
      '',
    ].join('\n'));
    const table = path.join(REPO, 'policies', 'pricing.json');
    const unpriced = await runBinary('tollgate-pdp', ['import', 'litellm', src, '--dry-run']);
    assert.equal(unpriced.code, 0, unpriced.stderr);
    assert.match(unpriced.stdout, /approximated +pricing: 1 client-facing model has no price .*: gpt-4o-mini\. .*costed at \$0/);
    const r = await runBinary('tollgate-pdp', ['import', 'litellm', src, '--out', dir, '--pricing', table]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /approximated +pricing:/);
    // the budget counts gpt-4o-mini: priced by the table alone
    const rules = JSON.parse(fs.readFileSync(path.join(dir, 'bundle', 'imported.policy.json'), 'utf8')).rules;
    assert.deepEqual(rules.map((x) => [x.id, x.when]), [['litellm-budget', undefined]]);
    const cfg = JSON.parse(fs.readFileSync(cfgP, 'utf8'));
    assert.equal(cfg.pdp.pricing_file, fs.realpathSync(table));
    // as above: only ports and timeouts change; pricing_file stays
    const dpPort = await freePort();
    cfg.dataplane.listen = `127.0.0.1:${dpPort}`;
    cfg.dataplane.pdp_timeout_ms = 1000;
    cfg.dataplane.workers = 1;
    cfg.dataplane.drain_timeout_s = 3;
    cfg.pdp.admin_listen = `127.0.0.1:${await freePort()}`;
    cfg.pdp.drain_timeout_s = 2;
    fs.writeFileSync(cfgP, `${JSON.stringify(cfg, null, 2)}\n`);
    const p2 = new Proc('pdp-priced', 'tollgate-pdp', ['serve', '--config', cfgP], { dir: root }).start();
    const d2 = new Proc('dataplane-priced', 'tollgate-dataplane', ['--config', cfgP],
      { dir: root, env: { TOLLGATE_MOCK_KEY: providerKey } }).start();
    try {
      await pollUntil(async () => {
        for (const p of [p2, d2]) if (!p.running) throw new Error(p.describe());
        return (await httpRequest(dpPort, { path: '/readyz' })).status === 200;
      }, { timeoutMs: 30_000, what: 'data plane /readyz (priced)' });
      const t = await runBinary('tollgate-pdp', ['tenants', 'create', 'default', '--config', cfgP]);
      assert.equal(t.code, 0, t.stderr);
      const k = await runBinary('tollgate-pdp', ['keys', 'create', '--config', cfgP, '--tenant', 'default', '--format', 'json']);
      assert.equal(k.code, 0, k.stderr);
      const key = JSON.parse(k.stdout).key;
      secrets.push(key);
      const res = await httpRequest(dpPort, {
        method: 'POST', path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: userMsg('hi'), max_tokens: 5 }),
      });
      assert.equal(res.status, 200, res.text);
      const rec = await pollUntil(async () => {
        const u = await runBinary('tollgate-pdp', ['usage', 'list', '--config', cfgP, '--format', 'json']);
        assert.equal(u.code, 0, u.stderr);
        return JSON.parse(u.stdout).records.find((x) => x.model === 'gpt-4o-mini' && !x.abandoned) ?? null;
      }, { timeoutMs: 15_000, what: 'the usage record of the gpt-4o-mini request' });
      assert.ok(rec.prompt_tokens > 0, JSON.stringify(rec));
      assert.ok(rec.cost_micro_usd > 0, `costed at 0: ${JSON.stringify(rec)}`);
    } finally {
      const problems = [];
      for (const p of [d2, p2]) {
        const x = await p.kill('SIGTERM');
        if (x.code !== 0 || x.timedOut) problems.push(p.describe());
        for (const sec of secrets) if (p.stderr().includes(sec)) problems.push(`${p.role} logged a secret`);
      }
      assert.deepEqual(problems, []);
    }
  });
});
