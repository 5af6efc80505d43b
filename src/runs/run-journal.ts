/**
 * Every journal write of a run goes through here, because of one rule: the journal stops for
 * good after a failed write, and the run's memory may already hold what was not recorded
 * (state first, durability second), so after a failure nothing more is written and no report
 * is acknowledged, not even as a duplicate. The first failure (UNAVAILABLE, see errors.ts)
 * is kept and thrown from then on.
 */
import { MixflowError } from "../errors.js";
import type { RunEvent, RunLog } from "../history/events.js";

export class RunJournal {
  private failure: MixflowError | null = null;

  constructor(private readonly log: RunLog) {}

  /** Throws the first failed write's error, if a write has failed. */
  check(): void {
    if (this.failure) throw this.failure;
  }

  async write(events: readonly RunEvent[]): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      await this.log.write(events);
    } catch (e) {
      this.failure ??= MixflowError.from(e);
      throw e;
    }
  }
}
