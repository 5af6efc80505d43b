/**
 * The face of src/sources: what runs, tokenize, workers and replay use of the data
 * sources. A `Source` is one split's samples behind one interface (text documents or token
 * windows); what is here besides the source classes is what surrounds them: how a split's
 * files are named and read (paths, Megatron indexes, text formats), the caches and stats
 * computed at indexing, held-out carving, near-duplicates, and the data identity that
 * recovery and `replay verify` check (fingerprints, content digests). Opening a split from
 * its config joins sources with src/tokenize, so it lives with the domain loader
 * (src/runs/open-source.ts).
 */
export { SourceError, type Source, type SourceKind } from "./source.js";
export { JsonlSource } from "./jsonl-source.js";
export { TextBlobSource } from "./text-blob-source.js";
export { TokenSource } from "./token-source.js";
export { SubsetSource } from "./subset.js";
export { expandPaths } from "./expand-paths.js";
export { megatronDtype, megatronPaths, readMegatronIndex } from "./megatron.js";
export { compressionOf, readDocuments, sniff, type TextFileSpec, type TextFormat } from "./text-files.js";
export { FileBytes, dropPreloaded, preloadWholeFiles, recordWholeFiles } from "./file-bytes.js";
export { fingerprint } from "./index-cache.js";
export { STATS_SAMPLE, cachedJson, contentKey, domainStats } from "./domain-stats.js";
export { carveHoldout, type Holdout } from "./holdout.js";
export { disjointEvalProbes, type DisjointProbes } from "./disjoint-probes.js";
export { difficultyOrder } from "./difficulty.js";
export { sharedDuplicateFraction } from "./near-dup.js";
export { setSourceWarningSink, sourceWarning } from "./warnings.js";
export { checkDataFingerprint, dataChangedMessage, runDataFingerprint, type FileFingerprint, type SplitFingerprint } from "./data-fingerprint.js";
export { ContentLedger, sliceDigest } from "./content-digest.js";
