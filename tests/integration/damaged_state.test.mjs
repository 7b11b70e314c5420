// damaged_state.test.mjs - a truncated or damaged LMDB file: tollgate-pdp
// (serve and every command) and tollgate-dataplane refuse it with a message
// that names the file and says what to do, instead of dying of SIGBUS (exit
// 135) without a word; `tollgate-pdp state check` names the database a
// garbled page belongs to (exit 1) and passes a sound directory (exit 0).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { pollUntil, runBinary, startGateway, userMsg } from './harness.mjs';

const REQUESTS = 80; // usage records: several leaf pages of "usage"

/** LMDB's layout (64-bit, mdb.c): a page is a 16-byte header (u64 pgno,
 * u16 pad, u16 flags, u16 lower, u16 upper, node offsets), meta pages 0
 * and 1 hold MDB_meta at byte 16: the page size at 40, the main tree's
 * MDB_db at 88 (depth at +6, root at +40), the txnid at 144. */
function lmdbPages(file) {
  const d = fs.readFileSync(file);
  const meta = (off) => ({ psize: d.readUInt32LE(off + 40), txnid: d.readBigUInt64LE(off + 144), main: off + 88 });
  const m0 = meta(0);
  const m1 = meta(m0.psize);
  const m = m1.txnid > m0.txnid ? m1 : m0;
  const psize = m0.psize;
  const page = (pgno) => d.subarray(Number(pgno) * psize, (Number(pgno) + 1) * psize);
  const nodes = (pg) => {
    const n = (pg.readUInt16LE(12) - 16) / 2;
    return Array.from({ length: n }, (_, i) => pg.readUInt16LE(16 + 2 * i));
  };
  return { d, psize, mainRoot: d.readBigUInt64LE(m.main + 40), mainDepth: d.readUInt16LE(m.main + 6), page, nodes };
}

/** middleLeaf returns the page number of a leaf in the middle of database
 * name's tree (which must have more than one leaf). */
function middleLeaf(file, name) {
  const { psize, mainRoot, mainDepth, page, nodes } = lmdbPages(file);
  assert.equal(mainDepth, 1, 'the main tree of the state is one page');
  const main = page(mainRoot);
  let db;
  for (const off of nodes(main)) {
    const ksize = main.readUInt16LE(off + 6);
    if (main.subarray(off + 8, off + 8 + ksize).toString() === name) db = off + 8 + ksize;
  }
  assert.ok(db !== undefined, `no database ${name} in ${file}`);
  const depth = main.readUInt16LE(db + 6);
  let pgno = main.readBigUInt64LE(db + 40);
  assert.ok(depth >= 2, `${name} fits one page (depth ${depth}): write more records`);
  for (let level = 1; level < depth; level++) {
    const pg = page(pgno);
    const offs = nodes(pg);
    const off = offs[Math.floor(offs.length / 2)];
    pgno = BigInt(pg.readUInt16LE(off)) | (BigInt(pg.readUInt16LE(off + 2)) << 16n) |
      (BigInt(pg.readUInt16LE(off + 4)) << 32n);
  }
  assert.equal(page(pgno).readUInt16LE(10), 0x02, `page ${pgno} is not a leaf`);
  return { pgno: Number(pgno), psize };
}

