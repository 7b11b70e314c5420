// openrouter.test.mjs - OpenRouter's request fields through a real
// Tollgate: "models" (fall back along a list of models, each allowed by
// policy exactly as if asked for alone) and "provider" (narrow and reorder
// the deployments policy allowed, never widen them). Every deployment here
// is played by a small recording upstream in this file, so a test sees
// every body the gateway sent and to which deployment: a model the policy
// denies is never asked, OpenRouter's fields never reach a provider, and a
// budget reserves for the dearest target and settles at what served.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { decisionRecords, errorBody, pollUntil, promptTokens, startGateway, userMsg } from './harness.mjs';

/** The recording upstream: answers OpenAI chat completions (and Azure's
 * deployment URLs) as "from <who>", who being the upstream model (Azure:
 * the deployment in the path); answers 503 for those in failing. */
function recorder() {
  const rec = { seen: [], failing: new Set() };
  rec.server = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      let body = null;
      try {
        body = JSON.parse(raw);
      } catch {
        body = null;
      }
      const az = /\/openai\/deployments\/([^/]+)\//.exec(req.url);
      const who = az ? az[1] : body?.model ?? '?';
      rec.seen.push({ who, path: req.url, body, raw });
      if (rec.failing.has(who)) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `${who} is down`, type: 'server_error' } }));
        return;
      }
      const usage = { prompt_tokens: 1000, completion_tokens: 2000, total_tokens: 3000 };
      if (body?.stream) {
        const base = { id: 'c-1', object: 'chat.completion.chunk', created: 1, model: who };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: `from ${who}` }, finish_reason: null }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id: 'c-1', object: 'chat.completion', created: 1, model: who,
        choices: [{ index: 0, message: { role: 'assistant', content: `from ${who}` }, finish_reason: 'stop' }], usage,
      }));
    });
  });
  return rec;
}

const KEY_ENV = '${TG_TEST_PROVIDER_KEY}';

function deployments(port) {
  const base = `http://127.0.0.1:${port}`;
  const oai = (id, model, extra = {}) => ({
    id, model, provider: 'openai', api_base: `${base}/v1`, api_key: KEY_ENV, upstream_model: `up-${id}`, ...extra,
  });
  return [
    oai('x-1', 'model-x', { pricing: { input_per_mtok: 1, output_per_mtok: 2 } }),
    oai('y-oai', 'model-y', {
      labels: { zdr: 'true', data_collection: 'deny' }, pricing: { input_per_mtok: 3, output_per_mtok: 6 },
    }),
    { id: 'y-az', model: 'model-y', provider: 'azure', api_base: base, api_key: KEY_ENV, upstream_model: 'up-y-az',
      api_version: '2024-10-21' }, // no price anywhere
    oai('y-tog', 'model-y', {
      provider: 'openai_compatible', labels: { provider: 'together', quantization: 'fp8' },
      pricing: { input_per_mtok: 0.2, output_per_mtok: 0.6 },
    }),
    oai('z-1', 'model-z', { pricing: { input_per_mtok: 1, output_per_mtok: 2 } }),
    oai('z-2', 'model-z', { pricing: { input_per_mtok: 1, output_per_mtok: 2 } }),
    oai('w-1', 'model-w', { pricing: { input_per_mtok: 10, output_per_mtok: 20 } }),
  ];
}

const bundle = {
  'bundle.json': { name: 'openrouter', revision: 1 },
  'rules.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      {
        id: 'no-x-for-blocked', kind: 'access', effect: 'deny', status: 403, code: 'model_blocked',
        message: 'model-x is not for this tenant.',
        when: { all: [{ eq: ['tenant.id', 'blocked'] }, { eq: ['request.model', 'model-x'] }] },
      },
      // model-z goes to z-1 only: z-2 is in the catalog but policy never allows it.
      { id: 'z-only-z1', kind: 'route', deployments: ['z-1'], when: { eq: ['request.model', 'model-z'] } },
      {
        id: 'budget-co-daily', kind: 'budget', scope: 'tenant', window: 'daily', limit_usd: 10,
        when: { all: [{ eq: ['tenant.id', 'budget-co'] }, { in: ['request.model', ['model-z', 'model-w']] }] },
      },
    ],
  },
};

