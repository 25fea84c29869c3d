// Runs tpm2-tools (I/O edge of the prover): execFile, never a shell, TPM2TOOLS_TCTI set per call,
// a timeout per command, and coded errors a device operator can act on.
import { execFile } from 'node:child_process';
import { EdgewardError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';

export interface ToolRunner {
  run(tool: string, args: readonly string[]): Promise<string>;
}

const UNREACHABLE =
  /Could not load tcti|Failed to instantiate TCTI|Connection refused|Failed to connect|No such file or directory/i;

export function createToolRunner(opts: {
  tcti: string;
  log?: Logger;
  cwd?: string;
  timeoutMs?: number;
}): ToolRunner {
  const env = { ...process.env, TPM2TOOLS_TCTI: opts.tcti };
  return {
    run(tool, args) {
      opts.log?.debug({ tool, args }, 'tpm2-tools');
      return new Promise((resolve, reject) => {
        execFile(
          tool,
          [...args],
          { env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 1 << 20, encoding: 'utf8' },
          (err, stdout, stderr) => {
            if (!err) {
              resolve(stdout);
              return;
            }
            const e = err as NodeJS.ErrnoException & { killed?: boolean };
            if (e.code === 'ENOENT') {
              reject(
                new EdgewardError(
                  'ERR_ATT_TPM_TOOLS_MISSING',
                  `${tool} not found: install tpm2-tools (Debian/Ubuntu: apt-get install tpm2-tools)`,
                  {
                    cause: err,
                    detail: { tool },
                  },
                ),
              );
              return;
            }
            const tail = stderr.trim().split('\n').slice(-4).join('\n');
            if (UNREACHABLE.test(stderr) && !/Esys_|TPM Error/.test(stderr)) {
              reject(
                new EdgewardError(
                  'ERR_ATT_TPM_UNREACHABLE',
                  `cannot reach the TPM at ${opts.tcti}: ${tail}`,
                  {
                    cause: err,
                    detail: { tool, tcti: opts.tcti },
                  },
                ),
              );
              return;
            }
            reject(
              new EdgewardError(
                'ERR_ATT_TPM_TOOL_FAILED',
                `${tool} failed${e.killed ? ' (timed out)' : ''}: ${tail}`,
                {
                  cause: err,
                  detail: { tool, args: [...args], stderr: tail },
                },
              ),
            );
          },
        );
      });
    },
  };
}
