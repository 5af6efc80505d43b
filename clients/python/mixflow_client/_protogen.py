"""Compile ``proto/mixflow/v1/mixer.proto`` into a descriptor set, ``mixflow_client/mixer.binpb``.

The client runs no generated Python code: :mod:`mixflow_client._wire` builds the message
classes and the stub from this descriptor set at import time (why: see that module). The
descriptor set is a build product, never committed. It is written

* at build time, by the custom ``build_py`` in ``setup.py`` (``pip install ./clients/python``);
* on first import, when the package is used from a source checkout or an editable install
  and the file is missing or older than the ``.proto``.

Either way ``grpc_tools.protoc`` does the compiling (a build requirement, not a runtime one
for an installed package). The descriptors keep their canonical file names
(``mixflow/v1/mixer.proto``), so error messages look as usual.

This module must stay importable without the rest of the package (``setup.py`` loads it by
path), so it only uses the standard library until ``generate`` runs ``grpc_tools``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: The ``.proto`` compiled, relative to the proto root (its imports are included).
PROTO = "mixflow/v1/mixer.proto"

PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the package reads its descriptor set from.
DESCRIPTOR_SET = PACKAGE_DIR / "mixer.binpb"


def find_proto_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The directory holding ``mixflow/v1/mixer.proto``: ``MIXFLOW_PROTO_DIR`` if set, else
    the repository's ``proto/`` when the package sits in a checkout at
    ``<repo>/clients/python/mixflow_client`` (an installed copy finds none and keeps the
    descriptor set it was built with)."""
    env = os.environ.get("MIXFLOW_PROTO_DIR")
    if env:
        return Path(env).resolve()
    candidate = package_dir.parents[2] / "proto"
    return candidate if (candidate / PROTO).is_file() else None


def is_current(target: Path = DESCRIPTOR_SET, proto_root: Path | None = None) -> bool:
    """True when ``target`` exists and is newer than the ``.proto`` files (if they are known)."""
    if not target.is_file():
        return False
    if proto_root is not None:
        newest = max((p.stat().st_mtime for p in proto_root.rglob("*.proto")), default=0.0)
        if newest > target.stat().st_mtime:
            return False
    return True


def generate(proto_root: Path, target: Path = DESCRIPTOR_SET) -> None:
    """Run ``grpc_tools.protoc --descriptor_set_out`` on ``PROTO`` under ``proto_root``."""
    try:
        from grpc_tools import protoc
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mixflow_client needs proto/mixflow/v1/mixer.proto compiled: install grpcio-tools "
            "(pip install grpcio-tools) or install the package with pip, which compiles it"
        ) from e
    include = Path(protoc.__file__).resolve().parent / "_proto"  # well-known types
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mixflow-protoc-") as tmp:
        out = Path(tmp) / "mixer.binpb"
        args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{include}", "--include_imports",
                f"--descriptor_set_out={out}", str(proto_root / PROTO)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {proto_root / PROTO}")
        staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # concurrent importers
        staged.write_bytes(out.read_bytes())
        os.replace(staged, target)


def ensure_compiled() -> None:
    """Compile the descriptor set if it is missing or stale and the protos can be found."""
    root = find_proto_root()
    if is_current(DESCRIPTOR_SET, root):
        return
    if root is None:
        raise ImportError(
            f"mixflow_client: {DESCRIPTOR_SET} is missing and no proto/ folder was found; "
            "install the package with pip from the mixflow repository, or set MIXFLOW_PROTO_DIR"
        )
    generate(root, DESCRIPTOR_SET)
