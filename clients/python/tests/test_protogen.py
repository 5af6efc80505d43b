"""The descriptor set compiled from proto/ (what the build hook and the first-import fallback
run) and the wire types built from it (mixflow_client/_wire.py)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2

from conftest import REPO
from mixflow_client import _protogen, _wire


def test_generate_writes_a_descriptor_set_of_mixer_proto(tmp_path: Path) -> None:
    root = _protogen.find_proto_root()
    assert root is not None and (root / "mixflow" / "v1" / "mixer.proto").is_file()
    out = tmp_path / "mixer.binpb"
    assert not _protogen.is_current(out, root)
    _protogen.generate(root, out)
    assert _protogen.is_current(out, root)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert [f.name for f in files][-1] == "mixflow/v1/mixer.proto"  # canonical name, dependencies first
    assert not list(tmp_path.glob(".*.tmp"))


def test_wire_types_cover_every_rpc_and_message_of_the_proto() -> None:
    text = (REPO / "proto" / "mixflow" / "v1" / "mixer.proto").read_text(encoding="utf-8")
    rpcs = re.findall(r"^\s*rpc (\w+)\((stream )?\w+\) returns \((stream )?\w+\)", text, flags=re.M)
    assert len(rpcs) >= 9
    assert _wire.METHODS == tuple((name, bool(cs), bool(ss)) for name, cs, ss in rpcs)
    for name in re.findall(r"^message (\w+)", text, flags=re.M):
        assert getattr(_wire, name).DESCRIPTOR.full_name == f"mixflow.v1.{name}"
    assert (_wire.DTYPE_UINT16, _wire.DTYPE_UINT32, _wire.RUN_STATE_CLOSED) == (1, 2, 2)
    # Round trip through the wire format, map field included.
    req = _wire.ReportSignalsRequest(run_id="r", step=3, eval_losses={"a": 1.5})
    back = _wire.ReportSignalsRequest.FromString(req.SerializeToString())
    assert (back.run_id, back.step, dict(back.eval_losses)) == ("r", 3, {"a": 1.5})


def test_stub_has_one_callable_per_rpc_of_the_right_kind() -> None:
    with grpc.insecure_channel("127.0.0.1:1") as channel:  # never connected: no call is made
        stub = _wire.MixerStub(channel)
        assert sorted(vars(stub)) == sorted(m for m, _, _ in _wire.METHODS)
        assert isinstance(stub.NextBatch, grpc.UnaryUnaryMultiCallable)
        assert isinstance(stub.StreamBatches, grpc.UnaryStreamMultiCallable)


def test_the_package_holds_no_generated_code_with_a_runtime_version_check() -> None:
    # What pinned the requirements to the build machine's protobuf/grpcio (issue 16).
    pkg = Path(_wire.__file__).parent
    for py in pkg.rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        assert "ValidateProtobufRuntimeVersion" not in text.replace("``ValidateProtobufRuntimeVersion``", ""), py
        assert "GRPC_GENERATED_VERSION" not in text, py
