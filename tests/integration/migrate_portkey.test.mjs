// migrate_portkey.test.mjs - `tollgate-pdp import portkey` end to end: a
// Portkey config from tests/migrate/portkey/ is imported, its bundle passes
// `check` and `test` against the generated tollgate.json, and a gateway
// started on what was generated (its deployments pointed at the mock
// provider, ports and paths the harness's) routes as the Portkey config
// says: loadbalance spreads by weight, fallback moves to the next target
// when the first fails, conditional routes by x-tollgate-meta-* headers.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { PROVIDER_KEY_ENV, REPO, runBinary, startGateway, userMsg } from './harness.mjs';

const CORPUS = path.join(REPO, 'tests', 'migrate', 'portkey');
const tmpRoots = [];

/** importPortkey imports a corpus config into a fresh directory, checks
 * and tests the bundle against the generated config, and returns the
 * directory and the generated config. */
async function importPortkey(name, args = []) {
  const root = fs.mkdtempSync('/tmp/tgpk-');
  tmpRoots.push(root);
  const out = path.join(root, 'out');
  const r = await runBinary('tollgate-pdp', ['import', 'portkey', path.join(CORPUS, name), '--out', out, ...args]);
  assert.equal(r.code, 0, `import ${name} exited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const cfgPath = path.join(out, 'tollgate.json');
  const bundle = path.join(out, 'bundle');
  const check = await runBinary('tollgate-pdp', ['check', bundle, '--config', cfgPath]);
  assert.equal(check.code, 0, `check: ${check.stdout}${check.stderr}`);
  const t = await runBinary('tollgate-pdp', ['test', bundle, '--config', cfgPath]);
  assert.equal(t.code, 0, `test: ${t.stdout}${t.stderr}`);
  assert.match(t.stdout, /\b[1-9]\d* passed, 0 failed/, t.stdout);
  assert.ok(fs.existsSync(path.join(out, 'findings.txt')));
  return { out, bundle, config: JSON.parse(fs.readFileSync(cfgPath, 'utf8')) };
}

/** gatewayFor starts a gateway on an import: its deployments with the
 * mock as api_base (per wire format) and the test key, its model groups,
 * bundle and data-plane settings. */
async function gatewayFor(imp) {
  const files = {};
  for (const n of fs.readdirSync(imp.bundle)) files[n] = fs.readFileSync(path.join(imp.bundle, n), 'utf8');
  const { listen, pdp_url: pdpUrl, spool_dir: spool, ...dpImported } = imp.config.dataplane;
  void listen; void pdpUrl; void spool;
  return startGateway({
    bundle: files,
    modelGroups: imp.config.model_groups,
    dataplane: { ...dpImported, retry_backoff_ms: 20, retry_backoff_max_ms: 200 },
    deployments: (p) => imp.config.deployments.map((d) => ({
      ...d,
      api_base: ['azure', 'anthropic', 'gemini'].includes(d.provider)
        ? `http://127.0.0.1:${p}` : `http://127.0.0.1:${p}/v1`,
      api_key: `\${${PROVIDER_KEY_ENV}}`,
    })),
  });
}

