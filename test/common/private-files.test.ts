// Private folders and files whatever the umask (the attack: SQLite stores made 0644, readable by all):
// the helper of common/private-files.ts on real files, and SQLite's WAL and shared-memory files in
// a child process started under umask 000 and 022.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  createPrivateFile,
  privateDatabase,
  privateDir,
  readSecretFile,
  replacePrivateFile,
} from '../../common/private-files.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('edgeward-private-');
const mode = (p: string): number => statSync(p).mode & 0o777;
const HELPER = pathToFileURL(
  join(import.meta.dirname, '..', '..', 'dist', 'common', 'private-files.js'),
).href;

describe('private folders and files', () => {
  it('makes a new folder and an existing open one 0700', () => {
    const made = privateDir(join(dir, 'a', 'b'));
    expect(mode(made)).toBe(0o700);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    privateDir(open);
    expect(mode(open)).toBe(0o700);
  });

  it('creates a 0600 file and never overwrites one', () => {
    const f = join(dir, 'new.key');
    createPrivateFile(f, 'secret\n');
    expect(mode(f)).toBe(0o600);
    expect(() => createPrivateFile(f, 'other')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(f, 'utf8')).toBe('secret\n');
  });

  it('replaces a file atomically with a 0600 one, whatever the old mode', async () => {
    const f = join(dir, 'state.json');
    writeFileSync(f, 'old', { mode: 0o644 });
    await replacePrivateFile(f, 'new');
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(mode(f)).toBe(0o600);
  });

  it('makes an existing 0644 database and its side files 0600 before SQLite opens it', () => {
    const f = join(dir, 'old.db');
    const db = new Database(f);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (x)');
    db.exec('INSERT INTO t VALUES (1)');
    for (const p of [f, `${f}-wal`, `${f}-shm`]) chmodSync(p, 0o644);
    privateDatabase(f);
    for (const p of [f, `${f}-wal`, `${f}-shm`]) expect(mode(p), p).toBe(0o600);
    db.close();
    // It makes no folder: a store in a folder that is not there stays an error of its opener.
    expect(() => privateDatabase(join(dir, 'nowhere', 'x.db'))).toThrow(
      expect.objectContaining({ code: 'ERR_PRIVATE_PATH' }),
    );
  });

  for (const umask of [0o000, 0o022]) {
    it(`a store opened under umask ${umask.toString(8).padStart(3, '0')} has a 0600 database, WAL and shm in a 0700 folder`, () => {
      const store = join(dir, `umask-${umask}`, 'data', 'store.db');
      // The child reports the modes while the database is open: the WAL and the shared memory
      // exist only until the last connection closes.
      const script = `
        import { statSync } from 'node:fs';
        import { dirname } from 'node:path';
        import Database from 'better-sqlite3';
        import { privateDatabase, privateDir } from ${JSON.stringify(HELPER)};
        process.umask(${umask});
        const file = ${JSON.stringify(store)};
        privateDir(dirname(file));
        const db = new Database(privateDatabase(file));
        db.pragma('journal_mode = WAL');
        db.exec('CREATE TABLE t (x)');
        db.exec('INSERT INTO t VALUES (1)');
        const mode = (p) => (statSync(p).mode & 0o777).toString(8);
        console.log(JSON.stringify([mode(dirname(file)), mode(file), mode(file + '-wal'), mode(file + '-shm')]));
        db.close();`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        cwd: join(import.meta.dirname, '..', '..'),
      });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(['700', '600', '600', '600']);
    });
  }
});

describe('readSecretFile', () => {
  it('reads the first line of a 0600 file', () => {
    const f = join(dir, 'ok.token');
    writeFileSync(f, 'ewt_abc\nrest\n', { mode: 0o600 });
    expect(readSecretFile(f, 'token file')).toBe('ewt_abc');
  });

  it('refuses a file that group or others can read, saying how to fix it', () => {
    const f = join(dir, 'open.token');
    writeFileSync(f, 'ewt_abc\n');
    chmodSync(f, 0o644);
    expect(() => readSecretFile(f, 'token file')).toThrow(
      expect.objectContaining({
        code: 'ERR_SECRET_FILE_MODE',
        message: `token file ${f} has mode 0644: group or others can read it; run chmod 600 ${f}`,
      }),
    );
    chmodSync(f, 0o640);
    expect(() => readSecretFile(f, 'token file')).toThrow(
      expect.objectContaining({ code: 'ERR_SECRET_FILE_MODE' }),
    );
  });

  it('follows a symbolic link to a private file (secrets mounted by an orchestrator)', () => {
    const target = join(dir, 'mounted.token');
    writeFileSync(target, 'ewt_link\n', { mode: 0o600 });
    const link = join(dir, 'link.token');
    symlinkSync(target, link);
    expect(readSecretFile(link, 'token file')).toBe('ewt_link');
  });

  it('refuses a missing file, a folder and an empty file with ERR_SECRET_FILE', () => {
    const empty = join(dir, 'empty.token');
    writeFileSync(empty, '\n', { mode: 0o600 });
    for (const f of [join(dir, 'missing.token'), privateDir(join(dir, 'adir')), empty])
      expect(() => readSecretFile(f, 'token file'), f).toThrow(
        expect.objectContaining({ code: 'ERR_SECRET_FILE' }),
      );
  });
});
