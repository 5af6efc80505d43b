/**
 * Connecting to etcd: the `etcd://host:port[,host:port…]` address mixflow takes
 * (`etcds://` for TLS), its TLS files and password auth, and one `Etcd3` client with fault
 * handling tuned for a version log.
 *
 * Why not the client's defaults: its per-host circuit breaker opens for 5 s after three
 * failures, and with every host open a call fails with BrokenCircuitError without trying —
 * after one member restart a whole cluster looked down for seconds. Here no per-host
 * breaker; a global retry moves a failed call to the next host with a short backoff, and
 * every unary call has a deadline, so a leader cut off from etcd gets an error (and stops
 * committing) instead of waiting forever.
 */
import * as tls from "node:tls";
import { Etcd3, type IOptions } from "etcd3";
import { ExponentialBackoff, handleWhen, noop, retry } from "cockatiel";
import { isRecoverableError } from "etcd3";
import { ClusterError } from "./errors.js";
import { readPem } from "./pem.js";

/** Parsed `--cluster` value. */
export interface ClusterAddress {
  /** `http://host:port` (`https://` with etcds://) per etcd member, in the given order. */
  readonly hosts: string[];
  /** etcds://: TLS to every member. */
  readonly tls: boolean;
  /** Key prefix all of mixflow's keys live under (the URL path; default "mixflow/"). */
  readonly prefix: string;
}

/**
 * Parse `etcd://h1:2379,h2:2379[/prefix]` (or `etcds://` for TLS). Throws BAD_SETTINGS
 * with what is wrong and what is expected.
 */
export function parseClusterAddress(url: string): ClusterAddress {
  const m = /^(etcds?):\/\/([^/]+)(\/.*)?$/.exec(url.trim());
  if (!m) throw new ClusterError("BAD_SETTINGS", `--cluster: expected etcd://host:port[,host:port...][/prefix] (etcds:// for TLS), got "${redacted(url)}"`);
  const secure = m[1] === "etcds";
  const hosts = m[2]!.split(",").map((h) => h.trim());
  for (const h of hosts) {
    const hp = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(h);
    if (!hp || Number(hp[2]) < 1 || Number(hp[2]) > 65535) {
      throw new ClusterError("BAD_SETTINGS", `--cluster: "${redacted(h)}" is not host:port (in "${redacted(url)}")`);
    }
  }
  const rawPrefix = (m[3] ?? "/mixflow").replace(/^\/+|\/+$/g, "");
  if (rawPrefix === "" || !/^[A-Za-z0-9._/-]+$/.test(rawPrefix)) {
    throw new ClusterError("BAD_SETTINGS", `--cluster: key prefix "${m[3]}" may hold only letters, digits, '.', '_', '-' and '/'`);
  }
  return { hosts: hosts.map((h) => `${secure ? "https" : "http"}://${h}`), tls: secure, prefix: `${rawPrefix}/` };
}

/** `url` without what is before an '@' in a host (a password written into the address stays out of messages and logs). */
function redacted(url: string): string {
  return url.replace(/[^/,@]*@/g, "…@");
}

/** TLS files and password auth for etcd (all optional; files are PEM). */
export interface EtcdSecurity {
  /** CA bundle that signed the etcd members' certificates (default with etcds://: the system's roots). */
  readonly caFile?: string;
  /** Client certificate and its key, for etcd's --client-cert-auth (both or neither). */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** etcd user for password auth (etcd's `auth enable`); the password comes with it. */
  readonly username?: string;
  readonly password?: string;
}

export interface EtcdClientOptions {
  /** Deadline of each unary call (ms). Default 3000. */
  readonly callTimeoutMs?: number;
  readonly security?: EtcdSecurity;
}

/**
 * The etcd3 options for `security` on `addr`: TLS only with etcds:// (a CA or client
 * certificate with plain etcd:// would be ignored silently, so it is refused), and a
 * password only with a user.
 */
export function securityOptions(addr: ClusterAddress, security: EtcdSecurity = {}): Pick<IOptions, "credentials" | "auth"> {
  const out: { credentials?: IOptions["credentials"]; auth?: IOptions["auth"] } = {};
  const files = security.caFile !== undefined || security.certFile !== undefined || security.keyFile !== undefined;
  if (files && !addr.tls) throw new ClusterError("BAD_SETTINGS", "--cluster-ca/--cluster-cert/--cluster-key need TLS: write the address as etcds://host:port");
  if ((security.certFile === undefined) !== (security.keyFile === undefined)) {
    throw new ClusterError("BAD_SETTINGS", "--cluster-cert and --cluster-key go together (the client certificate and its private key)");
  }
  if (addr.tls && files) {
    const ca = security.caFile !== undefined ? readPem("--cluster-ca", security.caFile) : undefined;
    out.credentials = {
      // etcd3 wants a root bundle whenever it gets a client certificate: Node's own roots then.
      rootCertificate: ca ?? Buffer.from(tlsRootBundle()),
      ...(security.certFile !== undefined ? { certChain: readPem("--cluster-cert", security.certFile), privateKey: readPem("--cluster-key", security.keyFile!) } : {}),
    };
  }
  if (security.username !== undefined) {
    if (security.username === "" || security.password === undefined) {
      throw new ClusterError("BAD_SETTINGS", "--cluster-user needs a password: set MIXFLOW_ETCD_PASSWORD or --cluster-password-file");
    }
    out.auth = { username: security.username, password: security.password };
  } else if (security.password !== undefined) {
    throw new ClusterError("BAD_SETTINGS", "an etcd password was given without --cluster-user");
  }
  return out;
}

function tlsRootBundle(): string {
  return tls.rootCertificates.join("\n");
}

/** An etcd client with mixflow's fault handling (see the header). Close it with `close()`. */
export function connectEtcd(addr: ClusterAddress, opts: EtcdClientOptions = {}): Etcd3 {
  const callTimeoutMs = opts.callTimeoutMs ?? 3000;
  return new Etcd3({
    hosts: addr.hosts,
    ...securityOptions(addr, opts.security),
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
