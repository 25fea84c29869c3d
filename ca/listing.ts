// What `edgeward ca list` and `edgeward ca show ID` print: the identities the CA knows, their
// certificates with their state, hardware bindings, renewal holds and identity revocations.
import type { CaStore, CertRecord } from './store.js';

export type CertState = 'valid' | 'expired' | 'revoked' | 'not yet valid';

export function certState(c: CertRecord, now: number): CertState {
  if (c.revokedAt !== null) return 'revoked';
  if (now >= c.notAfter) return 'expired';
  if (now < c.notBefore) return 'not yet valid';
  return 'valid';
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function counts(certs: readonly CertRecord[], now: number): string {
  const n = new Map<CertState, number>();
  for (const c of certs) n.set(certState(c, now), (n.get(certState(c, now)) ?? 0) + 1);
  return (['valid', 'not yet valid', 'expired', 'revoked'] as const)
    .filter((s) => n.has(s))
    .map((s) => `${n.get(s) ?? 0} ${s}`)
    .join(', ');
}

/** One line per identity: last method, certificates by state, bindings, standing. */
export async function listIdentities(store: CaStore, now: number): Promise<string[]> {
  const ids = await store.identities();
  if (ids.length === 0) return ['no identities yet (enroll one: edgeward ca token --help)'];
  const rows = [['IDENTITY', 'METHOD', 'CERTIFICATES', 'BINDINGS', 'STANDING']];
  for (const id of ids) {
    const certs = await store.certificatesOf(id);
    const bindings = (await store.bindingsOf(id)).map((b) => b.method);
    rows.push([
      id,
      (await store.enrolledMethod(id)) ?? '-',
      counts(certs, now) || 'none',
      bindings.join(',') || '-',
      await standing(store, id),
    ]);
  }
  return table(rows);
}

async function standing(store: CaStore, id: string): Promise<string> {
  if (await store.isIdentityRevoked(id)) return 'revoked';
  const hold = await store.activeHold(id);
  return hold ? `renewal hold (decision ${hold.decisionId})` : 'ok';
}

/** Everything about one identity; undefined when the CA does not know it. */
export async function showIdentity(store: CaStore, id: string, now: number): Promise<string[] | undefined> {
  const certs = await store.certificatesOf(id);
  const bindings = await store.bindingsOf(id);
  const holds = (await store.holds()).filter((h) => h.identity === id);
  if (certs.length === 0 && bindings.length === 0 && holds.length === 0) return undefined;
  const lines = [
    `identity  ${id}`,
    `method    ${(await store.enrolledMethod(id)) ?? '-'} (of the latest certificate; renewals follow it)`,
    `standing  ${await standing(store, id)}`,
    '',
    `certificates (${certs.length}):`,
  ];
  if (certs.length > 0) {
    const rows = [['SERIAL', 'STATE', 'NOT BEFORE', 'NOT AFTER', 'METHOD', 'SPKI SHA-256']];
    for (const c of certs) {
      const state = certState(c, now);
      rows.push([
        c.serial,
        state === 'revoked'
          ? `revoked ${iso(c.revokedAt ?? 0)} (${c.revocationReason ?? 'unspecified'})`
          : state,
        iso(c.notBefore),
        iso(c.notAfter),
        c.method,
        c.spkiSha256,
      ]);
    }
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  lines.push('', `hardware bindings (${bindings.length}):`);
  for (const b of bindings) lines.push(`  ${b.method}  hardware ${b.hardwareId}  since ${iso(b.createdAt)}`);
  if (holds.length > 0) {
    lines.push('', `renewal holds (${holds.length}):`);
    for (const h of holds)
      lines.push(
        `  decision ${h.decisionId} (${h.scope.type} ${h.scope.value}) placed ${iso(h.placedAt)}, ` +
          (h.releasedAt === null
            ? `until released (edgeward ca release --hold) or the decision ends (${iso(h.decisionExpiresAt)})`
            : `released ${iso(h.releasedAt)} by ${h.releasedBy ?? '?'}`),
      );
  }
  return lines;
}
