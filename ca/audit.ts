// The hash chain of the append-only audit log: each record's hash covers the previous hash and
// the record's own fields, so an edited, inserted or deleted record breaks every hash after it.
import { createHash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

export interface AuditRecord {
  readonly seq: number;
  readonly ts: number;
  /** e.g. enroll.success, enroll.refused, renew.success, revoke, token.create, release */
  readonly kind: string;
  /** JSON text of the record's data (identity, code, serial, ip, method, facts). */
  readonly data: string;
  readonly prev: string;
  readonly hash: string;
}

export function auditHash(prev: string, seq: number, ts: number, kind: string, data: string): string {
  return createHash('sha256').update(`${prev}|${seq}|${ts}|${kind}|${data}`).digest('hex');
}

export type AuditVerdict =
  | { readonly ok: true; readonly count: number; readonly head: string }
  | { readonly ok: false; readonly count: number; readonly brokenAt: number; readonly reason: string };

/** Walks records in seq order; names the first broken one. */
export async function verifyAuditChain(
  records: Iterable<AuditRecord> | AsyncIterable<AuditRecord>,
): Promise<AuditVerdict> {
  let prev = GENESIS;
  let expected = 1;
  let count = 0;
  for await (const r of records) {
    if (r.seq !== expected)
      return { ok: false, count, brokenAt: r.seq, reason: `sequence gap: expected ${expected}` };
    if (r.prev !== prev)
      return { ok: false, count, brokenAt: r.seq, reason: 'previous-hash link does not match' };
    if (auditHash(r.prev, r.seq, r.ts, r.kind, r.data) !== r.hash) {
      return { ok: false, count, brokenAt: r.seq, reason: 'record hash does not match its contents' };
    }
    prev = r.hash;
    expected++;
    count++;
  }
  return { ok: true, count, head: prev };
}
