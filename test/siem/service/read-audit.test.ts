// The read audit log: one JSON line per read with who, from where and what, private to its owner,
// moved aside past its size limit, and never a place where a hostile text breaks a line.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../common/log.js';
import { isReadAction, ReadAuditLog } from '../../../siem/service/read-audit.js';
import { tempDir } from '../../helpers/tmp.js';

const entry = (what: string) => ({
  action: 'siem.read.entity',
  principal: { id: 'ana', via: 'session' },
  ip: '127.0.0.1',
  ok: true,
  message: what,
});

describe('read audit log', () => {
  it('writes one private JSON line per read, a hostile text kept inside its line', () => {
    const file = join(tempDir(), 'audit-reads.jsonl');
    const log = new ReadAuditLog(file, silentLogger);
    log.append(entry('entity spiffe://factory.example/device/d1'), Date.UTC(2026, 0, 1));
    log.append(entry('entity x\n{"forged":true}'), Date.UTC(2026, 0, 1, 0, 0, 1));
    log.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0] as string)).toEqual({
      at: '2026-01-01T00:00:00.000Z',
      action: 'siem.read.entity',
      who: 'ana (session)',
      ip: '127.0.0.1',
      ok: true,
      what: 'entity spiffe://factory.example/device/d1',
    });
    expect(JSON.parse(lines[1] as string)).toMatchObject({ what: 'entity x\n{"forged":true}' });
  });

  it('moves the file to .1 past its size limit and goes on in a new one', () => {
    const file = join(tempDir(), 'audit-reads.jsonl');
    const log = new ReadAuditLog(file, silentLogger, 1000);
    for (let i = 0; i < 20; i++) log.append(entry(`read ${i}`), 0);
    log.close();
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(statSync(file).size).toBeLessThanOrEqual(1000);
    const last = readFileSync(file, 'utf8').trim().split('\n').pop() as string;
    expect(JSON.parse(last)).toMatchObject({ what: 'read 19' });
  });

  it('takes the analyst API’s reads, not its changes', () => {
    expect(isReadAction('siem.read.alerts')).toBe(true);
    expect(isReadAction('siem.decision.create')).toBe(false);
  });
});
