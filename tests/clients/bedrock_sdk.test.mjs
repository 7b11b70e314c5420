// bedrock_sdk.test.mjs - the real SDKs, unmodified, against a Bedrock
// deployment (Converse / ConverseStream, SigV4-signed, played by the
// mock): the `openai` package on /v1/chat/completions and
// `@anthropic-ai/sdk` on /v1/messages, streaming and not, with tools, and
// the usage each SDK reads equal to what the mock counted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { AWS_TOKEN_ENV, WRONG_ENV, awsEnv, bedrockDeployments } from '../integration/bedrock.mjs';
import { mockWords, startGateway } from '../integration/harness.mjs';

const OPENAI_TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

const ANTHROPIC_TOOLS = [{
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];

describe('SDKs against a Bedrock deployment', () => {
  let gw;
  let openai;
  let anthropic;
  const env = awsEnv();

  before(async () => {
    gw = await startGateway({ deployments: (p) => bedrockDeployments(p), dataplaneEnv: env });
    gw.secrets.push(env[AWS_TOKEN_ENV], env[WRONG_ENV]);
    const k = await gw.createKey({ tenant: 'sdk-bedrock' });
    openai = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
    anthropic = new Anthropic({ baseURL: gw.baseUrl, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await gw?.stop();
  });

  const mockStats = async () => (await gw.mockStats()).by_api.bedrock;

  test('openai: chat completion, whole and streamed, usage equal to the mock', async () => {
    let before = await mockStats();
    const r = await openai.chat.completions.create({ model: 'm-bedrock', max_tokens: 50,
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: '[[mock chunks=4]] hi' }] });
    let after = await mockStats();
    assert.equal(r.choices[0].message.content, mockWords(4));
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, after.prompt_tokens - before.prompt_tokens);
    assert.equal(r.usage.completion_tokens, after.completion_tokens - before.completion_tokens);

    before = after;
    const stream = await openai.chat.completions.create({ model: 'm-bedrock', stream: true,
      stream_options: { include_usage: true }, messages: [{ role: 'user', content: '[[mock chunks=5]] hi' }] });
    let text = '';
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    after = await mockStats();
    assert.equal(text, mockWords(5));
    assert.equal(finish, 'stop');
    assert.equal(usage.prompt_tokens, after.prompt_tokens - before.prompt_tokens);
    assert.equal(usage.completion_tokens, 5);
  });

  test('openai: tools, whole and streamed (the SDK assembles the call)', async () => {
    const body = { model: 'm-bedrock', tools: OPENAI_TOOLS, max_tokens: 50,
      messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }] };
    const r = await openai.chat.completions.create(body);
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', n: 1 });

    const runner = openai.beta.chat.completions.stream({ ...body, stream: true });
    const final = await runner.finalChatCompletion();
    const scall = final.choices[0].message.tool_calls[0];
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(scall.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(scall.function.arguments), { city: 'Paris', n: 1 });

    const next = await openai.chat.completions.create({ model: 'm-bedrock', tools: OPENAI_TOOLS, max_tokens: 50,
      messages: [...body.messages, r.choices[0].message,
        { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' },
        { role: 'user', content: '[[mock chunks=2]] thanks' }] });
    assert.equal(next.choices[0].message.content, mockWords(2));
  });

  test('anthropic: messages, whole and streamed, with tools', async () => {
    const m = await anthropic.messages.create({ model: 'm-bedrock', max_tokens: 64, system: 'be brief',
      messages: [{ role: 'user', content: '[[mock chunks=3]] hi' }] });
    assert.equal(m.content[0].text, mockWords(3));
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.output_tokens, 3);

    const s = anthropic.messages.stream({ model: 'm-bedrock', max_tokens: 64,
      messages: [{ role: 'user', content: '[[mock chunks=4]] hi' }] });
    let text = '';
    s.on('text', (t) => { text += t; });
    const fm = await s.finalMessage();
    assert.equal(text, mockWords(4));
    assert.equal(fm.stop_reason, 'end_turn');
    assert.equal(fm.usage.output_tokens, 4);

    const t = await anthropic.messages.create({ model: 'm-bedrock', max_tokens: 64, tools: ANTHROPIC_TOOLS,
      messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather?' }] });
    assert.equal(t.stop_reason, 'tool_use');
    const tu = t.content.find((b) => b.type === 'tool_use');
    assert.equal(tu.name, 'get_weather');
    assert.deepEqual(tu.input, { city: 'Paris', n: 1 });

    const ts = anthropic.messages.stream({ model: 'm-bedrock', max_tokens: 64, tools: ANTHROPIC_TOOLS,
      messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather?' }] });
    const tfm = await ts.finalMessage();
    assert.equal(tfm.stop_reason, 'tool_use');
    assert.deepEqual(tfm.content.find((b) => b.type === 'tool_use').input, { city: 'Paris', n: 1 });
  });

  test('openai: a damaged upstream frame surfaces as an error in the SDK\'s stream', async () => {
    const stream = await openai.chat.completions.create({ model: 'm-bedrock', stream: true,
      messages: [{ role: 'user', content: '[[mock chunks=6 corrupt_after=2]] hi' }] });
    await assert.rejects(async () => {
      for await (const chunk of stream) void chunk;
    }, /damaged/);
  });
});
