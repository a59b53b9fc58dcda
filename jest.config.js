// Jest 30 on native ESM (NestJS 12 is ESM-only): SWC compiles TypeScript with decorator metadata,
// `.js` endings of relative imports are stripped, and `@app/<lib>` maps to libs/<lib>/src.
// test/cluster (a private Redis Cluster of 6 processes) runs only under `npm run test:cluster` (AIAAS_CLUSTER_TESTS=1).
/** @type {import('jest').Config} */
export default {
  rootDir: '.',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', ...(process.env.AIAAS_CLUSTER_TESTS ? [] : ['<rootDir>/test/cluster/'])],
  moduleNameMapper: {
    '^@app/(config|db|queue|common|ml|webhooks|client|jobs)$': '<rootDir>/libs/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          target: 'es2022',
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          keepClassNames: true,
        },
        module: { type: 'es6' },
      },
    ],
  },
  testTimeout: 60_000,
  slowTestThreshold: 30,
};
