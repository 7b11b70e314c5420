// decisions.test.mjs - the decision log as a compliance officer relies on
// it: one record for every request the data plane received with a key,
// whatever its path (allowed, denied by a rule, rate-limited, refused by
// the data plane, failed upstream, without a PDP); capture levels that
// keep exactly what they allow; a chain and signatures that catch a
// changed byte in the store or in an export, naming the record; pruning
// that keeps it verifiable; audit-mode hits in the record, a header and
// the metrics.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import {
  DEAD_PORT, decisionRecords, errorBody, mockDeployment, pollUntil, runBinary, startGateway, userMsg,
} from './harness.mjs';

const canary = (what) => `${what}-${crypto.randomBytes(8).toString('hex')}`;

function bundle() {
  return {
    'bundle.json': { name: 'decisions-it', revision: 1, audit_hits_header: true },
    'access.policy.json': {
      rules: [
        { id: 'allow-all', kind: 'access', effect: 'allow' },
        {
          id: 'no-secret-model', kind: 'access', effect: 'deny', when: { eq: ['request.model', 'secret-model'] },
          status: 403, code: 'model_forbidden', message: 'Not this model.',
        },
        // The rollout under test: in audit mode it only says what it would do.
        { id: 'would-deny-small', kind: 'access', mode: 'audit', effect: 'deny', when: { eq: ['request.model', 'mock-small'] } },
        { id: 'two-a-minute', kind: 'rate_limit', scope: 'key', rpm: 2, on_error: 'skip', when: { eq: ['principal.labels.limited', 'yes'] } },
      ],
    },
    'audit.policy.json': {
      rules: [
        { id: 'capture-meta', kind: 'audit', capture: 'metadata', on_error: 'skip', when: { eq: ['request.metadata.level', 'meta'] } },
        { id: 'capture-full', kind: 'audit', capture: 'full', on_error: 'skip', when: { eq: ['request.metadata.level', 'full'] } },
      ],
    },
  };
}

const pdpCli = (gw, args, opts) => gw.cli([...args, '--config', gw.cfgPath], opts);

