import { describe, expect, it } from "vitest";
import { encodeBatch } from "../../src/server/batch-encoder.js";
import { loadMixflowProto } from "../../src/server/proto.js";
import type * as grpc from "@grpc/grpc-js";
import type { BatchMsg } from "../../src/server/batch-message.js";

const lazy = (b: Buffer) => ({ length: b.length, write: (dst: Buffer, at: number) => void b.copy(dst, at) });

function decode(buf: Buffer): Record<string, unknown> {
  const { grpcObject } = loadMixflowProto();
  const svc = ((grpcObject.mixflow as grpc.GrpcObject).v1 as grpc.GrpcObject).Mixer as grpc.ServiceClientConstructor;
  return svc.service.NextBatch!.responseDeserialize(buf) as Record<string, unknown>;
}

describe("hand-written Batch encoder", () => {
  it("round-trips through the generic protobuf decoder (tokens, eval probes, large values)", () => {
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    const msg: BatchMsg = {
      run_id: "run-é",
      step: 2 ** 40 + 5,
      rank: 3,
      world_size: 4,
      version: 17,
      slot_offset: 300,
      slots: 2,
      slot_domains: Buffer.from([1, 0, 0, 0, 2, 0, 0, 0]),
      slot_samples: Buffer.alloc(16, 9),
      tokens: { dtype: "DTYPE_UINT32", shape: [1, 75], data: lazy(data), offsets: Buffer.alloc(0) },
      eval_requested: true,
      eval: {
        probes: [
          { domain: 0, sample_indices: Buffer.alloc(8, 1), text: { data: lazy(Buffer.from("hello")), offsets: Buffer.alloc(16, 2) } },
          { domain: 5, sample_indices: Buffer.alloc(0) },
        ],
      },
      digest: "0123456789abcdef",
    };
    const d = decode(encodeBatch(msg));
    expect(d.run_id).toBe("run-é");
    expect(d.step).toBe(2 ** 40 + 5);
    expect([d.rank, d.world_size, d.version, d.slot_offset, d.slots]).toEqual([3, 4, 17, 300, 2]);
    expect(Buffer.compare(d.slot_domains as Buffer, msg.slot_domains)).toBe(0);
    const tokens = d.tokens as { dtype: string; shape: number[]; data: Buffer };
    expect(tokens.dtype).toBe("DTYPE_UINT32");
    expect(tokens.shape).toEqual([1, 75]);
    expect(Buffer.compare(tokens.data, data)).toBe(0);
    expect(d.eval_requested).toBe(true);
    const probes = (d.eval as { probes: { domain: number; text?: { data: Buffer } }[] }).probes;
    expect(probes.map((p) => p.domain)).toEqual([0, 5]);
    expect(probes[0]!.text!.data.toString()).toBe("hello");
    expect(d.digest).toBe("0123456789abcdef");
    expect(d.payload).toBe("tokens");
  });

  it("omits proto3 defaults exactly like the generic encoder (empty text batch)", () => {
    const msg: BatchMsg = {
      run_id: "r",
      step: 0,
      rank: 0,
      world_size: 1,
      version: 1,
      slot_offset: 0,
      slots: 0,
      slot_domains: Buffer.alloc(0),
      slot_samples: Buffer.alloc(0),
      text: { data: lazy(Buffer.alloc(0)), offsets: Buffer.alloc(8) },
      eval_requested: false,
      digest: "",
    };
    const d = decode(encodeBatch(msg));
    expect(d.step).toBe(0);
    expect(d.payload).toBe("text");
    expect((d.text as { offsets: Buffer }).offsets.length).toBe(8);
  });
});
