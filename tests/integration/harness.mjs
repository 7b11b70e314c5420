// harness.mjs - runs a real Tollgate for one test file: the mock provider,
// tollgate-pdp and tollgate-dataplane, on loopback and ipc, in a fresh temp
// dir with its own ports. Every wait is a poll with a deadline, so a hung
// process fails the test instead of hanging the run.
//
//   const gw = await startGateway({ dataplane: { first_byte_timeout_ms: 500 } });
//   const { key } = await gw.createKey({ tenant: 'acme' });
//   const r = await gw.chat({ model: 'mock-small', messages }, { key });
//   await gw.stop(); // SIGTERM all, assert exit 0 and no secret in any log
//
// Binaries come from $TG_BIN (default build/asan/bin under the repo root).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.resolve(REPO, process.env.TG_BIN ?? 'build/asan/bin');
export const PROVIDER_KEY_ENV = 'TG_TEST_PROVIDER_KEY';

// Generous: ASan builds on a loaded 2-core machine are slow to start.
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
const CLI_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 30_000;

export function bin(name) {
  const p = path.join(BIN, name);
  if (!fs.existsSync(p)) {
    throw new Error(`${p} does not exist: build Tollgate first and/or set TG_BIN ` +
      `(e.g. TG_BIN=/tmp/bi/bin) to the directory holding tollgate-dataplane, ` +
      `tollgate-pdp and tollgate-mock-llm`);
  }
  return p;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** pollUntil calls fn until it returns a truthy value and returns that value;
 * after timeoutMs it throws, saying what it waited for and what it last saw. */
export async function pollUntil(fn, { timeoutMs = 15_000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = performance.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (performance.now() > deadline) {
      const seen = lastErr ? `last error: ${lastErr.stack ?? lastErr}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seen}`);
    }
    await sleep(intervalMs);
  }
}

/** DEAD_PORT is where nothing listens, ever: a connection to it is refused.
 * A port from freePort() cannot serve: it is free only until the next test
 * file running beside this one binds it (a mock that then answers 401). The
 * kernel never hands out port 1 for a port-0 bind and no test listens on it. */
export const DEAD_PORT = 1;

/** freePort asks the kernel for a free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Expected prompt tokens for messages, as the mock (and the gateway's
 * estimate) count them: 4 + ceil(bytes / 4) per message. */
export function promptTokens(messages) {
  let n = 0;
  for (const m of messages) {
    const text = typeof m.content === 'string' ? m.content
      : Array.isArray(m.content) ? m.content.map((p) => p.text ?? '').join('') : '';
    n += 4 + Math.ceil(Buffer.byteLength(text) / 4);
  }
  return n;
}

/** The mock's reply text for n words: "w0 w1 ... w(n-1)". */
export function mockWords(n) {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
}

/** The environment for a Tollgate binary: ours plus extra, with sanitizer
 * options that make a report useful (unless the caller set their own). */
function binaryEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  // Slow unwinding on malloc: a leak report then has a stack even for
  // memory allocated on threads of libraries built without frame pointers.
  env.ASAN_OPTIONS ??= 'detect_leaks=1:fast_unwind_on_malloc=0:malloc_context_size=30';
  env.UBSAN_OPTIONS ??= 'print_stacktrace=1';
  return env;
}

/** runBinary runs a short-lived command (the admin CLI, a config check)
 * to its end, bounded by timeoutMs. */
export function runBinary(name, args, { env, timeoutMs = CLI_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    execFile(bin(name), args, { env: binaryEnv(env), timeout: timeoutMs, killSignal: 'SIGKILL',
      maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({
        code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
        signal: err?.signal ?? null,
        timedOut: Boolean(err?.killed),
        stdout,
        stderr,
      });
    });
  });
}

// ---- processes ----------------------------------------------------------

// Every process a Proc started and that has not exited. A test that fails
// half way leaves its own behind, and a running child keeps this file's
// node (and the whole test run) from ever ending: they are killed once
// every test of the file has run. (This root hook runs before any a test
// file adds at its top level: stop a gateway in a describe's after.)
const running = new Set();
after(async () => {
  for (const p of [...running]) await p.kill('SIGKILL', 5000);
});

