// config_errors.test.mjs - a bad config file stops both servers at once with
// exit code 2 and a message that points at the file, line and column.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { runBinary } from './harness.mjs';

// Line numbers below are 1-based lines of these texts.
const UNKNOWN_KEY = `{
  "pdp": {
    "listen": ["ipc:///tmp/tgit-never/pdp.sock"],
    "state_dir": "state"
  },
  "dataplane": {
    "listen": "127.0.0.1:1",
    "pdp_url": "ipc:///tmp/tgit-never/pdp.sock",
    "pdp_timout_ms": 50,
    "spool_dir": "spool"
  },
  "deployments": []
}
`; // line 9, column 5: "pdp_timout_ms"

const UNKNOWN_DEPLOYMENT_KEY = `{
  "pdp": {"listen": ["ipc:///tmp/tgit-never/pdp.sock"], "state_dir": "state"},
  "dataplane": {"listen": "127.0.0.1:1", "pdp_url": "ipc:///tmp/tgit-never/pdp.sock", "spool_dir": "spool"},
  "deployments": [
    {"id": "a", "model": "m", "provider": "openai", "api_base": "http://127.0.0.1:1/v1",
     "apikey": "\${X}"}
  ]
}
`; // line 6, column 6: "apikey"

const MALFORMED = `{
  "pdp": {
    "listen": ["ipc:///tmp/tgit-never/pdp.sock"]
    "state_dir": "state"
  },
  "dataplane": {"listen": "127.0.0.1:1", "pdp_url": "ipc:///tmp/tgit-never/pdp.sock", "spool_dir": "spool"},
  "deployments": []
}
`; // missing comma: the parser stops on line 4

const LITERAL_SECRET = `{
  "pdp": {"listen": ["ipc:///tmp/tgit-never/pdp.sock"], "state_dir": "state"},
  "dataplane": {"listen": "127.0.0.1:1", "pdp_url": "ipc:///tmp/tgit-never/pdp.sock", "spool_dir": "spool"},
  "deployments": [
    {"id": "a", "model": "m", "provider": "openai", "api_base": "http://127.0.0.1:1/v1",
     "api_key": "sk-literal-secret-do-not-echo"}
  ]
}
`;

const commands = [
  ['tollgate-dataplane', (f) => ['--config', f]],
  ['tollgate-pdp', (f) => ['serve', '--config', f]],
];

describe('config errors', () => {
  let dir;

  before(() => {
    dir = fs.mkdtempSync('/tmp/tgit-cfg-');
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const write = (text) => {
    const sub = fs.mkdtempSync(path.join(dir, 'c-'));
    const f = path.join(sub, 'bad.json');
    fs.writeFileSync(f, text);
    return f;
  };

  for (const [name, args] of commands) {
    test(`${name}: unknown key -> exit 2, bad.json:LINE:COL and the key`, async () => {
      const f = write(UNKNOWN_KEY);
      const r = await runBinary(name, args(f));
      assert.equal(r.code, 2, `exit ${r.code} (${r.signal ?? 'no signal'}), stderr:\n${r.stderr}`);
      assert.match(r.stderr, /bad\.json:9:5\b/, r.stderr);
      assert.match(r.stderr, /pdp_timout_ms/, r.stderr);
      assert.ok(!fs.existsSync(path.join(path.dirname(f), 'state')), 'a bad config still created state');
      assert.ok(!fs.existsSync(path.join(path.dirname(f), 'spool')), 'a bad config still created a spool');
    });

    test(`${name}: unknown key in a deployment -> exit 2 with its position`, async () => {
      const r = await runBinary(name, args(write(UNKNOWN_DEPLOYMENT_KEY)));
      assert.equal(r.code, 2, `exit ${r.code}, stderr:\n${r.stderr}`);
      assert.match(r.stderr, /bad\.json:6:6\b/, r.stderr);
      assert.match(r.stderr, /apikey/, r.stderr);
    });

    test(`${name}: malformed JSON -> exit 2 with file:line`, async () => {
      const r = await runBinary(name, args(write(MALFORMED)));
      assert.equal(r.code, 2, `exit ${r.code}, stderr:\n${r.stderr}`);
      assert.match(r.stderr, /bad\.json:4:\d+/, r.stderr);
    });

    test(`${name}: a literal secret is refused without echoing it`, async () => {
      const r = await runBinary(name, args(write(LITERAL_SECRET)));
      assert.equal(r.code, 2, `exit ${r.code}, stderr:\n${r.stderr}`);
      assert.match(r.stderr, /bad\.json:6:\d+/, r.stderr);
      assert.ok(!r.stderr.includes('sk-literal-secret-do-not-echo'), r.stderr);
      assert.ok(!r.stdout.includes('sk-literal-secret-do-not-echo'), r.stdout);
    });

    test(`${name}: a missing file -> exit 2 naming it`, async () => {
      const f = path.join(dir, 'does-not-exist.json');
      const r = await runBinary(name, args(f));
      assert.equal(r.code, 2, `exit ${r.code}, stderr:\n${r.stderr}`);
      assert.match(r.stderr, /does-not-exist\.json/, r.stderr);
    });
  }
});
