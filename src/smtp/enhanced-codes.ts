// smtp-server adds its own enhanced status code to every reply from a table
// keyed on the basic code (550 → 5.1.1 whatever the reason). Our replies carry
// the precise RFC 3463 code in their text, so for those we switch its guess
// off; replies smtp-server composes itself keep its codes.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;
let patched = false;

export function preferOwnEnhancedCodes(): void {
  if (patched) return;
  const proto = (SMTPConnection as unknown as { prototype: any }).prototype;
  if (!proto?.send) throw new Error('smtp-server internals changed: SMTPConnection.send not found');
  const send = proto.send as (code: number, data: unknown, context?: unknown) => void;
  proto.send = function (this: unknown, code: number, data: unknown, context?: unknown) {
    if (typeof data === 'string' && ENHANCED.test(data)) return send.call(this, code, data, false);
    return send.call(this, code, data, context);
  };
  patched = true;
}
