/**
 * Real etcd for the cluster tests: 1 or 3 members on loopback ports in a temporary
 * directory, started and stopped by pid. Nothing is installed at run time; a missing etcd
 * fails naming the Debian package. Members can be killed (SIGKILL) and restarted on their
 * data directory, which is how the tests take quorum away and give it back.
 *
 * Also a TCP "link" between a client and etcd that a test can cut: while cut it forwards
 * nothing and drops new connections, so a client behind it sees what a network partition
 * looks like (silence, then broken connections), without root or network namespaces.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

const ETCD = process.env.MIXFLOW_ETCD_BIN ?? "etcd";

/** Throws (naming the package) unless an etcd binary is on PATH. */
export function requireEtcd(): void {
  const r = spawnSync(ETCD, ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`etcd is not installed (${ETCD} --version failed): install the Debian package etcd-server (apt-get install etcd-server), or set MIXFLOW_ETCD_BIN`);
  }
}

/** Free loopback TCP ports (bound and released; the caller uses them at once). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  proc: ChildProcess | null;
  log: string;
}

/** PEM files (absolute paths) for an etcd serving clients over TLS with client-certificate auth. */
export interface EtcdTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** A client certificate signed by `ca` (the harness's own health checks use it). */
  readonly clientCert: string;
  readonly clientKey: string;
}

export class EtcdCluster {
  private readonly members: Member[];
  private readonly initialCluster: string;
  private readonly tls: EtcdTls | null;
  readonly dir: string;

  private constructor(dir: string, members: Member[], tls: EtcdTls | null) {
    this.dir = dir;
    this.tls = tls;
    this.members = members;
    this.initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
  }

  /** Start `size` members and wait until each answers /health (bounded by `timeoutMs`). */
  static async start(size: 1 | 3, timeoutMs = 30_000, tls: EtcdTls | null = null): Promise<EtcdCluster> {
    requireEtcd();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-etcd-"));
    const ports = await freePorts(size * 2);
    const members: Member[] = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      clientPort: ports[2 * i]!,
      peerPort: ports[2 * i + 1]!,
      dataDir: path.join(dir, `m${i}`),
      proc: null,
      log: "",
    }));
    const c = new EtcdCluster(dir, members, tls);
    for (let i = 0; i < size; i++) c.spawn(i);
    try {
      await c.waitHealthy(members.map((_, i) => i), timeoutMs);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  get size(): number {
    return this.members.length;
  }

  /** Client endpoints, as `host:port` (what `etcd://` takes). */
  get endpoints(): string[] {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`);
  }

  /** The `--cluster` value for mixflow: etcd://h:p,h:p,... */
  get url(): string {
    return `${this.tls ? "etcds" : "etcd"}://${this.endpoints.join(",")}`;
  }

  endpoint(i: number): string {
    return this.endpoints[i]!;
  }

  private spawn(i: number): void {
    const m = this.members[i]!;
    const scheme = this.tls ? "https" : "http";
    const args = [
      "--name", m.name,
      "--data-dir", m.dataDir,
      "--listen-client-urls", `${scheme}://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls", `${scheme}://127.0.0.1:${m.clientPort}`,
      ...(this.tls ? ["--cert-file", this.tls.cert, "--key-file", this.tls.key, "--trusted-ca-file", this.tls.ca, "--client-cert-auth"] : []),
      "--listen-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster", this.initialCluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", path.basename(this.dir),
      // etcd's default raft timing (heartbeat 100 ms, election 1 s): it also sets etcd's
      // minimum lease TTL, 1.5 s, under the 2-s leases the tests use.
      "--log-level", "error",
    ];
    const proc = spawn(ETCD, args, { stdio: ["ignore", "ignore", "pipe"] });
    m.log = "";
    proc.stderr!.on("data", (d: Buffer) => {
      m.log = (m.log + d.toString()).slice(-4000);
    });
    m.proc = proc;
  }

  private async waitHealthy(indices: number[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const i of indices) {
      const m = this.members[i]!;
      for (;;) {
        if (m.proc && m.proc.exitCode !== null) throw new Error(`etcd member ${m.name} exited with ${m.proc.exitCode}: ${m.log}`);
        try {
          const body = JSON.parse(await this.healthBody(m.clientPort)) as { health?: string };
          if (body.health === "true") break;
        } catch {
          // not listening yet: retry until the deadline
        }
        if (Date.now() > deadline) throw new Error(`etcd member ${m.name} not healthy after ${timeoutMs} ms: ${m.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** GET /health of one member (over TLS with the client certificate when the cluster has TLS). */
  private async healthBody(port: number): Promise<string> {
    if (!this.tls) {
      const r = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
      return r.text();
    }
    const t = this.tls;
    return new Promise<string>((resolve, reject) => {
      const req = https.get(
        { host: "127.0.0.1", servername: "localhost", port, path: "/health", ca: fs.readFileSync(t.ca), cert: fs.readFileSync(t.clientCert), key: fs.readFileSync(t.clientKey), timeout: 2000 },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve(body));
        },
      );
      req.on("timeout", () => req.destroy(new Error("health check timed out")));
      req.on("error", reject);
    });
  }

  /** SIGKILL one member (by pid) and wait for it to exit. */
  async kill(i: number): Promise<void> {
    const m = this.members[i]!;
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(p.pid!, "SIGKILL");
    await exited;
    m.proc = null;
  }

  /** Start a killed member again on its data directory. Waits for its port only (a lone member has no quorum). */
  async restart(i: number, timeoutMs = 30_000): Promise<void> {
    this.spawn(i);
    const m = this.members[i]!;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(m.clientPort, "127.0.0.1");
        s.once("connect", () => (s.destroy(), resolve(true)));
        s.once("error", () => resolve(false));
      });
      if (ok) return;
      if (m.proc && m.proc.exitCode !== null) throw new Error(`etcd member ${m.name} exited on restart: ${m.log}`);
      if (Date.now() > deadline) throw new Error(`etcd member ${m.name} did not listen after restart within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kill every member and remove the data directory. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A cuttable TCP link to one address. `cut()` stops forwarding in both directions and
 * holds new connections silent (like a dropped network: no RST); `heal()` destroys the held
 * sockets so clients reconnect through a working link.
 */
export class Link {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket | null]>();
  private isCut = false;
  readonly port: number;

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async open(target: string): Promise<Link> {
    const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    let link: Link | null = null;
    const server = net.createServer((client) => {
      const l = link!;
      const pair: [net.Socket, net.Socket | null] = [client, null];
      l.pairs.add(pair);
      client.on("error", () => undefined);
      client.on("close", () => {
        pair[1]?.destroy();
        l.pairs.delete(pair);
      });
      if (l.isCut) {
        client.pause();
        return;
      }
      const upstream = net.connect(port, host);
      pair[1] = upstream;
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => client.destroy());
      client.on("data", (d) => {
        if (!l.isCut) upstream.write(d);
      });
      upstream.on("data", (d) => {
        if (!l.isCut) client.write(d);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    link = new Link(server, (server.address() as net.AddressInfo).port);
    return link;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  cut(): void {
    this.isCut = true;
  }

  heal(): void {
    this.isCut = false;
    for (const [c, u] of this.pairs) {
      c.destroy();
      u?.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.heal();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
