// Tests run as ES modules through ts-jest (transpile only; `npm run typecheck` checks types).
// Tiers are named in the file: *.unit.spec.ts need nothing; *.int.spec.ts and *.e2e.spec.ts use the
// real Kafka, registry, Postgres and Redis that `infra/bin/stack up` provides.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testTimeout: 60_000,
  maxWorkers: 2,
};
