// tests/k8s/validate.test.mjs - the Kubernetes manifests (deploy/k8s),
// offline: every overlay is rendered with `kubectl kustomize`, every object
// is checked against the Kubernetes OpenAPI schemas bundled in npm
// kubernetes-models (plus a check for unknown fields, which those schemas
// let through), then against what Tollgate needs: hardened containers,
// native sidecars in order, the PDP socket kept from the app, the config
// JSON matching the mode. The injector's test pods
// (tests/injector/cases/*.pod.json), when there are any, are checked too.
// Every tollgate.json a ConfigMap holds is also loaded by the real
// tollgate-pdp (`state check`, which reads the whole file, both sections,
// with the loader serve uses, and changes nothing).
//
// kubectl is required (the test fails without it; as root it first tries
// `apt-get install kubernetes-client`). KUBECTL=path picks one.
// So is a built tollgate-pdp: TG_BIN=dir, else build/bin or build/asan/bin.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const top = path.resolve(here, "../..");
const k8s = path.join(top, "deploy/k8s");
const casesDir = path.join(top, "tests/injector/cases");
const require = createRequire(import.meta.url);
const modelsRoot = path.resolve(
  path.dirname(require.resolve("kubernetes-models/v1/Pod")),
  "..",
);

const NS = "tollgate";
const UID = 65532;
const SOCKET_VOLUME = "/run/tollgate";
const SOCKET_URL = "ipc:///run/tollgate/pdp/pdp.sock";
const CENTRAL_URL = "tls+tcp://tollgate-pdp.tollgate.svc:7070";
const CLUSTER_SCOPED = new Set([
  "Namespace",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
  "ClusterRole",
  "ClusterRoleBinding",
]);

// ---------------------------------------------------------------- kubectl

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: "utf8", ...opts });
}

function kubectlWorks(cmd) {
  const r = run(cmd, ["version", "--client"]);
  return r.status === 0 ? r.stdout + r.stderr : null;
}

function findKubectl() {
  const tried = [];
  const candidates = process.env.KUBECTL
    ? [process.env.KUBECTL]
    : ["kubectl", "/usr/bin/kubectl", "/usr/local/bin/kubectl"];
  for (const c of candidates) {
    const v = kubectlWorks(c);
    if (v !== null) return { cmd: c, version: v };
    tried.push(c);
  }
  let apt = "not tried (not root or no apt-get)";
  if (!process.env.KUBECTL && process.getuid?.() === 0 &&
      fs.existsSync("/usr/bin/apt-get")) {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    let r = run("apt-get", ["install", "-y", "-q", "kubernetes-client"], { env });
    if (r.status !== 0) {
      run("apt-get", ["update", "-q"], { env });
      r = run("apt-get", ["install", "-y", "-q", "kubernetes-client"], { env });
    }
    apt = `apt-get install kubernetes-client: exit ${r.status}\n${r.stderr}`;
    const v = kubectlWorks("kubectl");
    if (v !== null) return { cmd: "kubectl", version: v };
  }
  return { cmd: null, why: `kubectl not found (tried ${tried.join(", ")}); ${apt}` };
}

const kubectl = findKubectl();
// kubectl >= 1.21 prints "Kustomize Version: vX.Y.Z"; 1.20 (Debian
// bookworm's kubernetes-client) embeds kustomize v2, which has no
// components.
const kustomizeMajor = (() => {
  const m = /Kustomize Version: v(\d+)/.exec(kubectl.version ?? "");
  return m ? Number(m[1]) : 2;
})();

function requireKubectl() {
  assert.ok(
    kubectl.cmd,
    `FAIL, not skipped: the Kubernetes manifest test needs kubectl: ${kubectl.why}. ` +
      "Install it (Debian: apt-get install kubernetes-client) or set KUBECTL=/path/to/kubectl.",
  );
}

function render(dir) {
  requireKubectl();
  const r = run(kubectl.cmd, ["kustomize", dir], { maxBuffer: 64 << 20 });
  assert.equal(r.status, 0,
    `kubectl kustomize ${path.relative(top, dir)} failed:\n${r.stderr}`);
  return parseYaml(r.stdout, dir);
}

function parseYaml(text, where) {
  const out = [];
  for (const doc of parseAllDocuments(text)) {
    assert.equal(doc.errors.length, 0,
      `${where}: YAML error: ${doc.errors.map((e) => e.message).join("; ")}`);
    const o = doc.toJS();
    if (o !== null && o !== undefined) out.push(o);
  }
  return out;
}

// ------------------------------------------------ schemas (kubernetes-models)

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/")
    ? apiVersion.split("/")
    : ["", apiVersion];
  return path.join(modelsRoot, group, version, kind);
}

async function schemaValidate(obj, where) {
  assert.ok(obj.apiVersion && obj.kind, `${where}: no apiVersion/kind`);
  const file = modelPath(obj.apiVersion, obj.kind);
  assert.ok(fs.existsSync(file + ".js"),
    `${where}: ${obj.apiVersion} ${obj.kind} is not a Kubernetes built-in type`);
  const mod = require(file);
  const Model = mod[obj.kind];
  try {
    new Model(obj).validate();
  } catch (e) {
    assert.fail(`${where}: ${obj.kind} ${obj.metadata?.name}: ${e.message}`);
  }
  const errs = [];
  unknownFields(obj, { file: file + ".d.ts" }, obj.kind, errs);
  assert.deepEqual(errs, [], `${where}: ${obj.kind} ${obj.metadata?.name}: unknown fields`);
}

// The bundled schemas allow any extra property, so a misspelt field
// (`readOnlyRootFileSystem`) would pass and be dropped by the API server.
// The models' .d.ts files list every field of every type: walk them.
const ifaceCache = new Map();

function parseIface(file) {
  if (ifaceCache.has(file)) return ifaceCache.get(file);
  let res = null;
  if (fs.existsSync(file)) {
    const src = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of src.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      imports.set(m[1], m[2]);
    }
    const lines = src.split("\n");
    const start = lines.findIndex((l) => /^export interface \w+/.test(l));
    if (start >= 0) {
      const props = new Map();
      for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
        const m = /^ {4}"([^"]+)"\??: (.*)$/.exec(lines[i]);
        if (!m) continue;
        let type = m[2];
        if (type === "{") { // { [key: string]: T; }
          const inner = /\[key: string\]: (.+);$/.exec(lines[i + 1]);
          type = `map<${inner ? inner[1] : "unknown"}>`;
        }
        props.set(m[1], typeRef(type.replace(/;$/, ""), imports, path.dirname(file)));
      }
      res = props;
    }
  }
  ifaceCache.set(file, res);
  return res;
}

function typeRef(type, imports, dir) {
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) return { array: typeRef(m[1], imports, dir) };
  if ((m = /^map<(.+)>$/.exec(type))) return { map: typeRef(m[1], imports, dir) };
  if (imports.has(type)) {
    const spec = imports.get(type);
    const file = spec.startsWith(".")
      ? path.resolve(dir, spec)
      : path.join(path.dirname(require.resolve(`${spec.split("/").slice(0, 2).join("/")}/package.json`)),
          spec.split("/").slice(2).join("/"));
    return { file: file + ".d.ts" };
  }
  return { leaf: type };
}

