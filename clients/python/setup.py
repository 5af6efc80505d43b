"""Build hook: generate the gRPC stubs from the repository's proto/ before packaging.

The stubs (``mixflow_client/_proto/*_pb2*.py``) are not committed. ``build_py`` (run by
``pip install ./clients/python`` and by editable installs) regenerates them from
``../../proto`` with grpcio-tools; the install requirements on grpcio and protobuf are
taken from the versions the generated code was made for, so the runtime always accepts it.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_protogen", HERE / "mixflow_client" / "_protogen.py")
assert _spec is not None and _spec.loader is not None
protogen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protogen)


def make_stubs() -> None:
    """Regenerate stale stubs when the protos are reachable (a checkout), else keep the bundled ones."""
    root = protogen.find_proto_root()
    if root is not None and not protogen.stubs_current(protogen.OUT_DIR, root):
        protogen.generate(root, protogen.OUT_DIR)
    if not protogen.stubs_current(protogen.OUT_DIR):
        raise SystemExit("mixflow-client: cannot find proto/mixflow/v1/mixer.proto (set MIXFLOW_PROTO_DIR)")


def requirements() -> list[str]:
    """Runtime requirements matching the generated code's protobuf and grpcio versions."""
    make_stubs()
    pb2 = (protogen.OUT_DIR / "mixer_pb2.py").read_text(encoding="utf-8")
    grpc_py = (protogen.OUT_DIR / "mixer_pb2_grpc.py").read_text(encoding="utf-8")
    pb = re.search(r"# Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", pb2)
    gr = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_py)
    reqs = ["numpy>=1.24"]
    reqs.append(f"protobuf>={pb.group(1)}.{pb.group(2)}.{pb.group(3)},<{int(pb.group(1)) + 1}" if pb else "protobuf>=4.21")
    reqs.append(f"grpcio>={gr.group(1)}" if gr else "grpcio>=1.60")
    return reqs


class BuildPyWithStubs(build_py):
    """build_py that generates the stubs first."""

    def run(self) -> None:
        make_stubs()
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs}, install_requires=requirements())
