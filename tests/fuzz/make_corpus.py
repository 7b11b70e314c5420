#!/usr/bin/env python3
"""make_corpus.py - writes the text seeds of tests/fuzz/corpus/ from the
golden transcripts (tests/unit/dataplane/providers/golden), the policy bundles
(policies/*/), the example configs and a few hand-written admin requests.
The wire seeds are binary: fuzz_wire_seeds writes them. Run again when the
golden files change; it only adds and replaces files named seed-*."""
import glob
import hashlib
import json
import os

top = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
corpus = os.path.join(top, 'tests', 'fuzz', 'corpus')
golden = os.path.join(top, 'tests', 'unit', 'dataplane', 'providers', 'golden')
MAX = 64 * 1024


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX:
        return
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    name = 'seed-' + hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def cases(kind):
    for path in sorted(glob.glob(os.path.join(golden, '*', '*.json'))):
        with open(path) as f:
            doc = json.load(f)
        for c in doc if isinstance(doc, list) else [doc]:
            if c.get('kind') == kind:
                yield os.path.basename(os.path.dirname(path)), c


def text(v):
    return v if isinstance(v, str) else json.dumps(v)


def sse(setname, kind, events):
    out = []
    for e in events:
        lines = []
        if 'event' in e:
            lines.append('event: ' + e['event'])
        if 'data' in e:
            lines.append('data: ' + text(e['data']))
        if 'raw' in e:
            lines = [e['raw'].rstrip('\n')]
        out.append('\n'.join(lines) + '\n\n')
    if kind == 'openai_stream':
        out.append('data: [DONE]\n\n')
    return ''.join(out)


# Requests: OpenAI chat bodies, Anthropic Messages bodies.
for kind in ('openai_request', 'messages_request'):
    for _, c in cases(kind):
        body = json.dumps(c['input'])
        put('req_parse', body)
        put('req_translate', body)
for body in (
        {'model': 'text-embedding-3-small', 'input': ['a', 'b'],
         'encoding_format': 'base64', 'dimensions': 256},
        {'model': 'text-embedding-3-small', 'input': [[1, 2, 3]]},
        {'model': 'gpt-3.5-turbo-instruct', 'prompt': ['x', 'y'],
         'max_tokens': 5, 'stream': True},
        {'model': 'gpt-4o', 'messages': [{'role': 'user', 'content': 'hi'}],
         'stream': True, 'stream_options': {'include_usage': True},
         'user': 'alice', 'max_tokens': 100}):
    put('req_parse', json.dumps(body))
    put('req_translate', json.dumps(body))
put('req_parse', '{"model":"m","messages":[],"model":"n"}')
put('req_parse', '{"a":"\\u0000"} x')

# Whole replies and error bodies.
for kind in ('anthropic_response', 'openai_response', 'gemini_response',
             'error_to_openai', 'error_from_openai'):
    for _, c in cases(kind):
        put('resp_translate', text(c['input']))
put('resp_translate', json.dumps({'embeddings': [{'values': [0.5, -1, 2]},
                                                 {'values': [1e-3]}]}))

# Streams, as the upstream sends them.
for kind in ('anthropic_stream', 'openai_stream', 'gemini_stream'):
    for setname, c in cases(kind):
        s = sse(setname, kind, c['events'])
        put('stream_translate', s)
        put('sse', b'\x03\x07\x01\x0f\x00' + s.encode())
put('sse', b'\x01\x00data: a\r\n\r\ndata: b\n\ndata: c\n\r\n: x\n')
put('sse', b'\x02\x00data: [DONE]\n')

# Policy bundles: bundle.json, then each policy file, "=====" between.
for d in sorted(glob.glob(os.path.join(top, 'policies', '*', 'bundle.json'))):
    d = os.path.dirname(d)
    parts = [open(os.path.join(d, 'bundle.json')).read()]
    for p in sorted(glob.glob(os.path.join(d, '*.policy.json'))):
        parts.append(open(p).read())
    put('policy', '\n=====\n'.join(parts))

# Configs.
for p in (os.path.join(top, 'deploy', 'local', 'tollgate.json'),
          os.path.join(top, 'policies', 'examples.config.json')):
    put('config', open(p).read())

# Admin API requests: "METHOD PATH?QUERY" line, then the body.
for req in (
        'GET tenants', 'POST tenants\n{"id":"acme","name":"Acme Corp",'
        '"tier":"pro","labels":{"region":"eu"}}',
        'PATCH tenants/acme\n{"tier":"enterprise","labels":{"region":null}}',
        'POST keys\n{"tenant":"acme","name":"api-made","models":'
        '["gpt-4o-mini"],"user":"alice@example.com"}',
        'GET keys?tenant=acme', 'GET keys/key_0000000000000000',
        'POST keys/key_0000000000000000/rotate\n{"grace":"1h"}',
        'POST keys/key_0000000000000000/revoke',
        'PUT budgets/tenant/acme\n{"limit_usd":1,"window":"monthly",'
        '"thresholds":[50,80]}',
        'PUT budgets/tenant/acme\n{"limit_usd":1,"window":"rolling:24h"}',
        'GET budgets', 'GET budgets/tenant/acme',
        'DELETE budgets/tenant/acme',
        'PUT ratelimits/tenant/acme\n{"rpm":60,"tpm":100000}',
        'GET ratelimits', 'GET spend?tenant=acme&window=monthly',
        'GET audit?limit=50', 'GET usage?tenant=acme',
        'GET reservations', 'POST reservations/r1/release',
        'POST tenants\n{"id": "x",'):
    put('admin_api', req)
