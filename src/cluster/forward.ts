/**
 * Replica → leader signal forwarding over gRPC: one internal unary method carrying a run's
 * acknowledged report slices (SignalsEvent records, grouped per step by the sender) as
 * JSON. Internal traffic between replicas, so no public proto: a generic grpc-js service
 * with JSON (de)serialisers. A lost forward costs adaptivity only; the sender does not retry
 * beyond its next flush.
 *
 * With `ForwardTls` the service is mutual TLS: each replica presents its certificate (as
 * server and as client) and accepts only peers whose certificate the cluster's CA signed,
 * so nobody else can feed a leader signals.
 */
import * as grpc from "@grpc/grpc-js";
import type { SignalsEvent } from "../history/events.js";
import { readPem } from "./pem.js";

/** PEM files for mutual TLS between replicas (--cluster-forward-ca/-cert/-key). */
export interface ForwardTls {
  /** CA that signed every replica's certificate. */
  readonly caFile: string;
  /** This replica's certificate (SAN: its --cluster-listen host; usable as server and client) and key. */
  readonly certFile: string;
  readonly keyFile: string;
}

interface TlsPem {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** Read the three files, naming the one that fails (never its contents). */
export function readForwardTls(t: ForwardTls): TlsPem {
  return { ca: readPem("--cluster-forward-ca", t.caFile), cert: readPem("--cluster-forward-cert", t.certFile), key: readPem("--cluster-forward-key", t.keyFile) };
}

export interface ForwardRequest {
  readonly runId: string;
  readonly from: string;
  readonly slices: SignalsEvent[];
}

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString("utf8")),
};

const FORWARD_SERVICE: grpc.ServiceDefinition = {
  forward: {
    path: "/mixflow.cluster.v1.Cluster/Forward",
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** Listen for forwards on `listen` (host:port; port 0 picks one). Returns the bound address and a stop. */
export async function startForwardServer(
  listen: string,
  onForward: (r: ForwardRequest) => boolean,
  tls: TlsPem | null = null,
): Promise<{ address: string; stop: () => Promise<void> }> {
  const server = new grpc.Server();
  server.addService(FORWARD_SERVICE, {
    forward: (call: grpc.ServerUnaryCall<ForwardRequest, { accepted: boolean }>, cb: grpc.sendUnaryData<{ accepted: boolean }>) => {
      const r = call.request;
      if (!r || typeof r.runId !== "string" || !Array.isArray(r.slices)) {
        cb({ code: grpc.status.INVALID_ARGUMENT, details: "forward: expected {runId, from, slices[]}" });
        return;
      }
      cb(null, { accepted: onForward(r) });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      listen,
      tls ? grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true) : grpc.ServerCredentials.createInsecure(),
      (e, p) => (e ? reject(e) : resolve(p)),
    ),
  );
  const host = listen.slice(0, listen.lastIndexOf(":"));
  return {
    address: `${host}:${port}`,
    stop: () => new Promise<void>((r) => server.tryShutdown(() => r())),
  };
}

const ForwardClient = grpc.makeGenericClientConstructor(FORWARD_SERVICE, "Cluster");

/** A client per leader address, reused while the address stays the same. */
export class ForwardSender {
  private clients = new Map<string, grpc.Client>();
  private readonly credentials: grpc.ChannelCredentials;

  constructor(tls: TlsPem | null = null) {
    this.credentials = tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
  }

  send(address: string, req: ForwardRequest, timeoutMs: number): Promise<boolean> {
    let c = this.clients.get(address);
    if (!c) {
      c = new ForwardClient(address, this.credentials);
      this.clients.set(address, c);
    }
    const client = c as unknown as {
      forward(r: ForwardRequest, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: { accepted: boolean }) => void): void;
    };
    return new Promise((resolve, reject) =>
      client.forward(req, { deadline: Date.now() + timeoutMs }, (e, v) => (e ? reject(e) : resolve(v?.accepted ?? false))),
    );
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