describe('import portkey', () => {
  const gateways = [];

  after(async () => {
    for (const gw of gateways) await gw.stop();
    for (const r of tmpRoots) fs.rmSync(r, { recursive: true, force: true });
  });

  test('every corpus config imports and its bundle passes check and test', async () => {
    for (const [name, args] of [
      ['single.json', []], ['loadbalance.json', []], ['fallback.json', ['--model', 'smart']],
      ['conditional.json', ['--model', 'gpt-4o-mini']], ['nested.json', ['--model', 'pk-nested']],
      ['refusals.json', []],
    ]) {
      const imp = await importPortkey(name, args);
      const text = fs.readFileSync(path.join(imp.out, 'findings.txt'), 'utf8');
      assert.doesNotMatch(text, /LITERALSECRET|wJalrXUtnFEMI|AKIAIOSFODNN7/, 'a secret in findings.txt');
      assert.doesNotMatch(fs.readFileSync(path.join(imp.out, 'tollgate.json'), 'utf8'), /LITERALSECRET/);
    }
  });

  // The harness's gateways always price with policies/pricing.json; an
  // import says so itself only with --pricing.
  test('--pricing names the table in tollgate.json; without it the report names the unpriced model', async () => {
    const table = path.join(REPO, 'policies', 'pricing.json');
    const bare = await importPortkey('loadbalance.json');
    assert.equal(bare.config.pdp.pricing_file, undefined);
    assert.match(fs.readFileSync(path.join(bare.out, 'findings.txt'), 'utf8'),
      /approximated +pricing: 1 client-facing model has no price .*: gpt-4o-mini\. Its usage is costed at \$0/);
    const priced = await importPortkey('loadbalance.json', ['--pricing', table]);
    assert.equal(priced.config.pdp.pricing_file, fs.realpathSync(table));
    assert.doesNotMatch(fs.readFileSync(path.join(priced.out, 'findings.txt'), 'utf8'), /approximated +pricing:/);
  });

  test('a config whose targets send no model asks for --model', async () => {
    const r = await runBinary('tollgate-pdp', ['import', 'portkey', path.join(CORPUS, 'nested.json'), '--dry-run']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /nested\.json:1:1: .*pass --model NAME/);
  });

  test('loadbalance 3:1: both targets serve, the heavier one more often', async () => {
    const imp = await importPortkey('loadbalance.json', ['--model', 'pk-lb']);
    assert.deepEqual(imp.config.model_groups, [{ model: 'pk-lb', strategy: 'weighted' }]);
    const gw = await gatewayFor(imp);
    gateways.push(gw);
    const { key } = await gw.createKey({ tenant: 'pk-lb' });
    const seen = { 'oai-east': 0, 'oai-west': 0 };
    for (let i = 0; i < 200; i++) {
      const r = await gw.chat({ model: 'pk-lb', messages: userMsg('hi'), max_tokens: 5 }, { key });
      assert.equal(r.status, 200, r.text);
      seen[r.headers['x-tollgate-deployment']]++;
    }
    // Expected 150:50 (sd 6.1): each bound is over 6 sd away, p < 1e-9.
    assert.ok(seen['oai-west'] >= 10 && seen['oai-east'] >= 110 && seen['oai-east'] > seen['oai-west'],
      JSON.stringify(seen));
  });

  test('fallback: a failing pool moves to the next target, then the next', async () => {
    const imp = await importPortkey('fallback.json', ['--model', 'pk-fb']);
    assert.equal(imp.config.dataplane.retries, 0);
    assert.deepEqual(imp.config.model_groups,
      [{ model: 'pk-fb', strategy: 'weighted', fallbacks: ['pk-fb-fallback-1', 'pk-fb-fallback-2'] }]);
    const gw = await gatewayFor(imp);
    gateways.push(gw);
    const { key } = await gw.createKey({ tenant: 'pk-fb' });
    const seen = new Set();
    for (let i = 0; i < 40; i++) {
      const r = await gw.chat({ model: 'pk-fb', messages: userMsg('hi'), max_tokens: 5 }, { key });
      assert.equal(r.status, 200, r.text);
      seen.add(r.headers['x-tollgate-deployment']);
    }
    // The pool (1:1) serves; P(one of the two never drawn in 40) < 1e-11.
    assert.deepEqual([...seen].sort(), ['primary', 'primary-eu']);
    // Both pool deployments call gpt-4o: both fail, the next target answers.
    let r = await gw.chat({ model: 'pk-fb', messages: userMsg('[[mock status=503 only=gpt-4o]] hi'), max_tokens: 5 }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'secondary');
    // The first three attempts fail (retries 0: one per deployment), the
    // last target answers.
    r = await gw.chat({ model: 'pk-fb', messages: userMsg('[[mock status=502 times=3 tag=pkfb-three]] hi'),
      max_tokens: 5 }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-tollgate-deployment'], 'last-resort');
  });

  test('conditional: x-tollgate-meta-* headers pick the target', async () => {
    const imp = await importPortkey('conditional.json', ['--model', 'pk-cond']);
    const gw = await gatewayFor(imp);
    gateways.push(gw);
    const { key } = await gw.createKey({ tenant: 'pk-cond' });
    const route = async (meta) => {
      const headers = Object.fromEntries(Object.entries(meta).map(([k, v]) => [`x-tollgate-meta-${k}`, v]));
      const r = await gw.chat({ model: 'pk-cond', messages: userMsg('hi'), max_tokens: 5 }, { key, headers });
      assert.equal(r.status, 200, `${JSON.stringify(meta)}: ${r.text}`);
      return r.headers['x-tollgate-deployment'];
    };
    assert.equal(await route({ plan: 'paid' }), 'finetuned');
    assert.equal(await route({ plan: 'paid', region: 'eu' }), 'finetuned', 'the first condition that holds wins');
    assert.equal(await route({ region: 'de' }), 'eu');
    assert.equal(await route({ data_class: 'restricted' }), 'eu');
    assert.ok(['mistral-1', 'deepseek-2'].includes(await route({ tier: 'internal', env: 'dev' })));
    assert.equal(await route({ tier: 'internal', env: 'prod' }), 'base', '$ne fails');
    assert.equal(await route({ tier: 'internal', team: 'ml' }), 'base', '$nin fails');
    assert.equal(await route({}), 'base', 'the default');
    assert.equal(await route({ plan: 'free' }), 'base');
  });
});
