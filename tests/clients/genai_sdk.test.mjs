// genai_sdk.test.mjs - the real @google/genai SDK, unmodified, pointed at
// Tollgate's Gemini API (httpOptions.baseUrl): generateContent,
// generateContentStream, function calling and countTokens, through an
// OpenAI-format, an Anthropic-format, a Gemini-format and a Bedrock
// deployment (all played by the mock), and its errors.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { GoogleGenAI } from '@google/genai';

import { awsEnv, bedrockDeployments } from '../integration/bedrock.mjs';
import { mockWords, providerDeployments, startGateway } from '../integration/harness.mjs';

const MODELS = ['m-openai', 'm-anthropic', 'm-gemini', 'm-bedrock'];

const TOOLS = [{
  functionDeclarations: [{
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } }, required: ['city'] },
  }],
}];

describe('@google/genai against Tollgate', () => {
  let gw;
  let ai;
  let key;

  before(async () => {
    gw = await startGateway({
      deployments: (p) => [...providerDeployments(p), ...bedrockDeployments(p)], dataplaneEnv: awsEnv(),
    });
    key = (await gw.createKey({ tenant: 'genai' })).key;
    ai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: gw.baseUrl } });
  });

  after(async () => {
    await gw?.stop();
  });

  for (const model of MODELS) {
    test(`generateContent through ${model}: text, finishReason, usageMetadata`, async () => {
      const r = await ai.models.generateContent({
        model,
        contents: '[[mock chunks=3]] hello',
        config: { systemInstruction: 'Be brief.', maxOutputTokens: 40, temperature: 0.2 },
      });
      assert.equal(r.text, mockWords(3));
      assert.equal(r.candidates[0].finishReason, 'STOP');
      assert.equal(r.candidates[0].content.role, 'model');
      const u = r.usageMetadata;
      assert.ok(u.promptTokenCount > 0, JSON.stringify(u));
      assert.ok(u.candidatesTokenCount > 0, JSON.stringify(u));
      assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
    });

    test(`generateContentStream through ${model}: deltas, then the finish and usage`, async () => {
      const stream = await ai.models.generateContentStream({
        model, contents: '[[mock chunks=4]] stream please', config: { maxOutputTokens: 40 },
      });
      let text = '';
      let n = 0;
      let last;
      for await (const chunk of stream) {
        n++;
        text += chunk.text ?? '';
        last = chunk;
      }
      assert.equal(text, mockWords(4));
      assert.ok(n >= 2, `only ${n} chunks`);
      assert.equal(last.candidates[0].finishReason, 'STOP');
      assert.ok(last.usageMetadata.candidatesTokenCount > 0);
    });

    test(`function calling through ${model}: a call, then its answer`, async () => {
      const r = await ai.models.generateContent({
        model,
        contents: '[[mock tool=get_weather]] weather in Paris?',
        config: { tools: TOOLS },
      });
      const calls = r.functionCalls;
      assert.equal(calls?.length, 1, JSON.stringify(r.candidates));
      assert.equal(calls[0].name, 'get_weather');
      assert.deepEqual(calls[0].args, { city: 'Paris', n: 1 });
      // The SDK's own history shape: the model's call, then the user's
      // functionResponse.
      const r2 = await ai.models.generateContent({
        model,
        contents: [
          { role: 'user', parts: [{ text: 'weather in Paris?' }] },
          r.candidates[0].content,
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 21 } } }] },
          { role: 'user', parts: [{ text: '[[mock chunks=2]] thanks' }] },
        ],
        config: { tools: TOOLS },
      });
      assert.equal(r2.text, mockWords(2));
    });

    test(`a streamed function call through ${model} comes whole`, async () => {
      const stream = await ai.models.generateContentStream({
        model, contents: '[[mock tool=get_weather]] weather?', config: { tools: TOOLS },
      });
      const calls = [];
      for await (const chunk of stream) calls.push(...(chunk.functionCalls ?? []));
      assert.equal(calls.length, 1);
      assert.equal(calls[0].name, 'get_weather');
      assert.deepEqual(calls[0].args, { city: 'Paris', n: 1 });
    });
  }

  test('countTokens: the gateway estimates, nothing goes upstream', async () => {
    const before = await gw.mockStats();
    const short = await ai.models.countTokens({ model: 'm-openai', contents: 'hi' });
    const long = await ai.models.countTokens({ model: 'm-openai', contents: 'hello there '.repeat(200) });
    assert.ok(short.totalTokens > 0);
    assert.ok(long.totalTokens > short.totalTokens + 100, `${short.totalTokens} vs ${long.totalTokens}`);
    const afterStats = await gw.mockStats();
    assert.deepEqual(afterStats, before);
  });

  test('apiVersion v1 (/v1/models/...) is served the same', async () => {
    const v1 = new GoogleGenAI({ apiKey: key, apiVersion: 'v1', httpOptions: { baseUrl: gw.baseUrl } });
    const r = await v1.models.generateContent({ model: 'm-openai', contents: '[[mock chunks=2]] hi' });
    assert.equal(r.text, mockWords(2));
  });

  test('errors reach the SDK as ApiError with the status', async () => {
    const bad = new GoogleGenAI({ apiKey: 'tg-not-a-key', httpOptions: { baseUrl: gw.baseUrl } });
    await assert.rejects(bad.models.generateContent({ model: 'm-openai', contents: 'hi' }),
      (e) => e.status === 401 && /UNAUTHENTICATED/.test(e.message));
    await assert.rejects(ai.models.generateContent({ model: 'm-openai', contents: 'hi', config: { candidateCount: 2 } }),
      (e) => e.status === 400 && /candidateCount/.test(e.message));
    await assert.rejects(ai.models.generateContent({ model: 'no-such-model', contents: 'hi' }),
      (e) => e.status >= 400 && e.status < 500);
  });
});
