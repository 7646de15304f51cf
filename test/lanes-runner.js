/**
 * Runs the test files in the lanes test/lanes.js gives: the stack lane one file at a time in the
 * jest process, as maxWorkers 1 always did, and beside it the independent lane one file at a time
 * in one worker process; then the last files. Results and events reach jest's reporters as from
 * its own runner. With files of one lane only (e.g. `jest test/workflows/foo.test.ts`) it is jest's
 * own in-band run; `jest --runner jest-runner` runs every file in band, one at a time, as before.
 */
const TestRunner = require('jest-runner').default;
const { laneOf } = require('./lanes');

const EVENTS = ['test-file-start', 'test-file-success', 'test-file-failure', 'test-case-start', 'test-case-result'];

class LanesRunner {
  constructor(globalConfig, context) {
    this.globalConfig = globalConfig;
    this.context = context;
    this.listeners = new Map();
    this.supportsEventEmitters = true;
    this.isSerial = false;
  }

  on(event, listener) {
    const set = this.listeners.get(event) ?? new Set();
    this.listeners.set(event, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  async emit(event, payload) {
    for (const listener of this.listeners.get(event) ?? []) await listener(payload);
  }

  /** One of jest's runners, its events passed on as this runner's. */
  runner(maxWorkers) {
    const r = new TestRunner({ ...this.globalConfig, maxWorkers }, this.context);
    for (const event of EVENTS) r.on(event, (payload) => this.emit(event, payload));
    return r;
  }

  /**
   * The independent lane in one worker process, started with TEST_LANE=independent in its
   * environment (test/lane-priority.js lowers its priority). jest forks the worker as the run starts.
   */
  independent(tests, watcher) {
    const previous = process.env.TEST_LANE;
    process.env.TEST_LANE = 'independent';
    try {
      return this.runner(1).runTests(tests, watcher, { serial: false });
    } finally {
      if (previous === undefined) delete process.env.TEST_LANE;
      else process.env.TEST_LANE = previous;
    }
  }

  async runTests(tests, watcher) {
    const lanes = { stack: [], independent: [], last: [] };
    for (const test of tests) lanes[laneOf(test.path)].push(test);
    const serial = (list) => (list.length ? this.runner(1).runTests(list, watcher, { serial: true }) : undefined);
    if (lanes.stack.length === 0 || lanes.independent.length === 0) {
      await serial([...lanes.stack, ...lanes.independent]);
    } else {
      await Promise.all([serial(lanes.stack), this.independent(lanes.independent, watcher)]);
    }
    await serial(lanes.last);
  }
}

module.exports = LanesRunner;
