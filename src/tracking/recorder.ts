// Tracking writes are buffered and committed every FLUSH_MS in one
// transaction: a burst of clicks becomes a few fsyncs, not one per click.
// stop() flushes, so a clean shutdown loses nothing.
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import type { Hit } from '../store/tracking.js';

const FLUSH_MS = 100;

export class HitRecorder {
  private buf: Hit[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private store: Store,
    private logger: Logger,
  ) {}

  add(hit: Hit): void {
    this.buf.push(hit);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref?.();
    }
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.buf;
    this.buf = [];
    if (!batch.length) return;
    try {
      await this.store.committer.run(() => {
        for (const h of batch) this.store.tracking.recordHit(h);
      });
    } catch (e) {
      this.logger.error({ err: e, hits: batch.length }, 'tracking hits not recorded');
    }
  }

  /** Flushes synchronously (shutdown path). */
  flushNow(): void {
    const p = this.flush();
    this.store.committer.flush();
    void p;
  }
}
