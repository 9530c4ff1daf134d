// Retry timing (pure). `attempts` counts attempts made so far, the failed one
// included; the schedule's last step repeats once it runs out (SPEC §2:
// "then every 8h").
export function nextAttemptAt(now: number, attempts: number, schedule: number[]): number {
  const i = Math.min(Math.max(attempts - 1, 0), schedule.length - 1);
  return now + schedule[i];
}

/** Per-attempt timeouts never run past the message's expiry, so a tarpit cannot hold a recipient beyond maxAge. */
export function capTimeout(configured: number, deadline: number, now: number, floor = 1000): number {
  return Math.max(floor, Math.min(configured, deadline - now));
}