describe('the decision log', () => {
  let gw;
  let key;
  let limitedKey;

  before(async () => {
    gw = await startGateway({
      pdpAdmin: true,
      pdp: { bundle_watch: false, decisions: { checkpoint_every: 4 } },
      bundle: bundle(),
      deployments: (mockPort) => [
        { ...mockDeployment('dead', 'dead-model', mockPort), api_base: `http://127.0.0.1:${DEAD_PORT}/v1` },
        mockDeployment('secret', 'secret-model', mockPort),
      ],
      // Every path asks the PDP (the PDP down among them); the records of
      // reused decisions are reuse.test.mjs's.
      dataplane: { retries: 0, decision_reuse_ms: 0 },
    });
    ({ key } = await gw.createKey({ tenant: 'acme' }));
    ({ key: limitedKey } = await gw.createKey({ tenant: 'acme', labels: { limited: 'yes' } }));
  });
  after(async () => {
    await gw?.stop();
  });

  test('every path a keyed request can take leaves exactly one record, with its verdict, status, code and rules', async () => {
    const body = (model, extra = {}) => ({ model, messages: userMsg('hello'), ...extra });
    const want = []; // [request id, expected fields]
    const note = (r, fields) => {
      const id = r.headers['x-request-id'];
      assert.ok(id, 'an answer without x-request-id');
      want.push([id, { status: r.status, ...fields }]);
    };

    let r = await gw.chat(body('gpt-4o-mini'), { key });
    assert.equal(r.status, 200, r.text);
    note(r, { verdict: 'allow', deployment: 'mock-gpt-4o-mini', code: '', rules: ['allow-all'] });

    r = await gw.chat(body('secret-model'), { key });
    errorBody(r, 403, 'model_forbidden');
    note(r, { verdict: 'deny', code: 'model_forbidden', rules: ['no-secret-model'] });

    r = await gw.chat(body('gpt-4o-mini', { stream: true }), { key, stream: true });
    assert.equal(r.status, 200);
    note(r, { verdict: 'allow', deployment: 'mock-gpt-4o-mini' });

    for (let i = 0; i < 2; i++) assert.equal((await gw.chat(body('gpt-4o-mini'), { key: limitedKey })).status, 200);
    r = await gw.chat(body('gpt-4o-mini'), { key: limitedKey });
    errorBody(r, 429, 'rate_limit_exceeded');
    note(r, { verdict: 'deny', code: 'rate_limit_exceeded', rules: ['two-a-minute'] });

    r = await gw.chat(body('dead-model'), { key });
    assert.ok(r.status >= 502 && r.status <= 504, `a dead upstream answered ${r.status}`);
    note(r, { verdict: 'allow', deployment: 'dead' });

    r = await gw.request('/v1/chat/completions', {
      method: 'POST', key, headers: { 'content-type': 'application/json' }, body: '{"model": "gpt-4o-mini", "messages": [',
    });
    errorBody(r, 400, 'invalid_json');
    note(r, { verdict: 'none', origin: 'dataplane', code: 'invalid_json' });

    r = await gw.chat(body('gpt-4o-mini'), { key: 'sk-tg-not-a-key-at-all-0000000000000000' });
    assert.equal(r.status, 401);
    note(r, { verdict: 'deny', key_id: '' });

    r = await gw.request('/v1/models', { key });
    assert.equal(r.status, 200);
    note(r, { verdict: 'allow', endpoint: 'models' });

    // No PDP: refused by the data plane, recorded once the PDP is back.
    await gw.killPdp('SIGKILL');
    r = await gw.chat(body('gpt-4o-mini'), { key });
    errorBody(r, 503, 'pdp_unavailable');
    note(r, { verdict: 'none', origin: 'dataplane', tenant: 'acme' });
    await gw.startPdp();

    const recs = await pollUntil(async () => {
      const all = await decisionRecords(gw);
      return want.every(([id]) => all.byId.has(id)) ? all : null;
    }, { what: 'a record for every request' });
    assert.deepEqual(recs.dups, [], 'a request recorded twice');
    for (const [id, fields] of want) {
      const rec = recs.byId.get(id);
      for (const [k, v] of Object.entries(fields)) {
        if (k === 'rules') {
          const enforced = rec.rules.filter((x) => x.mode === 'enforce').map((x) => x.id);
          for (const rule of v) assert.ok(enforced.includes(rule), `${id}: rule ${rule} not in ${JSON.stringify(rec.rules)}`);
        } else {
          assert.equal(rec[k], v, `${id}: ${k} is ${JSON.stringify(rec[k])}, expected ${JSON.stringify(v)}\n${JSON.stringify(rec)}`);
        }
      }
      assert.match(rec.prev, /^[0-9a-f]{64}$/);
      assert.equal(typeof rec.latency.total_ms, 'number');
    }
    const allowed = recs.byId.get(want[0][0]);
    assert.equal(allowed.tenant, 'acme');
    assert.ok(allowed.cost_micro_usd > 0, 'an answered request with no cost');
    assert.ok(allowed.tokens.prompt > 0 && allowed.tokens.completion > 0);
    assert.ok(allowed.latency.first_byte_us > 0 && allowed.latency.pdp_us > 0);
    assert.match(allowed.bundle_hash, /^[0-9a-f]{64}$/);
    assert.equal(allowed.revision, 1);

    // show finds one by request id; the chain verifies.
    const shown = JSON.parse((await pdpCli(gw, ['decisions', 'show', want[1][0], '--format', 'json'])).stdout);
    assert.equal(shown.request_id, want[1][0]);
    assert.equal(shown.verdict, 'deny');
    const v = await pdpCli(gw, ['decisions', 'verify']);
    assert.match(v.stdout, /^ok: \d+ records/);
  });

  test('capture levels keep exactly what they allow: none keeps no metadata, metadata no bodies, full both', async () => {
    const levels = ['none', 'meta', 'full'];
    const sent = {};
    for (const level of levels) {
      const meta = canary(`meta-${level}`);
      const prompt = canary(`prompt-${level}`);
      const r = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`say ${prompt}`) }, {
        key, headers: { 'x-tollgate-meta-level': level, 'x-tollgate-meta-ticket': meta },
      });
      assert.equal(r.status, 200, r.text);
      sent[level] = { id: r.headers['x-request-id'], meta, prompt };
    }
    const recs = await pollUntil(async () => {
      const all = await decisionRecords(gw);
      return levels.every((l) => all.byId.has(sent[l].id)) ? all : null;
    }, { what: 'the capture records' });
    const none = recs.byId.get(sent.none.id);
    const meta = recs.byId.get(sent.meta.id);
    const full = recs.byId.get(sent.full.id);
    assert.equal(none.capture, 'none');
    assert.equal(none.metadata, undefined);
    assert.equal(none.content, undefined);
    assert.equal(meta.capture, 'metadata');
    assert.equal(meta.metadata.ticket, sent.meta.meta);
    assert.equal(meta.content, undefined);
    assert.equal(full.capture, 'full');
    assert.equal(full.metadata.ticket, sent.full.meta);
    assert.ok(full.content.request.includes(sent.full.prompt), 'the full record lacks the prompt');
    assert.match(full.content.response, /w0 w1/);
    assert.equal(full.content.truncated, false);

    // What a level does not allow was never written: not in the PDP's
    // state, not in the data plane's spool (raw bytes, free pages too).
    await gw.stop({ keepDir: true });
    const bytes = ['pdp-state', 'spool'].map((d) => fs.readFileSync(path.join(gw.dir, d, 'data.mdb')));
    const found = (s) => bytes.some((b) => b.includes(Buffer.from(s)));
    assert.ok(!found(sent.none.meta), 'the none-level metadata value is stored somewhere');
    assert.ok(!found(sent.none.prompt), 'the none-level prompt is stored somewhere');
    assert.ok(!found(sent.meta.prompt), 'the metadata-level prompt is stored somewhere');
    assert.ok(found(sent.meta.meta) && found(sent.full.prompt), 'the canaries that should be stored are not');
    gw = await startGateway({ ...gw.opts, dir: gw.dir });
  });

  test('audit-mode hits: in the record, in x-tollgate-audit-hits, in the rule metrics, and listed by --audit-hits', async () => {
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('hi') }, { key });
    assert.equal(r.status, 200, r.text); // audit mode: it would deny, it does not
    assert.equal(r.headers['x-tollgate-audit-hits'], 'would-deny-small');
    const other = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg('hi') }, { key });
    assert.equal(other.headers['x-tollgate-audit-hits'], undefined);

    const id = r.headers['x-request-id'];
    const rows = await pollUntil(async () => {
      const out = await pdpCli(gw, ['decisions', 'list', '--audit-hits', 'would-deny-small', '--format', 'jsonl']);
      const recs = out.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      return recs.some((x) => x.request_id === id) ? recs : null;
    }, { what: 'the audit hit in decisions list' });
    assert.ok(rows.every((x) => x.model === 'mock-small'), 'a request the rule did not match is listed');
    const hit = rows.find((x) => x.request_id === id).rules.find((x) => x.id === 'would-deny-small');
    assert.deepEqual(hit, { id: 'would-deny-small', mode: 'audit', effect: 'deny' });
    const table = await pdpCli(gw, ['decisions', 'list', '--audit-hits', 'any']);
    assert.match(table.stdout, new RegExp(`${id}.*would-deny-small\\(audit\\)`));

    const m = await gw.pdpMetrics();
    assert.ok(m['tollgate_pdp_rule_hits_total{rule="would-deny-small",mode="audit",effect="deny"}'] >= 1, JSON.stringify(m));
    assert.ok(m['tollgate_pdp_rule_hits_total{rule="allow-all",mode="enforce",effect="allow"}'] >= 2, JSON.stringify(m));
  });

  test('tampering with any byte of an export fails verify offline, naming the record; the untouched file verifies', async () => {
    for (let i = 0; i < 6; i++) assert.equal((await gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`t${i}`) }, { key })).status, 200);
    await pollUntil(async () => ((await decisionRecords(gw)).list.length >= 20 ? true : null), { what: 'records' });
    const exp = await pdpCli(gw, ['decisions', 'export']);
    const pub = await pdpCli(gw, ['decisions', 'public-key']);
    const file = path.join(gw.dir, 'export.jsonl');
    const keyFile = path.join(gw.dir, 'decisions.pub');
    fs.writeFileSync(file, exp.stdout);
    fs.writeFileSync(keyFile, pub.stdout);
    const verify = (f) => runBinary('tollgate-pdp', ['decisions', 'verify', '--file', f, '--public-key', keyFile]);
    const ok = await verify(file);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: \d+ records \(1 to \d+\), \d+ checkpoints/);

    const lines = exp.stdout.trimEnd().split('\n');
    assert.ok(lines.at(-1).startsWith('{"checkpoint"'), 'an export must end on a checkpoint');
    let tries = 0;
    for (let n = 0; n < lines.length; n++) {
      const isRecord = !lines[n].startsWith('{"checkpoint"');
      const seq = isRecord ? JSON.parse(lines[n]).seq : JSON.parse(lines[n]).checkpoint.seq;
      // Three positions a line: the start, the middle, the end.
      for (const at of [2, Math.floor(lines[n].length / 2), lines[n].length - 3]) {
        const bad = [...lines];
        const c = bad[n][at];
        bad[n] = bad[n].slice(0, at) + (c === '1' ? '2' : '1') + bad[n].slice(at + 1);
        const f = path.join(gw.dir, 'tampered.jsonl');
        fs.writeFileSync(f, `${bad.join('\n')}\n`);
        const r = await verify(f);
        tries++;
        assert.equal(r.code, 1, `line ${n + 1} changed at ${at} still verifies:\n${bad[n]}\n${r.stdout}${r.stderr}`);
        assert.match(r.stderr, new RegExp(`\\b(record|checkpoint) ${seq}\\b`),
          `the failure does not name ${isRecord ? 'record' : 'checkpoint'} ${seq}: ${r.stderr}`);
      }
    }
    assert.ok(tries >= 3 * lines.length);
    // A line dropped, or the file cut before its last checkpoint.
    const dropped = path.join(gw.dir, 'dropped.jsonl');
    fs.writeFileSync(dropped, `${lines.filter((_, i) => i !== 3).join('\n')}\n`);
    assert.equal((await verify(dropped)).code, 1);
    fs.writeFileSync(dropped, `${lines.slice(0, -1).join('\n')}\n`);
    const cut = await verify(dropped);
    assert.equal(cut.code, 1);
    assert.match(cut.stderr, /not covered by a signed checkpoint/);
  });

  test('tampering with a stored record fails decisions verify, naming it', async () => {
    await pollUntil(async () => (/^ok/.test((await pdpCli(gw, ['decisions', 'verify'])).stdout) ? true : null),
      { what: 'a verifying log' });
    await gw.stop({ keepDir: true });
    const state = path.join(gw.dir, 'pdp-state');
    // mdb_dump / mdb_load (lmdb-utils, hex format) rewrite one value of the
    // decisions database: record 3's status.
    const dump = execFileSync('mdb_dump', ['-s', 'decisions', state], { encoding: 'utf8' }).split('\n');
    let changed = false;
    for (let i = dump.indexOf('HEADER=END') + 2; i < dump.length && !changed; i += 2) {
      const rec = Buffer.from(dump[i].trim(), 'hex').toString('utf8');
      if (rec.includes('"seq":3,')) {
        const edited = rec.replace(/"status":(\d+)/, (_, st) => `"status":${Number(st) === 200 ? 201 : 200}`);
        assert.notEqual(edited, rec);
        dump[i] = ` ${Buffer.from(edited, 'utf8').toString('hex')}`;
        changed = true;
      }
    }
    assert.ok(changed, 'record 3 not found in the dump');
    execFileSync('mdb_load', ['-s', 'decisions', state], { input: dump.join('\n'), stdio: ['pipe', 'pipe', 'pipe'] });
    const r = await runBinary('tollgate-pdp', ['decisions', 'verify', '--config', gw.cfgPath]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /record 3\b/);
    gw = await startGateway({ ...gw.opts, dir: gw.dir });
  });
});

