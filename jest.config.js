/** Tests run against the real stack (scripts/stack.sh up); see scripts/test.sh. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/test/global-setup.ts',
  testSequencer: '<rootDir>/test/sequencer.js',
  testTimeout: 120000,
  // Drills break shared containers: test files run one at a time.
  maxWorkers: 1,
  verbose: true,
  // The Temporal worker runtime keeps native handles open after shutdown.
  forceExit: true,
};
