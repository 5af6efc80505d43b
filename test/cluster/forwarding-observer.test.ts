/**
 * The cluster wraps each run's observer (metrics) to queue acknowledged signals for the
 * leader. Every other callback must reach the inner observer unchanged: staleReport was
 * once dropped, so cluster mode never counted stale reports.
 */
import { describe, expect, it } from "vitest";
import type { SignalsEvent } from "../../src/history/events.js";
import type { RunObserver } from "../../src/runs/run.js";
import { forwardingObserver, type SignalOutbox } from "../../src/cluster/signal-outbox.js";

describe("forwardingObserver", () => {
  it("passes every callback on to the inner observer and queues signals", () => {
    const calls: string[] = [];
    const record =
      (name: string) =>
      (...args: unknown[]): void => {
        calls.push(`${name}:${args.length}`);
      };
    const inner: Required<RunObserver> = {
      served: record("served"),
      signal: record("signal"),
      rejected: record("rejected"),
      staleReport: record("staleReport"),
      aggregated: record("aggregated"),
      version: record("version"),
      strategyUpdate: record("strategyUpdate"),
    };
    const queued: SignalsEvent[] = [];
    const outbox = { push: (e: SignalsEvent) => queued.push(e) } as unknown as SignalOutbox;
    const o = forwardingObserver(inner, (id) => (id === "r" ? outbox : undefined));
    const run = { id: "r" } as never;
    const ev = { runId: "r", step: 3 } as unknown as SignalsEvent;
    o.served(run, {} as never, 0.1, { step: 0, rank: 0 });
    o.signal(run, ev);
    o.rejected(run, "why");
    o.staleReport(run, 7);
    o.aggregated(run, 1, [1], null);
    o.version(run, {} as never);
    o.strategyUpdate(run, 0.2);
    expect(calls).toEqual(["served:4", "signal:2", "rejected:2", "staleReport:2", "aggregated:4", "version:2", "strategyUpdate:2"]);
    expect(queued).toEqual([ev]);
    expect(Object.keys(o).sort()).toEqual(Object.keys(inner).sort());
  });
});
