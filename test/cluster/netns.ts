/**
 * A network partition made of real links: a 1-member etcd in its own network namespace,
 * reachable from the test's namespace over two veth pairs (one per replica side, each its
 * own /30 subnet). `cut(side)` is `ip link set <veth> down`: that side's packets to etcd
 * stop at the kernel (no route, no RST from etcd), as when a host's link fails; the other
 * side keeps its link. Needs root and iproute2's `ip netns` (`available()` checks by
 * creating and deleting a probe namespace); the test falls back to a TCP link otherwise.
 *
 * Everything is named after the test's pid (namespace mfx<pid>, veths mf<a|b><pid>r/n), and
 * `stop()` kills etcd by its pid and deletes the namespace (which deletes its veths), so
 * nothing outside what the test created is touched.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { requireEtcd } from "./etcd-harness.js";

const ETCD = process.env.MIXFLOW_ETCD_BIN ?? "etcd";

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} failed: ${(r.stderr || String(r.error)).trim()}`);
}

export type Side = "a" | "b";

export class NetnsEtcd {
  readonly ns: string;
  private readonly sides: Record<Side, { root: string; inner: string; hostIp: string; etcdIp: string }>;
  private readonly dir: string;
  private proc: ChildProcess | null = null;
  private log = "";
  readonly port = 2379;

  private constructor() {
    const id = process.pid % 100000;
    this.ns = `mfx${id}`;
    // 10.213.<id-derived>.0/30 per side: unlikely to clash with anything configured here.
    const o3 = (id % 120) * 2;
    const side = (s: Side, k: number) => ({ root: `mf${s}${id}r`, inner: `mf${s}${id}n`, hostIp: `10.213.${o3 + k}.1`, etcdIp: `10.213.${o3 + k}.2` });
    this.sides = { a: side("a", 0), b: side("b", 1) };
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-netns-etcd-"));
  }

  /** True when this process may create network namespaces (root and iproute2). */
  static available(): boolean {
    if (process.getuid?.() !== 0) return false;
    const probe = `mfxprobe${process.pid % 100000}`;
    const add = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
    if (add.status !== 0) return false;
    spawnSync("ip", ["netns", "del", probe]);
    return true;
  }

  static async start(timeoutMs = 30_000): Promise<NetnsEtcd> {
    requireEtcd();
    const n = new NetnsEtcd();
    try {
      ip("netns", "add", n.ns);
      ip("-n", n.ns, "link", "set", "lo", "up");
      for (const s of Object.values(n.sides)) {
        ip("link", "add", s.root, "type", "veth", "peer", "name", s.inner);
        ip("link", "set", s.inner, "netns", n.ns);
        ip("addr", "add", `${s.hostIp}/30`, "dev", s.root);
        ip("-n", n.ns, "addr", "add", `${s.etcdIp}/30`, "dev", s.inner);
        ip("link", "set", s.root, "up");
        ip("-n", n.ns, "link", "set", s.inner, "up");
      }
      const urls = [n.sides.a.etcdIp, n.sides.b.etcdIp].map((h) => `http://${h}:${n.port}`).join(",");
      // `ip netns exec` execs etcd in place: the child's pid is etcd's.
      const proc = spawn(
        "ip",
        ["netns", "exec", n.ns, ETCD, "--name", "m0", "--data-dir", path.join(n.dir, "m0"), "--listen-client-urls", urls, "--advertise-client-urls", urls,
          "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "m0=http://127.0.0.1:2380",
          "--initial-cluster-state", "new", "--log-level", "error"],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      proc.stderr!.on("data", (d: Buffer) => (n.log = (n.log + d.toString()).slice(-4000)));
      n.proc = proc;
      await n.waitListening(timeoutMs);
      return n;
    } catch (e) {
      await n.stop();
      throw e;
    }
  }

  /** host:port of etcd as seen through one side's link. */
  endpoint(side: Side): string {
    return `${this.sides[side].etcdIp}:${this.port}`;
  }

  url(side: Side): string {
    return `etcd://${this.endpoint(side)}`;
  }

  /** `ip link set <side's veth> down`. */
  cut(side: Side): void {
    ip("link", "set", this.sides[side].root, "down");
  }

  heal(side: Side): void {
    ip("link", "set", this.sides[side].root, "up");
  }

  private async waitListening(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const side of ["a", "b"] as const) {
      for (;;) {
        if (this.proc && this.proc.exitCode !== null) throw new Error(`etcd in ${this.ns} exited with ${this.proc.exitCode}: ${this.log}`);
        try {
          const r = await fetch(`http://${this.endpoint(side)}/health`, { signal: AbortSignal.timeout(2000) });
          if (((await r.json()) as { health?: string }).health === "true") break;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline) throw new Error(`etcd in ${this.ns} not healthy through side ${side} after ${timeoutMs} ms: ${this.log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Kill etcd by pid, delete the namespace (and with it the veths) and the data directory. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once("exit", () => r()));
      process.kill(p.pid!, "SIGKILL");
      await exited;
    }
    this.proc = null;
    spawnSync("ip", ["netns", "del", this.ns]);
    // A root-side veth whose peer was never moved into the namespace survives it.
    for (const s of Object.values(this.sides)) spawnSync("ip", ["link", "del", s.root], { stdio: "ignore" });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
