/**
 * The cluster's catalog of runs in etcd: every run's config, its first log entries (the
 * strategy's init versions) and its closing, so every replica knows every run.
 *
 * Creation is one transaction — config, entries 1..k and frontier -1, only if no config of
 * that id exists — so a run is in the catalog with its whole start or not at all. Creating a
 * run that exists with the same config is idempotent (replicas that learn of a run from the
 * watch create it locally through the same path); with another config it is RUN_EXISTS.
 */
import type { Etcd3, Watcher } from "etcd3";
import { ClusterError } from "./errors.js";
import { encodeEntry, type LogEntry } from "./etcd-version-log.js";
import { RunKeys, runsPrefix } from "./keys.js";

/** Keys per catalog read: a run's closed and config keys and the first key past them. */
const LIST_PAGE = 8;

export interface CatalogRun {
  readonly id: string;
  /** The run config as JSON text, byte for byte what was created. */
  readonly configJson: string;
  readonly closed: boolean;
}

export class RunCatalog {
  private readonly client: Etcd3;
  private readonly prefix: string;

  constructor(client: Etcd3, prefix: string) {
    this.client = client;
    this.prefix = prefix;
  }

  /**
   * Put a run in the catalog with its first log entries. Resolves "created", or "exists"
   * if the same config is there already; throws RUN_EXISTS for another config.
   */
  async create(id: string, configJson: string, initial: readonly LogEntry[]): Promise<"created" | "exists"> {
    const keys = new RunKeys(this.prefix, id);
    initial.forEach((e, i) => {
      if (e.seq !== i + 1) throw new ClusterError("BAD_ENTRY", `run "${id}": initial log entries must be 1..${initial.length}, got seq ${e.seq} at ${i}`);
    });
    const res = await this.client
      .if(keys.config, "Create", "==", 0)
      .then(
        this.client.put(keys.config).value(configJson),
        this.client.put(keys.frontier).value("-1"),
        ...initial.map((e) => this.client.put(keys.entry(e.seq)).value(encodeEntry(e))),
      )
      .else(this.client.get(keys.config))
      .commit();
    if (res.succeeded) return "created";
    const existing = res.responses[0]?.response_range?.kvs?.[0]?.value.toString();
    if (existing === configJson) return "exists";
    throw new ClusterError("RUN_EXISTS", `run "${id}" exists in the cluster with another config; give the changed run a new id`);
  }

  /** One run of the catalog (null: no such run), read in one transaction. */
  async get(id: string): Promise<CatalogRun | null> {
    const keys = new RunKeys(this.prefix, id);
    const res = await this.client
      .if(keys.config, "Create", ">", 0)
      .then(this.client.get(keys.config), this.client.get(keys.closed))
      .commit();
    if (!res.succeeded) return null;
    const config = res.responses[0]?.response_range?.kvs?.[0];
    if (!config) return null;
    return { id, configJson: config.value.toString(), closed: (res.responses[1]?.response_range?.kvs ?? []).length > 0 };
  }

  async close(id: string): Promise<void> {
    await this.client.put(new RunKeys(this.prefix, id).closed).value("1");
  }

  /**
   * Every run in the catalog, and a revision to watch from (catalog changes after it are
   * delivered by `watch`; one seen here may be delivered again, which adoption ignores).
   *
   * Configs and close markers only, without reading the logs (a long run's log is larger
   * than one gRPC reply): under runs/<id>/, "closed" and "config" sort before every other
   * key, so the listing reads a few keys per run in key order and, at the first other key
   * of a run, jumps past the run ("<id>0" follows every "<id>/…" key: '0' is the next
   * character after '/', and ids never hold '/').
   */
  async list(): Promise<{ runs: CatalogRun[]; revision: string }> {
    const base = runsPrefix(this.prefix);
    const end = `${base.slice(0, -1)}0`;
    const configs = new Map<string, string>();
    const closed = new Set<string>();
    let start = base;
    let revision: string | null = null;
    for (;;) {
      const res = await this.client.getAll().inRange({ start, end }).sort("Key", "Ascend").limit(LIST_PAGE).exec();
      // The first page's revision: nothing created after it is missed by the watch.
      revision ??= res.header.revision;
      let jumped = false;
      for (const kv of res.kvs) {
        const key = kv.key.toString();
        const m = /^([^/]+)\/(.*)$/.exec(key.slice(base.length));
        if (!m) continue;
        if (m[2] === "config") configs.set(m[1]!, kv.value.toString());
        else if (m[2] === "closed") closed.add(m[1]!);
        else {
          start = `${base}${m[1]!}0`;
          jumped = true;
          break;
        }
      }
      if (!jumped) {
        if (!res.more || res.kvs.length === 0) break;
        start = `${res.kvs[res.kvs.length - 1]!.key.toString()}\0`;
      }
    }
    const runs = [...configs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, configJson]) => ({ id, configJson, closed: closed.has(id) }));
    return { runs, revision: revision! };
  }

  /**
   * Call `onRun` for every run created and `onClosed` for every run closed after
   * `revision` (from `list`). Listener errors go to `onError`.
   */
  async watch(
    revision: string,
    onRun: (r: CatalogRun) => Promise<void> | void,
    onClosed: (id: string) => Promise<void> | void,
    onError: (e: Error) => void,
  ): Promise<Watcher> {
    const base = runsPrefix(this.prefix);
    let chain: Promise<void> = Promise.resolve();
    const w = await this.client.watch().prefix(base).startRevision((BigInt(revision) + 1n).toString()).create();
    w.on("put", (kv) => {
      const m = /^([^/]+)\/(config|closed)$/.exec(kv.key.toString().slice(base.length));
      if (!m) return;
      const id = m[1]!;
      chain = chain
        .then(() => (m[2] === "config" ? onRun({ id, configJson: kv.value.toString(), closed: false }) : onClosed(id)))
        .catch((e: unknown) => onError(e as Error));
    });
    w.on("error", (e) => onError(e));
    return w;
  }
}
