import * as path from "node:path";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterEach, describe, expect, it } from "vitest";
import { runConfigFor, startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { LOADER_OPTIONS } from "../../src/server/proto.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

function healthClient(address: string): grpc.Client & Record<string, Function> {
  const def = protoLoader.loadSync("grpc/health/v1/health.proto", LOADER_OPTIONS);
  const Ctor = ((((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health) as grpc.ServiceClientConstructor;
  return new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
}

describe("standard gRPC services", () => {
  it("health is SERVING while up and NOT_SERVING once shutdown begins (Watch sees the change)", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir)]);
    const h = healthClient(ts.server.address);
    const check = (service: string) =>
      new Promise<string>((resolve, reject) => h.Check!({ service }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))));
    expect(await check("")).toBe("SERVING");
    expect(await check("mixflow.v1.Mixer")).toBe("SERVING");
    await expect(check("nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const seen: string[] = [];
    const watch = h.Watch!({ service: "" }) as grpc.ClientReadableStream<{ status: string }>;
    watch.on("data", (m: { status: string }) => seen.push(m.status));
    watch.on("error", () => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const stopping = ts.stop();
    ts = null;
    await stopping;
    expect(seen[0]).toBe("SERVING");
    expect(seen).toContain("NOT_SERVING");
    h.close();
  });

  it("server reflection lists mixflow.v1.Mixer and serves its descriptor", async () => {
    const dir = tmpDir();
    ts = await startServer(dir, [runConfigFor(dir)]);
    const req = createRequire(import.meta.url);
    const reflDir = path.dirname(req.resolve("@grpc/reflection/package.json"));
    const def = protoLoader.loadSync("grpc/reflection/v1/reflection.proto", { ...LOADER_OPTIONS, includeDirs: [path.join(reflDir, "build/proto")] });
    const Ctor = ((((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).reflection as grpc.GrpcObject).v1 as grpc.GrpcObject).ServerReflection) as grpc.ServiceClientConstructor;
    const c = new Ctor(ts.server.address, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
    const call = c.ServerReflectionInfo!() as grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
    const replies: Record<string, unknown>[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (m: Record<string, unknown>) => {
        replies.push(m);
        if (replies.length === 2) call.end();
      });
      call.on("end", () => resolve());
      call.on("error", reject);
    });
    call.write({ list_services: "" });
    call.write({ file_containing_symbol: "mixflow.v1.Mixer" });
    await done;
    const services = (replies[0]!.list_services_response as { service: { name: string }[] }).service.map((s) => s.name);
    expect(services).toContain("mixflow.v1.Mixer");
    const files = (replies[1]!.file_descriptor_response as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
    expect(files.length).toBeGreaterThan(0);
    expect(Buffer.concat(files).toString("latin1")).toContain("StreamBatches");
    c.close();
  });
});
