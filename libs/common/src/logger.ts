import type { LoggerService } from '@nestjs/common';
import { pino, type Logger } from 'pino';

/** pino JSON for Nest's own logs and ours; redacts anything that looks like a credential. */
export function createPino(level: string, name: string): Logger {
  return pino({
    level,
    base: { service: name },
    redact: { paths: ['authorization', 'secret', 'key', '*.authorization', '*.secret', 'req.headers.authorization'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

export class PinoNestLogger implements LoggerService {
  constructor(private readonly pino: Logger) {}
  log(message: unknown, context?: string) {
    this.write('info', message, context);
  }
  error(message: unknown, ...rest: unknown[]) {
    this.write('error', message, typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined);
  }
  warn(message: unknown, context?: string) {
    this.write('warn', message, context);
  }
  debug(message: unknown, context?: string) {
    this.write('debug', message, context);
  }
  verbose(message: unknown, context?: string) {
    this.write('trace', message, context);
  }
  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace', message: unknown, context?: string) {
    if (message && typeof message === 'object') this.pino[level]({ context, ...(message as object) });
    else this.pino[level]({ context }, String(message));
  }
}
