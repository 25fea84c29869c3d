// Builds dist/ once per test run, so integration tests spawn the real `edgeward` command.
// Type errors do not stop the build here (tsc still emits); `npm run typecheck` reports them.
import { spawnSync } from 'node:child_process';

export default function setup(): void {
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (r.error) throw new Error(`could not run tsc: ${r.error.message}`);
  if (r.status !== 0 && r.status !== 2) throw new Error(`tsc failed:\n${r.stdout}${r.stderr}`);
}
