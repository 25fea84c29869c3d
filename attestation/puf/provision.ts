// Manufacture (`edgeward puf provision`): read the PUF several times, enroll the fuzzy extractor,
// derive the public key, optionally take challenge-response pairs, and build the record.
import nacl from 'tweetnacl';
import { systemClock, type Clock } from '../../common/clock.js';
import { parseIdentity } from '../../common/identity.js';
import { takeCrps } from './crp.js';
import { enrollKey, majority } from './fuzzy-extractor.js';
import { PROFILE_V1, type PufProfile } from './profile.js';
import { pufRecordToJson, type PufRecord, type PufRecordJson } from './record.js';
import type { Puf } from './simulator.js';

export interface ProvisionOptions {
  readonly id: string;
  readonly puf: Puf;
  /** Challenge-response pairs to take (default 32; 0 for none). */
  readonly crps?: number;
  readonly profile?: PufProfile;
  readonly clock?: Clock;
}

export function provisionPuf(opts: ProvisionOptions): { record: PufRecord; json: PufRecordJson } {
  const id = parseIdentity(opts.id).uri;
  const profile = opts.profile ?? PROFILE_V1;
  if (opts.puf.keyBits !== profile.responseBits)
    throw new TypeError(`profile ${profile.name} needs ${profile.responseBits} PUF cells`);
  const reads: Uint8Array[] = [];
  for (let i = 0; i < profile.enrollReads; i++) reads.push(opts.puf.readKey());
  const reference = majority(reads, profile.responseBits);
  const { helper, seed } = enrollKey(reference, profile);
  const kp = nacl.sign.keyPair.fromSeed(seed);
  seed.fill(0);
  kp.secretKey.fill(0);
  reference.fill(0);
  const crps = takeCrps(opts.puf, profile, opts.crps ?? 32);
  const record: PufRecord = {
    id,
    profile,
    publicKey: Buffer.from(kp.publicKey),
    helper,
    crps,
    createdAt: new Date((opts.clock ?? systemClock).now()).toISOString(),
  };
  return { record, json: pufRecordToJson(record) };
}
