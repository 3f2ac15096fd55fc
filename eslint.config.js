// ESLint with the type-checked rules of typescript-eslint over src, tests and benchmarks.
// Layout is Prettier's (.prettierrc.json): eslint-config-prettier, last, turns off rules that would fight it.
import js from '@eslint/js';
import eslintConfigPrettier from 'eslint-config-prettier/flat';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'dist-bench/',
      'node_modules/',
      'coverage/',
      '.relay/',
      'jest.config.js',
      'eslint.config.js',
      '.dependency-cruiser.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Off: async functions without an await are intended here, implementing interfaces that return
      // a Promise (kafkajs eachMessage, Service.run, MailboxGuard, test stand-ins); `async` keeps a
      // throw inside them a rejection.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Off in tests: jest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any`,
      // so every use inside an expected object is reported. Unsafe member access and return stay on.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  eslintConfigPrettier,
);
