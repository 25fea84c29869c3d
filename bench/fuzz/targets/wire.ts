// Wire formats read from peers: PROXY protocol v2 headers, the decision stream's SSE frames on the
// agent side, and event batches (JSON array and NDJSON) through the event schema and the reporter
// policy, as POST /v1/events reads them.
import { isDeepStrictEqual } from 'node:util';
import { buildProxyV2, parseProxyV2 } from '../../../agent/index.js';
import { SseParser, tokenOf, type SseEvent } from '../../../client/index.js';
import { EdgewardError, type ErrorCode } from '../../../common/errors.js';
import { FIELD_NAMES, KNOWN_ACTIONS, type EdgeEvent } from '../../../common/events.js';
import { ipBytes, socketIp } from '../../../common/ip.js';
import { compileReporterPolicy, parseReporterPolicy } from '../../../policies/index.js';
import { decodeBatch, stampBatch, type BatchFormat } from '../../../siem/service/index.js';
import { OracleFailure, type FuzzTarget } from '../engine.js';
import { loadCorpus, repoFile } from '../corpus.js';
import { mutateTree, valuePool } from '../json.js';

// ---- PROXY protocol v2 ----

type Proxy = ReturnType<typeof parseProxyV2>;

function sameAddress(a: string, b: string): boolean {
  const x = socketIp(a);
  const y = socketIp(b);
  return x !== null && y !== null && ipBytes(x).equals(ipBytes(y));
}

export const proxyV2: FuzzTarget<Proxy> = {
  name: 'proxy-v2',
  about:
    'PROXY protocol v2 headers (agent/proxy-protocol.ts parseProxyV2), with a buildProxyV2 -> parseProxyV2 round trip',
  sources: ['agent/proxy-protocol.ts'],
  codes: ['ERR_AGENT_PROXY_HEADER'],
  dictionary: [
    Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]),
    Buffer.from([0x21, 0x11]),
    Buffer.from([0x21, 0x21]),
    Buffer.from([0xe0, 0x00, 0x00]),
    Buffer.from([0x20, 0x00, 0x05]),
    Buffer.from('spiffe://factory.example/'),
  ],
  maxBytes: 70 * 1024,
  seeds: () => loadCorpus('proxy-v2'),
  run: (input) => parseProxyV2(input),
  accepted(input, p) {
    if (p.length > input.length) throw new OracleFailure('header longer than the input');
    if (p.identity === null || p.identity.length === 0 || Buffer.byteLength(p.identity) > 2048) return;
    let again: Proxy;
    try {
      again = parseProxyV2(buildProxyV2(p, p.identity));
    } catch (err) {
      // buildProxyV2 refuses what it would never send (mixed families); that is not the parser's.
      if (err instanceof EdgewardError && err.code === 'ERR_AGENT_PROXY_HEADER') return;
      throw err;
    }
    if (
      again.identity !== p.identity ||
      again.srcPort !== p.srcPort ||
      again.dstPort !== p.dstPort ||
      !sameAddress(again.srcIp, p.srcIp) ||
      !sameAddress(again.dstIp, p.dstIp)
    )
      throw new OracleFailure(`build -> parse changed the header: ${JSON.stringify([p, again])}`);
  },
};

// ---- SSE frames of the decision stream ----

function parseSse(text: string, chunk: number): SseEvent[] {
  const out: SseEvent[] = [];
  const p = new SseParser((e) => out.push(e));
  for (let i = 0; i < text.length; i += chunk) p.push(text.slice(i, i + chunk));
  return out;
}

export const sse: FuzzTarget<{ events: SseEvent[]; text: string }> = {
  name: 'sse',
  about:
    "the decision stream's SSE frames on the agent side (client/decisions-client.ts SseParser, tokenOf); whole and chunked parses must agree",
  sources: ['client/decisions-client.ts'],
  codes: ['ERR_AGENT_DECISION_STREAM'],
  dictionary: [
    'data:',
    'data: ',
    'event: snapshot',
    'event: delta',
    'id: ',
    'retry: ',
    ':',
    '\r\n',
    '\r',
    '\n',
    '\n\n',
    '{"jws":"',
    '{"token":',
    '"}',
    '\0',
  ],
  maxBytes: 64 * 1024,
  seeds: () => loadCorpus('sse'),
  run(input) {
    const text = input.toString('utf8');
    const events = parseSse(text, text.length || 1);
    for (const e of events) tokenOf(e.data);
    return { events, text };
  },
  accepted(_input, r) {
    // The stream arrives in pieces of any size: one byte at a time must read the same events.
    for (const chunk of [1, 7]) {
      const again = parseSse(r.text, chunk);
      if (!isDeepStrictEqual(again, r.events))
        throw new OracleFailure(`chunks of ${chunk} read other events than the whole text`);
    }
  },
};

