// @ts-check
import eslint from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // scripts/*.d.mts only declare the types of the .mjs next to them, for the tests that import them.
  globalIgnores(['**/dist/', '**/artifacts/', '**/coverage/', 'bench/results/', '.cache/', 'scripts/*.d.mts']),
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    // The four tsconfigs named, not `projectService: true`: the same type information, built with
    // one program per tsconfig instead of through TypeScript's language-server project service,
    // cuts a cold `npm run lint` from 31 s to 22 s on 2 CPUs (the stop hook's limit was hit at 31).
    languageOptions: {
      parserOptions: {
        project: ['./services/backend/tsconfig.json', './services/balancer/tsconfig.json', './frontend/tsconfig.json', './e2e/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // tsconfig's erasableSyntaxOnly already forbids enums; this rule cost ~2 s per lint for nothing.
      '@typescript-eslint/no-unsafe-enum-assignment': 'off',
    },
  },
  {
    // Tests read JSON bodies of unknown shape on purpose and assert on them.
    files: ['**/test/**/*.ts', '**/test-compose/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // plain JS (this file, build and launcher scripts): in no tsconfig, so no type information
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
);