describe('the decision log: retention and crashes', () => {
  let gw;
  let key;
  before(async () => {
    // Checkpoints by count only (not also every 10 s), so where they fall
    // is known.
    gw = await startGateway({ pdpAdmin: true, pdp: { decisions: { checkpoint_every: 5, checkpoint_seconds: 3600 } } });
    ({ key } = await gw.createKey({ tenant: 'ret' }));
  });
  after(async () => {
    await gw?.stop();
  });

  test('pruning keeps the log verifiable from the oldest kept checkpoint, and an export of what is left verifies', async () => {
    // Paced over 1.8 s, past the PDP's first timer tick: a timed checkpoint
    // must not come before checkpoint_seconds (here an hour) have passed.
    for (let i = 0; i < 12; i++) {
      assert.equal((await gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`p${i}`) }, { key })).status, 200);
      await new Promise((res) => setTimeout(res, 150));
    }
    await pollUntil(async () => ((await decisionRecords(gw)).list.length >= 12 ? true : null), { what: '12 records' });
    const cut = Date.now() + 1;
    await new Promise((res) => setTimeout(res, 20));
    for (let i = 0; i < 3; i++) assert.equal((await gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`q${i}`) }, { key })).status, 200);
    await pollUntil(async () => ((await decisionRecords(gw)).list.length >= 15 ? true : null), { what: '15 records' });

    const p = await gw.cli(['decisions', 'prune', '--before', new Date(cut).toISOString(), '--config', gw.cfgPath,
      '--format', 'json']);
    const removed = JSON.parse(p.stdout).removed;
    assert.equal(removed, 10, 'pruning goes up to the newest checkpoint before the cut (every 5 records)');
    const left = await decisionRecords(gw);
    assert.equal(Math.min(...left.list.map((x) => x.seq)), 11);
    const v = await gw.cli(['decisions', 'verify', '--config', gw.cfgPath]);
    assert.match(v.stdout, /^ok: 5 records \(11 to 15\)/);
    const exp = await gw.cli(['decisions', 'export', '--config', gw.cfgPath]);
    assert.ok(exp.stdout.startsWith('{"checkpoint":{"seq":10,'), 'the export does not start at its anchor');
    fs.writeFileSync(path.join(gw.dir, 'e.jsonl'), exp.stdout);
    fs.writeFileSync(path.join(gw.dir, 'k.pem'), (await gw.cli(['decisions', 'public-key', '--config', gw.cfgPath])).stdout);
    const off = await runBinary('tollgate-pdp', ['decisions', 'verify', '--file', path.join(gw.dir, 'e.jsonl'),
      '--public-key', path.join(gw.dir, 'k.pem')]);
    assert.equal(off.code, 0, off.stderr);
    // The prune is in the audit trail, with who did it.
    const audit = await gw.cli(['audit', 'list', '--config', gw.cfgPath, '--format', 'json']);
    assert.ok(JSON.parse(audit.stdout).audit.some((a) => a.action === 'decisions.prune'));
  });

  test('a SIGKILL of either process loses no record of a request the client saw answered', { timeout: 90_000 }, async () => {
    const answered = [];
    let stop = false;
    async function client(c) {
      for (let i = 0; !stop; i++) {
        const stream = (c + i) % 2 === 0;
        const body = { model: (c % 3 === 0) ? 'nope-model' : 'gpt-4o-mini', messages: userMsg(`[[mock chunks=20 ttft_ms=30]] k${c}-${i}`) };
        if (stream) body.stream = true;
        try {
          const r = await gw.chat(body, { key, stream });
          // A stream cut by the kill still was an answer the client saw.
          if (r.headers?.['x-request-id']) answered.push({ id: r.headers['x-request-id'], status: r.status });
        } catch {
          // the connection died with the data plane: no answer seen
        }
      }
    }
    const clients = Array.from({ length: 8 }, (_, c) => client(c));
    await new Promise((res) => setTimeout(res, 400));
    await gw.killPdp('SIGKILL');
    await gw.startPdp();
    await new Promise((res) => setTimeout(res, 400));
    const Proc = gw.dp.constructor;
    await gw.dp.kill('SIGKILL');
    gw.dp = new Proc('dataplane', gw.dp.name, gw.dp.args, { dir: gw.dir, env: gw.dp.env }).start();
    gw.procs.push(gw.dp);
    await gw.waitReady(200);
    await new Promise((res) => setTimeout(res, 400));
    stop = true;
    await Promise.all(clients);
    assert.ok(answered.length > 20, `only ${answered.length} answers`);
    const recs = await pollUntil(async () => {
      const all = await decisionRecords(gw);
      return answered.every((a) => all.byId.has(a.id)) ? all : null;
    }, { timeoutMs: 30_000, what: 'a record for every answered request' }).catch(async (e) => {
      const all = await decisionRecords(gw);
      const missing = answered.filter((a) => !all.byId.has(a.id));
      throw new Error(`${missing.length} of ${answered.length} answered requests have no record: ${JSON.stringify(missing.slice(0, 5))}`);
    });
    assert.deepEqual(recs.dups, []);
    const v = await gw.cli(['decisions', 'verify', '--config', gw.cfgPath]);
    assert.match(v.stdout, /^ok:/);
  });
});

