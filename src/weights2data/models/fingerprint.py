"""The identity of a model folder's weights and of each of its parameters: what a top folder
records of its base, what a gradient store records of its models, and what a trunk cache is
checked against (``regime.trunk_fingerprint``).

Hashing SmolLM2's 540 MB takes about half a second each time, and a pipeline opens the same
base hundreds of times. So a folder this project saves carries its fingerprints in
``w2d_fingerprint.json``, written inside the folder's atomic write, and they are trusted while
every weights file keeps the size, inode and times it had then (a rewritten file changes them;
the hashes are then computed again). A folder from elsewhere is hashed on every use, as before.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

RECORD = "w2d_fingerprint.json"


def _weights_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _stats(folder: Path) -> dict[str, list[int]]:
    """What changes when a weights file is rewritten, in place or replaced."""
    out = {}
    for file in _weights_files(folder):
        st = file.stat()
        out[file.name] = [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
    return out


def _hash_files(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in _weights_files(folder):
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def stored_fingerprints(path: str | Path) -> dict | None:
    """The folder's record while its weights files are as they were written, else None."""
    folder = Path(path)
    try:
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or "weights" not in record:
        return None
    return record if record.get("files") == _stats(folder) else None


def weights_fingerprint(path: str | Path) -> str:
    """SHA-256 over the safetensors files of a model folder (identifies the exact weights)."""
    record = stored_fingerprints(path)
    return record["weights"] if record else _hash_files(Path(path))


def tensor_hash(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's values as float32 (a folder loads as float32 whatever it stores)."""
    values = tensor.detach().to(torch.float32).cpu().contiguous()
    return hashlib.sha256(values.view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def record_fingerprints(folder: str | Path, module=None) -> None:
    """Write the record of a folder just saved (inside its atomic write): its weights'
    fingerprint and, given the module saved, each parameter's hash."""
    folder = Path(folder)
    record: dict = {"files": _stats(folder), "weights": _hash_files(folder)}
    if module is not None:
        record["parameters"] = {name: tensor_hash(p) for name, p in module.named_parameters()}
    (folder / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
