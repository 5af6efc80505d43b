/**
 * The face of src/runs: what the server, metrics and tools use of runs. Serving returns a
 * domain `ServedBatch`, reports come in as a checked slice plus the decoded request, and
 * everything else (the rooms a `Run` composes: versions, admission, intake, pacing,
 * aggregation, recovery) stays inside the folder.
 */
export { Run, LEASE_CHUNK, digestHex } from "./run.js";
export type { RunDeps, RunObserver, ReportAck } from "./run.js";
export type { EvalProbe, LazyBytes, ServedBatch, ServedPayload, ServedSlice } from "./served.js";
export type { SliceGeometry } from "./slice.js";
export type { ReportInput } from "./report.js";
export { writeU64 } from "./assemble.js";
export { RunRegistry, sameRunConfig } from "./registry.js";
export type { JournalObserver, Preparation, RegistryOptions, RunHooks } from "./registry.js";
export type { Timers, TimerHandle } from "./timers.js";
