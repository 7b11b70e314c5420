// otel.test.mjs - traces: what the data plane sends to an OTLP/HTTP
// collector, decoded with OpenTelemetry's own protobuf definitions (npm
// @opentelemetry/otlp-transformer): the GenAI attributes, the span tree
// (request, PDP decision, each upstream attempt), the client's traceparent
// honoured and passed on to the provider, message content only at capture
// full, a dead collector never slowing a request; and JSON log lines.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import {
  DEAD_PORT, mockDeployment, pollUntil, startGateway, userMsg,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const hex = (b) => Buffer.from(b ?? []).toString('hex');
const show = (x) => JSON.stringify(x, (k, v) => (typeof v === 'bigint' ? v.toString() : v));
const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;

/** A collector: every span it was sent, decoded, with its attributes as a
 * plain object. */
function collector() {
  const spans = [];
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      try {
        assert.equal(req.url, '/v1/traces');
        assert.equal(req.headers['content-type'], 'application/x-protobuf');
        const msg = ExportTraceServiceRequest.decode(Buffer.concat(parts));
        for (const rs of msg.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              const attrs = {};
              for (const a of s.attributes) {
                const v = a.value;
                attrs[a.key] = v.arrayValue ? v.arrayValue.values.map((x) => x.stringValue)
                  : v.stringValue ?? (v.intValue !== undefined && v.intValue !== null ? Number(v.intValue) : v.boolValue);
              }
              spans.push({
                service, traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId),
                name: s.name, kind: s.kind, start: BigInt(s.startTimeUnixNano.toString()),
                end: BigInt(s.endTimeUnixNano.toString()), status: s.status, attrs,
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      } catch (e) {
        spans.push({ error: e.message });
        res.writeHead(400).end();
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, spans, port: server.address().port })));
}