function unknownFields(value, ref, where, errs) {
  if (value === null || value === undefined) return;
  if (ref.array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, ref.array, `${where}[${i}]`, errs));
    return;
  }
  if (ref.map) {
    if (typeof value === "object") {
      for (const [k, v] of Object.entries(value)) unknownFields(v, ref.map, `${where}.${k}`, errs);
    }
    return;
  }
  if (!ref.file) return;
  const props = parseIface(ref.file);
  if (!props || typeof value !== "object" || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    if (!props.has(k)) errs.push(`${where}.${k}`);
    else unknownFields(v, props.get(k), `${where}.${k}`, errs);
  }
}

// ----------------------------------------------------------------- helpers

function podSpecOf(o) {
  if (o.kind === "Pod") return o.spec;
  if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)) {
    return o.spec?.template?.spec;
  }
  return null;
}

// Tollgate's own containers: by name, or by image (a renamed container)
const TOLLGATE_NAMES = ["tollgate-pdp", "tollgate-dataplane", "tollgate-injector"];
const isTollgate = (c) => TOLLGATE_NAMES.includes(c.name) ||
  /(^|\/)tollgate-(pdp|dataplane|injector)[:@]/.test(c.image ?? "");

function allContainers(spec) {
  return [
    ...(spec.initContainers ?? []).map((c) => ({ c, init: true })),
    ...(spec.containers ?? []).map((c) => ({ c, init: false })),
  ];
}

function volumeAt(spec, container, mountPath) {
  const m = (container.volumeMounts ?? []).find((v) => v.mountPath === mountPath);
  return m ? { mount: m, volume: (spec.volumes ?? []).find((v) => v.name === m.name) } : null;
}

// the volume mounted at dir or at its closest mounted ancestor
function volumeHolding(spec, container, file) {
  let best = null;
  for (const m of container.volumeMounts ?? []) {
    const mp = m.mountPath.replace(/\/$/, "");
    if ((file === mp || file.startsWith(mp + "/")) && (!best || mp.length > best.mount.mountPath.length)) {
      best = { mount: m, volume: (spec.volumes ?? []).find((v) => v.name === m.name) };
    }
  }
  return best;
}

function configOf(objs, cmName) {
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === cmName);
  assert.ok(cm, `ConfigMap ${cmName} is not rendered`);
  assert.ok(cm.data?.["tollgate.json"], `ConfigMap ${cmName} has no tollgate.json`);
  return JSON.parse(cm.data["tollgate.json"]);
}

function configMapOfContainer(spec, c, file) {
  const h = volumeHolding(spec, c, file);
  assert.ok(h?.volume, `${c.name}: nothing is mounted at ${file}`);
  return h;
}

// Container hardening: every container of ours (the app's too), and what
// every Tollgate container must have besides.
function checkContainer(spec, c, where, { tollgate }) {
  const psc = spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const eff = (k) => sc[k] ?? psc[k];
  assert.equal(eff("runAsNonRoot"), true, `${where}: runAsNonRoot`);
  assert.equal(eff("runAsUser"), UID, `${where}: runAsUser ${UID}`);
  assert.equal(eff("runAsGroup"), UID, `${where}: runAsGroup ${UID}`);
  assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
  assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
  assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${where}: capabilities drop ALL`);
  assert.equal(sc.capabilities?.add, undefined, `${where}: no capabilities added`);
  assert.equal(sc.privileged ?? false, false, `${where}: not privileged`);
  assert.equal((sc.seccompProfile ?? psc.seccompProfile)?.type, "RuntimeDefault",
    `${where}: seccompProfile RuntimeDefault`);
  assert.match(c.image ?? "", /^[^@]+:[\w.-]+$|@sha256:/, `${where}: image ${c.image} has no tag`);
  assert.doesNotMatch(c.image, /:latest$/, `${where}: image ${c.image} uses :latest`);
  if (!tollgate) return;
  assert.match(c.image, /^localhost\/tollgate-(pdp|dataplane|injector|mock-llm):/,
    `${where}: image ${c.image} is not a locally built Tollgate image`);
  const r = c.resources ?? {};
  assert.ok(r.requests?.cpu && r.requests?.memory, `${where}: resources.requests cpu and memory`);
  assert.ok(r.limits?.memory, `${where}: resources.limits.memory`);
  assert.ok(c.readinessProbe, `${where}: readinessProbe`);
  assert.ok(c.livenessProbe, `${where}: livenessProbe`);
}

function checkPodSpec(spec, where) {
  assert.notEqual(spec.hostNetwork, true, `${where}: hostNetwork`);
  assert.notEqual(spec.hostPID, true, `${where}: hostPID`);
  for (const v of spec.volumes ?? []) {
    assert.equal(v.hostPath, undefined, `${where}: volume ${v.name} is a hostPath`);
  }
  for (const { c } of allContainers(spec)) {
    checkContainer(spec, c, `${where} container ${c.name}`, { tollgate: isTollgate(c) });
    if (isTollgate(c)) checkStateMounts(spec, c, where);
  }
}

// Sidecar mode: the PDP and the data plane as native sidecars, PDP first,
// one socket emptyDir shared by those two only.
function checkSidecars(spec, where, cfg) {
  const init = spec.initContainers ?? [];
  const pi = init.findIndex((c) => c.name === "tollgate-pdp");
  const di = init.findIndex((c) => c.name === "tollgate-dataplane");
  assert.ok(di >= 0, `${where}: no tollgate-dataplane init container (native sidecar)`);
  for (const c of spec.containers ?? []) {
    assert.ok(!isTollgate(c), `${where}: ${c.name} is a regular container; Tollgate runs as native sidecars`);
  }
  const tg = init.filter(isTollgate);
  for (const c of tg) {
    assert.equal(c.restartPolicy, "Always", `${where}: ${c.name}: native sidecars have restartPolicy: Always`);
    assert.ok(c.startupProbe, `${where}: ${c.name}: a startupProbe orders the start of what follows`);
  }
  const local = pi >= 0;
  if (local) assert.ok(pi < di, `${where}: tollgate-pdp must precede tollgate-dataplane`);
  const dp = init[di];
  // every ${VAR} of the catalog comes from the environment
  if (cfg) {
    const needs = new Set();
    for (const d of cfg.deployments ?? []) {
      for (const m of String(d.api_key ?? "").matchAll(/\$\{(\w+)\}/g)) needs.add(m[1]);
    }
    const fromSecret = (dp.envFrom ?? []).some((e) => e.secretRef?.name === "tollgate-provider-keys");
    for (const n of needs) {
      assert.ok(fromSecret || (dp.env ?? []).some((e) => e.name === n),
        `${where}: the data plane gets no ${n}`);
    }
  }
  if (!local) return;
  const pdp = init[pi];
  const ps = volumeAt(spec, pdp, SOCKET_VOLUME);
  const ds = volumeAt(spec, dp, SOCKET_VOLUME);
  assert.ok(ps && ds, `${where}: both Tollgate containers mount the socket volume at ${SOCKET_VOLUME}`);
  assert.equal(ps.mount.name, ds.mount.name, `${where}: one socket volume for both`);
  assert.ok(ps.volume?.emptyDir, `${where}: the socket volume is an emptyDir`);
  for (const { c } of allContainers(spec)) {
    if (c === pdp || c === dp) continue;
    assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === ps.mount.name),
      `${where}: ${c.name} must not mount the PDP socket volume ${ps.mount.name}`);
  }
  if (cfg) {
    assert.ok(cfg.private_volumes?.includes(SOCKET_VOLUME), `${where}: private_volumes has ${SOCKET_VOLUME}`);
    for (const l of cfg.pdp.listen) {
      assert.match(l, /^ipc:\/\//, `${where}: sidecar PDP listens on ipc:// only`);
      assert.ok(l.slice(6).startsWith(SOCKET_VOLUME + "/"), `${where}: ${l} is inside ${SOCKET_VOLUME}`);
    }
    const urls = [cfg.dataplane.pdp_url].flat();
    assert.ok(cfg.pdp.listen.includes(urls[0]), `${where}: dataplane.pdp_url ${urls[0]} is a pdp.listen URL`);
    assert.equal(urls[0], SOCKET_URL, `${where}: the socket URL of the contract`);
    // state and spool: writable emptyDirs (the process makes its 0700 directory inside)
    const st = checkPrivateDir(spec, pdp, cfg, cfg.pdp.state_dir, "pdp.state_dir", where);
    assert.ok(st.volume?.emptyDir, `${where}: pdp.state_dir ${cfg.pdp.state_dir} is on an emptyDir`);
    checkFilesMounted(spec, pdp, cfg.pdp, where);
  }
  if (cfg) {
    const sp = checkPrivateDir(spec, dp, cfg, cfg.dataplane.spool_dir, "dataplane.spool_dir", where);
    assert.ok(sp.volume?.emptyDir, `${where}: dataplane.spool_dir is on an emptyDir`);
  }
}

