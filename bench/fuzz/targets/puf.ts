// PUF registration records (the CA reads them at import and from its store) and the helper data
// a device receives in a challenge (the prover parses it and reconstructs its key from it).
import { isDeepStrictEqual } from 'node:util';
import {
  createPufProver,
  parsePufRecordText,
  pufRecordToJson,
  type PufProver,
  type PufRecord,
} from '../../../attestation/puf/index.js';
import { OracleFailure, type FuzzTarget } from '../engine.js';
import { loadCorpus } from '../corpus.js';
import { mutateTree, valuePool } from '../json.js';

const RECORD_KEYS = [
  'format',
  'version',
  'id',
  'profile',
  'params',
  'publicKey',
  'helper',
  'salt',
  'mask',
  'offset',
  'crp',
  'challengeBytes',
  'responseBits',
  'threshold',
  'pairs',
  'challenge',
  'response',
  'createdAt',
  '__proto__',
];

function jsonTarget(name: string): { docs: () => unknown[] } {
  let docs: unknown[] | undefined;
  return {
    docs: () => (docs ??= loadCorpus(name).map((b) => JSON.parse(b.toString('utf8')) as unknown)),
  };
}

const records = jsonTarget('puf-record');

export const pufRecord: FuzzTarget<PufRecord> = {
  name: 'puf-record',
  about:
    'PUF registration records (attestation/puf/record.ts parsePufRecordText), with a pufRecordToJson -> parse round trip',
  sources: ['attestation/puf/record.ts', 'attestation/puf/fuzzy-extractor.ts', 'attestation/puf/bits.ts'],
  codes: ['ERR_ATT_PUF_RECORD_MALFORMED', 'ERR_ATT_PUF_RECORD_TOO_LARGE'],
  dictionary: RECORD_KEYS.map((k) => `"${k}"`),
  generateShare: 0.6,
  maxBytes: 300 * 1024,
  seeds: () => loadCorpus('puf-record'),
  generate: (rng) =>
    Buffer.from(JSON.stringify(mutateTree(rng.pick(records.docs()), rng, valuePool(13), RECORD_KEYS))),
  run: (input) => parsePufRecordText(input),
  accepted(_input, r) {
    const again = parsePufRecordText(JSON.stringify(pufRecordToJson(r)));
    if (!isDeepStrictEqual(again, r)) throw new OracleFailure('toJson -> parse changed the record');
  },
};

const challenges = jsonTarget('puf-challenge');
const CHALLENGE_KEYS = [
  'mode',
  'nonce',
  'profile',
  'params',
  'helper',
  'salt',
  'mask',
  'offset',
  'challenge',
  'index',
  'expiresAt',
  '__proto__',
];
const provers = new Map<string, PufProver>();
const CSR = { spkiDer: Buffer.alloc(91, 1), spkiSha256: Buffer.alloc(32, 2) };

export const pufChallenge: FuzzTarget<Record<string, unknown>> = {
  name: 'puf-challenge',
  about:
    "helper data and CRP challenges as a device receives them (the puf prover's respond: challenge parse, helper checks, key reconstruction)",
  sources: [
    'attestation/puf/prover.ts',
    'attestation/puf/protocol.ts',
    'attestation/puf/fuzzy-extractor.ts',
    'attestation/puf/bits.ts',
  ],
  codes: ['ERR_ATT_PUF_CHALLENGE_MALFORMED'],
  dictionary: CHALLENGE_KEYS.map((k) => `"${k}"`),
  generateShare: 0.6,
  maxBytes: 64 * 1024,
  seeds: () => loadCorpus('puf-challenge'),
  generate: (rng) =>
    Buffer.from(JSON.stringify(mutateTree(rng.pick(challenges.docs()), rng, valuePool(17), CHALLENGE_KEYS))),
  async run(input) {
    let c: unknown;
    try {
      c = JSON.parse(input.toString('utf8'));
    } catch {
      c = input.toString('utf8');
    }
    const mode =
      typeof c === 'object' && c !== null && (c as { mode?: unknown }).mode === 'crp' ? 'crp' : 'key';
    let prover = provers.get(mode);
    if (!prover) {
      prover = createPufProver({
        puf: 'sim:fuzz-device',
        id: 'spiffe://factory.example/device/d1',
        mode,
        noiseSeed: 'fuzz-noise',
      });
      provers.set(mode, prover);
    }
    return prover.respond(c as Record<string, unknown>, CSR);
  },
};
