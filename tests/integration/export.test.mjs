// export.test.mjs - moving off (or between) Tollgate installs: a gateway
// with tenants, keys of several kinds (live and labelled, revoked,
// expired, rotated), a budget and rate limits, a term list, two bundle
// activations and real traffic through the mock is exported with
// `tollgate-pdp export`; its decision log verifies offline; `import
// tollgate` restores it into a fresh state directory whose export is
// byte-identical, data file for data file; a gateway started on the
// imported state authenticates the same keys, refuses the revoked and
// expired ones and refuses the budget that was spent; a changed byte
// makes the import refuse, naming the file; an import that fails on a row
// of its last file leaves the state directory as it found it.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { decisionRecords, errorBody, pollUntil, runBinary, sleep, startGateway, userMsg } from './harness.mjs';

function bundle(revision) {
  return {
    'bundle.json': { name: 'export-it', revision },
    'access.policy.json': {
      rules: [
        { id: 'allow-all', kind: 'access', effect: 'allow' },
        ...(revision > 1 ? [{ id: 'no-small', kind: 'access', effect: 'deny', when: { eq: ['request.model', 'mock-small'] } }] : []),
      ],
    },
  };
}

const BUDGET_USD = 0.00005; // a few requests' worth at gpt-4o-mini prices

// The data files of an export (the manifest's list), without the two that
// describe the install rather than its state.
function dataFiles(dir) {
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  return m.files.map((f) => f.name).filter((n) => n !== 'decisions.pub');
}

