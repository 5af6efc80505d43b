/**
 * The registry of runs: creation (from CreateRun or the config file), lookup, closing,
 * and the journal behind them — recovery at start, durable writes, periodic checkpoints.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunConfig, ServerConfig } from "../config/schema.js";
import { runConfig } from "../config/schema.js";
import { parseOrThrow } from "../config/validate.js";
import { checkDomainMaps } from "../config/domain-maps.js";
import { MixflowError, invalid, journalUnavailable, notFound, precondition } from "../errors.js";
import { checkDataFingerprint, dataChangedMessage, setSourceWarningSink } from "../sources/index.js";
import { runInWorker } from "../workers/pool.js";
import { Journal } from "../journal/index.js";
import { getStrategy, STRATEGIES } from "../../strategies/index.js";
import { loadDomains, type LoadedDomain, type PrepareProgress } from "./domains.js";
import { loadDomainsOffThread } from "./prepare.js";
import { DEFAULT_TOKENIZER, defaultTokenizerDomains } from "../tokenize/run-payload.js";
import { encodeEvent, EventType, HistoryResolver, serverJournalDir, type RunEvent, type RunLog } from "../history/index.js";
import { Run, type RunDeps, type RunObserver } from "./run.js";
import type { AnyStrategy } from "../../strategies/types.js";
import type { Logger } from "../util/log.js";
import { progress } from "../util/progress.js";

/** GetRun's view of a run whose data is still being prepared. */
export interface Preparation {
  phase: PrepareProgress["phase"] | "tokenize";
  domain: string;
  domainsDone: number;
  domainsTotal: number;
  readonly startedAt: number;
}

export interface RegistryOptions {
  readonly config: ServerConfig;
  /** Relative data paths in run configs resolve against this directory. */
  readonly baseDir: string;
  readonly observer?: RunObserver & JournalObserver;
  readonly logger: Logger;
  /** Cluster mode (src/cluster): how runs are built, created and closed. Absent: one process. */
  readonly hooks?: RunHooks;
}

/** Extension points for cluster mode; single-process mode has none. */
export interface RunHooks {
  /** Build the run object (cluster mode: a replica's run, which takes versions from etcd). */
  makeRun(cfg: RunConfig, domains: LoadedDomain[], strategy: AnyStrategy, params: unknown, deps: RunDeps): Run;
  /** Before a new run's creation is journaled (cluster mode: put it in the shared catalog). */
  creating(run: Run, events: readonly RunEvent[]): Promise<void>;
  /** Before a run is closed (cluster mode: close it in the shared catalog). */
  closing(run: Run): Promise<void>;
  /**
   * A request named a run this registry does not hold (cluster mode: it may have been
   * created on another replica a moment ago; look it up in the shared catalog and add it).
   * Resolves once it is here or is known not to exist.
   */
  lookup?(id: string): Promise<void>;
}

/** Journal write hooks (metrics): latency and volume of appends and of data fsyncs. */
export interface JournalObserver {
  journalAppend?(seconds: number, records: number, bytes: number): void;
  journalFsync?(seconds: number, records: number): void;
}

export class RunRegistry implements RunLog {
  private readonly runs = new Map<string, Run>();
  private readonly preparing = new Map<string, Preparation>();
  /**
   * Runs refused at recovery (their data changed): the reason, and their journal records
   * since the last checkpoint, carried into every new checkpoint so that restoring the
   * file brings the run back intact.
   */
  private readonly refused = new Map<string, { message: string; records: { type: number; payload: Buffer }[] }>();
  private readonly opts: RegistryOptions;
  private readonly journal: Journal;
  private recordsSinceCheckpoint = 0;
  private journalFailureLogged = false;
  private checkpointing: Promise<void> | null = null;

  private constructor(opts: RegistryOptions, journal: Journal) {
    this.opts = opts;
    this.journal = journal;
  }