describe('OpenTelemetry traces', () => {
  let gw;
  let col;
  let key;

  before(async () => {
    col = await collector();
    gw = await startGateway({
      logFormat: 'json',
      dataplane: { otel: { endpoint: `http://127.0.0.1:${col.port}/v1/traces`, flush_ms: 50, service_name: 'tg-test' } },
      deployments: (mockPort) => [
        { ...mockDeployment('dead', 'flaky', mockPort), api_base: `http://127.0.0.1:${DEAD_PORT}/v1` },
        mockDeployment('live', 'flaky', mockPort),
      ],
      bundle: {
        'bundle.json': { name: 'otel', revision: 1 },
        'a.policy.json': {
          rules: [
            { id: 'allow', kind: 'access', effect: 'allow' },
            { id: 'full', kind: 'audit', capture: 'full', on_error: 'skip', when: { eq: ['request.metadata.capture', 'full'] } },
          ],
        },
      },
    });
    ({ key } = await gw.createKey({ tenant: 'otel' }));
  });
  after(async () => {
    await gw?.stop();
    col?.server.close();
  });

  const spansOf = (traceId, n) => pollUntil(() => {
    const s = col.spans.filter((x) => x.traceId === traceId);
    return s.length >= n ? s : null;
  }, { what: `${n} spans of trace ${traceId}` });

  test('a request is a SERVER span with the GenAI attributes, joined to the client\'s trace, with the PDP and the attempt as children', async () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const r = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg('hello'), max_tokens: 50 }, {
      key, headers: { traceparent: `00-${trace}-${parent}-01` },
    });
    assert.equal(r.status, 200, r.text);
    const spans = await spansOf(trace, 3);
    assert.deepEqual(col.spans.filter((x) => x.error), []);
    const rootSpan = spans.find((s) => s.kind === SERVER);
    assert.ok(rootSpan, show(spans));
    assert.equal(rootSpan.service, 'tg-test');
    assert.equal(rootSpan.parentSpanId, parent);
    assert.equal(rootSpan.name, 'chat gpt-4o-mini');
    const a = rootSpan.attrs;
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.provider.name'], 'openai');
    assert.equal(a['gen_ai.request.model'], 'gpt-4o-mini');
    assert.equal(a['gen_ai.response.model'], 'gpt-4o-mini');
    assert.equal(a['gen_ai.request.max_tokens'], 50);
    assert.equal(a['gen_ai.usage.input_tokens'], r.json.usage.prompt_tokens);
    assert.equal(a['gen_ai.usage.output_tokens'], r.json.usage.completion_tokens);
    assert.deepEqual(a['gen_ai.response.finish_reasons'], ['stop']);
    assert.equal(a['http.response.status_code'], 200);
    assert.equal(a['tollgate.request_id'], r.headers['x-request-id']);
    assert.equal(a['tollgate.tenant'], 'otel');
    assert.ok(a['tollgate.time_to_first_chunk_ms'] >= 0);
    assert.equal(a['gen_ai.input.messages'], undefined, 'content without capture full');
    assert.ok(rootSpan.end > rootSpan.start);

    const decide = spans.find((s) => s.kind === INTERNAL);
    assert.equal(decide.name, 'tollgate.policy.decide');
    assert.equal(decide.parentSpanId, rootSpan.spanId);
    assert.equal(decide.attrs['tollgate.verdict'], 'allow');
    assert.deepEqual(decide.attrs['tollgate.policy.rules'], ['allow']);
    const attempt = spans.find((s) => s.kind === CLIENT);
    assert.equal(attempt.parentSpanId, rootSpan.spanId);
    assert.equal(attempt.attrs['server.address'], '127.0.0.1');
    assert.equal(attempt.attrs['http.response.status_code'], 200);
    assert.ok(attempt.start >= rootSpan.start && attempt.end <= rootSpan.end + 1000000n);
    // The provider was told the attempt's span is its parent.
    const stats = await gw.mockStats();
    assert.equal(stats.last_traceparent, `00-${trace}-${attempt.spanId}-01`);
    // The decision record carries the same trace id.
    const rec = JSON.parse((await gw.cli(['decisions', 'show', r.headers['x-request-id'], '--config', gw.cfgPath,
      '--format', 'json'])).stdout);
    assert.equal(rec.trace_id, trace);
  });

  test('a retried request has one span per attempt, the failed one an error; a stream\'s finish reason is kept', async () => {
    const r = await gw.chat({ model: 'flaky', messages: userMsg('x'), stream: true }, { key, stream: true });
    assert.equal(r.status, 200);
    const rec = await pollUntil(() => col.spans.find((s) => s.kind === SERVER &&
      s.attrs['tollgate.request_id'] === r.headers['x-request-id']), { what: 'the stream\'s span' });
    const spans = await spansOf(rec.traceId, 4);
    const attempts = spans.filter((s) => s.kind === CLIENT).sort((x, y) => Number(x.start - y.start));
    assert.equal(attempts.length, 2, show(attempts));
    assert.equal(attempts[0].attrs['tollgate.deployment'], 'dead');
    assert.equal(attempts[0].status.code, 2); // ERROR
    assert.equal(attempts[1].attrs['tollgate.deployment'], 'live');
    assert.equal(rec.attrs['tollgate.stream'], true);
    assert.deepEqual(rec.attrs['gen_ai.response.finish_reasons'], ['stop']);
    assert.equal(rec.attrs['tollgate.deployment'], 'live');
  });

  test('message content is in the span only when the capture level is full', async () => {
    const r = await gw.chat({ model: 'gpt-4o-mini', messages: userMsg('secret-canary-91') }, {
      key, headers: { 'x-tollgate-meta-capture': 'full' },
    });
    assert.equal(r.status, 200);
    const s = await pollUntil(() => col.spans.find((x) => x.kind === SERVER &&
      x.attrs['tollgate.request_id'] === r.headers['x-request-id']), { what: 'the span' });
    assert.match(s.attrs['gen_ai.input.messages'], /secret-canary-91/);
    assert.match(s.attrs['gen_ai.output.messages'], /"choices"/);
    assert.ok(!col.spans.some((x) => x.attrs?.['tollgate.request_id'] !== r.headers['x-request-id'] &&
      show(x.attrs).includes('secret-canary-91')));
  });

  test('log_format json: every line is one JSON object, request lines with the request id', async () => {
    const r = await gw.chat({ model: 'nope', messages: userMsg('x') }, { key: 'sk-tg-bad-bad-bad' });
    assert.equal(r.status, 401);
    await pollUntil(() => /"msg"/.test(gw.dp.stderr()), { what: 'a JSON log line' });
    const lines = gw.dp.stderr().split('\n').filter(Boolean);
    const recs = [];
    for (const l of lines) {
      let o;
      assert.doesNotThrow(() => { o = JSON.parse(l); }, `not JSON: ${l}`);
      assert.ok(o.time && o.level && o.component && typeof o.msg === 'string', l);
      recs.push(o);
    }
    // The retried stream's failed attempt was logged with its request and
    // trace ids.
    assert.ok(recs.some((o) => /^req_/.test(o.request_id ?? '') && /^[0-9a-f]{32}$/.test(o.trace_id ?? '')),
      lines.join('\n'));
  });

  test('a collector that does not answer never slows a request; spans it did not take are counted', async () => {
    const gw2 = await startGateway({
      dataplane: { otel: { endpoint: `http://127.0.0.1:${DEAD_PORT}/v1/traces`, flush_ms: 20, timeout_ms: 200 } },
    });
    try {
      const { key: k2 } = await gw2.createKey({ tenant: 'o2' });
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await gw2.chat({ model: 'gpt-4o-mini', messages: userMsg('x') }, { key: k2 });
        assert.equal(r.status, 200);
        assert.ok(performance.now() - t0 < 2000, 'a request waited for the collector');
      }
      await pollUntil(async () => ((await gw2.metrics())['tollgate_otel_spans_total{result="failed"}'] >= 3 ? true : null),
        { what: 'failed spans counted' });
    } finally {
      await gw2.stop();
    }
  });
});
