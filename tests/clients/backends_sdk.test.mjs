// backends_sdk.test.mjs - the real SDKs, unmodified, against every backend
// the mock plays: the `openai` package through Tollgate to OpenAI, Azure,
// Anthropic and Gemini deployments, and `@anthropic-ai/sdk` against
// /v1/messages backed by each of them; streaming and not, with tools; each
// SDK against a model group of two deployments of the other format; and
// the openai SDK's embeddings against every backend that has them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

import { mockWords, providerDeployments, startGateway } from '../integration/harness.mjs';

const MODELS = ['m-openai', 'm-azure', 'm-anthropic', 'm-gemini'];

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

describe('SDKs against every backend', () => {
  let gw;
  let openai;
  let anthropic;

  before(async () => {
    // Model groups: "claude-group" is two Anthropic deployments, "gpt-group"
    // two OpenAI ones, each chosen at random by weight.
    gw = await startGateway({
      deployments: (p) => {
        const base = providerDeployments(p);
        const ant = base.find((d) => d.id === 'ant');
        const oai = base.find((d) => d.id === 'oai');
        return [...base,
          { ...ant, id: 'ant-a', model: 'claude-group', upstream_model: 'claude-a' },
          { ...ant, id: 'ant-b', model: 'claude-group', upstream_model: 'claude-b' },
          { ...oai, id: 'oai-a', model: 'gpt-group', upstream_model: 'gpt-a' },
          { ...oai, id: 'oai-b', model: 'gpt-group', upstream_model: 'gpt-b' }];
      },
      modelGroups: [{ model: 'claude-group', strategy: 'weighted' }, { model: 'gpt-group', strategy: 'weighted' }],
    });
    const k = await gw.createKey({ tenant: 'sdks' });
    openai = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
    anthropic = new Anthropic({ baseURL: gw.baseUrl, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await gw?.stop();
  });

  test('openai SDK -> a model group of two Anthropic deployments: both serve, stream and tools work', async () => {
    const seen = new Set();
    for (let i = 0; i < 24; i++) {
      const { data, response } = await openai.chat.completions.create({
        model: 'claude-group', max_tokens: 20, messages: [{ role: 'user', content: '[[mock chunks=2]] hi' }],
      }).withResponse();
      assert.equal(data.choices[0].message.content, mockWords(2));
      assert.equal(data.model, 'claude-group');
      seen.add(response.headers.get('x-tollgate-deployment'));
    }
    assert.deepEqual([...seen].sort(), ['ant-a', 'ant-b']);
    const runner = openai.beta.chat.completions.stream({
      model: 'claude-group', max_tokens: 50, tools: OPENAI_TOOLS,
      messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }],
    });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
  });

  test('@anthropic-ai/sdk -> a model group of two OpenAI deployments: both serve, stream works', async () => {
    const seen = new Set();
    for (let i = 0; i < 24; i++) {
      const { data, response } = await anthropic.messages.create({
        model: 'gpt-group', max_tokens: 20, messages: [{ role: 'user', content: '[[mock chunks=2]] hi' }],
      }).withResponse();
      assert.equal(data.content[0].text, mockWords(2));
      seen.add(response.headers.get('x-tollgate-deployment'));
    }
    assert.deepEqual([...seen].sort(), ['oai-a', 'oai-b']);
    const stream = anthropic.messages.stream({
      model: 'gpt-group', max_tokens: 64, messages: [{ role: 'user', content: '[[mock chunks=5]] hi' }],
    });
    const msg = await stream.finalMessage();
    assert.equal(msg.content[0].text, mockWords(5));
  });

  // The SDK asks for base64 unless told otherwise and decodes it itself.
  for (const model of ['text-embedding-3-small', 'e-azure', 'e-gemini']) {
    test(`openai SDK embeddings -> ${model}: default (base64) and float`, async () => {
      const want = (i, dims) => Array.from({ length: dims },
        (_, j) => Math.fround((((i + 1) * 7919 + (j + 1) * 104729) % 2001 - 1000) / 1000));
      const r = await openai.embeddings.create({ model, input: ['alpha', 'beta'], dimensions: 6 });
      assert.equal(r.data.length, 2);
      assert.deepEqual(r.data.map((d) => d.embedding), [want(0, 6), want(1, 6)]);
      assert.ok(r.usage.prompt_tokens > 0);
      const f = await openai.embeddings.create({ model, input: 'alpha', encoding_format: 'float' });
      assert.deepEqual(f.data[0].embedding.map(Math.fround), want(0, 8));
    });
  }

  for (const model of MODELS) {
    test(`openai SDK -> ${model}: create, stream, tools`, async () => {
      const c = await openai.chat.completions.create({
        model, max_tokens: 50, messages: [{ role: 'user', content: '[[mock chunks=3]] hi' }],
      });
      assert.equal(c.choices[0].message.content, mockWords(3));
      assert.equal(c.usage.completion_tokens, 3);

      const stream = await openai.chat.completions.create({
        model, max_tokens: 50, stream: true, stream_options: { include_usage: true },
        messages: [{ role: 'user', content: '[[mock chunks=4]] hi' }],
      });
      let text = '';
      let usage = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text, mockWords(4));
      assert.equal(usage.completion_tokens, 4);

      const t = await openai.chat.completions.create({
        model, max_tokens: 50, tools: OPENAI_TOOLS,
        messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }],
      });
      assert.equal(t.choices[0].finish_reason, 'tool_calls');
      const call = t.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'get_weather');

      // The SDK's stream helper assembles the streamed tool call.
      const runner = openai.beta.chat.completions.stream({
        model, max_tokens: 50, tools: OPENAI_TOOLS,
        messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }],
      });
      const final = await runner.finalChatCompletion();
      const sc = final.choices[0].message.tool_calls[0];
      assert.equal(sc.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(sc.function.arguments), JSON.parse(call.function.arguments));

      const answer = await openai.chat.completions.create({
        model, max_tokens: 50, tools: OPENAI_TOOLS,
        messages: [
          { role: 'user', content: 'weather in Paris?' },
          t.choices[0].message,
          { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21}' },
        ],
      });
      assert.equal(answer.choices[0].finish_reason, 'stop');
    });

    test(`@anthropic-ai/sdk -> /v1/messages -> ${model}: create, stream, tools`, async () => {
      const m = await anthropic.messages.create({
        model, max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: '[[mock chunks=3]] hi' }],
      });
      assert.equal(m.type, 'message');
      assert.equal(m.content[0].type, 'text');
      assert.equal(m.content[0].text, mockWords(3));
      assert.equal(m.stop_reason, 'end_turn');
      assert.equal(m.usage.output_tokens, 3);

      const stream = anthropic.messages.stream({
        model, max_tokens: 64, messages: [{ role: 'user', content: '[[mock chunks=5]] hi' }],
      });
      let text = '';
      stream.on('text', (t) => { text += t; });
      const final = await stream.finalMessage();
      assert.equal(text, mockWords(5));
      assert.equal(final.content[0].text, mockWords(5));
      assert.equal(final.usage.output_tokens, 5);

      const t = await anthropic.messages.create({
        model, max_tokens: 64, tools: ANTHROPIC_TOOLS,
        messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }],
      });
      assert.equal(t.stop_reason, 'tool_use');
      const use = t.content.find((b) => b.type === 'tool_use');
      assert.equal(use.name, 'get_weather');
      assert.equal(typeof use.input, 'object');

      const ts = anthropic.messages.stream({
        model, max_tokens: 64, tools: ANTHROPIC_TOOLS,
        messages: [{ role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }],
      });
      const tfinal = await ts.finalMessage();
      const suse = tfinal.content.find((b) => b.type === 'tool_use');
      assert.equal(suse.name, 'get_weather');
      assert.deepEqual(suse.input, use.input);

      const answer = await anthropic.messages.create({
        model, max_tokens: 64, tools: ANTHROPIC_TOOLS,
        messages: [
          { role: 'user', content: 'weather in Paris?' },
          { role: 'assistant', content: t.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temp_c": 21}' }] },
        ],
      });
      assert.equal(answer.stop_reason, 'end_turn');
    });
  }

  test('@anthropic-ai/sdk sees errors as its own error classes', async () => {
    await assert.rejects(
      anthropic.messages.create({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Anthropic.NotFoundError && e.status === 404,
    );
    const bad = new Anthropic({ baseURL: gw.baseUrl, apiKey: 'sk-tg-wrong', maxRetries: 0 });
    await assert.rejects(
      bad.messages.create({ model: 'm-openai', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401,
    );
  });
});
