// lists.test.mjs - guardrail term lists as a platform team manages them on
// a running PDP: a 3 MB terms file set with the CLI over the admin API
// (past the 1 MiB body other admin requests are held to), read back
// through the API and on the state directory, a body over the lists'
// own limit refused with 413, and every change in the audit trail with
// its version and count while no term reaches a log or the audit trail.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { httpRequest, startGateway } from './harness.mjs';

const bundle = {
  'bundle.json': { name: 'lists', revision: 1, default: 'allow', timezone: 'UTC' },
  'lists.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
};

describe('term lists', () => {
  let gw;
  let token;
  let tokenFile;

  const api = (method, p, body, headers = {}) => httpRequest(gw.pdpAdminPort, {
    method,
    path: `/admin/v1/${p}`,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const adminUrl = () => `http://127.0.0.1:${gw.pdpAdminPort}`;

  before(async () => {
    gw = await startGateway({ bundle, pdpAdmin: true });
    const r = await gw.cli(['admin-tokens', 'create', 'ops', '--config', gw.cfgPath]);
    token = r.stdout.trim();
    gw.secrets.push(token);
    tokenFile = path.join(gw.dir, 'ops.token');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  });

  after(async () => {
    await gw?.stop();
  });

  test('a 3 MB list set over the admin API, read back the same everywhere', async () => {
    // 16,000 distinct terms of 190 bytes, a comment and one repeat.
    const terms = Array.from({ length: 16000 }, (_, i) => `rival-${String(i).padStart(5, '0')}-${'x'.repeat(178)}`);
    const file = path.join(gw.dir, 'rivals.txt');
    fs.writeFileSync(file, `# rivals\n${terms.join('\n')}\n${terms[7]}\n`);
    assert.ok(fs.statSync(file).size > 3_000_000);
    // Terms are never logged: any of them in any log fails the run.
    gw.secrets.push(terms[0], terms[7], terms[15999]);

    let r = await gw.cli(['lists', 'set', 'rivals', '--file', file, '--url', adminUrl(), '--token-file', tokenFile]);
    assert.equal(r.stdout, 'Created list rivals: version 1, 16000 terms.\n');
    assert.match(r.stderr, /1 duplicate term dropped \(the first at line 16002 repeats line 9\)/);

    r = await api('GET', 'lists/rivals');
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.version, 1);
    assert.equal(r.json.count, 16000);
    assert.deepEqual(r.json.terms, terms);
    assert.match(r.json.by, /^token:ops/);

    // On the state directory, beside the running PDP: byte for byte.
    r = await gw.cli(['lists', 'get', 'rivals', '--config', gw.cfgPath]);
    assert.equal(r.stdout, `${terms.join('\n')}\n`);
    r = await gw.cli(['lists', 'list', '--config', gw.cfgPath, '--format', 'json']);
    assert.deepEqual(JSON.parse(r.stdout).lists.map((l) => [l.name, l.version, l.count]), [['rivals', 1, 16000]]);

    // A change made on the state directory, seen through the API.
    const small = path.join(gw.dir, 'small.txt');
    fs.writeFileSync(small, 'acme\nglobex\n');
    await gw.cli(['lists', 'set', 'rivals', '--file', small, '--config', gw.cfgPath]);
    r = await api('GET', 'lists/rivals');
    assert.equal(r.json.version, 2);
    assert.deepEqual(r.json.terms, ['acme', 'globex']);

    r = await api('GET', 'lists/rivals/history');
    assert.deepEqual(r.json.history.map((c) => [c.version, c.op, c.count]), [[2, 'set', 2], [1, 'set', 16000]]);
    r = await api('GET', 'audit?limit=5');
    const sets = r.json.audit.filter((a) => a.action === 'lists.set' && a.target === 'list:rivals');
    assert.deepEqual(sets.map((a) => [a.detail.version, a.detail.count]), [[2, 2], [1, 16000]]);
    assert.match(sets[1].actor, /^token:ops/);
    assert.match(sets[0].actor, /^cli:/);
    assert.ok(!r.text.includes('rival-0') && !r.text.includes('globex'), 'no term in the audit trail');
  });

  test('bodies past the limits are refused with 413', async () => {
    // Past the lists' 16 MiB: refused before it is parsed.
    const huge = JSON.stringify({ terms: Array.from({ length: 90000 }, (_, i) => `${i}-${'y'.repeat(190)}`) });
    assert.ok(huge.length > 16 << 20);
    let r = await api('PUT', 'lists/huge', huge);
    assert.equal(r.status, 413, r.text);
    assert.match(r.json.error.message, /over 16 MiB/);
    // Other admin requests keep their 1 MiB.
    r = await api('PUT', 'tenants/big-co', JSON.stringify({ name: 'x', pad: 'z'.repeat(1_200_000) }));
    assert.equal(r.status, 413, r.text);
    assert.match(r.json.error.message, /over 1 MiB/);
    // Under 16 MiB but over the list's 4 MiB of terms: said as such.
    const over = { terms: Array.from({ length: 22000 }, (_, i) => `${i}-${'w'.repeat(190)}`) };
    r = await api('PUT', 'lists/over', over);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'list_too_large');
    assert.equal((await api('GET', 'lists/over')).status, 404);
  });
});
