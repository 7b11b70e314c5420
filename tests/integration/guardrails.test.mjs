// guardrails.test.mjs - guardrails end to end: the PDP decides which rules
// apply, the data plane runs them with the guard set it fetched from the
// PDP. A card in a prompt is redacted before the provider sees it (the
// mock echoes what it got); a secret in a tool result blocks, and nothing
// goes upstream; a card the provider streams split over three chunks
// reaches the client redacted, in OpenAI and Anthropic stream formats; a
// secret mid-stream ends the stream with an error event before the client
// sees it; audit-mode rules change nothing and are recorded; records and
// /metrics say which rule and detector, never the text; term lists live in
// the PDP's state and a bundle naming a missing one is not activated.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  decisionRecords, errorBody, openStream, pollUntil, readSse, startGateway,
} from './harness.mjs';

const CARD = '4111 1111 1111 1111';
const AWS = 'AKIAZ7QK3M2XW9PL4TRE';
// Echo the last user message, cut into three pieces (mock control).
const ECHO3 = '[[mock echo=1 chunks=3]]';

// Rules chosen per request by the x-tollgate-meta-guard header.
const when = (v) => ({ all: [{ exists: 'request.metadata.guard' }, { eq: ['request.metadata.guard', v] }] });

function bundle(extraRules = [], revision = 1) {
  return {
    'bundle.json': { name: 'guardrails-it', revision },
    'access.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
    'guard.policy.json': {
      rules: [
        { id: 'in-redact', kind: 'guardrail', when: when('in'), stages: ['input'], detectors: ['pii.card', 'pii.email'], action: 'redact' },
        { id: 'out-redact', kind: 'guardrail', when: when('out'), stages: ['output'], detectors: ['pii.card'], action: 'redact' },
        { id: 'secrets', kind: 'guardrail', when: when('secret'), detectors: ['secret'], action: 'block' },
        { id: 'out-block', kind: 'guardrail', when: when('outblock'), stages: ['output'], detectors: ['secret'], action: 'block' },
        { id: 'audit-only', kind: 'guardrail', mode: 'audit', when: when('audit'), detectors: ['pii.card'], action: 'block' },
        ...extraRules,
      ],
    },
  };
}

const meta = (v) => ({ 'x-tollgate-meta-guard': v });

/** anthropicStream posts a streamed /v1/messages and returns its events. */
async function anthropicStream(gw, key, body, headers) {
  const s = await openStream(gw.port, {
    path: '/v1/messages',
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'anthropic-version': '2023-06-01', ...headers },
    body,
  });
  assert.equal(s.status, 200);
  return { headers: s.headers, ...(await readSse(s.res, s.t0)) };
}

const oaiText = (events) => events.map((e) => e.json?.choices?.[0]?.delta?.content ?? '').join('');

