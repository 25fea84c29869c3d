// The import rule of docs/architecture.md as an eslint rule: a part reaches another part only
// through a face (an index.ts), and only along the arrows the layering allows; common/ imports no
// part. Relative imports only: packages and node: builtins are not the rule's business.
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Which parts each part may import (through their faces). cli/ is the dispatcher over them all. */
export const DEPENDS = {
  common: [],
  policies: ['common'],
  attestation: ['common', 'policies'],
  client: ['common', 'attestation'],
  ca: ['common', 'policies', 'attestation', 'client'],
  agent: ['common', 'policies', 'attestation', 'client'],
  siem: ['common', 'policies', 'attestation', 'client', 'ca'],
  cli: ['common', 'policies', 'attestation', 'client', 'ca', 'agent', 'siem'],
};
const PARTS = Object.keys(DEPENDS);

/** Where a repository path sits: in a part, in a part's tests, or outside (bench, scripts, other tests). */
function placeOf(path) {
  const [top, sub] = path.split('/');
  if (PARTS.includes(top)) return { part: top };
  if (top === 'test' && PARTS.includes(sub)) return { testsOf: sub };
  return {};
}

const isFace = (path) => path.endsWith('/index.ts');

// The dispatcher loads a part's command module (a file named cli.ts) on its own, so that a
// command loads only what it runs, not the whole part behind the face.
const isCommand = (path) => path.endsWith('/cli.ts');

/** Why `from` may not import `to` (both repository paths), or null when it may. */
export function refusal(from, to) {
  const src = placeOf(from);
  const dst = placeOf(to);
  if (src.part !== undefined) {
    if (dst.part === undefined) return `${src.part}/ is a part and does not import ${to.split('/')[0]}/`;
    if (dst.part === src.part) {
      return to === `${src.part}/index.ts`
        ? `import the file itself: ${src.part}/index.ts is the face other parts use, and importing it from inside makes a cycle`
        : null;
    }
    if (src.part === 'common') return `common/ is the shared kernel and imports no part (here ${dst.part}/)`;
    if (!DEPENDS[src.part].includes(dst.part))
      return `${src.part}/ may not import ${dst.part}/: ${src.part}/ depends on ${DEPENDS[src.part].join(', ')} only`;
  } else if (dst.part === undefined || dst.part === src.testsOf) {
    return null;
  }
  if (dst.part === 'common') return null;
  if (dst.part === 'cli') return 'cli/ is the command dispatcher: nothing imports it';
  if (src.part === 'cli' && isCommand(to)) return null;
  if (!isFace(to))
    return `${to} is inside ${dst.part}/: import the part's face (${dst.part}/index.ts) or a sub-face (a folder's index.ts)`;
  return null;
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'parts talk through their faces, along the allowed arrows (docs/architecture.md)' },
    schema: [],
    messages: { refused: '{{from}} imports {{to}}: {{why}} (docs/architecture.md, "The import rule")' },
  },
  create(context) {
    const file = relative(ROOT, context.filename).split(sep).join('/');
    if (file.startsWith('..')) return {};
    const check = (node) => {
      const spec = node?.type === 'Literal' && typeof node.value === 'string' ? node.value : undefined;
      if (spec === undefined || !spec.startsWith('.')) return;
      const target = relative(ROOT, join(dirname(context.filename), spec))
        .split(sep)
        .join('/');
      const to = target.replace(/\.js$/, '.ts');
      const why = refusal(file, to);
      if (why !== null) context.report({ node, messageId: 'refused', data: { from: file, to, why } });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};

export default { rules: { 'part-faces': rule } };
