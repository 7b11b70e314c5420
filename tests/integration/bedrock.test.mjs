// bedrock.test.mjs - Amazon Bedrock (Converse / ConverseStream) behind the
// gateway, played by the mock: it answers in Bedrock's shapes, streams
// real event stream frames (with CRCs) and checks every request's SigV4
// signature against its secret, so a broken signer fails here. OpenAI
// chat and Anthropic Messages clients, stream and not, tools, usage equal
// to the mock's, throttling retried, a damaged frame, a wrong secret.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { AWS_TOKEN_ENV, WRONG_ENV, awsEnv, bedrockDeployments } from './bedrock.mjs';
import { errorBody, mockWords, runBinary, startGateway, userMsg } from './harness.mjs';

const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

/** content of the data events of an OpenAI stream. */
function openaiStream(events) {
  let text = '';
  const calls = {};
  let finish = null;
  let usage = null;
  let error = null;
  for (const e of events) {
    if (e.data === '[DONE]') continue;
    const j = JSON.parse(e.data);
    if (j.error) error = j.error;
    if (j.usage) usage = j.usage;
    for (const c of j.choices ?? []) {
      if (c.delta?.content) text += c.delta.content;
      for (const t of c.delta?.tool_calls ?? []) {
        calls[t.index] ??= { id: '', name: '', args: '' };
        if (t.id) calls[t.index].id = t.id;
        if (t.function?.name) calls[t.index].name = t.function.name;
        if (t.function?.arguments) calls[t.index].args += t.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, calls: Object.values(calls), finish, usage, error };
}

describe('bedrock', () => {
  let gw;
  let key;
  const env = awsEnv();

  before(async () => {
    gw = await startGateway({ deployments: (p) => bedrockDeployments(p), dataplaneEnv: env });
    gw.secrets.push(env[AWS_TOKEN_ENV], env[WRONG_ENV]);
    ({ key } = await gw.createKey({ tenant: 'bedrock' }));
  });

  after(async () => {
    await gw?.stop();
  });

  const stats = async () => (await gw.mockStats()).by_api.bedrock;

  test('chat completion, whole: Converse answer in OpenAI shape, usage equal to the mock', async () => {
    const before = await stats();
    const r = await gw.chat({ model: 'm-bedrock', messages: [{ role: 'system', content: 'be brief' },
      { role: 'user', content: '[[mock chunks=4]] hello' }], max_tokens: 50, temperature: 0.2, stop: ['zz'] }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.model, 'm-bedrock');
    assert.equal(r.json.choices[0].message.content, mockWords(4));
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    const after = await stats();
    assert.equal(after.completed - before.completed, 1);
    assert.equal(r.json.usage.prompt_tokens, after.prompt_tokens - before.prompt_tokens);
    assert.equal(r.json.usage.completion_tokens, 4);
    assert.equal(after.completion_tokens - before.completion_tokens, 4);
  });

  test('max_tokens cuts the answer: finish_reason length', async () => {
    const r = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock chunks=8]] hello'), max_tokens: 3 }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal(r.json.usage.completion_tokens, 3);
  });

  test('chat completion, streamed from event stream frames, with the usage chunk', async () => {
    const before = await stats();
    const s = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock chunks=5]] hello'), stream: true,
      stream_options: { include_usage: true } }, { key, stream: true });
    assert.equal(s.status, 200, s.text);
    assert.equal(s.events.at(-1).data, '[DONE]');
    const o = openaiStream(s.events);
    assert.equal(o.error, null);
    assert.equal(o.text, mockWords(5));
    assert.equal(o.finish, 'stop');
    const after = await stats();
    assert.equal(o.usage.completion_tokens, 5);
    assert.equal(o.usage.prompt_tokens, after.prompt_tokens - before.prompt_tokens);
  });

  test('tool calls, whole and streamed, and the result in the next turn', async () => {
    const body = { model: 'm-bedrock', messages: userMsg('[[mock tool=get_weather]] weather in Paris?'), tools: TOOLS,
      tool_choice: 'auto', max_tokens: 50 };
    const r = await gw.chat(body, { key });
    assert.equal(r.status, 200, r.text);
    const m = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 1);
    assert.equal(m.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'Paris', n: 1 });

    const s = await gw.chat({ ...body, stream: true }, { key, stream: true });
    assert.equal(s.status, 200, s.text);
    const o = openaiStream(s.events);
    assert.equal(o.finish, 'tool_calls');
    assert.equal(o.calls.length, 1);
    assert.equal(o.calls[0].name, 'get_weather');
    assert.ok(o.calls[0].id.startsWith('tooluse_'), o.calls[0].id);
    assert.deepEqual(JSON.parse(o.calls[0].args), { city: 'Paris', n: 1 });

    const next = await gw.chat({
      model: 'm-bedrock', tools: TOOLS, max_tokens: 50,
      messages: [
        { role: 'user', content: 'weather in Paris?' },
        { role: 'assistant', content: null, tool_calls: m.tool_calls },
        { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '{"temp_c": 21}' },
        { role: 'user', content: '[[mock chunks=2]] thanks' },
      ],
    }, { key });
    assert.equal(next.status, 200, next.text);
    assert.equal(next.json.choices[0].message.content, mockWords(2));
  });

  test('/v1/messages (Anthropic clients), stream and not', async () => {
    const body = { model: 'm-bedrock', max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: '[[mock chunks=3]] hi' }] };
    const h = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' };
    const r = await gw.request('/v1/messages', { method: 'POST', key, headers: h, body: JSON.stringify(body) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'message');
    assert.equal(r.json.content[0].text, mockWords(3));
    assert.equal(r.json.stop_reason, 'end_turn');
    assert.equal(r.json.usage.output_tokens, 3);

    const s = await gw.request('/v1/messages', { method: 'POST', key, headers: h, body: JSON.stringify({ ...body, stream: true }) });
    assert.equal(s.status, 200, s.text);
    const types = [...s.text.matchAll(/^event: (\S+)$/gm)].map((x) => x[1]);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    const text = [...s.text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((x) => x[1]).join('');
    assert.equal(text, mockWords(3));

    const t = await gw.request('/v1/messages', { method: 'POST', key, headers: h, body: JSON.stringify({
      model: 'm-bedrock', max_tokens: 64, tools: [{ name: 'get_weather', input_schema: TOOLS[0].function.parameters }],
      messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather?' }] }) });
    assert.equal(t.status, 200, t.text);
    assert.equal(t.json.stop_reason, 'tool_use');
    const tu = t.json.content.find((b) => b.type === 'tool_use');
    assert.deepEqual(tu.input, { city: 'Paris', n: 1 });
  });

  test('/v1/responses (Responses clients), stream and not', async () => {
    const h = { 'content-type': 'application/json' };
    const r = await gw.request('/v1/responses', { method: 'POST', key, headers: h,
      body: JSON.stringify({ model: 'm-bedrock', input: '[[mock chunks=3]] hi', max_output_tokens: 50 }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'response');
    assert.equal(r.json.status, 'completed');
    const msg = r.json.output.find((o) => o.type === 'message');
    assert.equal(msg.content[0].text, mockWords(3));
    assert.equal(r.json.usage.output_tokens, 3);
    const s = await gw.request('/v1/responses', { method: 'POST', key, headers: h,
      body: JSON.stringify({ model: 'm-bedrock', input: '[[mock chunks=4]] hi', stream: true }) });
    assert.equal(s.status, 200, s.text);
    const deltas = [...s.text.matchAll(/"type":"response\.output_text\.delta"[^\n]*?"delta":"([^"]*)"/g)].map((x) => x[1]);
    assert.equal(deltas.join(''), mockWords(4));
    assert.match(s.text, /event: response\.completed/);
  });

  test('a session token is sent and signed', async () => {
    const r = await gw.chat({ model: 'm-bedrock-token', messages: userMsg('[[mock chunks=2]] hi') }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, mockWords(2));
  });

  test('a wrong secret: the mock refuses the signature, the client gets 502 upstream_auth_failed', async () => {
    const r = await gw.chat({ model: 'm-bedrock-wrong', messages: userMsg('hi') }, { key });
    errorBody(r, 502, 'upstream_auth_failed');
  });

  test('throttling (429 ThrottlingException) is retried', async () => {
    const before = await stats();
    const r = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock status=429 times=1 tag=br429 chunks=3]] hi') }, { key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, mockWords(3));
    const after = await stats();
    assert.equal(after.requests - before.requests, 2);
    assert.equal(after.errors - before.errors, 1);
  });

  test('Bedrock errors map to the gateway\'s: 400 validation passes, 5xx is the gateway\'s 502', async () => {
    const bad = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock status=400]] hi') }, { key });
    const e = errorBody(bad, 400);
    assert.match(e.message, /mock: injected error/);
    const ctx = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock context=2]] a long enough prompt') }, { key });
    assert.equal(errorBody(ctx, 400).code, 'context_length_exceeded');
    const down = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock status=500]] hi') }, { key });
    assert.equal(down.status, 502, down.text);
  });

  test('a damaged frame (bad CRC) ends the stream with an error event', async () => {
    const s = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock chunks=6 corrupt_after=2]] hi'), stream: true },
      { key, stream: true });
    assert.equal(s.status, 200, s.text);
    const o = openaiStream(s.events);
    assert.equal(o.text, mockWords(6).split(' ').slice(0, 2).join(' ') + ' ');
    assert.ok(o.error, s.text);
    assert.equal(o.error.code, 'upstream_stream_invalid');
    assert.match(o.error.message, /CRC/);
  });

  test('a connection dropped mid-stream ends the client\'s stream with an error event', async () => {
    // On the other deployment: a cut counts against its health.
    const s = await gw.chat({ model: 'm-bedrock-token', messages: userMsg('[[mock chunks=6 drop_after=3]] hi'), stream: true },
      { key, stream: true });
    assert.equal(s.status, 200, s.text);
    const o = openaiStream(s.events);
    assert.equal(o.text, 'w0 w1 w2 ');
    assert.ok(o.error, s.text);
    assert.notEqual(s.events.at(-1).data, '[DONE]');
  });

  test('an exception message in the stream is an error event, for both client formats', async () => {
    const s = await gw.chat({ model: 'm-bedrock', messages: userMsg('[[mock chunks=5 error_after=2]] hi'), stream: true },
      { key, stream: true });
    assert.equal(s.status, 200, s.text);
    const o = openaiStream(s.events);
    assert.ok(o.error, s.text);
    assert.match(o.error.message, /modelStreamErrorException/);
    const m = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm-bedrock', max_tokens: 50, stream: true,
        messages: [{ role: 'user', content: '[[mock chunks=5 error_after=2]] hi' }] }) });
    assert.equal(m.status, 200, m.text);
    assert.match(m.text, /^event: error$/m);
  });

  test('fields Bedrock cannot honour are refused by name', async () => {
    for (const [field, body] of [['n', { n: 2 }], ['logprobs', { logprobs: true }],
      ['response_format', { response_format: { type: 'json_object' } }]]) {
      const r = await gw.chat({ model: 'm-bedrock', messages: userMsg('hi'), ...body }, { key });
      assert.equal(errorBody(r, 400).param, field, r.text);
    }
    const img = await gw.chat({ model: 'm-bedrock', messages: [{ role: 'user', content: [
      { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] }, { key });
    assert.equal(errorBody(img, 400).param, 'messages[0].content[0]');
  });

  test('the spend of the tenant counts the Bedrock requests\' tokens', async () => {
    const s = await gw.spendTenant('bedrock');
    assert.ok(s.requests >= 5, JSON.stringify(s));
    assert.ok(s.completion_tokens > 0 && s.prompt_tokens > 0, JSON.stringify(s));
  });
});

describe('bedrock config errors', () => {
  const cfg = (dep) => `{
  "pdp": {"listen": ["ipc:///tmp/tgit-never/pdp.sock"], "state_dir": "state"},
  "dataplane": {"listen": "127.0.0.1:1", "pdp_url": "ipc:///tmp/tgit-never/pdp.sock", "spool_dir": "spool"},
  "deployments": [
    {"id": "b", "model": "m",
     ${dep}}
  ]
}
`; // the deployment's own keys are on line 6
  const OK = '"aws_access_key_id": "${AK}", "aws_secret_access_key": "${SK}"';
  const cases = [
    ['no region', `"provider": "bedrock", ${OK}`, /region/],
    ['a literal secret', `"provider": "bedrock", "region": "us-east-1", "aws_access_key_id": "\${AK}", "aws_secret_access_key": "wJalrXUtnFEMI-literal"`, /aws_secret_access_key: secrets are never literal/],
    ['no access key id', `"provider": "bedrock", "region": "us-east-1", "aws_secret_access_key": "\${SK}"`, /aws_access_key_id/],
    ['a bad region', `"provider": "bedrock", "region": "US East", ${OK}`, /region: expected an AWS region/],
    ['an api_key', `"provider": "bedrock", "region": "us-east-1", "api_key": "\${K}", ${OK}`, /api_key: a bedrock deployment signs/],
    ['region on another provider', `"provider": "openai", "region": "us-east-1"`, /region: only bedrock deployments take it/],
    ['an unknown key', `"provider": "bedrock", "region": "us-east-1", "aws_secret_key": "\${SK}", ${OK}`, /aws_secret_key/],
  ];
  for (const [name, dep, want] of cases) {
    test(`${name}: refused with file:line:col`, async () => {
      const dir = fs.mkdtempSync('/tmp/tgit-brcfg-');
      const f = path.join(dir, 'bad.json');
      fs.writeFileSync(f, cfg(dep));
      for (const [bin, args] of [['tollgate-dataplane', ['--config', f]], ['tollgate-pdp', ['serve', '--config', f]]]) {
        const r = await runBinary(bin, args);
        assert.equal(r.code, 2, `${bin}: exit ${r.code}, stderr:\n${r.stderr}`);
        assert.match(r.stderr, /bad\.json:[56]:\d+/, r.stderr);
        assert.match(r.stderr, want, r.stderr);
        assert.ok(!r.stderr.includes('wJalrXUtnFEMI-literal'), r.stderr);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    });
  }
});