  /** Open the journal, recover every run in it, then create the config file's new runs. */
  static async open(opts: RegistryOptions): Promise<RunRegistry> {
    const dataDir = path.resolve(opts.baseDir, opts.config.dataDir);
    const dir = serverJournalDir(dataDir);
    // Index caches without a journal: this data directory served runs before.
    const servedBefore = fs.existsSync(path.join(dataDir, "index"));
    const { journal, records, warnings } = await Journal.open({
      dir,
      durability: opts.config.journal.durability,
      segmentBytes: opts.config.journal.segmentBytes,
      onFsync: opts.observer?.journalFsync ? (s, n) => opts.observer!.journalFsync!(s, n) : undefined,
    });
    for (const w of warnings) opts.logger.warn("journal recovery", { detail: w });
    // Data-layer warnings (damaged index caches rebuilt, src/sources/warnings.ts) go to this server's log.
    setSourceWarningSink((msg, fields) => opts.logger.warn(msg, fields));
    const reg = new RunRegistry(opts, journal);
    try {
      // One resolver: a snapshot's pending slices come once, as Signals events (src/history).
      const resolver = new HistoryResolver();
      for (const r of records) resolver.resolve(r.type, r.payload).forEach((e, i) => reg.replay(e, i === 0 ? r : null));
      for (const run of reg.runs.values()) await run.finishRecovery();
      for (const cfg of opts.config.runs) {
        if (reg.refused.has(cfg.id)) continue;
        const existing = reg.runs.get(cfg.id);
        if (existing) {
          if (!sameRunConfig(existing.config, cfg)) {
            throw invalid(`runs: run "${cfg.id}" in the config file differs from the journaled run of that id; give the changed run a new id`);
          }
          continue;
        }
        if (servedBefore) {
          opts.logger.warn("run in the config file is not in the journal: starting it from scratch", {
            run: cfg.id,
            detail: `the journal at ${dir} has no record of run "${cfg.id}" although ${dataDir} holds index caches of earlier runs; if this run was served before, its journal was deleted or lost: it starts again at step 0 with its initial weights, and its trainers must start over too`,
          });
        }
        await reg.createFromConfig(cfg);
      }
    } catch (e) {
      await reg.shutdown();
      throw e;
    }
    if (records.length > 0) opts.logger.info("recovered runs", { runs: reg.runs.size, records: records.length });
    return reg;
  }

  /** `raw`: the stored record, given with the first event resolved from it only. */
  private replay(e: RunEvent, raw: { type: number; payload: Uint8Array } | null): void {
    const id = e.body.runId;
    const refused = this.refused.get(id);
    if (refused) {
      if (raw) refused.records.push({ type: raw.type, payload: Buffer.from(raw.payload) });
      return;
    }
    if (e.type === EventType.RunCreated || (e.type === EventType.Snapshot && !this.runs.has(id))) {
      const data = e.body.data ?? null;
      const problems = data ? checkDataFingerprint(data) : [];
      if (problems.length > 0) {
        const message = dataChangedMessage(id, problems);
        this.refused.set(id, { message, records: raw ? [{ type: raw.type, payload: Buffer.from(raw.payload) }] : [] });
        this.opts.logger.error("run refused at recovery: its data changed", { run: id, detail: message });
        return;
      }
      const run = this.construct(e.body.config);
      run.dataFingerprint = data;
      run.initialiseForReplay();
      this.runs.set(id, run);
    }
    const run = this.runs.get(id);
    if (!run) throw new MixflowError("INTERNAL", `journal: record of type ${e.type} for unknown run "${id}" (missing creation record)`);
    run.replay(e);
  }