describe('OpenRouter models and provider', () => {
  let gw;
  let rec;
  let acme;
  let blocked;
  let budgeted;

  /** ask sends a chat for body (model, models, provider ...) with key. */
  const ask = (body, key = acme, opts = {}) =>
    gw.chat({ messages: userMsg('hello'), ...body }, { key, ...opts });
  /** asked: the upstreams the recorder saw since mark. */
  const asked = (mark) => rec.seen.slice(mark).map((s) => s.who);
  const served = (r) => r.headers['x-tollgate-deployment'];

  before(async () => {
    rec = recorder();
    await new Promise((resolve) => rec.server.listen(0, '127.0.0.1', resolve));
    const port = rec.server.address().port;
    gw = await startGateway({ bundle, deployments: () => deployments(port), dataplane: { retries: 0 } });
    acme = (await gw.createKey({ tenant: 'acme' })).key;
    blocked = (await gw.createKey({ tenant: 'blocked' })).key;
    budgeted = await gw.createKey({ tenant: 'budget-co' });
  });

  after(async () => {
    await gw?.stop();
    await new Promise((resolve) => rec?.server.close(resolve));
  });

  test('a model policy denies is skipped, never asked: the next one serves', async () => {
    // The control: the same key asking for model-x alone is denied.
    errorBody(await ask({ model: 'model-x' }, blocked), 403, 'model_blocked');
    let mark = rec.seen.length;
    const r = await ask({ models: ['model-x', 'model-z'] }, blocked);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'from up-z-1');
    assert.equal(served(r), 'z-1');
    assert.deepEqual(asked(mark), ['up-z-1']);
    // The same with model and models, streaming.
    mark = rec.seen.length;
    const s = await ask({ model: 'model-x', models: ['model-z'], stream: true }, blocked, { stream: true });
    assert.equal(s.status, 200);
    assert.ok(s.events.some((e) => e.json?.choices?.[0]?.delta?.content === 'from up-z-1'), JSON.stringify(s.events));
    assert.deepEqual(asked(mark), ['up-z-1']);
    // The record names the rule that refused model-x.
    const id = r.headers['x-request-id'];
    const recd = await pollUntil(async () => (await decisionRecords(gw)).byId.get(id), { what: 'the decision record' });
    assert.ok(recd.rules.some((x) => x.id === 'no-x-for-blocked' && x.effect === 'deny'), JSON.stringify(recd));
    assert.equal(recd.deployment, 'z-1');
    // Only models policy denies: nothing is left, the first one's answer.
    errorBody(await ask({ models: ['model-x'] }, blocked), 403, 'model_blocked');
    // A denied model is no fallback either: when model-z fails, nothing
    // is left to try.
    rec.failing.add('up-z-1');
    try {
      mark = rec.seen.length;
      errorBody(await ask({ models: ['model-z', 'model-x'] }, blocked), 502, 'upstream_error');
      assert.deepEqual(asked(mark), ['up-z-1']);
    } finally {
      rec.failing.delete('up-z-1');
    }
  });

  test('unknown models are skipped; 404 only when none is usable', async () => {
    const r = await ask({ models: ['no-such-model', 'model-z'] });
    assert.equal(r.status, 200, r.text);
    assert.equal(served(r), 'z-1');
    const e = errorBody(await ask({ models: ['no-such-model', 'nor-this'] }), 404, 'model_not_found');
    assert.match(e.message, /'no-such-model' \(model_not_found\).*'nor-this' \(model_not_found\)/);
  });

  test('models falls back when every deployment of the first model fails', async () => {
    rec.failing.add('up-x-1');
    try {
      let mark = rec.seen.length;
      const r = await ask({ models: ['model-x', 'model-z'] });
      assert.equal(r.status, 200, r.text);
      assert.equal(served(r), 'z-1');
      assert.deepEqual(asked(mark), ['up-x-1', 'up-z-1']);
      mark = rec.seen.length;
      const s = await ask({ models: ['model-x', 'model-z'], stream: true }, acme, { stream: true });
      assert.equal(s.status, 200);
      assert.ok(s.events.some((e) => e.json?.choices?.[0]?.delta?.content === 'from up-z-1'));
      assert.deepEqual(asked(mark), ['up-x-1', 'up-z-1']);
      // Without models there is nowhere to go.
      errorBody(await ask({ model: 'model-x' }), 502, 'upstream_error');
    } finally {
      rec.failing.delete('up-x-1');
    }
  });

  test('provider.only, ignore, data_collection, zdr, quantizations and max_price narrow', async () => {
    const cases = [
      [{ only: ['azure'] }, 'y-az'],
      [{ only: ['together'] }, 'y-tog'], // a "provider" label
      [{ only: ['Y-OAI'] }, 'y-oai'], // a deployment id, any case
      [{ ignore: ['y-oai', 'azure'] }, 'y-tog'],
      [{ data_collection: 'deny' }, 'y-oai'],
      [{ zdr: true }, 'y-oai'],
      [{ quantizations: ['fp8'] }, 'y-tog'],
      [{ max_price: { prompt: 1, completion: 1 } }, 'y-tog'], // y-az: no price, excluded
      [{ sort: 'price' }, 'y-tog'],
    ];
    for (const [provider, want] of cases) {
      const r = await ask({ model: 'model-y', provider });
      assert.equal(r.status, 200, `${JSON.stringify(provider)}: ${r.text}`);
      assert.equal(served(r), want, JSON.stringify(provider));
    }
    let e = errorBody(await ask({ model: 'model-y', provider: { max_price: { prompt: 0.1 } } }), 400,
      'no_matching_deployment');
    assert.equal(e.param, 'provider.max_price');
    assert.match(e.message, /provider\.max_price/);
    e = errorBody(await ask({ model: 'model-y', provider: { zdr: true, ignore: ['openai'] } }), 400,
      'no_matching_deployment');
    assert.equal(e.param, 'provider.zdr');
  });

  test('provider.order reorders; allow_fallbacks: false keeps to it', async () => {
    let r = await ask({ model: 'model-y', provider: { order: ['together', 'azure'] } });
    assert.equal(served(r), 'y-tog');
    rec.failing.add('up-y-tog');
    try {
      let mark = rec.seen.length;
      r = await ask({ model: 'model-y', provider: { order: ['together', 'azure'] } });
      assert.equal(r.status, 200, r.text);
      assert.equal(served(r), 'y-az');
      assert.deepEqual(asked(mark), ['up-y-tog', 'up-y-az']);
      mark = rec.seen.length;
      r = await ask({ model: 'model-y', provider: { order: ['together'], allow_fallbacks: false } });
      errorBody(r, 502, 'upstream_error');
      assert.deepEqual(asked(mark), ['up-y-tog']);
    } finally {
      rec.failing.delete('up-y-tog');
    }
  });

  test('a client cannot widen what policy allows', async () => {
    const mark = rec.seen.length;
    let e = errorBody(await ask({ model: 'model-z', provider: { only: ['z-2'] } }), 400, 'no_matching_deployment');
    assert.equal(e.param, 'provider.only');
    e = errorBody(await ask({ model: 'model-z', provider: { order: ['z-2'], allow_fallbacks: false } }), 400,
      'no_matching_deployment');
    assert.equal(e.param, 'provider.allow_fallbacks');
    const r = await ask({ model: 'model-z', provider: { only: ['z-2', 'z-1'] } });
    assert.equal(served(r), 'z-1');
    // A model policy denies stays denied whatever "models" and "provider" say.
    errorBody(await ask({ models: ['model-x'], provider: { only: ['x-1'] } }, blocked), 403, 'model_blocked');
    assert.ok(!asked(mark).includes('up-z-2'), JSON.stringify(asked(mark)));
    assert.ok(!asked(mark).includes('up-x-1'), JSON.stringify(asked(mark)));
  });

  test('bad fields get a 400 naming them', async () => {
    const bad = [
      [{ model: 'model-y', provider: { enforce_distillable_text: true } }, 'provider.enforce_distillable_text'],
      [{ model: 'model-y', provider: { only: 'azure' } }, 'provider.only'],
      [{ model: 'model-y', provider: { sort: 'fastest' } }, 'provider.sort'],
      [{ model: 'model-y', provider: { max_price: { request: 1 } } }, 'provider.max_price.request'],
      [{ model: 'model-y', provider: 'azure' }, 'provider'],
      [{ models: [] }, 'models'],
      [{ models: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] }, 'models'],
      [{ models: ['model-z', 42] }, 'models[1]'],
      [{ models: ['model-z', 'model-y:nitro'] }, 'models[1]'],
      [{ model: 'model-y', route: 'cheapest' }, 'route'],
    ];
    const mark = rec.seen.length;
    for (const [body, param] of bad) {
      const e = errorBody(await ask(body), 400, 'invalid_value');
      assert.equal(e.param, param, `${JSON.stringify(body)}: ${JSON.stringify(e)}`);
      assert.ok(e.message.includes(param), e.message);
    }
    // Not read on embeddings: refused there, never passed on.
    const emb = await gw.request('/v1/embeddings', {
      method: 'POST', key: acme, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'model-z', input: 'x', provider: { only: ['z-2'] } }),
    });
    assert.equal(errorBody(emb, 400, 'invalid_value').param, 'provider');
    assert.equal(rec.seen.length, mark, 'a refused request went upstream');
    const r = await ask({ model: 'model-y', route: 'fallback', provider: { only: ['azure'] } });
    assert.equal(r.status, 200, r.text);
  });

  test('models, provider and route never reach the provider', () => {
    assert.ok(rec.seen.length > 10);
    for (const s of rec.seen) {
      assert.ok(s.body, `not JSON upstream: ${s.raw}`);
      for (const k of ['models', 'provider', 'route']) {
        assert.ok(!(k in s.body), `"${k}" went upstream to ${s.who}: ${s.raw}`);
      }
    }
  });

  test('a budget reserves for the dearest target and settles at the fallback that served', async () => {
    const messages = userMsg('budgeted');
    const p = promptTokens(messages);
    // model-z alone: reserved at z-1's $1/$2 per 1M.
    let r = await gw.chat({ model: 'model-z', messages, max_tokens: 100 }, { key: budgeted.key });
    assert.equal(r.status, 200, r.text);
    const alone = r.headers['x-request-id'];
    rec.failing.add('up-z-1');
    try {
      r = await gw.chat({ models: ['model-z', 'model-w'], messages, max_tokens: 100 }, { key: budgeted.key });
    } finally {
      rec.failing.delete('up-z-1');
    }
    assert.equal(r.status, 200, r.text);
    assert.equal(served(r), 'w-1');
    const id = r.headers['x-request-id'];
    const recs = await pollUntil(async () => {
      const d = await decisionRecords(gw);
      return d.byId.get(id) && d.byId.get(alone) ? d : null;
    }, { what: 'both decision records' });
    assert.equal(recs.byId.get(alone).reserved_micro_usd, p * 1 + 100 * 2);
    // Worst case over z-1 and w-1: w-1's $10/$20 per 1M.
    assert.equal(recs.byId.get(id).reserved_micro_usd, p * 10 + 100 * 20);
    // Settled at what served: w-1's price for the provider's 1000 + 2000 tokens.
    assert.equal(recs.byId.get(id).deployment, 'w-1');
    assert.equal(recs.byId.get(id).cost_micro_usd, 1000 * 10 + 2000 * 20);
    const t = await pollUntil(async () => {
      const s = await gw.spendTenant('budget-co');
      return s.requests === 2 ? s : null;
    }, { what: 'the spend of both requests' });
    assert.equal(t.cost_micro_usd, (1000 * 1 + 2000 * 2) + (1000 * 10 + 2000 * 20));
  });

  test('a decision made for a models list is never reused', async () => {
    const reused = async () => (await gw.metrics()).tollgate_decisions_reused_total ?? 0;
    const before0 = await reused();
    // The control: a plain request, twice, is decided once.
    await ask({ model: 'model-z' });
    await ask({ model: 'model-z' });
    const before1 = await reused();
    assert.ok(before1 > before0, 'the control reused nothing: reuse is off?');
    for (let i = 0; i < 3; i++) {
      const r = await ask({ models: ['model-x', 'model-z'] }, blocked);
      assert.equal(served(r), 'z-1');
    }
    assert.equal(await reused(), before1);
    // A decision kept for model-z alone must not answer model-z with
    // fallbacks: it knows nothing of model-w.
    await ask({ model: 'model-z' });
    rec.failing.add('up-z-1');
    try {
      const r = await ask({ model: 'model-z', models: ['model-w'] });
      assert.equal(r.status, 200, r.text);
      assert.equal(served(r), 'w-1');
    } finally {
      rec.failing.delete('up-z-1');
    }
  });
});
