// token_file.test.mjs - the CLI reads its admin token from a file
// (--token-file) so it stays out of argv, which every local user can read
// in /proc/PID/cmdline: the file's first line is the token, a file open to
// other users is warned about, and a missing or empty file is an error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { mockDeployment, startGateway } from './harness.mjs';

const bundle = {
  'bundle.json': { name: 'tokfile', revision: 1, default: 'allow', timezone: 'UTC' },
  'tokfile.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
};

describe('--token-file', () => {
  let gw;
  let token;
  let file;
  const adminUrl = () => `http://127.0.0.1:${gw.pdpAdminPort}`;
  const write = (name, text, mode = 0o600) => {
    const p = path.join(gw.dir, name);
    fs.writeFileSync(p, text, { mode });
    fs.chmodSync(p, mode);
    return p;
  };

  before(async () => {
    gw = await startGateway({
      bundle,
      pdpAdmin: true,
      deployments: (port) => [mockDeployment('mock-gpt-4o', 'gpt-4o', port)],
    });
    const r = await gw.cli(['admin-tokens', 'create', 'filer', '--config', gw.cfgPath]);
    token = r.stdout.trim();
    gw.secrets.push(token);
    gw.secrets.push(fs.readFileSync(path.join(gw.dir, 'pdp-state', 'admin.token'), 'utf8').trim());
    file = write('ops.token', `${token}\n`);
  });

  after(async () => {
    await gw?.stop();
  });

  test('the token is read from the file and acts as its admin token', async () => {
    let r = await gw.cli(['tenants', 'create', 'tf-co', '--name', 'Token File Co', '--url', adminUrl(),
      '--token-file', file, '--format', 'json']);
    assert.equal(JSON.parse(r.stdout).id, 'tf-co');
    assert.equal(r.stderr, '', 'a 0600 file gives no warning');
    r = await gw.cli(['audit', 'list', `--url=${adminUrl()}`, `--token-file=${file}`, '--format', 'json']);
    const made = JSON.parse(r.stdout).audit
      .find((a) => a.action === 'tenants.create' && a.target === 'tenant:tf-co');
    assert.match(made.actor, /^token:filer for cli:[^@\s]+@\S+$/); // the CLI says who it runs for
    // CRLF line endings and a second line are fine: only the first line counts.
    const crlf = write('crlf.token', `${token}\r\nsecond line\r\n`);
    r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token-file', crlf]);
    assert.match(r.stdout, /Token File Co/);
  });

  test('a file other users can read works but is warned about', async () => {
    const open = write('open.token', `${token}\n`, 0o644);
    const r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token-file', open]);
    assert.match(r.stdout, /Token File Co/);
    assert.match(r.stderr, /warning: --token-file .*open\.token is open to other users \(mode 644\); chmod 600/);
    assert.ok(!r.stderr.includes(token), 'the warning never shows the token');
  });

  test('a missing, empty or wrong file is an error that names the file', async () => {
    let r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token-file',
      path.join(gw.dir, 'no-such.token')], { expectCode: 1 });
    assert.match(r.stderr, /cannot read --token-file .*no-such\.token: No such file/);
    r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token-file', write('empty.token', '\n')],
      { expectCode: 1 });
    assert.match(r.stderr, /empty\.token has no token on its first line/);
    r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token-file', write('bad.token', 'tga-nope\n')],
      { expectCode: 1 });
    assert.match(r.stderr, /not valid/);
    r = await gw.cli(['tenants', 'show', 'tf-co', '--url', adminUrl(), '--token', token, '--token-file', file],
      { expectCode: 2 });
    assert.match(r.stderr, /--token or --token-file, not both/);
  });

  test('the usage text points to --token-file, not --token', async () => {
    const r = await gw.cli(['tenants', 'create', '--help']);
    assert.match(r.stdout, /--token-file FILE/);
    assert.match(r.stdout, /\/proc/);
  });
});
