"""Stub generation from proto/ (what the build hook and the first-import fallback run)."""

from __future__ import annotations

from pathlib import Path

from mixflow_client import _protogen


def test_generate_writes_flat_package_relative_stubs(tmp_path: Path) -> None:
    root = _protogen.find_proto_root()
    assert root is not None and (root / "mixflow" / "v1" / "mixer.proto").is_file()
    out = tmp_path / "_proto"
    assert not _protogen.stubs_current(out, root)
    _protogen.generate(root, out)
    assert _protogen.stubs_current(out, root)
    grpc_stub = (out / "mixer_pb2_grpc.py").read_text()
    assert "from . import mixer_pb2 as" in grpc_stub and "from mixflow.v1" not in grpc_stub
    assert "from . import health_pb2 as" in (out / "health_pb2_grpc.py").read_text()
    assert b"mixflow/v1/mixer.proto" in (out / "mixer_pb2.py").read_bytes()  # canonical descriptor name
    assert (out / "__init__.py").is_file() and not list(out.glob(".*.tmp"))
