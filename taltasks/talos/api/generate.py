"""Regenerate the committed Python stubs from the .proto files in this folder.

    python -m taltasks.talos.api.generate            # rewrite the *_pb2*.py files in place
    python -m taltasks.talos.api.generate --out DIR  # write them under DIR instead (used by the freshness test)

The protos import each other as "taltasks/talos/api/<file>.proto", so protoc runs with the
repository root as include path and the generated modules import each other as
``taltasks.talos.api.<file>_pb2`` without any post-processing. Needs grpcio-tools (a dev extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

API_DIR = Path(__file__).resolve().parent
REPO_ROOT = API_DIR.parents[2]


def proto_files() -> list[Path]:
    return sorted(API_DIR.glob("*.proto"))


def generated_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every file protoc writes for our protos, relative to ``root``."""
    out: list[Path] = []
    rel = API_DIR.relative_to(REPO_ROOT)
    for proto in proto_files():
        stem = proto.stem
        out += [root / rel / f"{stem}_pb2.py", root / rel / f"{stem}_pb2.pyi"]
        if "service " in proto.read_text():
            out.append(root / rel / f"{stem}_pb2_grpc.py")
    return out


def _include_dirs() -> list[str]:
    import google.rpc  # googleapis-common-protos ships google/rpc/status.proto
    import grpc_tools

    googleapis_root = Path(google.rpc.__path__[0]).parents[1]
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(REPO_ROOT), str(well_known), str(googleapis_root)]


def generate(out_root: Path = REPO_ROOT) -> list[Path]:
    from grpc_tools import protoc

    out_root.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc"]
    args += [f"-I{d}" for d in _include_dirs()]
    args += [f"--python_out={out_root}", f"--pyi_out={out_root}", f"--grpc_python_out={out_root}"]
    args += [str(p.relative_to(REPO_ROOT)) for p in proto_files()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the message above")
    # protoc writes a _pb2_grpc.py for every file; keep only those of files that define services
    expected = set(generated_files(out_root))
    for path in (out_root / API_DIR.relative_to(REPO_ROOT)).glob("*_pb2_grpc.py"):
        if path not in expected:
            path.unlink()
    return sorted(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="root to write the stubs under")
    ns = parser.parse_args(argv)
    for path in generate(ns.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
