/**
 * Connecting to etcd: the `etcd://host:port[,host:port…]` address mixflow takes, and one
 * `Etcd3` client with fault handling tuned for a version log.
 *
 * Why not the client's defaults: its per-host circuit breaker opens for 5 s after three
 * failures, and with every host open a call fails with BrokenCircuitError without trying —
 * after one member restart a whole cluster looked down for seconds. Here no per-host
 * breaker; a global retry moves a failed call to the next host with a short backoff, and
 * every unary call has a deadline, so a leader cut off from etcd gets an error (and stops
 * committing) instead of waiting forever.
 */
import { Etcd3 } from "etcd3";
import { ExponentialBackoff, handleWhen, noop, retry } from "cockatiel";
import { isRecoverableError } from "etcd3";

/** Parsed `--cluster` value. */
export interface ClusterAddress {
  /** `http://host:port` per etcd member, in the given order. */
  readonly hosts: string[];
  /** Key prefix all of mixflow's keys live under (the URL path; default "mixflow/"). */
  readonly prefix: string;
}

/**
 * Parse `etcd://h1:2379,h2:2379[/prefix]`. Throws with what is wrong and what is expected.
 */
export function parseClusterAddress(url: string): ClusterAddress {
  const m = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (!m) throw new Error(`--cluster: expected etcd://host:port[,host:port...][/prefix], got "${url}"`);
  const hosts = m[1]!.split(",").map((h) => h.trim());
  for (const h of hosts) {
    const hp = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw new Error(`--cluster: "${h}" is not host:port (in "${url}")`);
    }
  }
  const rawPrefix = (m[2] ?? "/mixflow").replace(/^\/+|\/+$/g, "");
  if (rawPrefix === "" || !/^[A-Za-z0-9._/-]+$/.test(rawPrefix)) {
    throw new Error(`--cluster: key prefix "${m[2]}" may hold only letters, digits, '.', '_', '-' and '/'`);
  }
  return { hosts: hosts.map((h) => `http://${h}`), prefix: `${rawPrefix}/` };
}

export interface EtcdClientOptions {
  /** Deadline of each unary call (ms). Default 3000. */
  readonly callTimeoutMs?: number;
}

/** An etcd client with mixflow's fault handling (see the header). Close it with `close()`. */
export function connectEtcd(addr: ClusterAddress, opts: EtcdClientOptions = {}): Etcd3 {
  const callTimeoutMs = opts.callTimeoutMs ?? 3000;
  return new Etcd3({
    hosts: addr.hosts,
    dialTimeout: callTimeoutMs,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () => noop,
      global: retry(handleWhen(isRecoverableError), {
        maxAttempts: Math.max(2, addr.hosts.length),
        backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }),
      }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }).next(),
    },
  });
}
