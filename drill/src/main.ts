/** Entrypoint of the drill target: `node server.js <api|worker|proxy>` (or APP_ROLE). */
import { loadConfig, parseRole } from './config';
import { log, setLogBase } from './log';
import { startApi } from './api';
import { startWorker } from './worker';
import { startProxy } from './proxy';

function main(): void {
  const role = parseRole(process.argv[2] ?? process.env.APP_ROLE);
  if (!role) {
    console.error('usage: server.js <api|worker|proxy> (or set APP_ROLE)');
    process.exit(2);
  }
  const cfg = loadConfig(role);
  setLogBase({ role });
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { err: String(err).slice(0, 300) }));
  if (role === 'api') startApi(cfg);
  else if (role === 'worker') startWorker(cfg);
  else startProxy(cfg);
}

main();
