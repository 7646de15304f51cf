// Test files run in the lanes of test/lanes.js (test/lanes-runner.js); the secrets scan runs last so
// it sees every history the suite produced.
const Sequencer = require('@jest/test-sequencer').default;
const { laneOf } = require('./lanes');

class LastScanSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const last = (t) => (laneOf(t.path) === 'last' ? 1 : 0);
    return [...sorted].sort((a, b) => last(a) - last(b));
  }
}

module.exports = LastScanSequencer;