  /** The strategy and its params, checked (cheap: before any data is read). */
  private checked(cfg: RunConfig): { strategy: NonNullable<ReturnType<typeof getStrategy>>; params: unknown } {
    const strategy = getStrategy(cfg.strategy.name);
    if (!strategy) {
      throw invalid(`strategy.name: unknown strategy "${cfg.strategy.name}"; known: ${[...STRATEGIES.keys()].join(", ")}`);
    }
    const params = parseOrThrow(strategy.params, cfg.strategy.params, `run "${cfg.id}"`, "strategy.params");
    checkDomainMaps(params, cfg.domains.map((d) => d.name));
    checkObjectiveAndParams(cfg);
    return { strategy, params };
  }

  /**
   * Build a run object (sources opened, strategy resolved) without initialising it.
   * `loaded`: domains already loaded off the serving thread (CreateRun); else loaded here (recovery).
   */
  private construct(cfg: RunConfig, loaded?: LoadedDomain[]): Run {
    const { strategy, params } = this.checked(cfg);
    const domains = loaded ?? loadDomains(cfg, { cacheDir: this.cacheDir(), baseDir: this.opts.baseDir });
    for (const d of domains) {
      if (d.evalSharesDuplicates >= 0.1) {
        this.opts.logger.warn("eval split shares near-duplicates with training", {
          run: cfg.id,
          domain: d.name,
          share: Number(d.evalSharesDuplicates.toFixed(2)),
          detail:
            cfg.domains.find((x) => x.name === d.name)?.holdout === "off"
              ? `${Math.round(d.evalSharesDuplicates * 100)}% of sampled eval documents have a near-duplicate in the train split, so this domain's probe losses will fall by memorisation; set holdout "auto" to probe only eval documents without copies in training, or give it an eval split without such copies`
              : `${Math.round(d.evalSharesDuplicates * 100)}% of the eval documents examined have a near-duplicate in the train split and every one has more copies than may leave training (5% of it), so this domain's probe losses will fall by memorisation; give it an eval split without copies of train documents`,
        });
      }
    }
    const deps: RunDeps = {
      log: this,
      now: () => Date.now(),
      observer: this.opts.observer,
      onStrategyError: (run, step, err) =>
        this.opts.logger.error("strategy update failed", { run: run.id, step, error: String(err) }),
      onFirstStaleReport: (run, step) =>
        this.opts.logger.info("reports for already aggregated steps are acknowledged and not recorded", {
          run: run.id,
          step,
          detail: "a resumed trainer re-reports steps the strategy already used; their losses may differ and are ignored (counted in mixflow_stale_reports_total; logged once per run)",
        }),
    };
    return this.opts.hooks ? this.opts.hooks.makeRun(cfg, domains, strategy, params, deps) : new Run(cfg, domains, strategy, params, deps);
  }

  /** Runs whose data CreateRun is preparing in worker threads, and how far it got (GetRun). */
  preparation(id: string): Preparation | undefined {
    return this.preparing.get(id);
  }

  /**
   * Load a new run's domains off the serving thread (tokenizing, then indexing, statistics,
   * holdout carving: src/runs/prepare.ts), tracking progress for GetRun and logging it.
   */
  private async prepare(cfg: RunConfig): Promise<LoadedDomain[]> {
    const prep: Preparation = { phase: "open", domain: cfg.domains[0]?.name ?? "", domainsDone: 0, domainsTotal: cfg.domains.length, startedAt: Date.now() };
    this.preparing.set(cfg.id, prep);
    this.opts.logger.info("preparing run data in worker threads", { run: cfg.id, domains: cfg.domains.length });
    const defaulted = defaultTokenizerDomains(cfg);
    if (defaulted.length > 0) {
      this.opts.logger.warn("text domains tokenized with the default tokenizer", {
        run: cfg.id,
        domains: defaulted.join(", "),
        detail: `the run serves tokens (it has token domains), so its text is tokenized with ${DEFAULT_TOKENIZER}; if the token files use another vocabulary, set "tokenizer" on the run or the domain`,
      });
    }
    let last = 0;
    const bar = progress(`tokenizing for run ${cfg.id}`); // a terminal line (TTY only), next to the log
    try {
      const domains = await loadDomainsOffThread(
        cfg,
        { cacheDir: this.cacheDir(), baseDir: this.opts.baseDir },
        (p) => Object.assign(prep, p),
        (domain, p) => {
          prep.domain = domain;
          prep.phase = "tokenize";
          bar.update(p.filesDone, p.filesTotal);
          const now = Date.now();
          if (now - last < 2000 && p.filesDone < p.filesTotal) return;
          last = now;
          const pct = p.total > 0 ? Math.round((100 * p.done) / p.total) : 0;
          this.opts.logger.info("preparing data", { run: cfg.id, domain, file: p.file, filePercent: pct, filesDone: p.filesDone, filesTotal: p.filesTotal });
        },
      );
      this.opts.logger.info("run data prepared", { run: cfg.id, seconds: Number(((Date.now() - prep.startedAt) / 1000).toFixed(2)) });
      return domains;
    } finally {
      bar.done();
      this.preparing.delete(cfg.id);
    }
  }

