/**
 * The wire contract shared by the server and the client: the .proto loaded at run time and
 * the strict framing check of incoming messages.
 */
export { LOADER_OPTIONS, PROTO_DIR, contractTypes, loadMixflowProto } from "./proto.js";
export { framingProblem } from "./wire-check.js";