describe('guardrails', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({ pdpAdmin: true, pdp: { bundle_watch: false }, bundle: bundle() });
    ({ key } = await gw.createKey({ tenant: 'acme' }));
  });
  after(async () => {
    await gw?.stop();
  });

  test('a card number in a prompt is redacted before the provider sees it', async () => {
    const r = await gw.chat({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Charge ${CARD} and mail bob@example.org ${ECHO3.replace('chunks=3', 'chunks=1')}` }],
    }, { key, headers: meta('in') });
    assert.equal(r.status, 200, r.text);
    // The mock echoes what it received.
    assert.equal(r.json.choices[0].message.content, 'Charge [REDACTED:CARD] and mail [REDACTED:EMAIL]');
  });

  test('a secret in a tool result blocks the request; nothing goes upstream', async () => {
    const before = (await gw.mockStats()).requests;
    const r = await gw.chat({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'user', content: 'what is in the vault?' },
        { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'vault', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: `the key is ${AWS}` },
      ],
    }, { key, headers: meta('secret') });
    const e = errorBody(r, 400, 'guardrail_blocked');
    assert.match(e.message, /secrets/);
    assert.match(e.message, /secret\.aws_access_key/);
    assert.match(e.message, /messages\[2\]\.content/);
    assert.ok(!r.text.includes(AWS), 'the error echoes the secret');
    assert.equal((await gw.mockStats()).requests, before, 'the request went upstream');
  });

  test('a card streamed in three chunks reaches an OpenAI client redacted', async () => {
    const r = await gw.chat({
      model: 'gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: `${CARD} ${ECHO3}` }],
    }, { key, stream: true, headers: meta('out') });
    assert.equal(r.status, 200);
    const text = oaiText(r.events);
    assert.equal(text, '[REDACTED:CARD]');
    for (const e of r.events) assert.ok(!e.data.includes('1111'), `a piece of the card reached the client: ${e.data}`);
    assert.equal(r.events.at(-1).data, '[DONE]');
  });

  test('a card streamed in three chunks reaches an Anthropic client redacted', async () => {
    const r = await anthropicStream(gw, key, {
      model: 'gpt-4o-mini', max_tokens: 50, stream: true,
      messages: [{ role: 'user', content: `card ${CARD} ok ${ECHO3}` }],
    }, meta('out'));
    const text = r.events.filter((e) => e.json?.type === 'content_block_delta').map((e) => e.json.delta.text).join('');
    assert.equal(text, 'card [REDACTED:CARD] ok');
    assert.ok(r.events.some((e) => e.json?.type === 'message_stop'), 'no message_stop');
    for (const e of r.events) assert.ok(!e.data.includes('1111'), `a piece of the card reached the client: ${e.data}`);
  });

  test('a secret in the answer ends the stream with an error event before the client sees it', async () => {
    const r = await gw.chat({
      model: 'gpt-4o-mini', stream: true,
      messages: [{ role: 'user', content: `here: ${AWS} and more text after it ${ECHO3}` }],
    }, { key, stream: true, headers: meta('outblock') });
    assert.equal(r.status, 200);
    const last = r.events.at(-1);
    assert.equal(last.json?.error?.code, 'guardrail_blocked', JSON.stringify(r.events.map((e) => e.data)));
    assert.match(last.json.error.message, /out-block/);
    for (const e of r.events) assert.ok(!e.data.includes('AKIA'), `the secret reached the client: ${e.data}`);
  });

  test('a whole answer with a secret is refused with 400 guardrail_blocked', async () => {
    const r = await gw.chat({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: `x ${AWS} ${ECHO3}` }],
    }, { key, headers: meta('outblock') });
    errorBody(r, 400, 'guardrail_blocked');
    assert.ok(!r.text.includes('AKIA'));
  });

  test('an audit-mode guardrail changes nothing and is recorded, without the text', async () => {
    const r = await gw.chat({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: `pay ${CARD} ${ECHO3}` }],
    }, { key, headers: meta('audit') });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, `pay ${CARD}`);
    const id = r.headers['x-request-id'];
    const rec = await pollUntil(async () => (await decisionRecords(gw)).byId.get(id), { what: 'the audit record' });
    const hits = rec.guardrails;
    assert.ok(Array.isArray(hits), JSON.stringify(rec));
    const inHit = hits.find((h) => h.stage === 'input');
    assert.deepEqual({ rule: inHit.rule, detector: inHit.detector, mode: inHit.mode, count: inHit.count },
      { rule: 'audit-only', detector: 'pii.card', mode: 'audit', count: 1 });
    assert.deepEqual(inHit.spans, [[4, 23]]);
    assert.ok(hits.some((h) => h.stage === 'output'), 'the echoed card in the answer was not recorded');
    assert.ok(!JSON.stringify(rec).includes('1111'), 'the record holds the card');
  });

  test('records and metrics name the rule and detector of every hit', async () => {
    const m = await pollUntil(async () => {
      const all = await gw.metrics();
      return all['tollgate_guardrail_hits_total{rule="in-redact",detector="pii.card",action="redact"}'] >= 1 ? all : null;
    }, { what: 'the guardrail metric' });
    assert.ok(m['tollgate_guardrail_hits_total{rule="secrets",detector="secret.aws_access_key",action="block"}'] >= 1);
    assert.ok(m['tollgate_guardrail_hits_total{rule="audit-only",detector="pii.card",action="audit"}'] >= 1);
    const recs = await decisionRecords(gw);
    const blocked = recs.list.find((x) => x.code === 'guardrail_blocked' && x.guardrails?.[0]?.rule === 'secrets');
    assert.ok(blocked, 'no record of the blocked request');
    assert.equal(blocked.status, 400);
    assert.equal(blocked.guardrails[0].where, 'messages[2].content');
  });

  test('term lists live in the PDP state; a bundle naming a missing one is not activated', async () => {
    const listRule = { id: 'rivals', kind: 'guardrail', when: when('list'), stages: ['input'], lists: ['rivals'], action: 'redact' };
    gw.writeBundle(bundle([listRule], 2));
    let r = await gw.reloadPdp();
    assert.notEqual(r.code, 0, 'a bundle naming a missing list was activated');
    assert.match(r.stdout + r.stderr, /rivals/);

    const fs = await import('node:fs');
    const terms = `${gw.dir}/rivals.txt`;
    fs.writeFileSync(terms, '# competitors\nGlobex Corporation\nInitech\n');
    await gw.cli(['lists', 'set', 'rivals', '--file', terms, '--config', gw.cfgPath]);
    r = await gw.reloadPdp();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const c = await gw.chat({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: `compare us with globex  corporation and INITECH ${ECHO3}` }],
    }, { key, headers: meta('list') });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.choices[0].message.content, 'compare us with [REDACTED:TERM] and [REDACTED:TERM]');

    // A new list version reaches the data plane without a reload.
    fs.writeFileSync(terms, 'Umbrella\n');
    await gw.cli(['lists', 'set', 'rivals', '--file', terms, '--config', gw.cfgPath]);
    const c2 = await gw.chat({
      model: 'gpt-4o-mini', messages: [{ role: 'user', content: `umbrella or initech ${ECHO3}` }],
    }, { key, headers: meta('list') });
    assert.equal(c2.json.choices[0].message.content, '[REDACTED:TERM] or initech');
  });
});
