/**
 * The face of src/sampling: the pure functions a batch is made of. `BatchPlanner` plans a
 * step's global batch from the run's seed and versions (random access in the step);
 * `Apportioner` turns weights into exact per-step domain counts; `Permutation` walks a
 * domain's epoch without replacement; the hashes key all of it. Nothing here does I/O.
 */
export { BatchPlanner, type GlobalBatch, type PlanDomain, type PlanVersion } from "./plan.js";
export { Apportioner, type ApportionVersion, type StepCounts } from "./apportion.js";
export { Permutation } from "./permutation.js";
export { fmix32, hashString, hashWords, mix } from "./hash.js";
