// Registration with the CA (`edgeward ca puf import`): validate a record, refuse an identity that
// already has one or a PUF key already bound elsewhere, and store it as the identity's binding.
import type { MethodStoreWriter } from '../method.js';
import { EdgewardError } from '../../common/errors.js';
import { parseIdentity } from '../../common/identity.js';
import { PUF_METHOD } from './method.js';
import {
  parsePufRecord,
  parsePufRecordText,
  pufRecordToJson,
  type PufRecord,
  type PufRecordJson,
} from './record.js';

/** Pure validation: record text or parsed JSON in, the canonical record out. */
export function validatePufRecord(input: unknown, opts: { trustDomain?: string } = {}): PufRecord {
  const record =
    typeof input === 'string' || input instanceof Uint8Array
      ? parsePufRecordText(input)
      : parsePufRecord(input);
  if (opts.trustDomain !== undefined && parseIdentity(record.id).trustDomain !== opts.trustDomain) {
    throw new EdgewardError('ERR_CA_FOREIGN_TRUST_DOMAIN', undefined, { detail: { identity: record.id } });
  }
  return record;
}

/** Stores the record; call inside a store transaction. Returns what was stored. */
export async function importPufRecord(
  writer: MethodStoreWriter,
  input: unknown,
  opts: { trustDomain?: string } = {},
): Promise<{ identity: string; publicKey: string; crps: number; record: PufRecordJson }> {
  const record = validatePufRecord(input, opts);
  const json = pufRecordToJson(record);
  const existing = await writer.getBinding(record.id, PUF_METHOD);
  if (existing !== undefined && existing !== null) {
    throw new EdgewardError('ERR_ATT_PUF_RECORD_EXISTS', undefined, { detail: { identity: record.id } });
  }
  const other = await writer.findBindingByHardware(PUF_METHOD, json.publicKey);
  if (other !== undefined) {
    throw new EdgewardError('ERR_ATT_PUF_HARDWARE_BOUND', undefined, {
      detail: { identity: record.id, boundTo: other },
    });
  }
  await writer.putBinding(record.id, PUF_METHOD, json.publicKey, json);
  return { identity: record.id, publicKey: json.publicKey, crps: record.crps.length, record: json };
}