describe('the decision log when it cannot keep up', () => {
  test('on_log_full: deny refuses metadata-capture requests while the backlog is over its bound; shed serves them, counted', async () => {
    const gw = await startGateway({
      bundle: {
        'bundle.json': { name: 'full', revision: 1 },
        'a.policy.json': {
          rules: [
            { id: 'allow', kind: 'access', effect: 'allow' },
            { id: 'meta-deny', kind: 'audit', capture: 'metadata', on_error: 'skip', when: { eq: ['request.model', 'gpt-4o-mini'] } },
            { id: 'meta-shed', kind: 'audit', capture: 'metadata', on_log_full: 'shed', on_error: 'skip', when: { eq: ['request.model', 'mock-small'] } },
          ],
        },
      },
      // A bound of 0: any report not yet acknowledged is "over".
      dataplane: { decision_backlog_max: 0 },
    });
    try {
      const { key } = await gw.createKey({ tenant: 'lf' });
      const r = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg('x') }, { key, headers: { 'x-tollgate-meta-a': 'b' } });
      errorBody(r, 503, 'decision_log_full');
      const s = await gw.chat({ model: 'mock-small', messages: userMsg('x') }, { key, headers: { 'x-tollgate-meta-a': 'shed-me' } });
      assert.equal(s.status, 200, s.text);
      const m = await gw.metrics();
      assert.equal(m.tollgate_decision_records_refused_total, 1, JSON.stringify(m));
      assert.equal(m.tollgate_decision_records_shed_total, 1, JSON.stringify(m));
      const recs = await pollUntil(async () => {
        const all = await decisionRecords(gw);
        return all.byId.has(s.headers['x-request-id']) && all.byId.has(r.headers['x-request-id']) ? all : null;
      }, { what: 'both records' });
      const shed = recs.byId.get(s.headers['x-request-id']);
      assert.equal(shed.shed, true);
      assert.equal(shed.metadata, undefined);
      assert.equal(recs.byId.get(r.headers['x-request-id']).code, 'decision_log_full');
    } finally {
      await gw.stop();
    }
  });
});

