"""Build hook: compile the repository's proto/ into ``mixflow_client/mixer.binpb`` before packaging.

The descriptor set is not committed. ``build_py`` (run by ``pip install ./clients/python``
and by editable installs) recompiles it from ``../../proto`` with grpcio-tools when it is
missing or stale. It is data, not generated code, so the runtime requirements in
pyproject.toml do not depend on the grpcio-tools that built it (see mixflow_client/_wire.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_protogen", HERE / "mixflow_client" / "_protogen.py")
assert _spec is not None and _spec.loader is not None
protogen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(protogen)


def compile_protos() -> None:
    """Recompile when the protos are reachable (a checkout), else keep the bundled descriptor set (an sdist)."""
    root = protogen.find_proto_root()
    if root is not None and not protogen.is_current(protogen.DESCRIPTOR_SET, root):
        protogen.generate(root, protogen.DESCRIPTOR_SET)
    if not protogen.is_current(protogen.DESCRIPTOR_SET):
        raise SystemExit("mixflow-client: cannot find proto/mixflow/v1/mixer.proto (set MIXFLOW_PROTO_DIR)")


class BuildPyWithDescriptors(build_py):
    """build_py that compiles the descriptor set first."""

    def run(self) -> None:
        compile_protos()
        super().run()


setup(cmdclass={"build_py": BuildPyWithDescriptors})