// A state or spool directory: directly inside a volume mount listed in
// private_volumes (a volume is 0777 or group-writable; the process makes
// its own 0700 directory inside, and the trust check accepts only that).
function checkPrivateDir(spec, c, cfg, dir, what, where) {
  const h = volumeHolding(spec, c, dir);
  // (a StatefulSet's volumeClaimTemplates are not in spec.volumes)
  assert.ok(h?.mount, `${where}: ${c.name}: ${what} ${dir} is on no volume (the root fs is read-only)`);
  assert.equal(h.mount.mountPath, path.dirname(dir),
    `${where}: ${c.name}: ${what} ${dir} must be directly inside its volume's mount`);
  assert.ok(cfg.private_volumes?.includes(h.mount.mountPath),
    `${where}: private_volumes must list ${h.mount.mountPath}`);
  return h;
}

// The files the config names are where the container mounts them.
function checkFilesMounted(spec, c, sec, where) {
  if (sec.pricing_file) {
    const h = configMapOfContainer(spec, c, sec.pricing_file);
    assert.ok(h.volume.configMap, `${where}: ${c.name}: pricing_file on a ConfigMap`);
  }
  if (sec.bundle) {
    const h = volumeAt(spec, c, sec.bundle);
    assert.ok(h?.volume?.configMap, `${where}: ${c.name}: the bundle ${sec.bundle} is a ConfigMap directory mount (watched: no subPath)`);
    assert.equal(h.mount.subPath, undefined, `${where}: ${c.name}: bundle mounted without subPath`);
  }
}

function checkTlsMounted(spec, c, tls, secretName, where) {
  assert.ok(tls, `${where}: TLS settings missing`);
  for (const k of ["cert_file", "key_file", "client_ca_file", "ca_file"]) {
    if (!tls[k]) continue;
    const h = volumeHolding(spec, c, tls[k]);
    assert.equal(h?.volume?.secret?.secretName, secretName,
      `${where}: ${c.name}: ${k} ${tls[k]} comes from Secret ${secretName}`);
  }
}

// ------------------------------------------------- the Tollgate config file

// What tg_config.c accepts (README.md Configuration, and the Kubernetes
// contract's new keys): a misspelt key stops both processes at start.
const CONFIG_KEYS = {
  top: ["$schema", "log_format", "private_volumes", "pdp", "dataplane", "deployments", "model_groups"],
  pdp: ["listen", "state_dir", "admin_listen", "pricing_file", "bundle", "bundle_watch",
    "workers", "max_message_bytes", "map_size_mb", "reservation_ttl_s", "alert_webhook",
    "allow_uids", "socket_group", "decisions", "tls", "allow_plain_tcp", "probe_listen",
    "drain_timeout_s", "upstream"],
  pdpTls: ["cert_file", "key_file", "client_ca_file"],
  upstream: ["url", "tls", "node_id", "on_upstream_error", "emergency_allowance_usd",
    "lease_ttl_s", "lease_use_s", "timeout_ms", "sync_interval_ms"],
  dataplane: ["listen", "pdp_url", "pdp_tls", "pdp_uid", "spool_dir", "workers", "pdp_timeout_ms",
    "on_pdp_error", "fail_open_key_ttl_s", "max_body_bytes", "max_header_bytes",
    "client_timeout_s", "max_connections", "max_connections_per_ip", "request_timeout_s",
    "response_timeout_s", "connect_timeout_ms", "first_byte_timeout_ms", "total_timeout_ms",
    "idle_timeout_ms", "retries", "retry_backoff_ms", "retry_backoff_max_ms",
    "cooldown_failures", "cooldown_window_ms", "cooldown_ms", "spool_memory_max_bytes",
    "decision_backlog_max", "capture_max_bytes", "otel", "drain_timeout_s", "drain_accept_s"],
  dpTls: ["cert_file", "key_file", "ca_file", "server_name"],
  deployment: ["id", "model", "provider", "api_base", "api_key", "upstream_model", "labels",
    "pricing", "weight", "api_version", "anthropic_version", "stream_options"],
};

function onlyKeys(obj, allowed, where) {
  const bad = Object.keys(obj ?? {}).filter((k) => !allowed.includes(k));
  assert.deepEqual(bad, [], `${where}: keys the config loader refuses`);
}

function checkConfig(cfg, where) {
  onlyKeys(cfg, CONFIG_KEYS.top, where);
  onlyKeys(cfg.pdp, CONFIG_KEYS.pdp, `${where} pdp`);
  onlyKeys(cfg.pdp.tls, CONFIG_KEYS.pdpTls, `${where} pdp.tls`);
  onlyKeys(cfg.dataplane, CONFIG_KEYS.dataplane, `${where} dataplane`);
  onlyKeys(cfg.dataplane.pdp_tls, CONFIG_KEYS.dpTls, `${where} dataplane.pdp_tls`);
  onlyKeys(cfg.pdp.upstream, CONFIG_KEYS.upstream, `${where} pdp.upstream`);
  onlyKeys(cfg.pdp.upstream?.tls, CONFIG_KEYS.dpTls, `${where} pdp.upstream.tls`);
  assert.ok(Array.isArray(cfg.pdp.listen) && cfg.pdp.listen.length > 0, `${where}: pdp.listen`);
  assert.ok(cfg.deployments?.length > 0, `${where}: deployments`);
  for (const d of cfg.deployments) {
    onlyKeys(d, CONFIG_KEYS.deployment, `${where} deployment ${d.id}`);
    if (d.api_key !== undefined) {
      assert.match(d.api_key, /^\$\{\w+\}$/, `${where}: ${d.id}: api_key must be \${ENV}, never literal`);
    }
  }
  assert.equal(cfg.log_format, "json", `${where}: log_format json (one object a line for the cluster's log shipper)`);
  assert.equal(cfg.pdp.probe_listen, "0.0.0.0:9091", `${where}: pdp.probe_listen`);
  assert.match(cfg.pdp.admin_listen ?? "127.0.0.1:", /^127\.0\.0\.1:/, `${where}: admin API on loopback only`);
  assert.equal(cfg.dataplane.listen, "0.0.0.0:8080", `${where}: dataplane.listen`);
  assert.equal(cfg.dataplane.on_pdp_error ?? "deny", "deny", `${where}: fail closed`);
  assert.equal(cfg.dataplane.drain_timeout_s, 25, `${where}: dataplane.drain_timeout_s`);
  // A replica (pdp.upstream) gets the bundle and pricing from the central
  // PDP; the loader refuses them beside "upstream".
  const files = cfg.pdp.upstream ? [] : ["pricing_file", "bundle"];
  for (const k of ["state_dir", ...files]) {
    assert.ok(path.isAbsolute(cfg.pdp[k] ?? ""), `${where}: pdp.${k} absolute`);
  }
  if (cfg.pdp.upstream) {
    for (const k of ["pricing_file", "bundle", "bundle_watch"]) {
      assert.equal(cfg.pdp[k], undefined, `${where}: pdp.${k} beside pdp.upstream`);
    }
    assert.equal(cfg.pdp.upstream.on_upstream_error ?? "deny", "deny",
      `${where}: pdp.upstream fails closed`);
  }
  assert.ok(path.isAbsolute(cfg.dataplane.spool_dir), `${where}: dataplane.spool_dir absolute`);
}

