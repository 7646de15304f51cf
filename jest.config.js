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
  // Drills break shared containers: files that use the stack run one at a time; those that use none
  // of it run one at a time beside them (test/lanes.js).
  maxWorkers: 1,
  runner: '<rootDir>/test/lanes-runner.js',
  setupFiles: ['<rootDir>/test/lane-priority.js'],
  verbose: true,
  // The Temporal worker runtime keeps native handles open after shutdown.
  forceExit: true,
};
