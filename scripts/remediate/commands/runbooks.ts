import { RUNBOOKS } from '../../../src/workflows/catalog';
import { defineCommand } from '../command';

export default defineCommand({
  name: 'runbooks',
  summary: 'list the runbooks this engine runs',
  usage: '',
  options: {},
  needs: 'nothing',
  async run(ctx) {
    const rows = Object.entries(RUNBOOKS).map(([name, m]) => ({
      name,
      scenario: m.scenario,
      severity: m.severity,
      title: m.title,
    }));
    ctx.print(
      rows,
      rows.map((r) => `${r.name.padEnd(22)} ${r.scenario.padEnd(9)} SEV-${r.severity}  ${r.title}`).join('\n'),
    );
    return 0;
  },
});
