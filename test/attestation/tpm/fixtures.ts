// Shared pieces for the TPM method tests: an in-memory implementation of the CA's method store
// interface (the SQLite one is the CA's and is tested there), CSR keys, and contexts.
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { CsrKey, MethodContext, MethodStoreWriter } from '../../../attestation/method.js';
import type { FakeClock } from '../../../common/clock.js';
import { silentLogger } from '../../../common/log.js';

export class MemoryStore implements MethodStoreWriter {
  readonly bindings = new Map<string, { hardwareId: string; record: unknown }>();
  readonly used = new Map<string, number>();

  constructor(private readonly clock: { now(): number }) {}

  getBinding(identity: string, method: string): Promise<unknown> {
    return Promise.resolve(this.bindings.get(`${method}\n${identity}`)?.record);
  }

  findBindingByHardware(method: string, hardwareId: string): Promise<string | undefined> {
    for (const [k, v] of this.bindings) {
      const [m, id] = k.split('\n');
      if (m === method && v.hardwareId === hardwareId) return Promise.resolve(id);
    }
    return Promise.resolve(undefined);
  }

  wasUsed(namespace: string, key: string): Promise<boolean> {
    return Promise.resolve(this.isUsed(namespace, key));
  }

  private isUsed(namespace: string, key: string): boolean {
    const exp = this.used.get(`${namespace}\n${key}`);
    return exp !== undefined && exp >= this.clock.now();
  }

  putBinding(identity: string, method: string, hardwareId: string, record: unknown): Promise<void> {
    this.bindings.set(`${method}\n${identity}`, { hardwareId, record: JSON.parse(JSON.stringify(record)) });
    return Promise.resolve();
  }

  useOnce(namespace: string, key: string, expiresAt: number): Promise<boolean> {
    if (this.isUsed(namespace, key)) return Promise.resolve(false);
    this.used.set(`${namespace}\n${key}`, expiresAt);
    return Promise.resolve(true);
  }

  release(identity: string, method: string): void {
    this.bindings.delete(`${method}\n${identity}`);
  }
}

export function csrKey(): CsrKey {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spkiDer = publicKey.export({ format: 'der', type: 'spki' });
  return { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
}

export function csrKeyFromSpki(spkiDer: Buffer): CsrKey {
  return { spkiDer, spkiSha256: createHash('sha256').update(spkiDer).digest() };
}

export function context(clock: FakeClock, store: MemoryStore, renewal = false): MethodContext {
  return { clock, log: silentLogger, trustDomain: 'factory.example', store, renewal, source: '192.0.2.1' };
}

/** Runs commit like the CA does: all or nothing (the memory store is copied and restored on throw). */
export async function commitAll(
  store: MemoryStore,
  commit: ((tx: MethodStoreWriter) => Promise<void>) | undefined,
): Promise<void> {
  const bindings = new Map(store.bindings);
  const used = new Map(store.used);
  try {
    await commit?.(store);
  } catch (err) {
    store.bindings.clear();
    for (const [k, v] of bindings) store.bindings.set(k, v);
    store.used.clear();
    for (const [k, v] of used) store.used.set(k, v);
    throw err;
  }
}

export async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded: ${String(err)}`;
  }
  return 'no error';
}