  private cacheDir(): string {
    return path.join(path.resolve(this.opts.baseDir, this.opts.config.dataDir), "index");
  }

  /** CreateRun: validate the JSON config, open its data, journal its creation. */
  async create(config: unknown): Promise<Run> {
    const cfg = parseOrThrow(runConfig, config, "run config");
    return this.createFromConfig(cfg);
  }

  /** CreateRun with a config the edge already validated against the schema (parsed once). */
  createChecked(cfg: RunConfig): Promise<Run> {
    return this.createFromConfig(cfg);
  }

  private async createFromConfig(cfg: RunConfig): Promise<Run> {
    if (this.runs.has(cfg.id) || this.refused.has(cfg.id)) throw new MixflowError("ALREADY_EXISTS", `run "${cfg.id}" already exists`);
    if (this.preparing.has(cfg.id)) throw new MixflowError("ALREADY_EXISTS", `run "${cfg.id}" is being created (its data is being prepared)`);
    if (this.runs.size + this.preparing.size >= this.opts.config.limits.maxRuns) {
      throw new MixflowError("RESOURCE_EXHAUSTED", `the server holds ${this.runs.size + this.preparing.size} runs, its limit (limits.maxRuns); close and remove runs or raise the limit`);
    }
    this.checked(cfg);
    // The data fingerprints are hashed in a worker thread too, while the data is prepared.
    const fingerprints = runInWorker("fingerprintData", { cfg, baseDir: this.opts.baseDir });
    fingerprints.catch(() => undefined); // awaited below; not an unhandled rejection if prepare fails first
    const run = this.construct(cfg, await this.prepare(cfg));
    try {
      run.dataFingerprint = await fingerprints;
    } catch (e) {
      run.dispose();
      throw e;
    }
    let events: RunEvent[];
    try {
      events = run.initialise();
    } catch (e) {
      run.dispose();
      // A strategy refusing its params at init (e.g. replay versions for another run).
      throw e instanceof MixflowError ? e : invalid(`strategy.params: ${(e as Error).message}`);
    }
    if (this.opts.hooks) {
      try {
        await this.opts.hooks.creating(run, events);
      } catch (e) {
        run.dispose();
        throw e;
      }
    }
    this.runs.set(cfg.id, run);
    await this.write(events);
    this.opts.logger.info("run created", { run: cfg.id, strategy: cfg.strategy.name, domains: cfg.domains.length });
    return run;
  }

  get(id: string): Run {
    const r = this.runs.get(id);
    if (!r) {
      const refused = this.refused.get(id);
      if (refused) throw precondition(refused.message);
      throw notFound(`run "${id}" not found`);
    }
    return r;
  }

  has(id: string): boolean {
    return this.runs.has(id);
  }

