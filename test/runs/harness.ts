/**
 * A `Run` built directly, with no server: real domains (JSONL files in a temp dir, opened
 * by the real loader), a journal kept in memory whose writes a test can hold, and a fake
 * clock whose timers fire only when the test moves time. Nothing here sleeps.
 */
import { z } from "zod";
import { runConfig, type RunConfig } from "../../src/config/schema.js";
import type { RunEvent, RunLog } from "../../src/history/events.js";
import { loadDomains } from "../../src/runs/domains.js";
import { Run, type RunDeps } from "../../src/runs/run.js";
import type { TimerHandle, Timers } from "../../src/runs/timers.js";
import type { AnyStrategy, Strategy } from "../../strategies/types.js";
import { runConfigFor, tmpDir } from "../helpers/fixtures.js";

/** Time that moves only when told; timers fire in due order as it passes them. */
export class FakeClock implements Timers {
  t = 1_000_000;
  private seq = 0;
  private readonly queue: { at: number; seq: number; fn: () => void; live: boolean }[] = [];

  readonly now = (): number => this.t;

  set(fn: () => void, ms: number): TimerHandle {
    const entry = { at: this.t + ms, seq: this.seq++, fn, live: true };
    this.queue.push(entry);
    return { cancel: () => void (entry.live = false) };
  }

  /** Armed timers not yet fired or cancelled. */
  get pending(): number {
    return this.queue.filter((e) => e.live).length;
  }

  /** Move time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.queue.filter((e) => e.live && e.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      due.live = false;
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }
}

/** The run's journal in memory. `hold(pred)`: matching writes wait until released. */
export class MemoryLog implements RunLog {
  readonly events: RunEvent[] = [];
  writes = 0;
  private holding: ((events: readonly RunEvent[]) => boolean) | null = null;
  private readonly held: (() => void)[] = [];
  failWith: Error | null = null;

  write(events: readonly RunEvent[]): Promise<void> {
    this.writes++;
    if (this.failWith) return Promise.reject(this.failWith);
    if (this.holding?.(events)) {
      return new Promise<void>((resolve) => {
        this.held.push(() => {
          this.events.push(...events);
          resolve();
        });
      });
    }
    this.events.push(...events);
    return Promise.resolve();
  }

  hold(pred: (events: readonly RunEvent[]) => boolean): void {
    this.holding = pred;
  }

  /** Stop holding and complete every held write, in order. */
  release(): void {
    this.holding = null;
    for (const r of this.held.splice(0)) r();
  }

  get heldCount(): number {
    return this.held.length;
  }

  ofType<T extends RunEvent["type"]>(type: T): Extract<RunEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);
  }
}

/**
 * A strategy that commits a new version on every update (weights rotate with the update
 * count) and, when `evalEvery` > 0, asks for an eval that many steps ahead. Pure.
 */
export function rotating(evalEvery = 0): AnyStrategy {
  const s: Strategy<Record<string, never>, { updates: number }> = {
    name: "rotating",
    summary: "test: a new version per update",
    params: z.object({}).strict(),
    init: (ctx) => ({ state: { updates: 0 }, weights: ctx.domains.map(() => 1 / ctx.domains.length) }),
    update: (ctx, _p, state, signals) => {
      const updates = state.updates + 1;
      const k = ctx.domains.length;
      const weights = ctx.domains.map((_, d) => (d === updates % k ? 2 : 1) / (k + 1));
      return { state: { updates }, weights, reason: `update ${updates} saw ${signals.count.reduce((a, b) => a + b, 0)} samples`, ...(evalEvery > 0 ? { requestEvalIn: evalEvery } : {}) };
    },
  };
  return s as AnyStrategy;
}

export interface Harness {
  run: Run;
  log: MemoryLog;
  clock: FakeClock;
  config: RunConfig;
  dir: string;
  errors: unknown[];
  /** A second run over the same config and domains, recovered from `log`'s events. */
  recover(): Promise<Run>;
}

export function makeRun(over: Record<string, unknown> = {}, strategy: AnyStrategy = rotating(), opts: { dir?: string } = {}): Harness {
  const dir = opts.dir ?? tmpDir("mixflow-run-unit-");
  const config = runConfig.parse(runConfigFor(dir, { aggregationTimeoutMs: 5_000, ...over }));
  const log = new MemoryLog();
  const clock = new FakeClock();
  const errors: unknown[] = [];
  const deps = (l: RunLog): RunDeps => ({ log: l, now: clock.now, timers: clock, onStrategyError: (_r, _s, e) => void errors.push(e) });
  const build = (l: RunLog): Run => new Run(config, loadDomains(config, { cacheDir: `${dir}/index`, baseDir: dir }), strategy, {}, deps(l));
  const run = build(log);
  log.events.push(...run.initialise());
  return {
    run,
    log,
    clock,
    config,
    dir,
    errors,
    async recover() {
      const again = build(new MemoryLog());
      again.initialiseForReplay();
      for (const e of log.events) again.replay(e);
      await again.finishRecovery();
      return again;
    },
  };
}

/** A per-sample report of `slots` equal losses. */
export function losses(slots: number, v = 1): { sample_losses: Buffer } {
  return { sample_losses: Buffer.from(new Float32Array(slots).fill(v).buffer) };
}
