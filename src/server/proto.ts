/**
 * Loading the .proto contract with proto-loader (no generated code to go stale). Shared by
 * the server and the TypeScript client so both speak exactly the checked-in contract.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { encodeBatchTransient } from "./batch-encoder.js";
import type { BatchMsg } from "../runs/run.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository's proto/ directory. */
export const PROTO_DIR = process.env.MIXFLOW_PROTO_DIR ?? path.resolve(here, "../../proto");

/** Field names as in the .proto (snake_case); 64-bit integers as JS numbers (steps < 2^53). */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export function loadMixflowProto(): { definition: protoLoader.PackageDefinition; grpcObject: grpc.GrpcObject } {
  const definition = protoLoader.loadSync(["mixflow/v1/mixer.proto", "grpc/health/v1/health.proto"], LOADER_OPTIONS);
  return { definition, grpcObject: grpc.loadPackageDefinition(definition) };
}

/**
 * The Mixer service definition for the server. Batch responses are serialized by the
 * hand-written encoder (batch-encoder.ts), which writes payloads straight from the
 * sources into a reused scratch buffer that grpc-js copies into its frame.
 */
export function mixerService(g: grpc.GrpcObject): grpc.ServiceDefinition {
  const ctor = ((g.mixflow as grpc.GrpcObject).v1 as grpc.GrpcObject).Mixer as grpc.ServiceClientConstructor;
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = { ...ctor.service };
  for (const m of ["NextBatch", "StreamBatches"]) {
    def[m] = { ...def[m]!, responseSerialize: (v: unknown) => encodeBatchTransient(v as BatchMsg) };
  }
  return def as grpc.ServiceDefinition;
}

/** The grpc.health.v1.Health service definition. */
export function healthService(g: grpc.GrpcObject): grpc.ServiceDefinition {
  const ctor = (((g.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject).Health as grpc.ServiceClientConstructor;
  return ctor.service;
}