describe('replay of a candidate bundle', () => {
  test('a candidate that adds a deny reports exactly the requests it would deny, and one that drops a deny those it would allow', async () => {
    const rules = (extra, { keepSecret = true } = {}) => ({
      'bundle.json': { name: 'replay-it', revision: 1 },
      'access.policy.json': {
        rules: [
          { id: 'allow-all', kind: 'access', effect: 'allow' },
          ...(keepSecret ? [{ id: 'no-secret', kind: 'access', effect: 'deny', when: { eq: ['request.model', 'secret-model'] } }] : []),
          ...extra,
        ],
      },
    });
    const gw = await startGateway({
      pdp: { bundle_watch: false },
      bundle: rules([]),
      deployments: (mockPort) => [mockDeployment('secret', 'secret-model', mockPort)],
    });
    try {
      await gw.setTenant('free-co', { tier: 'free' });
      await gw.setTenant('pro-co', { tier: 'pro' });
      const { key: free } = await gw.createKey({ tenant: 'free-co' });
      const { key: pro } = await gw.createKey({ tenant: 'pro-co', labels: { team: 'ml' } });
      const ids = { wouldDeny: [], wouldAllow: [], same: [] };
      const send = async (key, model, bucket) => {
        const r = await gw.chat({ model, messages: userMsg('r') }, { key });
        ids[bucket].push(r.headers['x-request-id']);
        return r;
      };
      for (let i = 0; i < 3; i++) assert.equal((await send(free, 'mock-small', 'wouldDeny')).status, 200);
      for (let i = 0; i < 2; i++) await send(free, 'gpt-4o-mini', 'same');
      for (let i = 0; i < 2; i++) await send(pro, 'mock-small', 'same');
      // principal.labels from the record: the ml team's key is denied too.
      assert.equal((await send(pro, 'gpt-4o-mini', 'wouldDeny')).status, 200);
      assert.equal((await send(pro, 'secret-model', 'wouldAllow')).status, 403);
      const all = [...ids.wouldDeny, ...ids.wouldAllow, ...ids.same];
      await pollUntil(async () => {
        const recs = await decisionRecords(gw);
        return all.every((id) => recs.byId.has(id)) ? true : null;
      }, { what: 'the records to replay' });

      const cand = path.join(gw.dir, 'candidate');
      fs.mkdirSync(cand);
      const files = rules([
        { id: 'free-no-small', kind: 'access', effect: 'deny', when: { all: [{ eq: ['tenant.tier', 'free'] }, { eq: ['request.model', 'mock-small'] }] } },
        { id: 'ml-no-mini', kind: 'access', effect: 'deny', on_error: 'skip', when: { all: [{ eq: ['principal.labels.team', 'ml'] }, { eq: ['request.model', 'gpt-4o-mini'] }] } },
      ], { keepSecret: false });
      for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(cand, n), JSON.stringify(c));
      const r = await gw.cli(['replay', '--bundle', cand, '--config', gw.cfgPath, '--since', '1h', '--format', 'json',
        '--examples', '100']);
      const rep = JSON.parse(r.stdout);
      assert.equal(rep.replayed, all.length, r.stdout);
      const byRule = Object.fromEntries(rep.changes.map((c) => [`${c.from}>${c.to}:${c.rule}`, c.count]));
      assert.deepEqual(byRule, { 'allow>deny:free-no-small': 3, 'allow>deny:ml-no-mini': 1, 'deny>allow:no-secret': 1 });
      const denied = rep.examples.filter((e) => e.to === 'deny').map((e) => e.request_id).sort();
      assert.deepEqual(denied, [...ids.wouldDeny].sort());
      assert.deepEqual(rep.examples.filter((e) => e.to === 'allow').map((e) => e.request_id), ids.wouldAllow);
      assert.match(rep.examples[0].explain, /MATCHED/);
      // The text report says the same for people.
      const text = await gw.cli(['replay', '--bundle', cand, '--config', gw.cfgPath, '--examples', '1']);
      assert.match(text.stdout, /allow -> deny +3 +denied by free-no-small/);
      assert.match(text.stdout, /deny +-> allow +1 +no longer denied by no-secret/);
    } finally {
      await gw.stop();
    }
  });
});

