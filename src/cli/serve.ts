/**
 * `mixflow serve`: start the server from a config file and/or flags, print one JSON line
 * with the bound addresses on stdout (so scripts and tests can find a port chosen with
 * :0), and drain cleanly on SIGTERM/SIGINT.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { parseArgs } from "node:util";
import { loadServerConfig } from "../config/load.js";
import { createMetrics } from "../metrics/index.js";
import { MixflowServer } from "../server/server.js";
import { registerClusterMetrics } from "../cluster/metrics.js";
import type { EtcdSecurity } from "../cluster/etcd-client.js";
import type { ForwardTls } from "../cluster/forward.js";
import { ClusterNode, type ClusterSettings } from "../cluster/node.js";
import { createLogger } from "../util/log.js";

export const SERVE_HELP = `mixflow serve [options]

  --config FILE          server config (JSON): dataDir, listen, metrics, journal, limits, runs
  --listen HOST:PORT     gRPC address (default 127.0.0.1:50051; port 0 picks a free one)
  --data-dir DIR         state directory (default ./.mixflow)
  --metrics-listen H:P   Prometheus endpoint (default 127.0.0.1:9464; metrics.enabled=false in the config turns it off)
  --durability MODE      journal durability: fsync (default) or none (tests/benchmarks only)
  --log-level LEVEL      debug | info | warn (default) | error | silent
  --cluster URL          serve as one replica of a cluster: etcd://host:2379[,host:2379...][/prefix]
                         (etcds:// for TLS; docs/cluster.md); without it mixflow runs alone and needs no etcd
  --cluster-ca FILE      CA bundle (PEM) of the etcd members' certificates (etcds://; default: system roots)
  --cluster-cert FILE    client certificate (PEM) for etcd's --client-cert-auth, with --cluster-key FILE
  --cluster-user USER    etcd user (password auth); the password from MIXFLOW_ETCD_PASSWORD or
                         --cluster-password-file FILE (never on the command line)
  --cluster-forward-ca FILE, --cluster-forward-cert FILE, --cluster-forward-key FILE
                         mutual TLS between replicas (signal forwarding): the CA that signed every
                         replica's certificate, this replica's certificate (SAN: its --cluster-listen host) and key
  --node-id ID           this replica's id in the cluster (default: the hostname and pid)
  --cluster-listen H:P   internal address other replicas forward signals to (default 127.0.0.1:0)
  --cluster-ttl SECONDS  leadership lease TTL (default 2): a dead leader is replaced after about this
  --cluster-reserve N    steps reserved in etcd per write (default 64): versions take effect up to N steps later
`;

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      listen: { type: "string" },
      "data-dir": { type: "string" },
      durability: { type: "string" },
      "metrics-listen": { type: "string" },
      "log-level": { type: "string" },
      cluster: { type: "string" },
      "node-id": { type: "string" },
      "cluster-listen": { type: "string" },
      "cluster-ttl": { type: "string" },
      "cluster-reserve": { type: "string" },
      "cluster-ca": { type: "string" },
      "cluster-cert": { type: "string" },
      "cluster-key": { type: "string" },
      "cluster-user": { type: "string" },
      "cluster-password-file": { type: "string" },
      "cluster-forward-ca": { type: "string" },
      "cluster-forward-cert": { type: "string" },
      "cluster-forward-key": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return;
  }
  const overrides: Record<string, unknown> = {
    listen: values.listen,
    dataDir: values["data-dir"],
    logLevel: values["log-level"],
    journal: values.durability ? { durability: values.durability } : undefined,
    metrics: values["metrics-listen"] ? { listen: values["metrics-listen"] } : undefined,
  };
  const { config, baseDir } = loadServerConfig(values.config, overrides);
  const logger = createLogger(config.logLevel);
  const metrics = config.metrics.enabled ? createMetrics(config.metrics, { logger }) : null;
  const node = values.cluster ? await ClusterNode.start(clusterSettings(values), logger) : null;
  if (metrics && node) registerClusterMetrics(metrics.registry, node);
  let server: MixflowServer;
  try {
    server = await MixflowServer.start({
      config,
      baseDir,
      logger,
      ...(metrics ? { observer: metrics.observer } : {}),
      ...(node ? { runHooks: node.hooks() } : {}),
    });
    await node?.attach(server.registry);
  } catch (e) {
    await node?.stop();
    throw e;
  }
  let metricsAddress: string | null = null;
  try {
    metricsAddress = metrics ? await metrics.start() : null;
  } catch (e) {
    await server.stop();
    throw e;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { signal });
    Promise.resolve(node?.stop())
      .then(() => server.stop())
      .then(() => metrics?.stop())
      .then(
        () => process.exit(0),
        (e: unknown) => {
          logger.error("shutdown failed", { error: String(e) });
          process.exit(1);
        },
      );
  };
  // The handlers go in before "listening" is printed: a supervisor that sends SIGTERM as soon
  // as it reads that line must reach the drain, not the default handler (which exits by signal).
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.stdout.write(
    JSON.stringify({
      event: "listening",
      grpc: server.address,
      metrics: metricsAddress,
      runs: server.registry.list().map((r) => r.id),
      ...(node ? { node: node.settings.nodeId, forward: node.forwardAddress } : {}),
    }) + "\n",
  );
}

function clusterSettings(v: Record<string, string | boolean | undefined>): ClusterSettings {
  const num = (flag: string, dflt: number, min: number): number => {
    const raw = v[flag];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${flag}: expected an integer >= ${min}, got "${String(raw)}"`);
    return n;
  };
  return {
    url: String(v.cluster),
    nodeId: typeof v["node-id"] === "string" ? v["node-id"] : `${os.hostname()}-${process.pid}`,
    forwardListen: typeof v["cluster-listen"] === "string" ? v["cluster-listen"] : "127.0.0.1:0",
    ttlSeconds: num("cluster-ttl", 2, 1),
    reserveChunk: num("cluster-reserve", 64, 1),
    security: clusterSecurity(v),
    ...forwardTls(v),
  };
}

/** The three --cluster-forward-* files: all or none. */
function forwardTls(v: Record<string, string | boolean | undefined>): { forwardTls?: ForwardTls } {
  const [ca, cert, key] = ["cluster-forward-ca", "cluster-forward-cert", "cluster-forward-key"].map((f) => (typeof v[f] === "string" ? (v[f] as string) : undefined));
  if (ca === undefined && cert === undefined && key === undefined) return {};
  if (ca === undefined || cert === undefined || key === undefined) {
    throw new Error("--cluster-forward-ca, --cluster-forward-cert and --cluster-forward-key go together (mutual TLS between replicas)");
  }
  return { forwardTls: { caFile: ca, certFile: cert, keyFile: key } };
}

