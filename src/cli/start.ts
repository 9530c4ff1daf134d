// `relaygate start` / `npm start`: one process running everything. package.json
// starts it with `exec node …` so SIGTERM reaches us instead of dying with the
// npm shell (VERIFIED-STACK §4).
import { loadConfig } from '../config/load.js';
import { startGateway } from '../gateway.js';
import { createLogger } from '../logger.js';

/** Exit no later than this after SIGTERM, even if a peer holds a delivery open. */
const SHUTDOWN_BUDGET_MS = 9_000;

export async function runStart(configPath: string | undefined, overrides: Record<string, unknown>): Promise<void> {
  const config = await loadConfig({ configPath, overrides });
  const logger = createLogger(config.log.level);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting (acknowledged mail is safe in the queue)');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting (acknowledged mail is safe in the queue)');
    process.exit(1);
  });

  const gw = await startGateway(config, { logger });
  logger.info(
    { smtpPort: gw.smtpPort, smtpsPort: gw.smtpsPort, httpPort: gw.httpPort, dataDir: config.dataDir, publicUrl: config.http.publicUrl },
    `relaygate ready: SMTP ${config.smtp.host}:${gw.smtpPort}, HTTP ${config.http.host}:${gw.httpPort}`,
  );

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      // Claimed deliveries still open are released on the next start; nothing acknowledged is lost.
      logger.warn('shutdown budget exceeded; exiting with work released for the next start');
      process.exit(0);
    }, SHUTDOWN_BUDGET_MS);
    force.unref();
    gw.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
