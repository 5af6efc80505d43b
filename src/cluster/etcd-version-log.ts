/**
 * A run's version log in etcd: an append-only sequence of entries 1, 2, 3, … (each a
 * committed decision: a weights version and what else must be identical on every
 * replica), plus the run's served frontier.
 *
 * The two rules that keep batches identical across replicas meet in one key pair:
 * - a replica serves step s only after *reserving* s — raising `frontier` to at least s in
 *   a transaction that also checks that the next log entry it has not seen does not exist;
 * - the leader commits entry n with `from_step > frontier` in a transaction that checks
 *   that `frontier` is unchanged since it read it (and that it still leads, and that entry
 *   n does not exist: see leadership.ts).
 * etcd serialises the two transactions, so either the reservation comes first (the commit
 * fails, the leader re-reads the frontier and picks a later from_step) or the commit comes
 * first (the reservation fails, the replica catches up on the log and retries). Either
 * way, every version takes effect past every step any replica has served, and a replica
 * serves each step under every version that affects it.
 */
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { ClusterError } from "./errors.js";
import { RunKeys } from "./keys.js";

/** One committed log entry. `body` is JSON, opaque to the log. */
export interface LogEntry {
  readonly seq: number;
  /** First step the entry affects (it is past every step reserved when it was committed). */
  readonly fromStep: number;
  readonly body: unknown;
  /** The leader's wall clock at commit (ms since the epoch; absent in old entries): watch-lag metric only. */
  readonly at?: number;
}

/** The frontier as read: the highest reserved step (-1: none) and the key's mod revision. */
export interface FrontierRead {
  readonly step: number;
  readonly modRevision: string;
}

/** A reservation refused because log entry `nextSeq` exists: catch up, then retry. */
export const BEHIND = "behind" as const;

/** Log entries per read: well under the 4 MiB gRPC reply limit with entries of a few KiB. */
const SCAN_PAGE = 128;

/** How often a transaction is retried when only the frontier moved under it. */
const MAX_CONTENTION_RETRIES = 64;

export function encodeEntry(e: LogEntry): string {
  return JSON.stringify({ seq: e.seq, fromStep: e.fromStep, body: e.body, ...(e.at !== undefined ? { at: e.at } : {}) });
}

/** Read a log entry back; CORRUPT (naming the key, not echoing the value) if it is not one mixflow wrote. */
export function decodeEntry(keys: RunKeys, kv: IKeyValue): LogEntry {
  const key = kv.key.toString();
  const seq = keys.seqOf(key);
  let raw: { seq?: unknown; fromStep?: unknown; body?: unknown; at?: unknown };
  try {
    raw = JSON.parse(kv.value.toString()) as typeof raw;
  } catch {
    throw new ClusterError("CORRUPT", `etcd: log entry at ${key} is not JSON`);
  }
  if (raw === null || typeof raw !== "object" || raw.seq !== seq || typeof raw.fromStep !== "number" || !Number.isSafeInteger(raw.fromStep)) {
    throw new ClusterError("CORRUPT", `etcd: log entry at ${key} is malformed (its seq is not ${seq}, or its fromStep is not a safe integer)`);
  }
  return { seq, fromStep: raw.fromStep, body: raw.body, ...(typeof raw.at === "number" ? { at: raw.at } : {}) };
}

export class EtcdVersionLog {
  readonly client: Etcd3;
  readonly keys: RunKeys;
  readonly runId: string;

  constructor(client: Etcd3, prefix: string, runId: string) {
    this.client = client;
    this.runId = runId;
    this.keys = new RunKeys(prefix, runId);
  }

  /**
   * Entries with seq >= fromSeq, in order, and an etcd revision such that every entry
   * committed after it is not in the result (a watch from revision + 1 sees it). Read in
   * pages of SCAN_PAGE entries: a long run's log is larger than one gRPC reply may be
   * (4 MiB). Entries are appended at the end, so one committed between pages shows up in a
   * later page, and the last page's revision is the one to watch from.
   */
  async scan(fromSeq = 1): Promise<{ entries: LogEntry[]; revision: string }> {
    const entries: LogEntry[] = [];
    let next = fromSeq;
    for (;;) {
      const res = await this.client
        .getAll()
        .inRange({ start: this.keys.entry(next), end: this.keys.logEnd })
        .sort("Key", "Ascend")
        .limit(SCAN_PAGE)
        .exec();
      for (const kv of res.kvs) {
        const e = decodeEntry(this.keys, kv);
        if (e.seq !== next) throw new ClusterError("CORRUPT", `etcd: run "${this.runId}" log has a gap: entry ${next} missing before ${e.seq}`);
        entries.push(e);
        next++;
      }
      if (!res.more || res.kvs.length === 0) return { entries, revision: res.header.revision };
    }
  }