function probePort(c, probe) {
  const p = c[probe]?.httpGet?.port;
  if (typeof p === "number") return p;
  return (c.ports ?? []).find((x) => x.name === p)?.containerPort;
}

// ---------------------------------------------------------------- rendering

const overlayNames = fs.readdirSync(path.join(k8s, "overlays")).filter((d) =>
  fs.existsSync(path.join(k8s, "overlays", d, "kustomization.yaml")));
const exampleNames = fs.existsSync(path.join(k8s, "examples"))
  ? fs.readdirSync(path.join(k8s, "examples")).filter((d) =>
    fs.existsSync(path.join(k8s, "examples", d, "kustomization.yaml")))
  : [];
// Overlays kustomize v2 (kubectl 1.20) cannot render: sidecar-central
// removes the second copy of base with `$patch: delete`, of which v2 leaves
// empty objects behind. (Rendered and checked with v5.)
const NEEDS_LATER_KUSTOMIZE = new Set(["sidecar-central"]);
const renderable = (name) => kustomizeMajor > 2 || !NEEDS_LATER_KUSTOMIZE.has(name);
const rendered = new Map();
function overlay(name) {
  if (!rendered.has(name)) rendered.set(name, render(path.join(k8s, "overlays", name)));
  return rendered.get(name);
}

test("kubectl is there to render the manifests", () => {
  requireKubectl();
});

test("the overlays are sidecar, central, sidecar-central and injector", () => {
  for (const n of ["sidecar", "central", "sidecar-central", "injector"]) {
    assert.ok(overlayNames.includes(n), `deploy/k8s/overlays/${n} is missing`);
  }
});

