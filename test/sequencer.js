// Test files run one at a time (they share the drill target); the secrets scan runs last so it
// sees every history the suite produced.
const Sequencer = require('@jest/test-sequencer').default;

class LastScanSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const last = (t) => (t.path.endsWith('secrets.test.ts') ? 1 : 0);
    return [...sorted].sort((a, b) => last(a) - last(b));
  }
}

module.exports = LastScanSequencer;
