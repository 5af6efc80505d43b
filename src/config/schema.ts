/**
 * The config schema: one zod definition for the server config file and for run configs
 * (CreateRun takes the same JSON). Validation happens once, here, at the edge; inner code
 * receives the typed, defaulted result and trusts it.
 */
import { z } from "zod";

const name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-' (starting with a letter or digit)");

const paths = z.array(z.string().min(1).max(4096)).min(1).max(10_000);

/**
 * A tokenizer: a path to a HF tokenizer.json, "tiktoken:<encoding>", or an object with the
 * same (`path` or `tiktoken`) and `eos` (end-of-document token string or id) when the
 * tokenizer does not name one of the usual ones.
 */
export const tokenizerConfig = z.union([
  z.string().min(1).max(4096),
  z
    .object({
      path: z.string().min(1).max(4096).optional(),
      tiktoken: z.string().min(1).max(64).optional(),
      eos: z.union([z.string().min(1), z.number().int().nonnegative().max(2 ** 32 - 1)]).optional(),
    })
    .strict()
    .refine((t) => (t.path === undefined) !== (t.tiktoken === undefined), { message: "set exactly one of path or tiktoken" }),
]);
export type TokenizerConfig = z.infer<typeof tokenizerConfig>;

/**
 * A JSONL source: one JSON object per line, the sample text in `textField`. Files may be
 * gzip- or zstd-compressed (recognised by their first bytes); `paths` entries may be
 * directories or globs.
 */
export const jsonlSource = z
  .object({
    format: z.literal("jsonl"),
    paths,
    textField: z.string().min(1).default("text"),
    /** Per-sample difficulty (curriculum) from this numeric field... */
    difficultyField: z.string().min(1).optional(),
    /** ...or from a file with one number per line, aligned with the samples. */
    difficultyFile: z.string().min(1).optional(),
  })
  .strict();

/** Parquet files: the text in column `textColumn`, read row group by row group. */
export const parquetSource = z
  .object({
    format: z.literal("parquet"),
    paths,
    textColumn: z.string().min(1).default("text"),
  })
  .strict();

/** Arrow IPC files or streams, and HF datasets `save_to_disk` folders (their .arrow shards). */
export const arrowSource = z
  .object({
    format: z.literal("arrow"),
    paths,
    textColumn: z.string().min(1).default("text"),
  })
  .strict();

/** Flat little-endian token files (nanoGPT style). */
export const tokenSource = z
  .object({
    format: z.literal("tokens"),
    paths,
    dtype: z.enum(["uint16", "uint32"]).default("uint16"),
    /** windows: fixed seq_len + 1 token windows; documents: split at `eosToken` or by `indexPaths`. */
    mode: z.enum(["windows", "documents"]).default("windows"),
    eosToken: z.number().int().nonnegative().max(2 ** 32 - 1).optional(),
    /** One per path: uint64 LE token offsets of document starts, or a Megatron-Core .idx. */
    indexPaths: z.array(z.string().min(1)).optional(),
    difficultyFile: z.string().min(1).optional(),
  })
  .strict();

/** Megatron-Core indexed datasets: paths are prefixes (or their .bin / .idx); dtype from the .idx. */
export const megatronSource = z
  .object({
    format: z.literal("megatron"),
    paths,
    mode: z.enum(["windows", "documents"]).default("windows"),
  })
  .strict();

export const sourceConfig = z.discriminatedUnion("format", [jsonlSource, parquetSource, arrowSource, tokenSource, megatronSource]);

export const domainConfig = z
  .object({
    name,
    train: sourceConfig,
    eval: sourceConfig.optional(),
    /** Tokenizer for this domain's text (overrides the run's). */
    tokenizer: tokenizerConfig.optional(),
    minWeight: z.number().finite().min(0).max(1).default(0),
    maxWeight: z.number().finite().min(0).max(1).default(1),
    pinned: z.boolean().default(false),
    /**
     * auto: when the run's strategy measures learnability on probes: with no eval split,
     * carve a cluster-disjoint holdout out of the train split (probe documents and their
     * near-duplicates leave training); with one, probe only eval documents no near-duplicate
     * of which stays in training (src/sources/disjoint-probes.ts). off: neither.
     */
    holdout: z.enum(["auto", "off"]).default("auto"),
  })
  .strict()
  .refine((d) => d.minWeight <= d.maxWeight, { message: "minWeight must be <= maxWeight", path: ["minWeight"] });