export class Proc {
  constructor(role, name, args, { env = {}, dir }) {
    this.role = role;
    this.name = name;
    this.args = args;
    this.env = env;
    this.stderrPath = path.join(dir, `${role}.stderr.log`);
    this.stdoutPath = path.join(dir, `${role}.stdout.log`);
    this.child = null;
    this.exit = null; // {code, signal} once exited
  }

  start() {
    // Append: a restarted PDP keeps one log, so the secret check sees all.
    const err = fs.openSync(this.stderrPath, 'a');
    this.stderrStart = fs.fstatSync(err).size; // where this run's log begins
    const out = fs.openSync(this.stdoutPath, 'a');
    const env = binaryEnv(this.env);
    try {
      this.exit = null;
      this.child = spawn(bin(this.name), this.args, { stdio: ['ignore', out, err], env });
    } finally {
      fs.closeSync(err);
      fs.closeSync(out);
    }
    const child = this.child;
    running.add(this);
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        running.delete(this);
        resolve(this.exit);
      });
      child.on('error', (e) => {
        this.exit = { code: null, signal: null, error: e };
        resolve(this.exit);
      });
    });
    return this;
  }

  get running() {
    return this.child !== null && this.exit === null;
  }

  stderr() {
    try {
      return fs.readFileSync(this.stderrPath, 'utf8');
    } catch {
      return '';
    }
  }

  describe() {
    const e = this.exit;
    const how = e === null ? 'still running' : e.error ? `failed to start: ${e.error.message}`
      : e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
    const hang = this.hangTrace ? `\n---- ${this.role} threads when it hung ----\n${this.hangTrace}` : '';
    return `${this.role} (${this.name} ${this.args.join(' ')}): ${how}\n` +
      `---- ${this.role} stderr (${this.stderrPath}) ----\n${tail(this.stderr(), 12000)}\n---- end ----${hang}`;
  }

  /** pause SIGSTOPs the process and returns once every one of its threads
   * has stopped. kill(2) returns before that: on a busy machine a thread
   * of the process may run for milliseconds more, and answer a message
   * sent "after" the signal (a test of a stopped PDP then flakes). */
  async pause(timeoutMs = 10_000) {
    assert.ok(this.running, `pause: ${this.role} is not running`);
    this.child.kill('SIGSTOP');
    this.paused = true;
    const t0 = performance.now();
    while (this.running && !allThreadsStopped(this.child.pid)) {
      assert.ok(performance.now() - t0 < timeoutMs, `${this.role} did not stop within ${timeoutMs} ms of SIGSTOP`);
      await sleep(1);
    }
  }

  /** resume SIGCONTs a paused process (nothing when it is not paused). */
  resume() {
    if (this.paused && this.running) this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** Sends signal and waits for the exit (bounded); SIGKILLs on timeout. */
  async kill(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
    if (!this.running) return { ...this.exit, timedOut: false };
    this.child.kill(signal);
    this.resume(); /* a paused process takes the signal once it runs */
    const res = await withTimeout(this.exited, timeoutMs);
    if (res === null) {
      this.hangTrace = await threadStacks(this.child.pid);
      this.child.kill('SIGKILL');
      await this.exited;
      return { ...this.exit, timedOut: true };
    }
    return { ...res, timedOut: false };
  }
}

/** allThreadsStopped tells whether every thread of pid is stopped (or
 * gone): the state in /proc/<pid>/task/<tid>/stat, after the command
 * name's closing parenthesis. */
function allThreadsStopped(pid) {
  let tids;
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return true; /* the process is gone */
  }
  return tids.every((tid) => {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      return true; /* the thread ended */
    }
    return 'TtZX'.includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  });
}

/** threadStacks asks gdb (when there is one) for every thread's stack of a
 * hung process, keeping the frames that name a function. */
function threadStacks(pid) {
  return new Promise((resolve) => {
    execFile('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt'],
      { timeout: 30_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout) => {
        if (!stdout) {
          resolve(`(no stacks: ${err?.code === 'ENOENT' ? 'gdb is not installed' : err?.message ?? 'gdb printed nothing'})`);
          return;
        }
        const keep = stdout.split('\n').filter((l) => /^Thread |^#\d+ .* in [a-z_]/.test(l) && !/ in \?\? /.test(l));
        resolve(tail(keep.join('\n'), 12000));
      });
  });
}