describe('policy history: who changed what', () => {
  test('activations keep their files and who asked; refusals are recorded with why; show and diff answer an auditor', async () => {
    const v1 = {
      'bundle.json': { name: 'hist', revision: 1 },
      'access.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
    };
    const gw = await startGateway({ pdpAdmin: true, pdp: { bundle_watch: false }, bundle: v1 });
    try {
      const write = (files) => {
        fs.rmSync(gw.bundleDir, { recursive: true, force: true });
        fs.mkdirSync(gw.bundleDir);
        for (const [n, c] of Object.entries(files)) fs.writeFileSync(path.join(gw.bundleDir, n), `${JSON.stringify(c, null, 2)}\n`);
      };
      const v2 = {
        'bundle.json': { name: 'hist', revision: 2 },
        'access.policy.json': {
          rules: [
            { id: 'allow-all', kind: 'access', effect: 'allow' },
            { id: 'no-small', kind: 'access', effect: 'deny', when: { eq: ['request.model', 'mock-small'] } },
          ],
        },
      };
      write(v2);
      await gw.cli(['reload', '--config', gw.cfgPath]);
      write({ ...v2, 'bundle.json': { name: 'hist', revision: 3 }, 'broken.policy.json': { rules: [{ id: 'x', kind: 'nope' }] } });
      await gw.cli(['reload', '--config', gw.cfgPath], { expectCode: 1 });

      const h = JSON.parse((await gw.cli(['policy', 'history', '--config', gw.cfgPath, '--format', 'json'])).stdout).history;
      assert.equal(h.length, 3, JSON.stringify(h));
      assert.equal(h[0].refused, true);
      assert.match(h[0].why, /does not compile/);
      assert.equal(h[1].revision, 2);
      assert.equal(h[1].refused, false);
      assert.match(h[1].actor, /^token:\S+ for cli:[^@\s]+@\S+$/);
      assert.equal(h[2].actor, 'start');

      const shown = JSON.parse((await gw.cli(['policy', 'show', '2', '--config', gw.cfgPath, '--format', 'json'])).stdout);
      assert.equal(shown.revision, 2);
      assert.deepEqual(JSON.parse(shown.files['access.policy.json']), v2['access.policy.json']);
      const one = await gw.cli(['policy', 'show', '1', '--file', 'access.policy.json', '--config', gw.cfgPath]);
      assert.deepEqual(JSON.parse(one.stdout), v1['access.policy.json']);

      const d = (await gw.cli(['policy', 'diff', '1', '2', '--config', gw.cfgPath])).stdout;
      assert.match(d, /^added rule no-small$/m);
      assert.doesNotMatch(d, /rule allow-all/);
      assert.match(d, /^--- a\/access\.policy\.json$/m);
      assert.match(d, /^\+ +"id": "no-small",$/m);
      assert.match(d, /^-  "revision": 1$/m);
      assert.match(d, /^\+  "revision": 2$/m);
      await gw.cli(['policy', 'show', '9', '--config', gw.cfgPath], { expectCode: 1 });
    } finally {
      await gw.stop();
    }
  });
});