function assertRefused(r, what, file) {
  const out = `exit ${r.code} (${r.signal ?? 'no signal'})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.signal, null, `${what} died of a signal: ${out}`);
  assert.notEqual(r.code, 135, `${what} died of SIGBUS: ${out}`);
  assert.notEqual(r.code, 0, `${what} accepted a damaged file: ${out}`);
  assert.ok(r.stderr.includes(file), `${what} does not name ${file}: ${out}`);
  assert.match(r.stderr, /tollgate-pdp state check/, `${what} does not point at state check: ${out}`);
  assert.match(r.stderr, /restore it from a backup/, out);
}

describe('damaged state', () => {
  let gw;
  let stateFile;
  let spoolFile;
  let spoolDir;
  let cfg;
  let pristine;
  let pristineSpool;

  before(async () => {
    gw = await startGateway();
    const { key } = await gw.createKey({ tenant: 'damage' });
    for (let i = 0; i < REQUESTS; i += 8) {
      const batch = [];
      for (let j = i; j < i + 8 && j < REQUESTS; j++) {
        batch.push(gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`request ${j}`) }, { key }));
      }
      for (const r of await Promise.all(batch)) assert.equal(r.status, 200, r.text);
    }
    await pollUntil(async () => {
      const m = await gw.metrics();
      return m.tollgate_usage_spool_pending === 0 && (await gw.spendTenant('damage')).requests === REQUESTS;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'every usage report to be settled' });
    await gw.stop({ keepDir: true });
    cfg = gw.cfgPath;
    stateFile = path.join(gw.config.pdp.state_dir, 'data.mdb');
    spoolDir = gw.config.dataplane.spool_dir;
    spoolFile = path.join(spoolDir, 'data.mdb');
    pristine = fs.readFileSync(stateFile);
    pristineSpool = fs.readFileSync(spoolFile);
  });

  after(() => {
    if (gw) fs.rmSync(gw.dir, { recursive: true, force: true });
  });

  const restore = () => {
    fs.writeFileSync(stateFile, pristine);
    fs.writeFileSync(spoolFile, pristineSpool);
  };

  test('state check passes a sound state directory and spool (exit 0)', async () => {
    restore();
    const r = await runBinary('tollgate-pdp', ['state', 'check', '--config', cfg]);
    assert.equal(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    assert.match(r.stdout, /^ {2}usage +\d+ {2}ok$/m, r.stdout);
    assert.match(r.stdout, /^ {2}keys +1 {2}ok$/m, r.stdout);
    assert.match(r.stdout.trimEnd().split('\n').pop(), /^state check: ok: .*nothing to do$/, r.stdout);
    const usage = Number(/^ {2}usage +(\d+)/m.exec(r.stdout)[1]);
    assert.equal(usage, REQUESTS, r.stdout);

    const s = await runBinary('tollgate-pdp', ['state', 'check', '--spool', spoolDir]);
    assert.equal(s.code, 0, `stdout:\n${s.stdout}\nstderr:\n${s.stderr}`);
    assert.match(s.stdout, /state check: ok/, s.stdout);
  });

  test('truncated PDP state: serve and the commands refuse it, naming the file', async () => {
    restore();
    assert.ok(pristine.length > 4 * 4096, `state file is only ${pristine.length} bytes`);
    fs.truncateSync(stateFile, Math.floor(pristine.length / 2));
    for (const args of [
      ['serve', '--config', cfg],
      ['spend', '--config', cfg],
      ['keys', 'list', '--config', cfg],
      ['budgets', 'list', '--config', cfg],
    ]) {
      const r = await runBinary('tollgate-pdp', args);
      assertRefused(r, `tollgate-pdp ${args[0]} ${args[1]}`, stateFile);
      assert.match(r.stderr, /truncated \(\d+ bytes, LMDB needs at least \d+\)/, r.stderr);
    }
    const c = await runBinary('tollgate-pdp', ['state', 'check', '--config', cfg]);
    assert.equal(c.signal, null, c.stderr);
    assert.equal(c.code, 1, `stdout:\n${c.stdout}\nstderr:\n${c.stderr}`);
    assert.ok(c.stderr.includes(stateFile), c.stderr);
    assert.match(c.stdout.trimEnd().split('\n').pop(), /^state check: DAMAGED .*restore/, c.stdout);
    // The refusal wrote nothing.
    assert.equal(fs.statSync(stateFile).size, Math.floor(pristine.length / 2));
  });

  test('truncated spool: the data plane refuses it, naming the file', async () => {
    restore();
    assert.ok(pristineSpool.length > 2 * 4096, `spool file is only ${pristineSpool.length} bytes`);
    fs.truncateSync(spoolFile, Math.floor(pristineSpool.length / 2));
    const r = await runBinary('tollgate-dataplane', ['--config', cfg], { env: { TG_TEST_PROVIDER_KEY: 'unused' } });
    assertRefused(r, 'tollgate-dataplane', spoolFile);
    const c = await runBinary('tollgate-pdp', ['state', 'check', '--spool', spoolDir]);
    assert.equal(c.signal, null, c.stderr);
    assert.equal(c.code, 1, `stdout:\n${c.stdout}\nstderr:\n${c.stderr}`);
    assert.ok(c.stderr.includes(spoolFile), c.stderr);
  });

  test('a garbled page in the middle: state check exits 1 and names the database', async () => {
    restore();
    const { pgno, psize } = middleLeaf(stateFile, 'usage');
    const fd = fs.openSync(stateFile, 'r+');
    try {
      fs.writeSync(fd, crypto.randomBytes(psize), 0, psize, pgno * psize);
    } finally {
      fs.closeSync(fd);
    }
    const r = await runBinary('tollgate-pdp', ['state', 'check', '--config', cfg]);
    const out = `exit ${r.code} (${r.signal ?? 'no signal'})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    assert.equal(r.signal, null, out);
    assert.equal(r.code, 1, out);
    assert.match(r.stdout, new RegExp(`^ {2}usage +\\d+ {2}DAMAGED: page ${pgno} `, 'm'), out);
    // Every other database still reads.
    assert.match(r.stdout, /^ {2}keys +1 {2}ok$/m, out);
    assert.match(r.stdout, /^ {2}tenants +1 {2}ok$/m, out);
    const last = r.stdout.trimEnd().split('\n').pop();
    assert.match(last, /^state check: DAMAGED \(usage\): stop tollgate-pdp and restore .* from a backup/, out);

    restore();
    const again = await runBinary('tollgate-pdp', ['state', 'check', '--config', cfg]);
    assert.equal(again.code, 0, `the restored copy should pass:\n${again.stdout}\n${again.stderr}`);
  });
});