/** withTimeout resolves to p's value, or to null after ms (and leaves no
 * timer behind either way, so the test process can exit at once). */
export async function withTimeout(p, ms) {
  let timer;
  const t = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

function tail(s, n) {
  return s.length <= n ? s : `[... ${s.length - n} bytes cut ...]\n${s.slice(-n)}`;
}

// ---- HTTP ----------------------------------------------------------------

/** httpRequest sends one request on a fresh connection (no keep-alive, so a
 * short server idle timeout can never race a reused socket) and reads the
 * whole answer. body: string | Buffer | object (JSON) | array of chunks (sent
 * chunked, without Content-Length). */
export function httpRequest(port, { method = 'GET', path: p = '/', headers = {}, body, timeoutMs = HTTP_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const hdrs = { connection: 'close', ...headers };
    let payload = body;
    let chunked = false;
    if (Array.isArray(body)) {
      chunked = true;
    } else if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) {
      payload = JSON.stringify(body);
    }
    if (payload !== undefined && !chunked && hdrs['content-length'] === undefined) {
      hdrs['content-length'] = Buffer.byteLength(payload);
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers: hdrs, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${p}: no complete answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    if (chunked) {
      for (const c of body) req.write(c);
      req.end();
    } else {
      req.end(payload);
    }
  });
}

/** SseParser splits an SSE byte stream into events as they complete. */
export class SseParser {
  constructor() {
    this.buf = '';
  }

  /** push returns the events (data strings) completed by text. */
  push(text) {
    this.buf += text.replace(/\r\n/g, '\n');
    const out = [];
    let i;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const raw = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const data = raw.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (raw.trim() !== '') out.push({ raw, data });
    }
    return out;
  }
}

/** openStream starts a request and hands back the live response; events()
 * yields SSE events with their arrival time. For abort tests. */
