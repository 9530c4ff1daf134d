// Assembles one gateway process from its config: storage, the SMTP listener(s),
// the delivery worker, the HTTP server and the background jobs. stop() is the
// reverse order: stop accepting, finish or release work, flush, close.
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { createSigner } from './dkim/sign.js';
import { createDeliveryThread, type DeliveryRunner } from './delivery/thread.js';
import { createDomainService } from './domains/service.js';
import { createHttpApp } from './http/app.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { PipelineDeps } from './pipeline/submit.js';
import { ensureSecret } from './secret.js';
import { startSmtpListener, type SmtpListener } from './smtp/listener.js';
import { ensureCertificate } from './smtp/tls.js';
import { openStore, type Store } from './store/index.js';
import { HitRecorder } from './tracking/recorder.js';
import { createWebhookDispatcher, type WebhookDispatcher } from './webhooks/dispatcher.js';

export interface Gateway {
  config: Config;
  store: Store;
  smtpPort: number;
  smtpsPort: number | null;
  httpPort: number;
  worker: DeliveryRunner;
  logger: Logger;
  stop(): Promise<void>;
}

export async function startGateway(config: Config, opts: { logger?: Logger } = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const startedAt = Date.now();
  const store = openStore(config.dataDir);
  ensureSecret(config.dataDir, config.tracking.secret);
  const tls = await ensureCertificate(config.certsDir, config.hostname);
  if (tls.generated) logger.warn({ cert: tls.certPath }, 'generated a self-signed TLS certificate; replace it with a real one');
  const metrics = createMetrics();
  const signer = createSigner();
  const worker = createDeliveryThread({ config, store, logger, metrics });
  const pipeline: PipelineDeps = {
    config,
    store,
    signer,
    logger,
    onQueued: () => worker.wake(),
  };
  const domains = createDomainService({ config, store, logger });
  const recorder = new HitRecorder(store, logger);
  const dispatcher: WebhookDispatcher = createWebhookDispatcher({ config, store, logger, metrics });
  pipeline.onQueued = () => {
    worker.wake();
    dispatcher.wake();
  };

  const listeners: SmtpListener[] = [];
  let http: ServerType | null = null;
  const cleanup = async () => {
    await Promise.allSettled(listeners.map((l) => l.close()));
    if (http) await new Promise<void>((r) => http!.close(() => r()));
    await worker.stop();
    await dispatcher.stop();
    await recorder.flush();
    await signer.close();
    store.close();
  };

  try {
    listeners.push(await startSmtpListener(pipeline, { port: config.smtp.port, host: config.smtp.host, secure: false, tls }));
    if (config.smtp.securePort !== null) {
      listeners.push(await startSmtpListener(pipeline, { port: config.smtp.securePort, host: config.smtp.host, secure: true, tls }));
    }
    const app = createHttpApp({ config, store, pipeline, domains, metrics, logger, recorder, startedAt, onWebhookChange: () => dispatcher.wake() });
    const httpPort = await new Promise<number>((resolve, reject) => {
      const server = serve({ fetch: app.fetch, port: config.http.port, hostname: config.http.host }, (info) => resolve(info.port));
      http = server;
      server.once('error', reject);
    });
    logger.info({ port: httpPort, host: config.http.host }, 'HTTP server started');
    await worker.start();
    dispatcher.start();
    const reverify = setInterval(() => void domains.reverifyAll(), config.dns.reverifyInterval);
    reverify.unref();

    let stopped: Promise<void> | null = null;
    return {
      config,
      store,
      logger,
      worker,
      smtpPort: listeners[0].port,
      smtpsPort: listeners[1]?.port ?? null,
      httpPort,
      stop() {
        stopped ??= (async () => {
          clearInterval(reverify);
          logger.info('stopping');
          await cleanup();
          logger.info('stopped');
        })();
        return stopped;
      },
    };
  } catch (e) {
    await cleanup().catch(() => undefined);
    throw e;
  }
}