for (const name of overlayNames) {
  test(`overlay ${name}: renders, every object is a valid Kubernetes object`, async (t) => {
    if (!renderable(name)) {
      t.diagnostic(`kustomize v${kustomizeMajor} cannot render overlays/${name}: not checked`);
      return;
    }
    const objs = overlay(name);
    assert.ok(objs.length > 0);
    const seen = new Set();
    for (const o of objs) {
      const where = `overlays/${name}`;
      await schemaValidate(o, where);
      const id = `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
      assert.ok(!seen.has(id), `${where}: ${id} twice`);
      seen.add(id);
      if (CLUSTER_SCOPED.has(o.kind)) {
        assert.equal(o.metadata.namespace, undefined, `${where}: ${o.kind} ${o.metadata.name} is cluster-scoped`);
      } else {
        assert.equal(o.metadata.namespace, NS, `${where}: ${o.kind} ${o.metadata.name} in namespace ${NS}`);
      }
      assert.equal(o.kind === "Secret", false,
        `${where}: Secret ${o.metadata.name} rendered: applying it would overwrite the real one (keep Secrets out of kustomize)`);
      const spec = podSpecOf(o);
      if (spec) {
        checkPodSpec(spec, `${where} ${o.kind} ${o.metadata.name}`);
        assert.equal(spec.automountServiceAccountToken, false, `${where}: ${o.metadata.name}: no API token`);
        const sa = spec.serviceAccountName;
        assert.ok(sa && objs.some((x) => x.kind === "ServiceAccount" && x.metadata.name === sa),
          `${where}: ${o.metadata.name}: ServiceAccount ${sa} is rendered`);
        // the ConfigMaps it mounts are rendered here
        for (const v of spec.volumes ?? []) {
          if (v.configMap) {
            assert.ok(objs.some((x) => x.kind === "ConfigMap" && x.metadata.name === v.configMap.name),
              `${where}: ${o.metadata.name}: ConfigMap ${v.configMap.name} is not rendered`);
          }
        }
        // Services select something and point at named ports that exist
      }
      if (o.kind === "Service") {
        const sel = o.spec.selector ?? {};
        const pods = objs.filter((x) => podSpecOf(x) &&
          Object.entries(sel).every(([k, v]) => x.spec.template?.metadata?.labels?.[k] === v));
        assert.ok(pods.length > 0, `${where}: Service ${o.metadata.name} selects no pod template`);
        for (const p of o.spec.ports) {
          if (typeof p.targetPort !== "string") continue;
          const found = pods.some((x) => allContainers(podSpecOf(x)).some(({ c }) =>
            (c.ports ?? []).some((cp) => cp.name === p.targetPort)));
          assert.ok(found, `${where}: Service ${o.metadata.name}: no container port named ${p.targetPort}`);
        }
      }
      if (o.kind === "PodDisruptionBudget" || o.kind === "NetworkPolicy") {
        const sel = (o.kind === "PodDisruptionBudget" ? o.spec.selector : o.spec.podSelector).matchLabels ?? {};
        assert.ok(objs.some((x) => podSpecOf(x) &&
          Object.entries(sel).every(([k, v]) => x.spec.template?.metadata?.labels?.[k] === v)),
        `${where}: ${o.kind} ${o.metadata.name} selects no pod template`);
      }
      if (o.kind === "ConfigMap" && o.data?.["tollgate.json"]) {
        checkConfig(JSON.parse(o.data["tollgate.json"]), `${where} ConfigMap ${o.metadata.name}`);
      }
    }
  });
}

test("the bundle and pricing copied into deploy/k8s/base match policies/", () => {
  const pairs = [["base/pricing/pricing.json", "policies/pricing.json"]];
  const bdir = path.join(k8s, "base/bundle");
  for (const f of fs.readdirSync(path.join(top, "policies/default"))) {
    pairs.push([`base/bundle/${f}`, `policies/default/${f}`]);
  }
  for (const f of fs.readdirSync(bdir)) {
    assert.ok(fs.existsSync(path.join(top, "policies/default", f)),
      `deploy/k8s/base/bundle/${f} is not in policies/default`);
  }
  for (const [copy, orig] of pairs) {
    assert.equal(fs.readFileSync(path.join(k8s, copy), "utf8"), fs.readFileSync(path.join(top, orig), "utf8"),
      `deploy/k8s/${copy} differs from ${orig}: copy it again (cp ${orig} deploy/k8s/${copy})`);
  }
  // and every bundle file is in the ConfigMap
  const cm = overlay("sidecar").find((o) => o.kind === "ConfigMap" && o.metadata.name === "tollgate-bundle-default");
  assert.deepEqual(Object.keys(cm.data).sort(), fs.readdirSync(bdir).sort(),
    "tollgate-bundle-default holds every file of deploy/k8s/base/bundle");
});

test("sidecar: native sidecars, PDP first, socket kept from the app, config for ipc", () => {
  const objs = overlay("sidecar");
  const cfg = configOf(objs, "tollgate-sidecar-config");
  const deps = objs.filter((o) => o.kind === "Deployment");
  assert.ok(deps.length > 0, "the example app Deployment");
  for (const d of deps) {
    const spec = d.spec.template.spec;
    const where = `sidecar Deployment ${d.metadata.name}`;
    const cmName = (c) => volumeHolding(spec, c, "/etc/tollgate/tollgate.json")?.volume?.configMap?.name;
    checkSidecars(spec, where, cfg);
    const pdp = spec.initContainers.find((c) => c.name === "tollgate-pdp");
    const dp = spec.initContainers.find((c) => c.name === "tollgate-dataplane");
    assert.equal(cmName(pdp), "tollgate-sidecar-config");
    assert.equal(cmName(dp), "tollgate-sidecar-config");
    assert.deepEqual(pdp.args, ["serve", "--config", "/etc/tollgate/tollgate.json"]);
    assert.deepEqual(dp.args, ["--config", "/etc/tollgate/tollgate.json"]);
    assert.equal(probePort(pdp, "readinessProbe"), 9091, "PDP probes on 9091");
    assert.equal(probePort(pdp, "livenessProbe"), 9091, "PDP probes on 9091");
    assert.equal(probePort(dp, "readinessProbe"), 8080, "data plane probes on 8080");
    assert.equal(dp.readinessProbe.httpGet.path, "/readyz");
    assert.equal(dp.livenessProbe.httpGet.path, "/healthz");
    assert.equal(pdp.readinessProbe.httpGet.path, "/readyz");
    assert.equal(pdp.livenessProbe.httpGet.path, "/healthz");
    assert.equal(spec.terminationGracePeriodSeconds, 30);
    assert.ok(cfg.dataplane.drain_timeout_s < spec.terminationGracePeriodSeconds);
    const app = spec.containers[0];
    const base = (app.env ?? []).find((e) => e.name === "OPENAI_BASE_URL")?.value;
    assert.equal(base, "http://127.0.0.1:8080/v1", "the app calls the data plane on loopback");
    assert.equal(d.spec.template.metadata.annotations?.["tollgate.io/injected"], "true",
      "an explicitly configured pod is marked injected so the injector leaves it alone");
  }
  assert.ok(objs.some((o) => o.kind === "PodDisruptionBudget"), "a PodDisruptionBudget");
  assert.ok(objs.some((o) => o.kind === "NetworkPolicy"), "a NetworkPolicy");
  const ms = objs.find((o) => o.kind === "Service" && o.metadata.labels?.["tollgate.io/metrics"] === "true");
  assert.ok(ms?.spec.ports.some((p) => p.name === "metrics"), "a metrics Service with a port named metrics");
});

test("central: PDP StatefulSet on tls+tcp only, state on a PVC, data planes call it with mTLS", () => {
  const objs = overlay("central");
  const cfg = configOf(objs, "tollgate-central-config");
  for (const l of cfg.pdp.listen) {
    assert.match(l, /^tls\+tcp:\/\//, `central PDP listens on tls+tcp:// only, not ${l}`);
  }
  assert.deepEqual(cfg.pdp.listen, ["tls+tcp://0.0.0.0:7070"]);
  assert.equal(cfg.pdp.allow_plain_tcp, undefined, "no plain tcp");
  assert.ok(!cfg.private_volumes?.includes(SOCKET_VOLUME), "no ipc socket volume in central mode");
  assert.equal([cfg.dataplane.pdp_url].flat()[0], CENTRAL_URL);
  assert.equal(cfg.dataplane.pdp_timeout_ms, 200);
  assert.equal(cfg.dataplane.drain_accept_s, 5);
  assert.equal(cfg.dataplane.pdp_tls.server_name, new URL(CENTRAL_URL.replace("tls+tcp", "https")).hostname);

  const sts = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "tollgate-pdp");
  assert.ok(sts, "StatefulSet tollgate-pdp");
  assert.equal(sts.spec.replicas, 1, "one PDP: LMDB has one writer");
  const spec = sts.spec.template.spec;
  const pdp = spec.containers.find((c) => c.name === "tollgate-pdp");
  assert.ok(pdp);
  assert.deepEqual(pdp.args, ["serve", "--config", "/etc/tollgate/tollgate.json"]);
  assert.equal(volumeHolding(spec, pdp, "/etc/tollgate/tollgate.json")?.volume?.configMap?.name, "tollgate-central-config");
  const vct = sts.spec.volumeClaimTemplates ?? [];
  const st = (pdp.volumeMounts ?? []).filter((m) => cfg.pdp.state_dir.startsWith(m.mountPath.replace(/\/$/, "") + "/"))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const claim = vct.find((v) => v.metadata.name === st?.name);
  assert.ok(claim, "pdp.state_dir is on a volumeClaimTemplate");
  checkPrivateDir(spec, pdp, cfg, cfg.pdp.state_dir, "pdp.state_dir", "central PDP");
  assert.deepEqual(claim.spec.accessModes, ["ReadWriteOnce"]);
  assert.ok(spec.securityContext.fsGroup === UID, "fsGroup makes the volume writable for the PDP");
  checkTlsMounted(spec, pdp, cfg.pdp.tls, "tollgate-pdp-tls", "central PDP");
  checkFilesMounted(spec, pdp, cfg.pdp, "central PDP");
  assert.equal(probePort(pdp, "readinessProbe"), 9091);
  assert.ok((pdp.ports ?? []).some((p) => p.containerPort === 7070));

  const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === "tollgate-pdp");
  assert.ok(svc, "Service tollgate-pdp");
  assert.ok(svc.spec.ports.some((p) => p.port === 7070), "tollgate-pdp:7070");
  assert.ok(svc.spec.ports.some((p) => p.port === 9091 && p.name === "metrics"), "tollgate-pdp:9091 metrics");
  assert.equal(sts.spec.serviceName, "tollgate-pdp");

  const dep = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "tollgate-dataplane");
  assert.ok(dep, "Deployment tollgate-dataplane");
  assert.ok(dep.spec.replicas >= 2, "at least two data planes");
  const dspec = dep.spec.template.spec;
  const dp = dspec.containers.find((c) => c.name === "tollgate-dataplane");
  assert.equal(volumeHolding(dspec, dp, "/etc/tollgate/tollgate.json")?.volume?.configMap?.name, "tollgate-central-config");
  checkTlsMounted(dspec, dp, cfg.dataplane.pdp_tls, "tollgate-dataplane-tls", "central data plane");
  assert.ok((dp.envFrom ?? []).some((e) => e.secretRef?.name === "tollgate-provider-keys"));
  assert.ok(!(dp.volumeMounts ?? []).some((m) => m.mountPath === SOCKET_VOLUME), "no ipc socket volume in central mode");
  assert.ok(checkPrivateDir(dspec, dp, cfg, cfg.dataplane.spool_dir, "dataplane.spool_dir", "central").volume?.emptyDir,
    "spool on an emptyDir");
  assert.ok(dspec.topologySpreadConstraints?.length || dspec.affinity?.podAntiAffinity, "data planes spread");
  assert.ok(dspec.terminationGracePeriodSeconds > cfg.dataplane.drain_timeout_s);
  assert.ok(objs.some((o) => o.kind === "Service" && o.metadata.name === "tollgate" &&
    o.spec.ports.some((p) => p.port === 8080)), "Service tollgate:8080");
  assert.ok(objs.some((o) => o.kind === "PodDisruptionBudget" &&
    o.spec.selector.matchLabels["app.kubernetes.io/component"] === "dataplane"), "PDB for the data planes");

  // only data plane pods may reach 7070
  const np = objs.find((o) => o.kind === "NetworkPolicy" &&
    o.spec.podSelector.matchLabels?.["app.kubernetes.io/component"] === "pdp");
  assert.ok(np, "a NetworkPolicy for the PDP");
  assert.ok(np.spec.policyTypes.includes("Ingress"));
  const to7070 = np.spec.ingress.filter((r) => (r.ports ?? []).some((p) => p.port === 7070) || !r.ports);
  assert.ok(to7070.length > 0, "7070 is reachable from something");
  for (const r of to7070) {
    assert.ok(r.from?.length > 0, "7070 is not open to every source");
    for (const f of r.from) {
      assert.equal(f.ipBlock, undefined, "7070 by pod, not by address");
      assert.equal(f.podSelector?.matchLabels?.["app.kubernetes.io/component"], "dataplane",
        "only data plane pods reach the PDP's 7070");
    }
  }
});

