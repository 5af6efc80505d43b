/**
 * Stream pacing: a rank's stream may run at most `ahead` steps past the last step that
 * rank reported. Without this, HTTP/2 flow control lets a stream buffer dozens of batches
 * in the client, the serving frontier races ahead of training, and every new version takes
 * effect that many steps late. Only streams that ask for it are paced (`pace_by_reports`),
 * and a rank whose reports stall for the aggregation timeout is released.
 *
 * Ranks are keyed by their slice ("offset:slots"), so the map is bounded by the rank limit.
 */
import type { Timers } from "./timers.js";

export class Pacer {
  /** Per rank slice: the highest step it reported, and when. */
  private readonly reported = new Map<string, { step: number; at: number }>();
  private readonly waiters = new Set<{ key: string; done: () => void }>();

  constructor(
    private readonly now: () => number,
    private readonly timers: Timers,
    /** A stalled rank is released after this long (the run's aggregation timeout). */
    private readonly releaseMs: number,
  ) {}

  /** May this slice's stream serve `step`, `ahead` steps at most past its last report? */
  mayServeAhead(offset: number, slots: number, step: number, ahead: number): boolean {
    const r = this.reported.get(`${offset}:${slots}`);
    if (!r) return true;
    return step <= r.step + ahead || this.now() - r.at >= this.releaseMs;
  }

  /** Start pacing a slice's stream from `from` (as if it had reported up to from − 1, now). */
  start(offset: number, slots: number, from: number): void {
    const key = `${offset}:${slots}`;
    if (!this.reported.has(key)) this.reported.set(key, { step: from - 1, at: this.now() });
  }

  /**
   * Resolves at this slice's next report, after the release time, or when `stop` aborts.
   * The stop listener is removed when the wait ends: a stream waits once per step for its
   * whole life, and a closure left on a long-lived stop signal per wait was a leak of
   * ~1 KiB per rank-step (test/load/heap-slope.test.ts).
   */
  waitForReport(offset: number, slots: number, stop: AbortSignal): Promise<void> {
    const key = `${offset}:${slots}`;
    const r = this.reported.get(key);
    const wait = r ? Math.max(1, r.at + this.releaseMs - this.now()) : 1;
    return new Promise<void>((resolve) => {
      if (stop.aborted) return resolve();
      const done = (): void => {
        timer.cancel();
        this.waiters.delete(w);
        stop.removeEventListener("abort", done);
        resolve();
      };
      const w = { key, done };
      const timer = this.timers.set(done, wait);
      this.waiters.add(w);
      stop.addEventListener("abort", done, { once: true });
    });
  }

  /** A slice reported `step` (or re-sent an earlier one): wake its stream. */
  noteReported(offset: number, slots: number, step: number): void {
    const key = `${offset}:${slots}`;
    const r = this.reported.get(key);
    if (!r || step > r.step) this.reported.set(key, { step, at: this.now() });
    else r.at = this.now();
    for (const w of [...this.waiters]) if (w.key === key) w.done();
  }
}
