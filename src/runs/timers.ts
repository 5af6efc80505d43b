/**
 * The timers a run arms: the aggregation timeout and a paced stream's wait for its rank's
 * next report. They are an injection seam beside `RunDeps.now`, so unit tests drive both
 * on a fake clock and fire them by hand instead of sleeping.
 */

/** A one-shot timer; `cancel` is idempotent. */
export interface TimerHandle {
  cancel(): void;
}

export interface Timers {
  /** Call `fn` once after `ms`. `background`: the timer does not keep the process alive. */
  set(fn: () => void, ms: number, background?: boolean): TimerHandle;
}

/** Node's timers. */
export const realTimers: Timers = {
  set(fn, ms, background = false) {
    const t = setTimeout(fn, ms);
    if (background) t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
