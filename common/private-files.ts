// Files only their owner may read: data folders 0700, stores, keys and secrets 0600, whatever the
// umask (modes are set with chmod, which the umask does not touch). One helper for every part.
import {
  chmodSync,
  closeSync,
  existsSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EdgewardError } from './errors.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
/** SQLite's side files: it gives them the database file's mode when it creates them. */
const SQLITE_SIDE_FILES = ['-wal', '-shm', '-journal'] as const;

function privatePathError(path: string, cause: unknown): EdgewardError {
  const why = (cause as NodeJS.ErrnoException).code ?? 'error';
  return new EdgewardError('ERR_PRIVATE_PATH', `cannot make ${path} private to its owner (${why})`, {
    cause,
  });
}

/** Creates `dir` (and missing parents, 0700) and makes `dir` itself 0700; returns it. */
export function privateDir(dir: string): string {
  try {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(dir, PRIVATE_DIR_MODE);
  } catch (cause) {
    throw privatePathError(dir, cause);
  }
  return dir;
}

/** Writes and fsyncs a file with exactly `mode`; `exclusive` refuses an existing file (O_EXCL). */
export function writeFileDurably(
  file: string,
  data: string | Uint8Array,
  mode: number,
  o: { exclusive?: boolean } = {},
): void {
  const fd = openSync(file, o.exclusive ? 'wx' : 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A new file only its owner may read (0600, O_EXCL: never overwrites), fsync'd. */
export function createPrivateFile(file: string, data: string | Uint8Array): void {
  writeFileDurably(file, data, PRIVATE_FILE_MODE, { exclusive: true });
}

/**
 * Replaces `file` atomically with a 0600 file: a temp file beside it, fsync, rename, fsync of the
 * folder. A crash leaves the old or the new content, whole. Async: the agent calls it on its loop.
 */
export async function replacePrivateFile(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w', PRIVATE_FILE_MODE);
  try {
    await fh.chmod(PRIVATE_FILE_MODE);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  const dh = await open(dirname(file), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Call before SQLite opens `file` for writing: its folder (which must exist) becomes 0700, the
 * database file is created empty (0600) when missing or made 0600, and existing -wal/-shm/-journal
 * files too. SQLite creates its side files with the database file's mode, so they are born 0600.
 */
export function privateDatabase(file: string): string {
  try {
    chmodSync(dirname(file), PRIVATE_DIR_MODE);
    if (!existsSync(file)) closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
    chmodSync(file, PRIVATE_FILE_MODE);
    for (const side of SQLITE_SIDE_FILES)
      if (existsSync(file + side)) chmodSync(file + side, PRIVATE_FILE_MODE);
  } catch (cause) {
    throw privatePathError(file, cause);
  }
  return file;
}

const MAX_SECRET_BYTES = 4096;

/**
 * Reads a secret (a join token) from a file that only its owner may read: a file that group or
 * others can read, or that another user owns, is refused with the fix in the message. Returns
 * the first line, trimmed.
 */
export function readSecretFile(file: string, what: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new EdgewardError('ERR_SECRET_FILE', `${what} ${file}: ${why}`, { cause });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new EdgewardError('ERR_SECRET_FILE', `${what} ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new EdgewardError(
        'ERR_SECRET_FILE_MODE',
        `${what} ${file} has mode ${mode}: group or others can read it; run chmod 600 ${file}`,
      );
    }
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid)
      throw new EdgewardError(
        'ERR_SECRET_FILE_MODE',
        `${what} ${file} belongs to uid ${st.uid}, not to this user (uid ${uid}); chown it`,
      );
    if (st.size > MAX_SECRET_BYTES)
      throw new EdgewardError('ERR_SECRET_FILE', `${what} ${file} is larger than ${MAX_SECRET_BYTES} bytes`);
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const secret = (buf.subarray(0, n).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
    if (secret === '') throw new EdgewardError('ERR_SECRET_FILE', `${what} ${file} is empty`);
    return secret;
  } finally {
    closeSync(fd);
  }
}