  /** `get` for request handlers: a run missing here is first looked up through the hooks (cluster mode; see RunHooks.lookup). */
  async resolve(id: string): Promise<Run> {
    if (!this.runs.has(id) && !this.refused.has(id) && this.opts.hooks?.lookup) await this.opts.hooks.lookup(id);
    return this.get(id);
  }

  list(): Run[] {
    return [...this.runs.values()];
  }

  async close(id: string): Promise<Run> {
    const r = await this.resolve(id);
    if (r.state === "open") await this.opts.hooks?.closing(r);
    await r.close();
    this.opts.logger.info("run closed", { run: id });
    return r;
  }

  /** RunLog: make events durable; checkpoint every `checkpointEvery` records. */
  async write(events: readonly RunEvent[]): Promise<void> {
    const recs = events.map(encodeEvent);
    const t0 = performance.now();
    try {
      await this.journal.appendMany(recs);
    } catch (e) {
      // An argument error (a record over the size limit) is a bug, not the journal failing.
      if (e instanceof RangeError || e instanceof TypeError) throw e;
      // Once, in the log too: the journal stopped (a failing disk, its folder deleted under the server).
      if (!this.journalFailureLogged) {
        this.journalFailureLogged = true;
        this.opts.logger.error("journal failed: no more writes are accepted until the server is restarted", { detail: e instanceof Error ? e.message : String(e) });
      }
      throw journalUnavailable(e);
    }
    this.opts.observer?.journalAppend?.((performance.now() - t0) / 1000, recs.length, recs.reduce((a, r) => a + r.payload.length, 0));
    this.recordsSinceCheckpoint += events.length;
    if (this.recordsSinceCheckpoint >= this.opts.config.journal.checkpointEvery && !this.checkpointing) {
      this.recordsSinceCheckpoint = 0;
      this.checkpointing = this.checkpoint()
        .catch((e: unknown) => this.opts.logger.error("checkpoint failed", { error: String(e) }))
        .finally(() => (this.checkpointing = null));
    }
  }

  /** Snapshot every run into a new segment; recovery starts there. */
  async checkpoint(): Promise<void> {
    const snaps = this.list().map((r) => encodeEvent({ type: EventType.Snapshot, body: r.snapshot() }));
    for (const r of this.refused.values()) snaps.push(...r.records);
    await this.journal.checkpoint(snaps, { dropOlder: !this.opts.config.journal.keepHistory });
  }

  journalStats(): ReturnType<Journal["stats"]> {
    return this.journal.stats();
  }

  /**
   * Wait for queued aggregations, flush the journal, release files. With `drained` (the
   * server's clean stop, after every stream ended) each open run's exact frontier is
   * journaled, so a restart does not move it to the lease end.
   */
  async shutdown(o: { drained?: boolean } = {}): Promise<void> {
    for (const r of this.runs.values()) await r.idle();
    await this.checkpointing;
    if (o.drained) {
      const recs = this.list().flatMap((r) => r.drainRecord() ?? []);
      if (recs.length > 0) await this.journal.appendMany(recs.map(encodeEvent));
    }
    await this.journal.close();
    for (const r of this.runs.values()) r.dispose();
  }
}

/**
 * Is the config file's run the journaled one? A journal written by an older mixflow lacks
 * fields added since, which the file's parsed config has with their defaults: those are
 * filled in before comparing. (The recovered run keeps its journaled config, so it goes on
 * behaving as it was created — e.g. without a carved holdout.)
 */
export function sameRunConfig(journaled: RunConfig, fromFile: RunConfig): boolean {
  const want = JSON.stringify(fromFile);
  if (JSON.stringify(journaled) === want) return true;
  const filled = runConfig.safeParse(journaled);
  return filled.success && JSON.stringify(filled.data) === want;
}

function checkObjectiveAndParams(cfg: RunConfig): void {
  if (cfg.objective && Object.values(cfg.objective).every((v) => v === 0)) {
    throw invalid("objective: at least one domain needs a positive weight");
  }
}