// ---- event batches ----

const OBSERVER = 'spiffe://factory.example/node/a';
const NOW = 1_796_000_000_000;
let reporterPolicy: ReturnType<typeof compileReporterPolicy> | undefined;

function batchCodes(): ErrorCode[] {
  return [
    'ERR_SIEM_BATCH_MALFORMED',
    'ERR_SIEM_BATCH_TOO_LARGE',
    'ERR_SIEM_OBSERVER_MISMATCH',
    'ERR_SIEM_EVENT_INVALID',
    'ERR_SIEM_EVENT_POISONED',
    'ERR_SIEM_EVENT_SERVER_FIELD',
    'ERR_SIEM_EVENT_TIME',
    'ERR_SIEM_EVENT_UNKNOWN_FIELD',
  ];
}

const JSON_DICT = [
  ...FIELD_NAMES.map((f) => `"${f}"`),
  ...KNOWN_ACTIONS.map((a) => `"${a}"`),
  '"__proto__"',
  '"constructor"',
  '"prototype"',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  'null',
  'true',
  '1e308',
  '-0',
  '9007199254740993',
  '"\\u0000"',
  '"\\ud800"',
  '\n',
  '\r\n',
  '"spiffe://factory.example/node/a"',
  '"::ffff:10.0.0.1"',
];

function batchTarget(format: BatchFormat): FuzzTarget<{ events: EdgeEvent[]; verdicts: (string | null)[] }> {
  let docs: unknown[][] | undefined;
  const keys = [...FIELD_NAMES, 'observer.identity', 'observer.type', '__proto__', 'constructor'];
  return {
    generateShare: 0.5,
    generate(rng) {
      docs ??= loadCorpus(`batch-${format}`).map((b) =>
        format === 'json'
          ? (JSON.parse(b.toString('utf8')) as unknown[])
          : b
              .toString('utf8')
              .split('\n')
              .filter((l) => l.trim() !== '')
              .map((l) => JSON.parse(l) as unknown),
      );
      const doc = mutateTree(rng.pick(docs), rng, valuePool(7), keys);
      if (format === 'json' || !Array.isArray(doc)) return Buffer.from(JSON.stringify(doc));
      return Buffer.from(doc.map((e) => JSON.stringify(e)).join(rng.chance(0.2) ? '\r\n' : '\n'));
    },
    name: `batch-${format}`,
    about: `event batches as ${format === 'json' ? 'a JSON array' : 'NDJSON'} (siem/service/parse-batch.ts decodeBatch, stampBatch) through the event schema and the default reporter policy`,
    sources: ['siem/service/parse-batch.ts', 'common/events.ts', 'policies/reporter-policy.ts'],
    codes: batchCodes(),
    dictionary: JSON_DICT,
    maxBytes: 64 * 1024,
    seeds: () => loadCorpus(`batch-${format}`),
    run(input) {
      reporterPolicy ??= compileReporterPolicy(
        parseReporterPolicy(repoFile('policies', 'default', 'reporter-policy.yaml').toString('utf8')),
      );
      let n = 0;
      const events = stampBatch(decodeBatch(input, format, 1000), {
        observer: OBSERVER,
        now: NOW,
        newId: () => `fuzz-${n++}`,
        maxEvents: 1000,
      });
      const verdicts = events.map((e) => reporterPolicy!.check({ identity: OBSERVER, kind: 'node' }, e));
      return { events, verdicts };
    },
    accepted(_input, r) {
      if (Object.keys(Object.prototype).length > 0) throw new OracleFailure('Object.prototype was polluted');
      for (const e of r.events) {
        if (e['observer.identity'] !== OBSERVER)
          throw new OracleFailure('observer not the certificate identity');
        if (Object.getPrototypeOf(e) !== Object.prototype && Object.getPrototypeOf(e) !== null)
          throw new OracleFailure('an event with a foreign prototype');
      }
      for (const v of r.verdicts)
        if (v !== null && v !== 'ERR_SIEM_REPORTER_ACTION' && v !== 'ERR_SIEM_REPORTER_SUBJECT')
          throw new OracleFailure(`reporter policy said ${String(v)}`);
    },
  };
}

export const batchJson = batchTarget('json');
export const batchNdjson = batchTarget('ndjson');