describe('export and import tollgate', () => {
  let gw;
  let gw2;
  let top;
  const keys = {};

  before(async () => {
    gw = await startGateway({
      pdpAdmin: true,
      bundle: bundle(1),
      pdp: { bundle_watch: false, decisions: { checkpoint_every: 3 } },
      dataplane: { retries: 0, decision_reuse_ms: 0 },
    });
    top = fs.mkdtempSync('/tmp/tgex-');
  });
  after(async () => {
    await gw?.stop();
    await gw2?.stop();
    if (top) fs.rmSync(top, { recursive: true, force: true });
  });

  test('export, import into a fresh state, export again: the same bytes; keys, budget and log carry over', async () => {
    const cli = (args, opts) => gw.cli([...args, '--config', gw.cfgPath], opts);
    await gw.setTenant('acme', { tier: 'gold', labels: { region: 'eu' } });
    keys.live = await gw.createKey({ tenant: 'acme', name: 'live', labels: { team: 'search' } });
    keys.revoked = await gw.createKey({ tenant: 'acme', name: 'revoked' });
    await gw.revokeKey(keys.revoked.id);
    keys.rotated = await gw.createKey({ tenant: 'acme', name: 'rotated' });
    const rot = JSON.parse((await cli(['keys', 'rotate', keys.rotated.id, '--grace', '1h', '--format', 'json'])).stdout);
    assert.equal(typeof rot.key, 'string', JSON.stringify(rot));
    gw.secrets.push(rot.key);
    keys.rotatedNew = { ...keys.rotated, key: rot.key };
    // expires in a second: by the time the copy serves, it is expired
    await gw.cli(['tenants', 'set', 'brief', '--config', gw.cfgPath]);
    const exp = JSON.parse((await cli(['keys', 'create', '--tenant', 'brief', '--expires-in', '1s', '--format', 'json'])).stdout);
    gw.secrets.push(exp.key);
    keys.expired = exp;
    keys.budget = await gw.createKey({ tenant: 'bud' });
    await cli(['budgets', 'set', 'tenant:bud', '--limit-usd', String(BUDGET_USD), '--window', 'monthly']);
    await cli(['ratelimits', 'set', 'tenant:acme', '--rpm', '1000', '--tpm', '100000']);
    const terms = path.join(gw.dir, 'rivals.txt');
    fs.writeFileSync(terms, 'acme rival\nglobex\n');
    await cli(['lists', 'set', 'rivals', '--file', terms]);
    // the second activation
    gw.writeBundle(bundle(2));
    await gw.reloadPdp({ expectCode: 0 });

    // traffic: allowed, refused, and a budget spent to its end
    const body = { model: 'gpt-4o-mini', messages: userMsg('[[mock chunks=2]] hello'), max_tokens: 8 };
    for (let i = 0; i < 3; i++) assert.equal((await gw.chat(body, { key: keys.live.key })).status, 200);
    assert.equal((await gw.chat(body, { key: keys.rotatedNew.key })).status, 200);
    errorBody(await gw.chat(body, { key: keys.revoked.key }), 401, 'invalid_api_key');
    errorBody(await gw.chat({ ...body, model: 'mock-small' }, { key: keys.live.key }), 403);
    // Until the settled spend alone refuses a request: a refusal while
    // earlier requests are still reserved (their usage not reported yet)
    // would not carry over, reservations are not exported.
    let admitted = 0;
    let refused = null;
    for (let i = 0; i < 60 && !refused; i++) {
      const r = await gw.chat(body, { key: keys.budget.key });
      if (r.status === 200) {
        admitted++;
        continue;
      }
      errorBody(r, 429, 'budget_exceeded');
      await pollUntil(async () => (await gw.spendTenant('bud')).requests === admitted ? true : null,
        { what: 'every admitted request of the budget to settle' });
      const again = await gw.chat(body, { key: keys.budget.key });
      if (again.status === 200) admitted++;
      else refused = again;
    }
    assert.ok(admitted >= 1, 'the budget admitted no request at all: the test proves nothing');
    assert.ok(refused, `the budget of ${BUDGET_USD} USD never ran out in 60 requests`);
    errorBody(refused, 429, 'budget_exceeded');
    await pollUntil(async () => (await gw.spendKey(keys.live.id)).requests >= 3 ? true : null,
      { what: 'the usage of the live key to settle' });

    // export
    const ex1 = path.join(top, 'ex1');
    const r1 = await cli(['export', '--out', ex1]);
    assert.match(r1.stdout, /^exported into /);
    const manifest = JSON.parse(fs.readFileSync(path.join(ex1, 'manifest.json'), 'utf8'));
    assert.equal(manifest.format, 'tollgate-export');
    assert.equal(manifest.format_version, 1);
    const rows = Object.fromEntries(manifest.files.map((f) => [f.name, f.rows]));
    assert.ok(rows['tenants.jsonl'] >= 3, JSON.stringify(rows));
    assert.ok(rows['keys.jsonl'] >= 6, 'every key and the rotated one\'s old secret');
    assert.ok(rows['usage.csv'] >= 4 + admitted, JSON.stringify(rows));
    assert.ok(rows['policy_history.jsonl'] >= 2);
    assert.ok(rows['budgets.jsonl'] >= 1);
    assert.ok(fs.existsSync(path.join(ex1, 'bundles', '2', 'bundle.json')));
    const keysText = fs.readFileSync(path.join(ex1, 'keys.jsonl'), 'utf8');
    for (const k of Object.values(keys)) assert.ok(!keysText.includes(k.key), 'a key secret in keys.jsonl');
    // the exported decision log verifies offline
    const v = await runBinary('tollgate-pdp', ['decisions', 'verify', '--file', path.join(ex1, 'decisions.jsonl'),
      '--public-key', path.join(ex1, 'decisions.pub')]);
    assert.equal(v.code, 0, v.stderr);
    // exported twice: the same data files
    const ex1b = path.join(top, 'ex1b');
    await cli(['export', '--out', ex1b]);
    for (const n of dataFiles(ex1)) {
      assert.ok(fs.readFileSync(path.join(ex1, n)).equals(fs.readFileSync(path.join(ex1b, n))), `${n} differs between two exports`);
    }

    // import into the state directory of a fresh install (not started yet)
    const dir2 = fs.mkdtempSync('/tmp/tgit-');
    const cfg2 = structuredClone(gw.config);
    cfg2.pdp = { ...cfg2.pdp, state_dir: path.join(dir2, 'pdp-state'), listen: [`ipc://${dir2}/pdp.sock`] };
    delete cfg2.pdp.admin_listen;
    const cfg2Path = path.join(top, 'import.json');
    fs.writeFileSync(cfg2Path, JSON.stringify(cfg2, null, 2));
    const im = await runBinary('tollgate-pdp', ['import', 'tollgate', ex1, '--config', cfg2Path]);
    assert.equal(im.code, 0, `${im.stdout}${im.stderr}`);
    assert.match(im.stdout, /imported .* into /);
    // a second import into it is refused: it is not empty any more
    const again = await runBinary('tollgate-pdp', ['import', 'tollgate', ex1, '--config', cfg2Path]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty/);
    // exported again: every data file byte for byte
    const ex2 = path.join(top, 'ex2');
    const r2 = await runBinary('tollgate-pdp', ['export', '--out', ex2, '--config', cfg2Path]);
    assert.equal(r2.code, 0, r2.stderr);
    for (const n of dataFiles(ex1)) {
      assert.ok(fs.existsSync(path.join(ex2, n)), `${n} is missing from the export of the imported state`);
      assert.ok(fs.readFileSync(path.join(ex1, n)).equals(fs.readFileSync(path.join(ex2, n))),
        `${n} differs after export -> import -> export`);
    }

    // a changed byte: refused before anything is written, naming the file
    const ex3 = path.join(top, 'ex3');
    fs.cpSync(ex1, ex3, { recursive: true });
    const tf = path.join(ex3, 'usage.csv');
    const buf = fs.readFileSync(tf);
    buf[buf.length - 3] = buf[buf.length - 3] === 0x31 ? 0x32 : 0x31;
    fs.writeFileSync(tf, buf);
    const cfg3 = structuredClone(cfg2);
    cfg3.pdp.state_dir = path.join(top, 'state3');
    const cfg3Path = path.join(top, 'import3.json');
    fs.writeFileSync(cfg3Path, JSON.stringify(cfg3, null, 2));
    const bad = await runBinary('tollgate-pdp', ['import', 'tollgate', ex3, '--config', cfg3Path]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /usage\.csv does not match manifest\.json/);

    // a row that does not parse in the last file imported (decisions.jsonl;
    // decisions.pub left out, or the changed log would be refused before any
    // row is read): exit 1 naming FILE:LINE, and the state directory is left
    // as it was, empty, though every other file would have been written;
    // a good import goes into it afterwards
    const ex4 = path.join(top, 'ex4');
    fs.cpSync(ex1, ex4, { recursive: true });
    const df = path.join(ex4, 'decisions.jsonl');
    const forged = fs.readFileSync(df, 'utf8').replace('"request_id":', '"request_xx":');
    fs.writeFileSync(df, forged);
    fs.rmSync(path.join(ex4, 'decisions.pub'));
    const man = JSON.parse(fs.readFileSync(path.join(ex4, 'manifest.json'), 'utf8'));
    man.files = man.files.filter((f) => f.name !== 'decisions.pub');
    const entry = man.files.find((f) => f.name === 'decisions.jsonl');
    entry.bytes = Buffer.byteLength(forged);
    entry.sha256 = crypto.createHash('sha256').update(forged).digest('hex');
    fs.writeFileSync(path.join(ex4, 'manifest.json'), JSON.stringify(man, null, 2));
    const cfg4 = structuredClone(cfg2);
    cfg4.pdp.state_dir = path.join(top, 'state4');
    fs.mkdirSync(cfg4.pdp.state_dir);
    const cfg4Path = path.join(top, 'import4.json');
    fs.writeFileSync(cfg4Path, JSON.stringify(cfg4, null, 2));
    const half = await runBinary('tollgate-pdp', ['import', 'tollgate', ex4, '--config', cfg4Path]);
    assert.equal(half.code, 1, `${half.stdout}${half.stderr}`);
    assert.match(half.stderr, /ex4\/decisions\.jsonl:\d+: .*request_id/);
    assert.match(half.stderr, /nothing was kept/);
    assert.deepEqual(fs.readdirSync(cfg4.pdp.state_dir), [], 'a failed import left files in the state directory');
    const good = await runBinary('tollgate-pdp', ['import', 'tollgate', ex1, '--config', cfg4Path]);
    assert.equal(good.code, 0, `${good.stdout}${good.stderr}`);

    // a gateway on the imported state
    await sleep(1200); // the expiring key is past its time everywhere
    gw2 = await startGateway({
      dir: dir2,
      bundle: bundle(2),
      pdp: { bundle_watch: false },
      dataplane: { retries: 0, decision_reuse_ms: 0 },
    });
    gw2.secrets.push(...Object.values(keys).map((k) => k.key));
    assert.equal((await gw2.chat(body, { key: keys.live.key })).status, 200);
    assert.equal((await gw2.chat(body, { key: keys.rotatedNew.key })).status, 200);
    assert.equal((await gw2.chat(body, { key: keys.rotated.key })).status, 200, 'the old secret is in its grace period');
    errorBody(await gw2.chat(body, { key: keys.revoked.key }), 401);
    errorBody(await gw2.chat(body, { key: keys.expired.key }), 401);
    // the spend came along: the budget that was spent refuses at once
    errorBody(await gw2.chat(body, { key: keys.budget.key }), 429, 'budget_exceeded');
    const hist = await gw2.policyHistory();
    assert.ok(hist.length >= 3, `the imported activations and this start: ${JSON.stringify(hist)}`);
    const spent = await gw2.spendKey(keys.live.id);
    assert.ok(spent.requests >= 3, JSON.stringify(spent));
    // the bundle files of an imported activation, as they were
    const shown = await gw2.cli(['policy', 'show', '1', '--config', gw2.cfgPath]);
    assert.match(shown.stdout, /"revision": 1/);
    // the log goes on from the imported head: the next record chains to it
    const lines = fs.readFileSync(path.join(ex1, 'decisions.jsonl'), 'utf8').trimEnd().split('\n')
      .filter((l) => !l.startsWith('{"checkpoint"'));
    const head = lines.at(-1);
    const headSeq = JSON.parse(head).seq;
    const next = await pollUntil(async () => (await decisionRecords(gw2)).list.find((d) => d.seq === headSeq + 1),
      { what: `record ${headSeq + 1} on the imported state` });
    assert.equal(next.prev, crypto.createHash('sha256').update(head).digest('hex'));
  });
});