describe('hermetic bundle tests', () => {
  test('a bundle with its own catalog.json tests the same anywhere; a PDP with other deployments warns, naming the tests, and serves', async () => {
    const bundle = {
      'bundle.json': { name: 'herm', revision: 1 },
      'a.policy.json': {
        rules: [
          { id: 'allow', kind: 'access', effect: 'allow' },
          { id: 'eu-only', kind: 'route', when: { eq: ['request.model', 'gpt-4o-mini'] }, labels: { region: 'eu' } },
        ],
      },
      'catalog.json': {
        deployments: [
          { id: 'eu-mini', model: 'gpt-4o-mini', provider: 'openai', api_base: 'http://127.0.0.1:1/v1', labels: { region: 'eu' } },
          { id: 'us-mini', model: 'gpt-4o-mini', provider: 'openai', api_base: 'http://127.0.0.1:1/v1', labels: { region: 'us' } },
        ],
      },
      'a.test.json': {
        tests: [{
          name: 'mini goes to the EU', input: { principal: { key_id: 'k' }, request: { endpoint: 'chat', model: 'gpt-4o-mini' } },
          expect: { decision: 'allow', route: ['eu-mini'] },
        }],
      },
    };
    // The gateway's own catalog has neither deployment (its EU deployment
    // has another id): before, the PDP refused to start ("expect.route:
    // no deployment eu-mini").
    const gw = await startGateway({
      bundle,
      deployments: (mockPort) => [{ ...mockDeployment('eu-live', 'gpt-4o-mini', mockPort), labels: { region: 'eu' } }],
    });
    try {
      assert.match(gw.pdp.stderr(), /warning: .*mini goes to the EU.*|warning: .*eu-mini/);
      const { key } = await gw.createKey({ tenant: 'h' });
      const r = await gw.chat({ model: 'mock-small', messages: userMsg('x') }, { key });
      assert.equal(r.status, 200, r.text);
      // `test` without a config runs against the bundle's catalog and passes.
      const t = await runBinary('tollgate-pdp', ['test', gw.bundleDir], { env: { TOLLGATE_CONFIG: '' } });
      assert.equal(t.code, 0, t.stdout + t.stderr);
      assert.match(t.stdout, /against the bundle's own catalog\.json/);
      assert.match(t.stdout, /^PASS a\.test\.json: mini goes to the EU$/m);
      // With this gateway's config it still passes, and says what would not hold here.
      const t2 = await runBinary('tollgate-pdp', ['test', gw.bundleDir, '--config', gw.cfgPath]);
      assert.equal(t2.code, 0, t2.stdout + t2.stderr);
      assert.match(t2.stderr, /warning: .*eu-mini/);
    } finally {
      await gw.stop();
    }
  });
});

describe('requests the data plane refuses before any work', () => {
  test('a keyed request refused at the door (content type, size, metadata headers) still leaves its record', async () => {
    const gw = await startGateway({});
    try {
      const { key } = await gw.createKey({ tenant: 'door' });
      const ids = [];
      let r = await gw.request('/v1/chat/completions', { method: 'POST', key, headers: { 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(r.status, 415);
      ids.push([r.headers['x-request-id'], 'unsupported_media_type']);
      r = await gw.request('/v1/chat/completions', {
        method: 'POST', key, headers: { 'content-type': 'application/json' }, body: `{"p":"${'x'.repeat(70000)}"}`,
      });
      assert.equal(r.status, 413);
      ids.push([r.headers['x-request-id'], 'request_too_large']);
      const headers = { 'content-type': 'application/json' };
      for (let i = 0; i < 20; i++) headers[`x-tollgate-meta-k${i}`] = 'v';
      r = await gw.request('/v1/chat/completions', { method: 'POST', key, headers, body: '{}' });
      assert.equal(r.status, 400);
      ids.push([r.headers['x-request-id'], 'invalid_header']);
      // Without a key there is nobody to record it for.
      r = await gw.request('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(r.status, 415);
      const recs = await pollUntil(async () => {
        const all = await decisionRecords(gw);
        return ids.every(([id]) => all.byId.has(id)) ? all : null;
      }, { what: 'the refusals\' records' });
      for (const [id, code] of ids) {
        const rec = recs.byId.get(id);
        assert.equal(rec.code, code);
        assert.equal(rec.origin, 'dataplane');
        assert.equal(rec.tenant, 'door', 'the PDP names the key from its hash');
      }
      assert.ok(!recs.byId.has(r.headers['x-request-id']));
    } finally {
      await gw.stop();
    }
  });
});
