// Another local user must not be able to talk to the PDP, impersonate it,
// or make it write secrets where they can read them (DESIGN.md "Trust
// boundaries"). Needs root: the other user is a throwaway system account
// (tgtest_other), created here when missing and removed at the end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { bin, httpRequest, pollUntil, runBinary, freePort, sleep } from './harness.mjs';

const OTHER = 'tgtest_other';
const isRoot = process.getuid && process.getuid() === 0;
let other = null; // { uid, gid, created }
const procs = [];
const dirs = [];

function userIds(name) {
  try {
    return { uid: Number(execFileSync('id', ['-u', name]).toString().trim()),
      gid: Number(execFileSync('id', ['-g', name]).toString().trim()) };
  } catch {
    return null;
  }
}

before(() => {
  if (!isRoot) return;
  let ids = userIds(OTHER);
  let created = false;
  if (ids === null) {
    execFileSync('useradd', ['-M', '-r', '-s', '/bin/sh', OTHER]);
    ids = userIds(OTHER);
    created = true;
  }
  other = { ...ids, created };
});

after(async () => {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
    }
  }
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  if (other?.created) execFileSync('userdel', [OTHER]);
});

function tmpdir() {
  const d = fs.mkdtempSync('/tmp/tgla-');
  dirs.push(d);
  return d;
}

async function writeConfig(dir, { pdp = {}, dataplane = {} } = {}) {
  const sock = `ipc://${dir}/run/pdp.sock`;
  const cfg = {
    pdp: { listen: [sock], state_dir: path.join(dir, 'state'), ...pdp },
    dataplane: { listen: `127.0.0.1:${await freePort()}`, pdp_url: sock, spool_dir: path.join(dir, 'spool'), ...dataplane },
    deployments: [],
  };
  const p = path.join(dir, 'tollgate.json');
  fs.writeFileSync(p, `${JSON.stringify(cfg, null, 2)}\n`);
  fs.chmodSync(p, 0o644);
  return p;
}

// start runs a binary, optionally through `sh -c 'umask ..; exec ..'` and
// as another user; stderr is collected in .log.
function start(name, args, { umask, asUser } = {}) {
  let cmd = bin(name);
  let argv = args;
  if (umask !== undefined) {
    argv = ['-c', `umask ${umask}; exec "$0" "$@"`, cmd, ...args];
    cmd = '/bin/sh';
  }
  if (asUser) {
    argv = [`--reuid=${asUser.uid}`, `--regid=${asUser.gid}`, '--clear-groups', cmd, ...argv];
    cmd = 'setpriv';
  }
  const env = { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? 'detect_leaks=0' };
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.log = '';
  child.stdout.on('data', (b) => { child.log += b; });
  child.stderr.on('data', (b) => { child.log += b; });
  child.exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  procs.push(child);
  return child;
}

async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  return child.exited;
}

async function waitListening(child) {
  await pollUntil(() => {
    if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${child.log}`);
    return /listening on ipc:/.test(child.log);
  }, { what: 'the PDP to listen' });
}

async function exitsWith(child, re) {
  const r = await Promise.race([child.exited, sleep(15000).then(() => null)]);
  assert.ok(r !== null, `expected it to refuse to start, still running: ${child.log}`);
  assert.notEqual(r.code, 0, child.log);
  assert.match(child.log, re);
}

const skip = !isRoot && 'needs root to act as another local user';

test('the PDP socket is 0600 in a 0700 directory even under umask 000', { skip }, async () => {
  const dir = tmpdir();
  const cfg = await writeConfig(dir);
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg], { umask: '000' });
  await waitListening(pdp);
  assert.equal(fs.statSync(path.join(dir, 'run', 'pdp.sock')).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'run')).mode & 0o777, 0o700);
  assert.equal((await stop(pdp)).code, 0, pdp.log);
});

test('an ipc peer whose uid is not allowed is refused', { skip }, async () => {
  // The PDP runs as the other user; root (who can open any socket) plays
  // the stranger: the peer-uid check, not file modes, must refuse it.
  const dir = tmpdir();
  fs.chownSync(dir, other.uid, other.gid);
  const cfg = await writeConfig(dir);
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg], { asUser: other });
  await waitListening(pdp);
  const url = `ipc://${dir}/run/pdp.sock`;
  const r = await runBinary('tollgate-bench-ipc', ['-n', '100', '-w', '0', url], { timeoutMs: 20000 });
  assert.notEqual(r.code, 0, `a ping from uid 0 was answered:\n${r.stdout}${r.stderr}`);
  await pollUntil(() => /refused an ipc connection from uid 0/.test(pdp.log), { what: 'the refusal log line' });
  // Its own user is served.
  const ok = start('tollgate-bench-ipc', ['-n', '100', '-w', '0', url], { asUser: other });
  const res = await ok.exited;
  assert.equal(res.code, 0, ok.log);
  await stop(pdp);
});

test('a socket directory owned by another user: the PDP and the data plane refuse to start', { skip }, async () => {
  const dir = tmpdir();
  const cfg = await writeConfig(dir);
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  fs.chownSync(path.join(dir, 'run'), other.uid, other.gid);
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, new RegExp(`pdp\\.listen: ${dir}/run is owned by uid ${other.uid}`));
  const dp = start('tollgate-dataplane', ['--config', cfg]);
  await exitsWith(dp, new RegExp(`dataplane\\.pdp_url: ${dir}/run is owned by uid ${other.uid}`));
});

