// One error type for the whole gateway. The code is stable (API clients and
// tests match on it); smtp/enhanced/http say how each edge shows it, so the
// decision "permanent or temporary" is made once, where the error is raised.
export interface GatewayErrorOptions {
  /** SMTP reply code the submission edge answers with (e.g. 550). */
  smtp?: number;
  /** RFC 3463 enhanced status code (e.g. '5.7.1'). */
  enhanced?: string;
  /** HTTP status the API answers with. */
  http?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: string;
  readonly smtp: number;
  readonly enhanced: string;
  readonly http: number;

  constructor(code: string, message: string, opts: GatewayErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.smtp = opts.smtp ?? 451;
    this.enhanced = opts.enhanced ?? (this.smtp >= 500 ? '5.0.0' : '4.0.0');
    this.http = opts.http ?? (this.smtp >= 500 ? 400 : 503);
  }

  /** `550 5.7.1 message` as an SMTP client sees it. */
  get smtpReply(): string {
    return `${this.smtp} ${this.enhanced} ${this.message}`;
  }

  get temporary(): boolean {
    return this.smtp < 500;
  }
}

export const isGatewayError = (e: unknown): e is GatewayError => e instanceof GatewayError;