// ------------------------------------------------------- sidecar-central

const matchesLabels = (sel, labels) =>
  Object.entries(sel?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v) &&
  (sel?.matchExpressions ?? []).length === 0;
const selects = (np, labels) => matchesLabels(np.spec.podSelector, labels);
const onPort = (rule, port, name) =>
  !rule.ports || rule.ports.some((p) => p.port === port || (name && p.port === name));

// peers: a NetworkPolicy rule's from/to admits pods of this namespace
// labelled so (a peer with a namespaceSelector is for other namespaces).
const peersAdmit = (peers, labels) => (peers ?? []).some((f) =>
  f.podSelector && !f.namespaceSelector && !f.ipBlock && matchesLabels(f.podSelector, labels));

test("sidecar-central: app pods' PDPs follow the central PDP over mutual TLS", (t) => {
  if (!renderable("sidecar-central")) {
    t.diagnostic(`kustomize v${kustomizeMajor} cannot render overlays/sidecar-central: not checked`);
    return;
  }
  const objs = overlay("sidecar-central");
  const cfg = configOf(objs, "tollgate-sidecar-central-config");
  const central = configOf(objs, "tollgate-central-config");

  // the replica's config: upstream over tls+tcp, no bundle or pricing of its own
  const up = cfg.pdp.upstream;
  assert.ok(up, "the sidecar PDP's config has pdp.upstream");
  assert.match(up.url, /^tls\+tcp:\/\//, "pdp.upstream.url is tls+tcp://");
  assert.equal(up.url, CENTRAL_URL);
  for (const k of ["bundle", "pricing_file"]) {
    assert.equal(cfg.pdp[k], undefined, `pdp.${k} beside pdp.upstream (the loader refuses it)`);
  }
  assert.equal(up.on_upstream_error ?? "deny", "deny", "fail closed when the central PDP is away");
  assert.ok((up.lease_use_s ?? 10) * 2 <= (up.lease_ttl_s ?? 60), "lease_use_s at most half of lease_ttl_s");
  const u = new URL(up.url.replace(/^tls\+tcp:/, "https:"));
  assert.equal(up.tls?.server_name, u.hostname, "server_name: the central's name in its certificate");
  assert.equal(up.tls.server_name, central.dataplane.pdp_tls.server_name,
    "the name central-mode data planes check too (one certificate, tollgate-pdp-tls)");
  assert.equal(up.node_id, undefined,
    "one ConfigMap serves every pod and node_id is not ${ENV}-expanded: a node_id would be every pod's");

  // the central PDP as in central mode, behind the Service the URL names
  const sts = objs.find((o) => o.kind === "StatefulSet" && o.metadata.name === "tollgate-pdp");
  assert.ok(sts, "StatefulSet tollgate-pdp (the central PDP)");
  assert.equal(sts.spec.replicas, 1);
  const cspec = sts.spec.template.spec;
  const cpdp = cspec.containers.find((c) => c.name === "tollgate-pdp");
  assert.equal(volumeHolding(cspec, cpdp, "/etc/tollgate/tollgate.json")?.volume?.configMap?.name,
    "tollgate-central-config");
  assert.ok(central.pdp.listen.every((l) => /^tls\+tcp:\/\//.test(l)), "the central listens on tls+tcp:// only");
  assert.equal(central.pdp.upstream, undefined, "the central PDP is the primary");
  assert.ok(central.pdp.tls?.client_ca_file, "mutual TLS: the central checks client certificates");
  checkTlsMounted(cspec, cpdp, central.pdp.tls, "tollgate-pdp-tls", "central PDP");
  checkFilesMounted(cspec, cpdp, central.pdp, "central PDP");
  assert.ok(sts.spec.volumeClaimTemplates?.length > 0, "the central's state on a PersistentVolume");
  assert.equal(probePort(cpdp, "readinessProbe"), 9091);
  const [svcName, svcNs] = u.hostname.split(".");
  assert.equal(svcNs, NS, `${up.url}: the Service's namespace`);
  const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === svcName);
  assert.ok(svc, `Service ${svcName}`);
  assert.ok(matchesLabels({ matchLabels: svc.spec.selector }, sts.spec.template.metadata.labels),
    `Service ${svcName} selects the central PDP`);
  assert.ok(svc.spec.ports.some((p) => p.port === Number(u.port)), `Service ${svcName} has port ${u.port}`);
  const cLabels = sts.spec.template.metadata.labels;
  const cnp = objs.find((o) => o.kind === "NetworkPolicy" && selects(o, cLabels));
  assert.ok(cnp?.spec.policyTypes.includes("Ingress"), "a NetworkPolicy guards the central PDP");
  for (const r of cnp.spec.ingress.filter((x) => onPort(x, 7070, "nng-tls"))) {
    assert.ok(r.from?.length > 0, "7070 is not open to every source");
    assert.ok(r.from.every((f) => !f.ipBlock), "7070 by pod, not by address");
  }

  // the app pods: native sidecars on ipc:// as in sidecar mode, the PDP with a client certificate
  const apps = objs.filter((o) => o.kind === "Deployment" && (o.spec.template.spec.initContainers ?? [])
    .some((c) => c.name === "tollgate-pdp"));
  assert.ok(apps.length > 0, "an app Deployment with a sidecar PDP");
  for (const d of apps) {
    const spec = d.spec.template.spec;
    const labels = d.spec.template.metadata.labels;
    const where = `sidecar-central Deployment ${d.metadata.name}`;
    checkSidecars(spec, where, cfg);
    const pdp = spec.initContainers.find((c) => c.name === "tollgate-pdp");
    const dp = spec.initContainers.find((c) => c.name === "tollgate-dataplane");
    for (const c of [pdp, dp]) {
      assert.equal(volumeHolding(spec, c, "/etc/tollgate/tollgate.json")?.volume?.configMap?.name,
        "tollgate-sidecar-central-config", `${where}: ${c.name} reads the replica's config`);
    }
    assert.equal([cfg.dataplane.pdp_url].flat()[0], SOCKET_URL, `${where}: the data plane asks the pod's PDP`);
    // the same kind of Secret central data planes present (chains to the central's client CA)
    checkTlsMounted(spec, pdp, up.tls, "tollgate-dataplane-tls", where);
    const tlsVol = volumeHolding(spec, pdp, up.tls.key_file).mount.name;
    for (const { c } of allContainers(spec)) {
      if (c === pdp) continue;
      assert.ok(!(c.volumeMounts ?? []).some((m) => m.name === tlsVol),
        `${where}: ${c.name} must not mount the PDP's client key (${tlsVol})`);
    }
    for (const m of pdp.volumeMounts ?? []) {
      const v = spec.volumes.find((x) => x.name === m.name);
      assert.ok(!v?.configMap || m.mountPath === "/etc/tollgate/tollgate.json",
        `${where}: the replica PDP mounts ConfigMap ${v?.configMap?.name} at ${m.mountPath}; its bundle and pricing come from the central`);
    }
    // the central admits these pods on 7070, and they may go there
    assert.ok(cnp.spec.ingress.some((r) => onPort(r, 7070, "nng-tls") && peersAdmit(r.from, labels)),
      `${where}: the central PDP's NetworkPolicy ${cnp.metadata.name} admits the app pods on 7070`);
    const egress = objs.filter((o) => o.kind === "NetworkPolicy" && selects(o, labels) &&
      o.spec.policyTypes?.includes("Egress"));
    if (egress.length > 0) {
      assert.ok(egress.some((np) => (np.spec.egress ?? []).some((r) => onPort(r, 7070) &&
        (!r.to || peersAdmit(r.to, cLabels)))),
      `${where}: its NetworkPolicy lets the pods reach the central PDP on 7070`);
    }
  }
});

// ------------------------------------------------ configs, real binary

function findPdpBinary() {
  const dirs = process.env.TG_BIN ? [process.env.TG_BIN] : ["build/bin", "build/asan/bin"];
  for (const d of dirs) {
    const p = path.resolve(top, d, "tollgate-pdp");
    if (fs.existsSync(p)) return p;
  }
  return null;
}

// loadWithPdp runs `tollgate-pdp state check --config` on cfg, whose
// state_dir is pointed at a directory that does not exist (so nothing on
// this machine is read or made): exit 2 with FILE:LINE:COL when the loader
// refuses the file; with the file accepted, the check finds no state.
function loadWithPdp(pdpBin, cfg, dir, name) {
  const stateDir = path.join(dir, `${name}.none`, "pdp");
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ ...cfg, pdp: { ...cfg.pdp, state_dir: stateDir } }, null, 2)}\n`);
  const r = run(pdpBin, ["state", "check", "--config", file], { timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}`, stateDir };
}

