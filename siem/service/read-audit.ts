// Who looked at what: the analysts' reads (the analyst API's `siem.read.*`, the dashboard's pages)
// as JSON lines in the SIEM's data folder (0600), rotated at a size. Reads are not security
// events: they stay out of the event store, its timelines, its rules and its retention.
import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import type { Logger } from '../../common/log.js';
import { PRIVATE_FILE_MODE } from '../../common/private-files.js';
import type { AuditEntry } from './audit.js';

/** The audit actions that are reads. */
export const isReadAction = (action: string): boolean => action.startsWith('siem.read.');

export const READ_AUDIT_FILE = 'audit-reads.jsonl';

export class ReadAuditLog {
  private fd: number | null;
  private size: number;
  private closed = false;

  /**
   * `maxBytes`: past it the file moves to `<file>.1` (replacing the previous one) and starts anew.
   * A record that cannot be written (disk full) is logged, and the read it records still answers.
   */
  constructor(
    private readonly file: string,
    private readonly log: Pick<Logger, 'error'>,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {
    this.fd = openSync(file, 'a', PRIVATE_FILE_MODE);
    this.size = fstatSync(this.fd).size;
  }

  append(a: AuditEntry, at: number): void {
    // Reopened after a failed rotation; null only once closed for good.
    if (this.fd === null && !this.closed) this.reopen();
    if (this.fd === null) return;
    const line = `${JSON.stringify({
      at: new Date(at).toISOString(),
      action: a.action,
      who: a.principal === undefined ? null : `${a.principal.id} (${a.principal.via})`,
      ip: a.ip,
      ok: a.ok,
      ...(a.code !== undefined ? { code: a.code } : {}),
      what: a.message.slice(0, 1024),
    })}\n`;
    try {
      if (this.size + Buffer.byteLength(line) > this.maxBytes) this.rotate();
      if (this.fd !== null) this.size += writeSync(this.fd, line);
    } catch (err) {
      this.log.error({ err, action: a.action }, 'could not write a read audit record');
    }
  }

  private reopen(): void {
    try {
      this.fd = openSync(this.file, 'a', PRIVATE_FILE_MODE);
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      this.log.error({ err }, 'could not open the read audit log');
    }
  }

  private rotate(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    // Never left holding a closed descriptor (its number may be reused by another file).
    this.fd = null;
    closeSync(fd);
    renameSync(this.file, `${this.file}.1`);
    this.fd = openSync(this.file, 'a', PRIVATE_FILE_MODE);
    this.size = 0;
  }

  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
