// In the independent lane's worker process (test/lanes-runner.js), the tests yield the CPU to the
// stack lane's drills: they run on what the drills leave idle, and never slow a drill's timing.
const os = require('node:os');

if (process.env.TEST_LANE === 'independent') os.setPriority(10);
