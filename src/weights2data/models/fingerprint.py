"""The identity of a model folder's weights: what a top folder records of its base, and what
a gradient store records of the models it was built from."""

from __future__ import annotations

import hashlib
from pathlib import Path


def weights_fingerprint(path: str | Path) -> str:
    """SHA-256 over the safetensors files of a model folder (identifies the exact weights)."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).glob("*.safetensors")):
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
