/**
 * The server's service definitions over the shared contract (src/contract): Batch
 * responses use the hand-written encoder.
 */
import type * as grpc from "@grpc/grpc-js";
import { encodeBatchTransient } from "./batch-encoder.js";
import { batchMsg } from "./batch-message.js";
import type { ServedBatch } from "../runs/index.js";

export { LOADER_OPTIONS, PROTO_DIR, loadMixflowProto } from "../contract/index.js";

/**
 * The Mixer service definition for the server. Batch responses are `ServedBatch` values
 * (src/runs), mapped to the wire message and serialized by the hand-written encoder (batch-encoder.ts), which writes payloads straight from the
 * sources into a reused scratch buffer that grpc-js copies into its frame.
 */
export function mixerService(g: grpc.GrpcObject): grpc.ServiceDefinition {
  const ctor = ((g.mixflow as grpc.GrpcObject).v1 as grpc.GrpcObject).Mixer as grpc.ServiceClientConstructor;
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...ctor.service };
  for (const m of ["NextBatch", "StreamBatches"]) {
    def[m] = { ...def[m]!, responseSerialize: (v: unknown) => encodeBatchTransient(batchMsg(v as ServedBatch)) };
  }
  return def as grpc.ServiceDefinition;
}

/** The grpc.health.v1.Health service definition. */
export function healthService(g: grpc.GrpcObject): grpc.ServiceDefinition {
  const ctor = (((g.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  return ctor.service;
}
