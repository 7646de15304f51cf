/** Every command, in the order help lists them. Adding a command means one module and one line here. */
import type { AnyCommand } from '../help';
import abort from './abort';
import approve from './approve';
import close from './close';
import { completionCommand } from './completion';
import { helpCommand } from './help';
import list from './list';
import login from './login';
import maintenance from './maintenance';
import postmortem from './postmortem';
import reject from './reject';
import rollback from './rollback';
import runbooks from './runbooks';
import schedules from './schedules';
import show from './show';
import start from './start';
import whoami from './whoami';

const OPERATIONS = [
  login,
  whoami,
  runbooks,
  list,
  show,
  start,
  rollback,
  approve,
  reject,
  close,
  abort,
  maintenance,
  postmortem,
  schedules,
] as AnyCommand[];

const NAMES = [...OPERATIONS.map((c) => c.name), 'completion', 'help'];

export const COMMANDS: readonly AnyCommand[] = [
  ...OPERATIONS,
  completionCommand(() => COMMANDS) as AnyCommand,
  helpCommand(() => COMMANDS, NAMES) as AnyCommand,
];
