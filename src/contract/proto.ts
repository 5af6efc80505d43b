/**
 * The checked-in .proto contract, loaded at run time (no generated code to go stale). The
 * server and the TypeScript client both load it from here, so both speak exactly the
 * checked-in contract and the client never loads server code.
 */
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { PACKAGE_ROOT } from "../util/package-root.js";

/** The package's proto/ directory. */
export const PROTO_DIR = process.env.MIXFLOW_PROTO_DIR ?? path.join(PACKAGE_ROOT, "proto");

const FILES = ["mixflow/v1/mixer.proto", "grpc/health/v1/health.proto"];

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
  const definition = protoLoader.loadSync(FILES, LOADER_OPTIONS);
  return { definition, grpcObject: grpc.loadPackageDefinition(definition) };
}

let types: protobuf.Root | null = null;

/** The contract's message types as protobufjs reflection (for the framing check). */
export function contractTypes(): protobuf.Root {
  if (types) return types;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  types = root;
  return root;
}
