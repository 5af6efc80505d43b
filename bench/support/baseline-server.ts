/**
 * A bare grpc-js server answering with pre-built buffers of a requested size, streamed or
 * unary: the transport cost alone, which bench:serve compares mixflow against. Prints its
 * port on stdout.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(path.join(here, "baseline.proto"), { keepCase: true, longs: Number });
const pkg = grpc.loadPackageDefinition(def).bench as grpc.GrpcObject;
const svc = (pkg.Baseline as grpc.ServiceClientConstructor).service;

const server = new grpc.Server({ "grpc.max_send_message_length": 256 << 20, "grpc.max_receive_message_length": 256 << 20 });
const fetched = new Map<number, Buffer>();
server.addService(svc, {
  Fetch: (call: grpc.ServerUnaryCall<{ bytes: number }, { data: Buffer }>, cb: grpc.sendUnaryData<{ data: Buffer }>) => {
    const n = Math.min(call.request.bytes, 64 << 20);
    let buf = fetched.get(n);
    if (!buf) fetched.set(n, (buf = Buffer.alloc(n, 7)));
    cb(null, { data: buf });
  },
  Stream: async (call: grpc.ServerWritableStream<{ bytes: number; count: number }, { data: Buffer }>) => {
    const buf = Buffer.alloc(call.request.bytes, 7);
    for (let i = 0; i < call.request.count && !call.cancelled; i++) {
      if (!call.write({ data: buf })) await new Promise((r) => call.once("drain", r));
    }
    call.end();
  },
});
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  process.stdout.write(JSON.stringify({ port }) + "\n");
});
