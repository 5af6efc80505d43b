/**
 * A client process for the cut-off test: opens server streams against argv[2] (run
 * argv[3]), prints "ready" once each has received data or been registered, then waits to
 * be killed (SIGKILL: no goodbye frames, the server only sees the socket close).
 */
import { RawMixer } from "../security/helpers.js";

const [address, runId] = process.argv.slice(2) as [string, string];
const raw = new RawMixer(address);
for (let i = 0; i < 4; i++) void raw.stream("StreamBatches", { run_id: runId, from_step: 0, rank: i % 2, prefetch: 2 }, { deadlineMs: 600_000 });
for (let i = 0; i < 2; i++) void raw.stream("WatchWeights", { run_id: runId, after_version: 0 }, { deadlineMs: 600_000 });
setTimeout(() => process.stdout.write("ready\n"), 500);
setInterval(() => undefined, 1000);
