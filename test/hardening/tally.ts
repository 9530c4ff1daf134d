// Figures the hardening suites print (issue 6): how many bad inputs were tried,
// how many left the gateway unable to serve the next client ("crashes"), and
// how many got no answer within the bound ("hangs").
export interface Tally {
  tried: number;
  crashes: number;
  hangs: number;
  failures: string[];
}

export const newTally = (): Tally => ({ tried: 0, crashes: 0, hangs: 0, failures: [] });

export const isTimeout = (e: unknown): boolean => /no SMTP reply within|timed out|TimeoutError|aborted due to timeout/i.test(String((e as Error)?.message ?? e));

export function report(suite: string, t: Tally, startedAt: number): void {
  console.log(
    `[${suite}] bad inputs tried: ${t.tried}, crashes: ${t.crashes}, hangs: ${t.hangs}, ` +
      `failed assertions: ${t.failures.length}, ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
  );
}

/** Offsets of every CR not followed by LF and every LF not preceded by CR. */
export function bareLineBreaks(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 13 && b[i + 1] !== 10) out.push(i);
    if (b[i] === 10 && b[i - 1] !== 13) out.push(i);
  }
  return out;
}