export const strategyConfig = z
  .object({
    name: z.string().min(1),
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

export const runConfig = z
  .object({
    id: name,
    domains: z.array(domainConfig).min(1).max(100_000),
    strategy: strategyConfig.default({ name: "static", params: {} }),
    /** B: slots per global step. */
    batchSize: z.number().int().min(1).max(1 << 20),
    /** W: data-parallel ranks; batchSize must be divisible by it. */
    worldSize: z.number().int().min(1).max(65_536).default(1),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(0),
    /** Steps in the run; 0 = unbounded. Steps at or past it get OUT_OF_RANGE. */
    maxSteps: z.number().int().min(0).max(2 ** 40).default(0),
    /** Token windows: tokens per window minus one (windows are seqLen + 1 long). */
    seqLen: z.number().int().min(1).max(1 << 20).default(1024),
    /**
     * Tokenizer for text domains. With one (here or on a domain), or with any token domain
     * in the run, batches carry tokens: text is tokenized at index time and packed into
     * seqLen + 1 windows with EOS between documents. Default for text domains next to token
     * domains: tiktoken gpt2 (the encoding nanoGPT-style uint16 .bin files use).
     */
    tokenizer: tokenizerConfig.optional(),
    /** Probe windows per domain when the strategy asks for eval losses. */
    evalProbes: z.number().int().min(1).max(4096).default(8),
    /** Aggregate a step's signals after this long even if not every rank reported. */
    aggregationTimeoutMs: z.number().int().min(0).max(86_400_000).default(30_000),
    /**
     * Steps a request may be ahead of the serving frontier (adaptive strategies): a batch
     * further ahead is refused with OUT_OF_RANGE, since serving it would hold every later
     * weights version back past it. Static strategies have no limit.
     */
    maxLookahead: z.number().int().min(1).max(2 ** 40).default(4096),
    /** Objective: which eval domains count, with weights (defaults: all equally). */
    objective: z.record(z.string(), z.number().finite().nonnegative()).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.batchSize % r.worldSize !== 0) {
      ctx.addIssue({ code: "custom", path: ["worldSize"], message: `batchSize ${r.batchSize} is not divisible by worldSize ${r.worldSize}` });
    }
    const seen = new Set<string>();
    r.domains.forEach((d, i) => {
      if (seen.has(d.name)) ctx.addIssue({ code: "custom", path: ["domains", i, "name"], message: `duplicate domain name "${d.name}"` });
      seen.add(d.name);
    });
    const minSum = r.domains.reduce((a, d) => a + d.minWeight, 0);
    const maxSum = r.domains.reduce((a, d) => a + d.maxWeight, 0);
    if (minSum > 1 + 1e-9) ctx.addIssue({ code: "custom", path: ["domains"], message: `sum of minWeight is ${minSum.toFixed(4)} > 1` });
    if (maxSum < 1 - 1e-9) ctx.addIssue({ code: "custom", path: ["domains"], message: `sum of maxWeight is ${maxSum.toFixed(4)} < 1` });
    if (r.objective) {
      for (const k of Object.keys(r.objective)) {
        if (!seen.has(k)) ctx.addIssue({ code: "custom", path: ["objective", k], message: `unknown domain "${k}" in objective` });
      }
    }
  });

export type RunConfig = z.infer<typeof runConfig>;
export type DomainConfig = z.infer<typeof domainConfig>;
export type SourceConfig = z.infer<typeof sourceConfig>;

export const serverConfig = z
  .object({
    /** Where indexes, the journal and other state live. */
    dataDir: z.string().min(1).default(".mixflow"),
    /** gRPC listen address. The default binds loopback only. */
    listen: z.string().min(1).default("127.0.0.1:50051"),
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        listen: z.string().min(1).default("127.0.0.1:9464"),
        /** Domain-labelled series per run beyond this are summed into domain="other". */
        maxDomainSeries: z.number().int().min(1).max(10_000).default(64),
      })
      .strict()
      .default({}),
    journal: z
      .object({
        /** fsync (default): acknowledged means on disk. none: for tests and benchmarks only. */
        durability: z.enum(["fsync", "none"]).default("fsync"),
        segmentBytes: z.number().int().min(4096).default(64 * 1024 * 1024),
        /** Write a snapshot of every run after this many records, so recovery starts there. */
        checkpointEvery: z.number().int().min(1).default(100_000),
        /**
         * Keep the segments before a checkpoint (default): offline replay (export, simulate)
         * reads the full history. false: delete them at each checkpoint (compaction), so the
         * journal stays bounded; replay then only sees what came after the last checkpoint.
         */
        keepHistory: z.boolean().default(true),
      })
      .strict()
      .default({}),
    limits: z
      .object({
        /** Largest message sent (batches can be large: slots × tokens). */
        maxMessageBytes: z.number().int().min(1024).max(2 ** 31 - 1).default(256 * 1024 * 1024),
        /**
         * Largest request accepted. Requests are reports and run configs, far smaller than
         * batches; a lower bound here caps what one call can make the server buffer.
         */
        maxReceiveMessageBytes: z.number().int().min(1024).max(2 ** 31 - 1).default(32 * 1024 * 1024),
        maxRuns: z.number().int().min(1).default(1000),
        /** CreateRun's config_json, in bytes. */
        maxConfigBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024),
        /** Domains in one run (CreateRun); each costs open files, indexes and strategy state. */
        maxDomainsPerRun: z.number().int().min(1).max(100_000).default(1024),
        /** Distinct (world size, rank) pairs one run serves; also caps a CreateRun worldSize. */
        maxRanksPerRun: z.number().int().min(1).max(1 << 20).default(4096),
        /** Concurrent StreamBatches + WatchWeights calls of one client connection. */
        maxStreamsPerConnection: z.number().int().min(1).max(100_000).default(256),
        /** Concurrent calls of any kind on one HTTP/2 connection (grpc.max_concurrent_streams). */
        maxCallsPerConnection: z.number().int().min(1).max(1_000_000).default(4096),
        /** ReportSignals calls per second per run (token bucket refill rate). */
        reportsPerSecond: z.number().positive().max(1e9).default(20_000),
        /** Bucket size: reports a run may send at once above the rate. Default: one second's worth. */
        reportBurst: z.number().int().min(1).max(1e9).optional(),
      })
      .strict()
      .default({}),
    /**
     * Bearer-token auth. Off by default, for local use on a loopback address; it turns on
     * when an admin token is configured (or with enabled: true, which then requires one).
     */
    auth: z
      .object({
        enabled: z.boolean().optional(),
        /** The admin token in clear (prefer adminTokenFile or adminTokenEnv). */
        adminToken: z.string().min(16).max(4096).optional(),
        /** A file whose content (trimmed) is the admin token. */
        adminTokenFile: z.string().min(1).optional(),
        /** An environment variable holding the admin token. */
        adminTokenEnv: z.string().min(1).optional(),
        /** Fixed run tokens by run id: the token in clear or "sha256:<64 hex digits>". */
        runTokens: z.record(name, z.string().min(16).max(4096)).default({}),
      })
      .strict()
      .superRefine((a, ctx) => {
        const sources = [a.adminToken, a.adminTokenFile, a.adminTokenEnv].filter((x) => x !== undefined).length;
        if (sources > 1) ctx.addIssue({ code: "custom", path: ["adminToken"], message: "set only one of adminToken, adminTokenFile, adminTokenEnv" });
        if (a.enabled === true && sources === 0) {
          ctx.addIssue({ code: "custom", path: ["adminToken"], message: "auth is enabled but no admin token is configured: set adminToken, adminTokenFile or adminTokenEnv" });
        }
      })
      .default({}),
    /** TLS for the gRPC port from PEM files; with `ca` and requireClientCert, mutual TLS. */
    tls: z
      .object({
        cert: z.string().min(1),
        key: z.string().min(1),
        /** CA bundle that client certificates must chain to. */
        ca: z.string().min(1).optional(),
        requireClientCert: z.boolean().default(false),
      })
      .strict()
      .refine((t) => !t.requireClientCert || t.ca !== undefined, { message: "requireClientCert needs ca (the CA that signs client certificates)", path: ["ca"] })
      .optional(),
    logLevel: z.enum(["debug", "info", "warn", "error", "silent"]).default("warn"),
    runs: z.array(runConfig).default([]),
  })
  .strict();

export type ServerConfig = z.infer<typeof serverConfig>;