test('a socket directory writable by others: the PDP refuses to listen', { skip }, async () => {
  const dir = tmpdir();
  const cfg = await writeConfig(dir);
  fs.mkdirSync(path.join(dir, 'run'));
  fs.chmodSync(path.join(dir, 'run'), 0o777);
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, /pdp\.listen: .*\/run .*has mode 0777/);
});

test('the data plane closes a connection from a PDP that runs as another uid', { skip }, async () => {
  // The socket directory did not exist when the data plane started; the
  // other user made it and started their own PDP there.
  const dir = tmpdir();
  fs.chmodSync(dir, 0o1777);
  const cfg = await writeConfig(dir);
  const dp = start('tollgate-dataplane', ['--config', cfg]);
  await pollUntil(() => /does not exist yet/.test(dp.log) || dp.exitCode !== null, { what: 'the data plane to start' });
  const odir = path.join(dir, 'o');
  fs.mkdirSync(odir);
  fs.chownSync(odir, other.uid, other.gid);
  const ocfg = path.join(odir, 'c.json');
  fs.writeFileSync(ocfg, JSON.stringify({ pdp: { listen: [`ipc://${dir}/run/pdp.sock`], state_dir: path.join(odir, 'state') },
    dataplane: { listen: '127.0.0.1:1', pdp_url: `ipc://${dir}/run/pdp.sock`, spool_dir: path.join(odir, 'spool') }, deployments: [] }));
  fs.chmodSync(ocfg, 0o644);
  const fake = start('tollgate-pdp', ['serve', '--config', ocfg], { asUser: other });
  await waitListening(fake);
  await pollUntil(() => new RegExp(`PDP connection refused: the process serving the PDP socket runs as uid ${other.uid}`).test(dp.log),
    { what: 'the data plane to refuse the fake PDP' });
  await stop(fake);
  await stop(dp);
});

test('a symlink planted at admin.token.tmp is not followed; admin.token is 0600', { skip }, async () => {
  const dir = tmpdir();
  const adminPort = await freePort();
  const cfg = await writeConfig(dir, { pdp: { admin_listen: `127.0.0.1:${adminPort}` } });
  const state = path.join(dir, 'state');
  fs.mkdirSync(state, { mode: 0o700 });
  const target = path.join(dir, 'readable');
  fs.writeFileSync(target, 'unchanged\n');
  fs.chmodSync(target, 0o644);
  fs.symlinkSync(target, path.join(state, 'admin.token.tmp'));
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg], { umask: '000' });
  await exitsWith(pdp, /admin\.token\.tmp/);
  assert.equal(fs.readFileSync(target, 'utf8'), 'unchanged\n');
  assert.equal(fs.existsSync(path.join(state, 'admin.token')), false);

  // Without the symlink: the token is written, 0600, even under umask 000.
  fs.unlinkSync(path.join(state, 'admin.token.tmp'));
  const pdp2 = start('tollgate-pdp', ['serve', '--config', cfg], { umask: '000' });
  await waitListening(pdp2);
  const st = fs.lstatSync(path.join(state, 'admin.token'));
  assert.ok(st.isFile());
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(fs.existsSync(path.join(state, 'admin.token.tmp')), false);
  await stop(pdp2);
});

test('a state directory owned by another user is refused', { skip }, async () => {
  const dir = tmpdir();
  const cfg = await writeConfig(dir);
  fs.mkdirSync(path.join(dir, 'state'), { mode: 0o700 });
  fs.chownSync(path.join(dir, 'state'), other.uid, other.gid);
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, new RegExp(`pdp\\.state_dir: ${dir}/state is owned by uid ${other.uid}`));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'state')), []);
});

test('a spool directory writable by others is refused', { skip }, async () => {
  const dir = tmpdir();
  const cfg = await writeConfig(dir);
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  fs.mkdirSync(path.join(dir, 'spool'));
  fs.chmodSync(path.join(dir, 'spool'), 0o777);
  const dp = start('tollgate-dataplane', ['--config', cfg]);
  await exitsWith(dp, /dataplane\.spool_dir: .*\/spool .*has mode 0777/);
});