  async frontier(): Promise<FrontierRead> {
    const res = await this.client.get(this.keys.frontier).exec();
    const kv = res.kvs[0];
    if (!kv) return { step: -1, modRevision: "0" };
    return { step: Number(kv.value.toString()), modRevision: kv.mod_revision };
  }

  /**
   * Reserve serving up to step `upTo` (inclusive), given that this replica has applied
   * every entry below `nextSeq`. Resolves true once reserved; BEHIND if entry `nextSeq`
   * exists (apply it first). Idempotent; never lowers the frontier.
   */
  async reserve(upTo: number, nextSeq: number): Promise<true | typeof BEHIND> {
    for (let attempt = 0; attempt < MAX_CONTENTION_RETRIES; attempt++) {
      const f = await this.frontier();
      let txn = this.client.if(this.keys.entry(nextSeq), "Create", "==", 0);
      if (f.step < upTo) {
        txn = txn.and(this.keys.frontier, "Mod", "==", f.modRevision).then(this.client.put(this.keys.frontier).value(String(upTo)));
      }
      const res = await txn.else(this.client.get(this.keys.entry(nextSeq))).commit();
      if (res.succeeded) return true;
      const existing = res.responses[0]?.response_range?.kvs ?? [];
      if (existing.length > 0) return BEHIND;
    }
    throw new ClusterError("CONTENTION", `etcd: run "${this.runId}": frontier reservation lost ${MAX_CONTENTION_RETRIES} races in a row`);
  }

  /**
   * Deliver every entry from `fromSeq` on, in order, exactly once each, now and as they
   * are committed (`live`: delivered by the watch, not by the initial read). `onError` gets failures the follower cannot recover from by itself
   * (a malformed entry); a dropped connection is resumed by the client.
   */
  async follow(fromSeq: number, onEntry: (e: LogEntry, live: boolean) => void, onError: (e: Error) => void = () => undefined): Promise<Follower> {
    const f = new Follower(this, fromSeq, onEntry, onError);
    await f.start();
    return f;
  }
}

/** A running subscription to a log (see `EtcdVersionLog.follow`). */
export class Follower {
  private next: number;
  private watcher: Watcher | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly log: EtcdVersionLog,
    fromSeq: number,
    private readonly onEntry: (e: LogEntry, live: boolean) => void,
    private readonly onError: (e: Error) => void,
  ) {
    this.next = fromSeq;
  }

  /** The next seq this follower will deliver (every entry below it was delivered). */
  get nextSeq(): number {
    return this.next;
  }

  async start(): Promise<void> {
    const { entries, revision } = await this.log.scan(this.next);
    for (const e of entries) this.deliver(e, false);
    const w = await this.log.client
      .watch()
      .prefix(this.log.keys.logPrefix)
      .startRevision((BigInt(revision) + 1n).toString())
      .create();
    this.watcher = w;
    w.on("put", (kv) => {
      this.chain = this.chain.then(() => this.onPut(kv)).catch((e: unknown) => this.onError(e as Error));
    });
    w.on("error", (e) => this.onError(e));
  }

  private async onPut(kv: IKeyValue): Promise<void> {
    if (this.closed) return;
    const e = decodeEntry(this.log.keys, kv);
    if (e.seq < this.next) return;
    if (e.seq > this.next) {
      // A watch resumed after a reconnect may skip nothing in etcd's guarantees, but a
      // gap must never be papered over: read what is missing.
      const { entries } = await this.log.scan(this.next);
      for (const g of entries) if (g.seq < e.seq) this.deliver(g, true);
      if (this.next !== e.seq) throw new ClusterError("CORRUPT", `etcd: run "${this.log.runId}" log entry ${this.next} missing before ${e.seq}`);
    }
    this.deliver(e, true);
  }

  private deliver(e: LogEntry, live: boolean): void {
    if (this.closed || e.seq !== this.next) return;
    this.next = e.seq + 1;
    this.onEntry(e, live);
  }

  /** Deliveries in flight are finished; none after. */
  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.cancel();
    await this.chain;
  }
}
