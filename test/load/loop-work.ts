/**
 * How long the event loop is kept busy, in the work done rather than in wall time: the
 * main thread's CPU time (Linux /proc/thread-self/schedstat, nanoseconds) consumed between
 * two turns of a 5 ms timer is the longest synchronous stretch the loop ran between them.
 * Unlike `monitorEventLoopDelay`, which also counts the time the OS did not schedule the
 * process at all (tens of ms on a shared, loaded 2-core machine, whatever the server does),
 * this does not grow when other processes compete for the CPU: an absolute budget on it is
 * a bound on the server's own blocking that holds on a busy machine. Worker threads' CPU
 * is not counted (the file is per thread).
 */
import * as fs from "node:fs";
import { createHistogram, type RecordableHistogram } from "node:perf_hooks";

const STAT = "/proc/thread-self/schedstat";

function threadCpuNs(): number {
  return Number(fs.readFileSync(STAT, "utf8").split(" ")[0]);
}

/** Must be called on the thread to measure (the event loop's). Fails naming what is missing. */
export function monitorLoopWork(intervalMs = 5): { stop(): RecordableHistogram; top(): number[] } {
  if (!fs.existsSync(STAT)) throw new Error(`${STAT} is missing: this measurement needs Linux with schedstat (CONFIG_SCHED_INFO), as every Debian kernel has`);
  const h = createHistogram();
  let last = threadCpuNs();
  const largest: number[] = [];
  let timer: NodeJS.Timeout | null = null;
  const tick = (): void => {
    const now = threadCpuNs();
    h.record(Math.max(1, now - last));
    if (largest.length < 5 || now - last > largest[largest.length - 1]!) {
      largest.push(now - last);
      largest.sort((a, b) => b - a).splice(5);
    }
    last = now;
    timer = setTimeout(tick, intervalMs);
  };
  timer = setTimeout(tick, intervalMs);
  return {
    stop() {
      if (timer) clearTimeout(timer);
      return h;
    },
    /** The five largest turns, in ms, largest first. */
    top() {
      return largest.map((ns) => Number((ns / 1e6).toFixed(1)));
    },
  };
}