test('a state directory inside a directory another user owns is refused', { skip }, async () => {
  // The state directory itself is ours and 0700, but its parent is the
  // other user's: they could rename it away and put their own in its place.
  const dir = tmpdir();
  const theirs = path.join(dir, 'theirs');
  fs.mkdirSync(theirs, { mode: 0o755 });
  fs.chownSync(theirs, other.uid, other.gid);
  const cfg = await writeConfig(dir, { pdp: { state_dir: path.join(theirs, 'state') } });
  fs.mkdirSync(path.join(theirs, 'state'), { mode: 0o700 });
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, new RegExp(`pdp\\.state_dir: ${theirs}/state is inside ${theirs}, which is owned by uid ${other.uid}`));
});

test('a socket path through a symlink another user owns is refused by both', { skip }, async () => {
  // The symlink points at a directory that passes every check (root's,
  // 0700), but its owner could point it at their own at any moment.
  const dir = tmpdir();
  fs.chmodSync(dir, 0o755); // the other user may look inside
  const real = path.join(dir, 'real');
  fs.mkdirSync(real, { mode: 0o700 });
  const shared = path.join(dir, 'shared');
  fs.mkdirSync(shared, { mode: 0o1777 });
  fs.chmodSync(shared, 0o1777);
  const link = path.join(shared, 'run');
  execFileSync('setpriv', [`--reuid=${other.uid}`, `--regid=${other.gid}`, '--clear-groups', 'ln', '-s', real, link]);
  assert.equal(fs.lstatSync(link).uid, other.uid);
  const sock = `ipc://${link}/pdp.sock`;
  const cfg = await writeConfig(dir, { pdp: { listen: [sock] }, dataplane: { pdp_url: sock } });
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, new RegExp(`pdp\\.listen: .*goes through the symlink ${link}, owned by uid ${other.uid}|pdp\\.listen: .*where other users can replace ${link}`));
  const dp = start('tollgate-dataplane', ['--config', cfg]);
  await exitsWith(dp, new RegExp(`dataplane\\.pdp_url: .*(symlink|other users can replace) ${link}`));
});

test('pdp.socket_group lets a data plane that runs as another user connect, and only then', { skip }, async () => {
  for (const shared of [false, true]) {
    const dir = tmpdir();
    fs.chmodSync(dir, 0o755); // the other user may look inside
    const spool = path.join(dir, 'spool');
    fs.mkdirSync(spool, { mode: 0o700 });
    fs.chownSync(spool, other.uid, other.gid);
    const cfg = await writeConfig(dir, {
      // The PDP's own uid left out: its listener probe (a connection of
      // its own every 2 s) is then refused too, and must not be logged.
      pdp: { allow_uids: [other.uid], ...(shared ? { socket_group: String(other.gid) } : {}) },
      dataplane: { pdp_uid: 0 },
    });
    const port = JSON.parse(fs.readFileSync(cfg, 'utf8')).dataplane.listen.split(':')[1];
    const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
    await waitListening(pdp);
    const sock = path.join(dir, 'run', 'pdp.sock');
    if (shared) {
      assert.equal(fs.statSync(sock).mode & 0o777, 0o660);
      assert.equal(fs.statSync(sock).gid, other.gid);
      assert.equal(fs.statSync(path.join(dir, 'run')).mode & 0o777, 0o710);
      assert.equal(fs.statSync(path.join(dir, 'run')).gid, other.gid);
    }
    // setpriv: uid and primary group the other user's, no other group.
    const dp = start('tollgate-dataplane', ['--config', cfg], { asUser: other });
    const ready = async () => (await httpRequest(Number(port), { path: '/readyz' }).catch(() => ({}))).status === 200;
    if (shared) {
      await pollUntil(ready, { timeoutMs: 15000, what: `the data plane (uid ${other.uid}) to reach the PDP:\n${dp.log}` });
      await sleep(4500); // two probes at least
      assert.doesNotMatch(pdp.log, /refused an ipc connection/, 'the PDP\'s own listener probe was logged as refused');
      assert.doesNotMatch(pdp.log, /stopped taking connections/, 'a listener in use was restarted');
      assert.ok(await ready(), dp.log);
    } else {
      await sleep(2000);
      assert.equal(await ready(), false, 'a data plane outside the socket group reached a 0600 socket');
      assert.equal(dp.exitCode, null, dp.log); // running, but not ready
    }
    await stop(dp);
    await stop(pdp);
  }
});

test('pdp.socket_group is refused for a directory that holds other files', { skip }, async () => {
  // Sharing /run (say) with the group would change who may enter it.
  const dir = tmpdir();
  fs.mkdirSync(path.join(dir, 'run'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'run', 'other.pid'), '1\n');
  const cfg = await writeConfig(dir, { pdp: { socket_group: String(other.gid) } });
  const pdp = start('tollgate-pdp', ['serve', '--config', cfg]);
  await exitsWith(pdp, /pdp\.socket_group: .*\/run holds other files \(other\.pid\)/);
  assert.equal(fs.statSync(path.join(dir, 'run')).mode & 0o777, 0o700);
});