/** --cluster-ca/-cert/-key/-user and the password (a file or MIXFLOW_ETCD_PASSWORD, never a flag: flags show in `ps`). */
function clusterSecurity(v: Record<string, string | boolean | undefined>): EtcdSecurity {
  const str = (flag: string): string | undefined => (typeof v[flag] === "string" ? (v[flag] as string) : undefined);
  const pwFile = str("cluster-password-file");
  let password: string | undefined;
  if (pwFile !== undefined) {
    try {
      password = fs.readFileSync(pwFile, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      throw new Error(`--cluster-password-file ${pwFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? "read error"})`);
    }
  } else if (process.env.MIXFLOW_ETCD_PASSWORD !== undefined && str("cluster-user") !== undefined) {
    password = process.env.MIXFLOW_ETCD_PASSWORD;
  }
  const out: { -readonly [K in keyof EtcdSecurity]: EtcdSecurity[K] } = {};
  if (str("cluster-ca") !== undefined) out.caFile = str("cluster-ca");
  if (str("cluster-cert") !== undefined) out.certFile = str("cluster-cert");
  if (str("cluster-key") !== undefined) out.keyFile = str("cluster-key");
  if (str("cluster-user") !== undefined) out.username = str("cluster-user");
  if (password !== undefined) out.password = password;
  return out;
}
