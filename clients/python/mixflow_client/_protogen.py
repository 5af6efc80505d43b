"""Generate the gRPC stubs for ``mixflow.v1`` (and ``grpc.health.v1``) from ``proto/``.

The stubs are never committed. They are generated

* at build time, by the custom ``build_py`` in ``setup.py`` (``pip install ./clients/python``);
* on first import, when the package is used from a source checkout or an editable
  install and ``mixflow_client/_proto/`` is missing or older than the ``.proto`` files.

Generated modules are written flat into ``mixflow_client/_proto/`` (``mixer_pb2.py``,
``mixer_pb2_grpc.py``, ``health_pb2.py``, ``health_pb2_grpc.py``) with their imports made
package-relative, while the descriptors keep their canonical file names
(``mixflow/v1/mixer.proto``), so reflection and error messages look as usual.

This module must stay importable without the rest of the package (``setup.py`` loads it
by path), so it only uses the standard library until ``generate`` runs ``grpc_tools``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

#: The ``.proto`` files, relative to the proto root, and the flat module stem of each.
PROTOS: dict[str, str] = {
    "mixflow/v1/mixer.proto": "mixer",
    "grpc/health/v1/health.proto": "health",
}

PACKAGE_DIR = Path(__file__).resolve().parent
OUT_DIR = PACKAGE_DIR / "_proto"


def find_proto_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The directory holding ``mixflow/v1/mixer.proto``: ``MIXFLOW_PROTO_DIR`` if set, else
    the repository's ``proto/`` when the package sits in a checkout at
    ``<repo>/clients/python/mixflow_client`` (an installed copy finds none and keeps the
    stubs it was built with)."""
    env = os.environ.get("MIXFLOW_PROTO_DIR")
    if env:
        return Path(env).resolve()
    candidate = package_dir.parents[2] / "proto"
    return candidate if (candidate / "mixflow" / "v1" / "mixer.proto").is_file() else None


def stubs_current(out_dir: Path = OUT_DIR, proto_root: Path | None = None) -> bool:
    """True when every stub exists and is newer than its ``.proto`` (if that is known)."""
    for rel, stem in PROTOS.items():
        for suffix in ("_pb2.py", "_pb2_grpc.py"):
            target = out_dir / f"{stem}{suffix}"
            if not target.is_file():
                return False
            if proto_root is not None:
                src = proto_root / rel
                if src.is_file() and src.stat().st_mtime > target.stat().st_mtime:
                    return False
    return True


def generate(proto_root: Path, out_dir: Path = OUT_DIR) -> None:
    """Run ``grpc_tools.protoc`` on the protos under ``proto_root`` into ``out_dir``."""
    try:
        from grpc_tools import protoc
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mixflow_client needs its gRPC stubs generated: install grpcio-tools "
            "(pip install grpcio-tools) or install the package with pip, which generates them"
        ) from e
    include = Path(protoc.__file__).resolve().parent / "_proto"  # well-known types
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mixflow-protoc-") as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(proto_root / rel) for rel in PROTOS],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"grpc_tools.protoc failed on {proto_root}")
        for rel, stem in PROTOS.items():
            generated = Path(tmp) / Path(rel).parent
            for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
                text = (generated / f"{stem}{suffix}").read_text(encoding="utf-8")
                # `from mixflow.v1 import mixer_pb2 as ...` -> `from . import mixer_pb2 as ...`
                text = re.sub(r"^from [\w.]+ import (\w+_pb2)\b", r"from . import \1", text, flags=re.M)
                staged = out_dir / f".{stem}{suffix}.{os.getpid()}.tmp"  # concurrent importers
                staged.write_text(text, encoding="utf-8")
                os.replace(staged, out_dir / f"{stem}{suffix}")
    init = out_dir / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated gRPC stubs (see mixflow_client/_protogen.py). Do not edit."""\n', encoding="utf-8")


def ensure_stubs() -> None:
    """Generate the stubs if they are missing or stale and the protos can be found."""
    root = find_proto_root()
    if stubs_current(OUT_DIR, root):
        return
    if root is None:
        raise ImportError(
            f"mixflow_client: generated stubs are missing from {OUT_DIR} and no proto/ folder was found; "
            "install the package with pip from the mixflow repository, or set MIXFLOW_PROTO_DIR"
        )
    generate(root, OUT_DIR)