export function openStream(port, { path: p = '/v1/chat/completions', headers = {}, body, signal, timeoutMs = HTTP_TIMEOUT_MS }) {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const t0 = performance.now();
    const req = http.request({
      host: '127.0.0.1', port, method: 'POST', path: p, agent: false, signal,
      headers: { connection: 'close', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
    });
    const timer = setTimeout(() => req.destroy(new Error(`stream: no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      resolve({ t0, req, res, status: res.statusCode, headers: res.headers, abort: () => req.destroy() });
    });
    req.end(payload);
  });
}

/** readSse reads a response to its end, collecting events with times (ms
 * since t0). Resolves {events, ended, error}: error is set if the
 * connection broke instead of ending cleanly. */
export function readSse(res, t0, { timeoutMs = HTTP_TIMEOUT_MS, onEvent } = {}) {
  return new Promise((resolve) => {
    const parser = new SseParser();
    const events = [];
    let rawText = '';
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ events, rawText, error, tEnd: performance.now() - t0 });
    };
    const timer = setTimeout(() => {
      res.destroy();
      finish(new Error(`stream did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    res.setEncoding('utf8');
    res.on('data', (text) => {
      rawText += text;
      const t = performance.now() - t0;
      for (const ev of parser.push(text)) {
        let json;
        try {
          json = ev.data === '[DONE]' ? undefined : JSON.parse(ev.data);
        } catch {
          json = undefined;
        }
        const e = { ...ev, json, t };
        events.push(e);
        onEvent?.(e);
      }
    });
    res.on('end', () => finish(res.complete ? undefined : new Error('response ended before it was complete')));
    res.on('aborted', () => finish(new Error('response aborted')));
    res.on('error', (e) => finish(e));
    res.on('close', () => finish(res.complete ? undefined : new Error('connection closed before the response was complete')));
  });
}

/** parseMetrics reads Prometheus text into {"name{labels}": number}. */
export function parseMetrics(text) {
  const m = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return m;
}

// ---- the gateway ---------------------------------------------------------

export function mockDeployment(id, model, mockPort, extra = {}) {
  return {
    id, model, provider: 'openai', api_base: `http://127.0.0.1:${mockPort}/v1`,
    api_key: `\${${PROVIDER_KEY_ENV}}`, ...extra,
  };
}

/** providerDeployments: one deployment per provider kind, all played by
 * the mock (OpenAI, Azure OpenAI, Anthropic, Gemini; plus embedding models
 * on an OpenAI-compatible API, Azure and Gemini). */
export function providerDeployments(mockPort) {
  const base = `http://127.0.0.1:${mockPort}`;
  const key = mockDeployment('x', 'x', mockPort).api_key;
  return [
    { id: 'oai', model: 'm-openai', provider: 'openai', api_base: `${base}/v1`, api_key: key, upstream_model: 'gpt-4o' },
    { id: 'az', model: 'm-azure', provider: 'azure', api_base: base, api_key: key, upstream_model: 'my-gpt4o-deployment', api_version: '2024-10-21' },
    { id: 'ant', model: 'm-anthropic', provider: 'anthropic', api_base: base, api_key: key, upstream_model: 'claude-sonnet-4' },
    { id: 'gem', model: 'm-gemini', provider: 'gemini', api_base: base, api_key: key, upstream_model: 'gemini-2.5-flash' },
    { id: 'emb', model: 'text-embedding-3-small', provider: 'openai_compatible', api_base: `${base}/v1`, api_key: key },
    { id: 'emb-az', model: 'e-azure', provider: 'azure', api_base: base, api_key: key, upstream_model: 'my-embedding-deployment', api_version: '2024-10-21' },
    { id: 'emb-gem', model: 'e-gemini', provider: 'gemini', api_base: base, api_key: key, upstream_model: 'gemini-embedding-001' },
  ];
}

/** writeBundleFiles writes files ({name: object | string}) into dir,
 * each through a dot-named temp file and a rename, as editors and
 * deploy tools do, so the PDP never reads a half-written file. With
 * replace, every other (non-dot) file in dir is removed first. */
export function writeBundleFiles(dir, files, { replace = false } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  if (replace) {
    for (const n of fs.readdirSync(dir)) {
      if (!n.startsWith('.') && !(n in files)) fs.rmSync(path.join(dir, n), { force: true });
    }
  }
  for (const [name, content] of Object.entries(files)) {
    const text = typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`;
    const tmp = path.join(dir, `.${name}.tmp-${process.pid}`);
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, path.join(dir, name));
  }
}

/**
 * startGateway starts mock, PDP and data plane and waits until the data
 * plane's /readyz says 200.
 * opts.dataplane / opts.pdp: keys merged into those config sections.
 * opts.deployments(mockPort): extra deployments appended to the two mock
 *   ones (gpt-4o-mini and mock-small).
 * opts.dataplaneEnv: extra environment for the data plane.
 * opts.bundle: policy bundle files ({name: object | string}) written to
 *   <dir>/bundle before the start; pdp.bundle points there.
 * opts.pdpAdmin: give the PDP an admin listener on a free port
 *   (gw.pdpAdminPort), which `tollgate-pdp reload` and pdpMetrics() need.
 */
export async function startGateway(opts = {}) {
  const gw = new Gateway(opts);
  try {
    await gw.start();
  } catch (e) {
    await gw.abort();
    throw e;
  }
  return gw;
}

export class Gateway {
  constructor(opts) {
    this.opts = opts;
    // Short on purpose: an ipc:// path must stay under ~100 bytes.
    // opts.dir reuses a stopped gateway's directory: its PDP state and
    // usage spool carry over, as across a real restart.
    this.dir = opts.dir ?? fs.mkdtempSync('/tmp/tgit-');
    this.cfgPath = path.join(this.dir, 'tollgate.json');
    this.ipc = `ipc://${this.dir}/pdp.sock`;
    this.providerKey = `pk-test-${crypto.randomBytes(16).toString('hex')}`;
    this.secrets = [this.providerKey]; // must never appear in a log
    this.tenantsMade = new Set();
    this.procs = [];
    this.killedPdps = 0;
    this.extraDps = []; // addDataplane's, stopped before the PDP
    this.failures = [];
    this.stopped = false;
  }

  async start() {
    // The mock binds port 0 itself and says which port it got: no race.
    this.mock = new Proc('mock', 'tollgate-mock-llm', ['--port', '0', '--api-key', this.providerKey], { dir: this.dir });
    this.procs.push(this.mock);
    this.mock.start();
    this.mockPort = await pollUntil(() => {
      if (!this.mock.running) throw new Error(this.mock.describe());
      // Only this run's lines: a reused directory's log holds earlier runs.
      const log = this.mock.stderr().slice(this.mock.stderrStart);
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
      return m ? Number(m[1]) : null;
    }, { timeoutMs: START_TIMEOUT_MS, what: 'the mock to listen' });
    await pollUntil(async () => (await httpRequest(this.mockPort, { path: '/healthz' })).status === 200,
      { timeoutMs: START_TIMEOUT_MS, what: 'mock /healthz' });

    this.port = await freePort();
    this.baseUrl = `http://127.0.0.1:${this.port}`;
    const extra = this.opts.deployments ? this.opts.deployments(this.mockPort) : [];
    const pdpExtra = {};
    this.bundleDir = path.join(this.dir, 'bundle');
    if (this.opts.bundle) {
      writeBundleFiles(this.bundleDir, this.opts.bundle);
      pdpExtra.bundle = this.bundleDir;
    }
    if (this.opts.pdpAdmin) {
      this.pdpAdminPort = await freePort();
      pdpExtra.admin_listen = `127.0.0.1:${this.pdpAdminPort}`;
    }
    this.config = {
      pdp: {
        listen: [this.ipc],
        state_dir: path.join(this.dir, 'pdp-state'),
        pricing_file: path.join(REPO, 'policies', 'pricing.json'),
        // Short drains keep stop() quick; drain tests set their own.
        drain_timeout_s: 2,
        ...pdpExtra,
        ...this.opts.pdp,
      },
      dataplane: {
        listen: `127.0.0.1:${this.port}`,
        workers: 2,
        pdp_url: this.ipc,
        // The default 50 ms is too tight for ASan builds on a busy machine.
        pdp_timeout_ms: 1000,
        max_body_bytes: 65536,
        spool_dir: path.join(this.dir, 'spool'),
        drain_timeout_s: 3,
        ...this.opts.dataplane,
      },
      deployments: [
        mockDeployment('mock-gpt-4o-mini', 'gpt-4o-mini', this.mockPort),
        mockDeployment('mock-small', 'mock-small', this.mockPort),
        ...extra,
      ],
      ...(this.opts.modelGroups ? { model_groups: this.opts.modelGroups } : {}),
      ...(this.opts.logFormat ? { log_format: this.opts.logFormat } : {}),
      ...this.opts.top, // extra top-level keys (private_volumes, ...)
    };
    fs.writeFileSync(this.cfgPath, `${JSON.stringify(this.config, null, 2)}\n`);

    this.pdp = this.newPdp().start();
    this.procs.push(this.pdp);
    this.dp = new Proc('dataplane', 'tollgate-dataplane', ['--config', this.cfgPath], {
      dir: this.dir, env: { [PROVIDER_KEY_ENV]: this.providerKey, ...this.opts.dataplaneEnv },
    }).start();
    this.procs.push(this.dp);
    await this.waitReady();
  }

  /** addDataplane starts one more data plane on its own port and spool
   * (dataplane overrides merged into this gateway's config) and returns
   * {proc, port, cfgPath}; stop() stops it before the PDP. */
  async addDataplane(overrides = {}, { waitStatus = 200 } = {}) {
    const n = this.extraDps.length + 2;
    const port = await freePort();
    const cfg = structuredClone(this.config);
    cfg.dataplane = { ...cfg.dataplane, listen: `127.0.0.1:${port}`,
      spool_dir: path.join(this.dir, `spool-${n}`), ...overrides };
    const cfgPath = path.join(this.dir, `tollgate-dp${n}.json`);
    fs.writeFileSync(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    const proc = new Proc(`dataplane${n}`, 'tollgate-dataplane', ['--config', cfgPath], {
      dir: this.dir, env: { [PROVIDER_KEY_ENV]: this.providerKey, ...this.opts.dataplaneEnv },
    }).start();
    this.procs.push(proc);
    this.extraDps.push(proc);
    if (waitStatus !== null) {
      await pollUntil(async () => {
        if (!proc.running) throw new Error(proc.describe());
        return (await httpRequest(port, { path: '/readyz' })).status === waitStatus;
      }, { timeoutMs: START_TIMEOUT_MS, what: `data plane ${n} /readyz == ${waitStatus}` });
    }
    return { proc, port, cfgPath };
  }

  newPdp() {
    // The PDP never needs the provider key: it does not get it.
    const env = { [PROVIDER_KEY_ENV]: '' };
    return new Proc('pdp', 'tollgate-pdp', ['serve', '--config', this.cfgPath], { dir: this.dir, env });
  }

  checkAlive() {
    for (const p of [this.mock, this.pdp, this.dp]) {
      if (p && p.child && !p.running) throw new Error(`a process died:\n${p.describe()}`);
    }
  }

  async readyz() {
    return (await httpRequest(this.port, { path: '/readyz' })).status;
  }

  async waitReady(status = 200, timeoutMs = START_TIMEOUT_MS) {
    try {
      await pollUntil(async () => {
        this.checkAlive();
        return (await this.readyz()) === status;
      }, { timeoutMs, what: `data plane /readyz == ${status}` });
    } catch (e) {
      e.message += `\n${this.dp.describe()}\n${this.pdp.describe()}\n(logs in ${this.dir})`;
      this.keepLogs = true;
      throw e;
    }
  }

  // -- the PDP --

  /** killPdp stops the PDP with signal and waits for it to exit. A PDP
   * stopped with SIGTERM must exit 0, like at stop(). */
  async killPdp(signal = 'SIGKILL') {
    const p = this.pdp;
    const res = await p.kill(signal);
    if (signal !== 'SIGKILL') {
      assert.ok(res.code === 0 && !res.timedOut, `PDP did not exit 0 on ${signal}:\n${p.describe()}`);
    } else {
      this.killedPdps++;
    }
    // The data plane learns of it a moment later (on a busy machine, after
    // startPdp's first /readyz): until it has, a "ready" would be the old
    // PDP's connection.
    if (this.dp?.running) {
      const gone = async () => {
        const r = await httpRequest(this.port, { path: '/metrics' }).catch(() => null);
        return r === null || parseMetrics(r.text)['tollgate_pdp_link_connected{pdp="0"}'] !== 1;
      };
      await pollUntil(gone, { timeoutMs: 5_000, what: 'the data plane to see the PDP gone' }).catch(() => {});
    }
    return res;
  }

  async startPdp({ waitReady = true } = {}) {
    assert.ok(!this.pdp.running, 'startPdp: the PDP is still running');
    this.pdp = this.newPdp().start();
    this.procs.push(this.pdp);
    if (waitReady) await this.waitReady(200);
  }

  // -- admin CLI --

  async cli(args, { expectCode = 0 } = {}) {
    const r = await runBinary('tollgate-pdp', args);
    if (expectCode !== null) {
      assert.equal(r.code, expectCode,
        `tollgate-pdp ${args.join(' ')} exited ${r.code}${r.signal ? ` (${r.signal})` : ''}, expected ${expectCode}\n` +
        `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    }
    return r;
  }

  async createKey({ tenant, models, name, labels } = {}) {
    // A key must name an existing tenant; `tenants set` creates it if needed.
    if (!this.tenantsMade.has(tenant)) {
      await this.cli(['tenants', 'set', '--config', this.cfgPath, tenant]);
      this.tenantsMade.add(tenant);
    }
    const args = ['keys', 'create', '--config', this.cfgPath, '--tenant', tenant, '--format', 'json'];
    if (name) args.push('--name', name);
    if (models) args.push('--models', Array.isArray(models) ? models.join(',') : models);
    for (const [k, v] of Object.entries(labels ?? {})) args.push('--label', `${k}=${v}`);
    const r = await this.cli(args);
    let k;
    try {
      k = JSON.parse(r.stdout);
    } catch (e) {
      throw new Error(`keys create --format json printed no JSON: ${r.stdout}`);
    }
    assert.equal(typeof k.key, 'string', `keys create: no "key" in ${r.stdout}`);
    assert.equal(typeof k.id, 'string', `keys create: no "id" in ${r.stdout}`);
    this.secrets.push(k.key);
    return k;
  }

  /** setTenant is `tollgate-pdp tenants set`: {tier, labels} (a label
   * value '' removes it). Returns the tenant as stored. */
  async setTenant(id, { tier, labels } = {}) {
    const args = ['tenants', 'set', '--config', this.cfgPath, id, '--format', 'json'];
    if (tier !== undefined) args.push('--tier', tier);
    for (const [k, v] of Object.entries(labels ?? {})) args.push('--label', `${k}=${v}`);
    return JSON.parse((await this.cli(args)).stdout);
  }

  // -- the policy bundle --

  /** writeBundle writes files into the PDP's bundle directory (see
   * writeBundleFiles); the PDP reloads on its own only if it watches. */
  writeBundle(files, opts) {
    writeBundleFiles(this.bundleDir, files, opts);
  }

  /** reloadPdp runs `tollgate-pdp reload`; expectCode null: any. */
  async reloadPdp({ allowRollback = false, expectCode = null } = {}) {
    const args = ['reload', '--config', this.cfgPath];
    if (allowRollback) args.push('--allow-rollback');
    return this.cli(args, { expectCode });
  }

  /** policyHistory is `tollgate-pdp policy history --format json`. */
  async policyHistory() {
    const r = await this.cli(['policy', 'history', '--config', this.cfgPath, '--format', 'json']);
    return JSON.parse(r.stdout).history;
  }

  /** signalPdp sends a signal (e.g. 'SIGHUP') to the running PDP. */
  signalPdp(signal) {
    assert.ok(this.pdp.running, 'signalPdp: the PDP is not running');
    this.pdp.child.kill(signal);
  }

  /** pdpMetrics parses the PDP's /metrics (needs opts.pdpAdmin). */
  async pdpMetrics() {
    assert.ok(this.pdpAdminPort, 'pdpMetrics needs startGateway({ pdpAdmin: true })');
    const r = await httpRequest(this.pdpAdminPort, { path: '/metrics' });
    assert.equal(r.status, 200, r.text);
    return parseMetrics(r.text);
  }

  async revokeKey(id) {
    return this.cli(['keys', 'revoke', '--config', this.cfgPath, id]);
  }

  async listKeys() {
    const r = await this.cli(['keys', 'list', '--config', this.cfgPath, '--format', 'json']);
    return JSON.parse(r.stdout);
  }

  /** spend is `tollgate-pdp spend --format json`, parsed:
   * {tenants:[{tenant,requests,prompt_tokens,completion_tokens,cost_micro_usd,cost_usd}],
   *  keys:[{key_id,tenant,...}], total:{...}, currency} */
  async spend() {
    const r = await this.cli(['spend', '--config', this.cfgPath, '--format', 'json']);
    try {
      return JSON.parse(r.stdout);
    } catch {
      throw new Error(`spend --format json printed no JSON: ${r.stdout}`);
    }
  }

  static ZERO = { requests: 0, prompt_tokens: 0, completion_tokens: 0, cost_micro_usd: 0 };

  async spendTenant(tenant) {
    const s = await this.spend();
    assert.ok(Array.isArray(s.tenants), `spend: no "tenants" list in ${JSON.stringify(s)}`);
    return s.tenants.find((t) => t.tenant === tenant) ?? { ...Gateway.ZERO, tenant };
  }

  async spendKey(keyId) {
    const s = await this.spend();
    assert.ok(Array.isArray(s.keys), `spend: no "keys" list in ${JSON.stringify(s)}`);
    return s.keys.find((k) => k.key_id === keyId) ?? { ...Gateway.ZERO, key_id: keyId };
  }

  // -- the mock --

  async mockStats() {
    const r = await httpRequest(this.mockPort, { path: '/_mock/stats' });
    assert.equal(r.status, 200, `mock stats: ${r.status} ${r.text}`);
    return r.json;
  }

  // -- the data plane --

  request(p, { method = 'GET', key, headers = {}, body } = {}) {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    return httpRequest(this.port, { method, path: p, headers: h, body });
  }

  /** metrics parses /metrics into {"name{labels}": number}. */
  async metrics() {
    const r = await httpRequest(this.port, { path: '/metrics' });
    assert.equal(r.status, 200);
    return parseMetrics(r.text);
  }

  /**
   * chat posts to /v1/chat/completions. body: object (sent as JSON) or a
   * string. Without stream: {status, headers, text, json}. With
   * stream: true: also {events:[{data, json, t}], tEnd, error} where t is ms
   * since the request was sent, for an SSE answer.
   */
  async chat(body, { key, headers = {}, stream = false } = {}) {
    const h = { 'content-type': 'application/json', ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    if (!stream) {
      return httpRequest(this.port, { method: 'POST', path: '/v1/chat/completions', headers: h, body });
    }
    const s = await openStream(this.port, { headers: h, body });
    const out = { status: s.status, headers: s.headers };
    if (!String(s.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      const parts = [];
      for await (const d of s.res) parts.push(d);
      out.text = Buffer.concat(parts).toString('utf8');
      try {
        out.json = JSON.parse(out.text);
      } catch {
        out.json = undefined;
      }
      return out;
    }
    const r = await readSse(s.res, s.t0);
    return { ...out, ...r };
  }

  // -- shutting down --

  /** stop SIGTERMs the data plane, the PDP and the mock (in that order),
   * then asserts that each exited 0 and that no log holds a secret. */
  async stop({ keepDir = false } = {}) {
    if (this.stopped) return;
    this.stopped = true;
    const problems = [];
    for (const p of [this.dp, ...this.extraDps, this.pdp, this.mock]) {
      if (!p || !p.child) continue;
      const wasRunning = p.running;
      const r = await p.kill('SIGTERM');
      if (r.timedOut) {
        problems.push(`${p.role} did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (SIGKILLed)\n${p.describe()}`);
      } else if (!wasRunning) {
        problems.push(`${p.role} had already exited before stop()\n${p.describe()}`);
      } else if (r.code !== 0) {
        problems.push(`${p.role} did not exit 0 on SIGTERM\n${p.describe()}`);
      }
    }
    // Every log this file's processes wrote (a restarted PDP appends).
    for (const f of fs.readdirSync(this.dir).filter((n) => n.endsWith('.log'))) {
      const text = fs.readFileSync(path.join(this.dir, f), 'utf8');
      for (const s of this.secrets) {
        const at = text.indexOf(s);
        if (at >= 0) {
          const what = s === this.providerKey ? 'the provider API key' : 'a virtual key';
          const end = text.indexOf('\n', at);
          const line = text.slice(text.lastIndexOf('\n', at) + 1, end < 0 ? undefined : end);
          problems.push(`${f} contains ${what}: ${line.split(s).join('<SECRET>')}`);
        }
      }
    }
    if (problems.length === 0 && !this.keepLogs && !keepDir) {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } else if (problems.length > 0) {
      problems.push(`(logs kept in ${this.dir})`);
    }
    assert.ok(problems.length === 0, problems.join('\n\n'));
  }

  /** abort kills everything without checks (a failed start). */
  async abort() {
    this.stopped = true;
    for (const p of this.procs) {
      if (p.running) await p.kill('SIGKILL', 5000);
    }
    // Keep the logs of processes that ran; nothing to keep otherwise.
    if (!this.procs.some((p) => p.child)) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** decisionRecords reads gw's whole decision log (tollgate-pdp decisions
 * list --format jsonl on its state directory): {list, byId, dups}. */
export async function decisionRecords(gw) {
  const r = await runBinary('tollgate-pdp', ['decisions', 'list', '--config', gw.cfgPath, '--format', 'jsonl',
    '--limit', '10000']);
  assert.equal(r.code, 0, `decisions list failed: ${r.stderr}`);
  const list = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const byId = new Map();
  const dups = [];
  for (const rec of list) {
    if (byId.has(rec.request_id)) dups.push(rec.request_id);
    byId.set(rec.request_id, rec);
  }
  return { list, byId, dups };
}

/** errorBody checks an OpenAI-style error answer and returns its error. */
export function errorBody(r, status, code) {
  assert.equal(r.status, status, `expected HTTP ${status}, got ${r.status}: ${r.text}`);
  assert.ok(r.json && typeof r.json.error === 'object' && r.json.error !== null,
    `expected an OpenAI error body, got: ${r.text}`);
  const e = r.json.error;
  assert.equal(typeof e.message, 'string', `error.message: ${r.text}`);
  assert.ok(e.message.length > 0, `empty error.message: ${r.text}`);
  assert.equal(typeof e.type, 'string', `error.type: ${r.text}`);
  assert.ok('code' in e, `error.code missing: ${r.text}`);
  assert.ok('param' in e, `error.param missing: ${r.text}`);
  if (code !== undefined) assert.equal(e.code, code, `error.code: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  return e;
}

export function userMsg(content) {
  return [{ role: 'user', content }];
}
