// One linter for the whole tree: eslint recommended plus typescript-eslint's type-aware rules,
// which catch the floating promises a network service cannot afford.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import partFaces from './scripts/eslint-part-faces.mjs';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'test-artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
      // fastify handlers and interface implementations are async without awaiting.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The import rule (docs/architecture.md): parts talk through their faces.
    files: ['**/*.ts'],
    plugins: { edgeward: partFaces },
    rules: { 'edgeward/part-faces': 'error' },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    // The dashboard's browser code: plain ES modules, no build step.
    files: ['siem/dashboard/static/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['document', 'window', 'location', 'fetch', 'EventSource', 'URLSearchParams', 'Node', 'console'].map(
          (g) => [g, 'readonly'],
        ),
      ),
    },
  },
);
