// One pino root; components and sessions take children carrying their ids.
// Secrets are redacted by path, and message bodies are never logged.
import pino, { type Logger } from 'pino';

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { app: 'relaygate' },
      redact: {
        paths: ['password', 'pass', 'key', 'secret', 'authorization', '*.password', '*.pass', '*.secret', '*.authorization', 'privateKey', '*.privateKey'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

export const silentLogger = (): Logger => pino({ level: 'silent' });
