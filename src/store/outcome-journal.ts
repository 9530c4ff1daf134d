// The delivery thread's outcome journal: one line appended per finished attempt
// the moment its reply is known, before the database hears of it. A write(2) to
// a file needs no lock, so recording a remote 250 never waits for the main
// thread's group commit to finish its fsync — the wait that made the window
// between "the remote has it" and "we know it" (a crash inside it sends the
// message again) tens of milliseconds long under load. Once the outcomes are
// in the database the journal is emptied; start-up applies whatever a killed
// process left in it. Like Committer.runNow it survives SIGKILL, not a power
// cut: what a power cut takes is sent again, never lost.
import fs from 'node:fs';
import path from 'node:path';
import type { AttemptOutcome } from './queue.js';

export const JOURNAL_FILE = 'outcomes.journal';

export interface JournalEntry {
  /** With `attempt` set, so applying it twice records it once. */
  outcome: AttemptOutcome & { attempt: number };
  /** Add this address to the domain's suppression list (a bad-mailbox bounce). */
  suppress?: { domain: string; email: string };
}

export class OutcomeJournal {
  private fd: number;
  /** Bytes in the file: non-zero means entries the database may not have yet. */
  private size: number;
  private cutShort = false;

  constructor(dataDir: string) {
    const file = path.join(dataDir, JOURNAL_FILE);
    this.fd = fs.openSync(file, 'a+', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  append(entries: JournalEntry[]): void {
    // A line cut short by a failed append must not swallow the next one: start on a new line.
    const lead = this.cutShort ? '\n' : '';
    const buf = Buffer.from(lead + entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    // One write(2) per batch; O_APPEND keeps it whole at the end of the file.
    let off = 0;
    try {
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off);
    } catch (e) {
      if (off > 0) {
        // Part of it was written (disk full): cut it off, or failing that, remember it is there.
        try {
          fs.ftruncateSync(this.fd, this.size);
        } catch {
          this.size += off;
          this.cutShort = true;
        }
      }
      throw e;
    }
    this.size += buf.length;
    this.cutShort = false;
  }

  /** What the file holds; `torn` counts lines cut short (a kill during a write) and skipped. */
  read(): { entries: JournalEntry[]; torn: number } {
    if (this.size === 0) return { entries: [], torn: 0 };
    // At an explicit offset: with O_APPEND the file position is wherever the last write left it.
    const buf = Buffer.alloc(this.size);
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(this.fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    const text = buf.subarray(0, got).toString('utf8');
    const entries: JournalEntry[] = [];
    let torn = 0;
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as JournalEntry;
        if (typeof e?.outcome?.recipientId === 'number' && typeof e.outcome.attempt === 'number') entries.push(e);
        else torn++;
      } catch {
        torn++;
      }
    }
    return { entries, torn };
  }

  /** Call only when everything appended is in the database. */
  clear(): void {
    if (this.size === 0) return;
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
    this.cutShort = false;
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    // The number may soon belong to another file (the database's): a late append must fail, not write there.
    this.fd = -1;
  }
}