test("every tollgate.json of the overlays loads in the real tollgate-pdp", () => {
  const pdpBin = findPdpBinary();
  assert.ok(pdpBin, "FAIL, not skipped: no tollgate-pdp to load the configs with: build Tollgate " +
    "(deploy/local/setup.sh) or set TG_BIN to the directory holding tollgate-pdp");
  const configs = new Map();
  for (const name of overlayNames.filter(renderable)) {
    for (const o of overlay(name)) {
      if (o.kind === "ConfigMap" && o.data?.["tollgate.json"]) {
        configs.set(o.metadata.name, JSON.parse(o.data["tollgate.json"]));
      }
    }
  }
  const replicaFile = path.join(k8s, "overlays/sidecar-central/tollgate.json");
  const replica = JSON.parse(fs.readFileSync(replicaFile, "utf8"));
  configs.set("sidecar-central/tollgate.json", replica);
  assert.ok(configs.size >= 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tg-k8s-cfg-"));
  try {
    for (const [name, cfg] of configs) {
      const r = loadWithPdp(pdpBin, cfg, dir, name.replace(/\W/g, "_"));
      assert.notEqual(r.status, 2, `${name}: tollgate-pdp refuses it:\n${r.out}`);
      assert.equal(r.status, 1, `${name}: expected the state check to find no state:\n${r.out}`);
      assert.ok(r.out.includes(r.stateDir), `${name}: the check did not reach pdp.state_dir:\n${r.out}`);
    }
    // and the loader does refuse what it should: a bundle beside pdp.upstream
    const bad = loadWithPdp(pdpBin, { ...replica, pdp: { ...replica.pdp, bundle: "/etc/tollgate/bundle" } },
      dir, "replica_with_bundle");
    assert.equal(bad.status, 2, `a replica with a bundle of its own loads:\n${bad.out}`);
    assert.match(bad.out, /replica_with_bundle\.json:\d+:\d+: .*"upstream"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("injector: webhook, Deployment, injector.json", () => {
  const objs = overlay("injector");
  const mwc = objs.find((o) => o.kind === "MutatingWebhookConfiguration");
  assert.ok(mwc, "a MutatingWebhookConfiguration");
  assert.equal(mwc.webhooks.length, 2);
  const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === "tollgate-injector");
  assert.ok(svc);
  const paths = [];
  for (const w of mwc.webhooks) {
    assert.deepEqual(w.admissionReviewVersions, ["v1"]);
    assert.equal(w.sideEffects, "None");
    assert.equal(w.reinvocationPolicy, "IfNeeded");
    assert.equal(w.timeoutSeconds, 5);
    assert.equal(w.failurePolicy, "Ignore");
    assert.equal(w.clientConfig.service.name, svc.metadata.name);
    assert.equal(w.clientConfig.service.namespace, NS);
    assert.ok(svc.spec.ports.some((p) => p.port === (w.clientConfig.service.port ?? 443)));
    assert.ok(w.rules.some((r) => r.resources.includes("pods") && r.operations.includes("CREATE")));
    const notIn = (w.namespaceSelector.matchExpressions ?? []).find((e) =>
      e.key === "kubernetes.io/metadata.name" && e.operator === "NotIn");
    assert.ok(notIn?.values.includes("kube-system") && notIn.values.includes(NS),
      `${w.name}: kube-system and ${NS} excluded`);
    paths.push(w.clientConfig.service.path);
  }
  assert.deepEqual(paths.sort(), ["/mutate", "/mutate?default=inject"]);
  const dep = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "tollgate-injector");
  const spec = dep.spec.template.spec;
  const c = spec.containers[0];
  assert.deepEqual(c.args, ["serve", "--config", "/etc/tollgate-injector/injector.json"]);
  assert.equal(c.readinessProbe.httpGet.scheme, "HTTPS");
  assert.equal(c.readinessProbe.httpGet.path, "/healthz");
  assert.equal(probePort(c, "readinessProbe"), 8443);
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === "tollgate-injector");
  const inj = JSON.parse(cm.data["injector.json"]);
  assert.deepEqual(Object.keys(inj).sort(), ["central_config_map", "central_pdp_url", "cert_file",
    "default_bundle", "images", "inject_by_default", "key_file", "listen", "own_namespace",
    "provider_keys_secret", "sidecar_config_map", "tls_secret"].sort());
  assert.deepEqual(Object.keys(inj.images).sort(), ["dataplane", "pdp"]);
  assert.equal(inj.listen, "0.0.0.0:8443");
  assert.equal(inj.own_namespace, NS);
  assert.equal(inj.inject_by_default, false);
  for (const k of ["cert_file", "key_file"]) {
    assert.equal(volumeHolding(spec, c, inj[k])?.volume?.secret?.secretName, "tollgate-injector-tls");
  }
  assert.equal(volumeHolding(spec, c, "/etc/tollgate-injector/injector.json")?.volume?.configMap?.name, "tollgate-injector");
  for (const k of ["sidecar_config_map", "central_config_map", "default_bundle"]) {
    assert.ok(objs.some((o) => o.kind === "ConfigMap" && o.metadata.name === inj[k]), `${k}: ConfigMap ${inj[k]}`);
  }
  assert.equal(inj.central_pdp_url, [configOf(objs, inj.central_config_map).dataplane.pdp_url].flat()[0]);
  assert.equal(inj.sidecar_config_map, "tollgate-sidecar-config");
  const secrets = exampleSecrets().map((s) => s.metadata.name);
  for (const k of ["tls_secret", "provider_keys_secret"]) {
    assert.ok(secrets.includes(inj[k]), `${k}: ${inj[k]} has an example in deploy/k8s/base/secrets`);
  }
  for (const [k, img] of Object.entries(inj.images)) {
    assert.match(img, new RegExp(`^localhost/tollgate-${k}:[\\w.-]+$`));
    assert.doesNotMatch(img, /:latest$/);
  }
});

function exampleSecrets() {
  const dir = path.join(k8s, "base/secrets");
  return fs.readdirSync(dir).filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseYaml(fs.readFileSync(path.join(dir, f), "utf8"), f));
}

test("the Secret examples are valid Secrets of the expected shape", async () => {
  const s = exampleSecrets();
  const byName = new Map(s.map((x) => [x.metadata.name, x]));
  for (const x of s) await schemaValidate(x, "base/secrets");
  for (const n of ["tollgate-pdp-tls", "tollgate-dataplane-tls", "tollgate-injector-tls"]) {
    assert.equal(byName.get(n)?.type, "kubernetes.io/tls", n);
    assert.deepEqual(Object.keys(byName.get(n).data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
  }
  const keys = byName.get("tollgate-provider-keys");
  assert.ok(keys, "tollgate-provider-keys example");
  // every ${VAR} the shipped configs use is a key of the example
  for (const f of ["base/config/sidecar/tollgate.json", "base/config/central/tollgate.json"]) {
    const cfg = JSON.parse(fs.readFileSync(path.join(k8s, f), "utf8"));
    for (const d of cfg.deployments) {
      for (const m of String(d.api_key ?? "").matchAll(/\$\{(\w+)\}/g)) {
        assert.ok(m[1] in (keys.stringData ?? keys.data ?? {}), `${f}: ${m[1]} is not in tollgate-provider-keys`);
      }
    }
  }
});

test("the ServiceMonitor component selects the metrics Services", async (t) => {
  const dir = path.join(k8s, "components/servicemonitor");
  const sm = parseYaml(fs.readFileSync(path.join(dir, "servicemonitor.yaml"), "utf8"), "servicemonitor.yaml");
  assert.equal(sm.length, 1);
  const m = sm[0];
  assert.equal(m.apiVersion, "monitoring.coreos.com/v1");
  assert.equal(m.kind, "ServiceMonitor");
  const sel = m.spec.selector.matchLabels;
  const ports = m.spec.endpoints.map((e) => e.port);
  assert.ok(ports.includes("metrics"));
  for (const name of ["sidecar", "central", "sidecar-central"].filter(renderable)) {
    const svcs = overlay(name).filter((o) => o.kind === "Service" &&
      Object.entries(sel).every(([k, v]) => o.metadata.labels?.[k] === v));
    assert.ok(svcs.length > 0, `${name}: a Service the ServiceMonitor selects`);
    for (const s of svcs) {
      assert.ok(s.spec.ports.some((p) => ports.includes(p.name)), `${name}: ${s.metadata.name} has a port it scrapes`);
    }
    assert.ok(!overlay(name).some((o) => o.kind === "ServiceMonitor"), "not enabled by default");
  }
  const kz = parseYaml(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8"), "kustomization")[0];
  assert.equal(kz.kind, "Component");
  if (kustomizeMajor < 4) {
    t.diagnostic(`kustomize v${kustomizeMajor} has no components: examples/ not rendered`);
    return;
  }
  for (const ex of exampleNames) {
    const objs = render(path.join(k8s, "examples", ex));
    for (const o of objs) {
      if (o.kind === "ServiceMonitor") continue;
      await schemaValidate(o, `examples/${ex}`);
    }
    assert.ok(objs.some((o) => o.kind === "ServiceMonitor" && o.metadata.namespace === NS),
      `examples/${ex}: the ServiceMonitor`);
  }
});

// The contract's state and spool directories: an emptyDir mounted right
// there is root-owned 0777, which the PDP and the data plane refuse
// (tg_trust_dir_check); mount it above and let them make their own.
function checkStateMounts(spec, c, where) {
  for (const dir of ["/var/lib/tollgate/pdp", "/var/lib/tollgate/spool"]) {
    const h = volumeAt(spec, c, dir);
    assert.ok(!h?.volume?.emptyDir,
      `${where}: ${c.name}: an emptyDir mounted at ${dir} is root-owned 0777, refused as a state/spool directory even when listed in private_volumes; mount it at /var/lib/tollgate (the contract)`);
  }
}

// tests/injector/cases/NAME.pod.json is the pod after the injector's patch
// (NAME.patch.json; [] when it left the pod alone). Every one must be a
// valid Pod; one the injector changed must carry Tollgate as the manifests
// here do.
test("injector test pods (tests/injector/cases/*.pod.json) are valid Pods, injected ones hardened", async (t) => {
  if (!fs.existsSync(casesDir)) {
    t.diagnostic("tests/injector/cases does not exist yet: nothing to check");
    return;
  }
  const files = fs.readdirSync(casesDir).filter((f) => f.endsWith(".pod.json"));
  t.diagnostic(`${files.length} pod files`);
  const readJson = (f, where) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(casesDir, f), "utf8"));
    } catch (e) {
      return assert.fail(`${where}: not JSON: ${e.message}`);
    }
  };
  const failures = [];
  for (const f of files) {
    try {
      await checkCase(f);
    } catch (e) {
      failures.push(e.message.split("\n")[0]);
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${files.length} injector cases fail`);

  async function checkCase(f) {
    const where = `tests/injector/cases/${f}`;
    const pod = readJson(f, where);
    assert.equal(pod.apiVersion, "v1", `${where}: apiVersion v1`);
    assert.equal(pod.kind, "Pod", `${where}: kind Pod`);
    await schemaValidate(pod, where);
    assert.ok(pod.spec?.containers?.length > 0, `${where}: a Pod has containers`);
    const pf = f.replace(/\.pod\.json$/, ".patch.json");
    if (!fs.existsSync(path.join(casesDir, pf))) return;
    const ops = readJson(pf, `tests/injector/cases/${pf}`);
    if (!Array.isArray(ops) || ops.length === 0) return; // not injected
    const pw = `${where} (injected)`;
    const spec = pod.spec;
    const tg = allContainers(spec).filter(({ c }) => isTollgate(c));
    assert.ok(tg.length > 0, `${pw}: the patch adds no Tollgate container`);
    for (const { c } of tg) {
      checkContainer(spec, c, `${pw} container ${c.name}`, { tollgate: true });
      checkStateMounts(spec, c, pw);
    }
    checkSidecars(spec, pw, null);
  }
});
