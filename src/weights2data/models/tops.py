"""Finals stored by what changed: a head or top:N finetune is its base plus a few tensors.

A full SmolLM2 folder is ~540 MB in float32; an expert that trained only the top differs from
its base in the top's tensors, and under the label-masked loss only in the head's label rows.
Such an expert is saved as a "top folder": the tokenizer and config as usual, ``top.safetensors``
with the tensors that changed (a matrix whose changed rows are few as those rows and their
indices), and ``w2d_top.json`` naming the base folder and its weights' fingerprint.
``folders.load_weights`` gives back the full Hugging Face model, so every step, ``select``,
``diagnose`` and the Python API take such a folder as they take any final; ``weights2data
export`` writes it out whole for other tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path
from ..errors import UserError
from .fingerprint import record_fingerprints, weights_fingerprint

TOP_CONFIG = "w2d_top.json"
TOP_WEIGHTS = "top.safetensors"
ROWS, VALUES = "::rows", "::values"


def is_top_folder(path: str | Path) -> bool:
    return (Path(path) / TOP_CONFIG).is_file()


def changed_tensors(base_state: dict, final) -> dict[str, torch.Tensor]:
    """The final's tensors that differ from ``base_state`` (the base's tensors of the names
    that may have changed: those a finetune trains); a matrix with fewer than half its rows
    changed as those rows (``name::values``) and their indices (``name::rows``)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in final.state_dict().items():
        old = base_state.get(name)
        if old is None:
            continue
        if torch.equal(tensor, old):
            continue
        if tensor.dim() == 2:
            rows = (tensor != old).any(dim=1).nonzero().flatten()
            if 2 * len(rows) < tensor.shape[0]:
                out[name + ROWS] = rows.cpu()
                out[name + VALUES] = tensor[rows].detach().cpu().contiguous()
                continue
        out[name] = tensor.detach().cpu().contiguous()
    return out


def save_top(
    final, base_state: dict, tokenizer, out: Path, base_dir: Path, extra: dict | None = None
) -> None:
    """Save ``final`` as a top folder over the base in ``base_dir``, atomically; ``base_state``
    holds the base's tensors that the finetune may have changed (``regime.trained_state``)."""
    tensors = changed_tensors(base_state, final)
    record = {
        "base": os.path.relpath(Path(base_dir).resolve(), Path(out).resolve()),
        "base_fingerprint": weights_fingerprint(base_dir),
        "tensors": sorted({name.split("::")[0] for name in tensors}),
    }
    with atomic_path(out) as tmp:
        final.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file(tensors, str(tmp / TOP_WEIGHTS))
        (tmp / TOP_CONFIG).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        record_fingerprints(tmp)
        if extra is not None:
            (tmp / "w2d.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")


def _record(folder: Path) -> dict:
    try:
        return json.loads((folder / TOP_CONFIG).read_text())
    except ValueError as exc:
        raise UserError(f"{str(folder / TOP_CONFIG)!r} is not valid JSON ({exc}).") from exc


def top_names(folder: str | Path) -> list[str]:
    """The names of the tensors a top folder writes over its base."""
    return list(_record(Path(folder))["tensors"])


def top_base(folder: str | Path, base: str | Path | None = None) -> Path:
    """The base a top folder completes: ``base`` when given, else the folder its record names
    (relative to the top folder); either must have the recorded weights."""
    folder = Path(folder)
    record = _record(folder)
    path = Path(base) if base is not None else folder / record["base"]
    if not (path / "config.json").is_file():
        raise UserError(
            f"the final {str(folder)!r} stores only what its finetune changed, over the base "
            f"{str(path)!r}, which is not a model folder; pass the base folder (--base)."
        )
    if weights_fingerprint(path) != record["base_fingerprint"]:
        raise UserError(
            f"the base {str(path)!r} is not the one the final {str(folder)!r} was trained from "
            f"(weights fingerprint {weights_fingerprint(path)}, expected "
            f"{record['base_fingerprint']}); pass that base (--base)."
        )
    return path


def apply_top(model, folder: str | Path):
    """``model`` (the base) with the top folder's tensors written in: the full final."""
    path = Path(folder) / TOP_WEIGHTS
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"could not read {str(path)!r} ({exc}); re-save the final.") from exc
    state = model.state_dict()
    with torch.no_grad():
        for key, value in tensors.items():
            name = key.split("::")[0]
            if name not in state:
                raise UserError(f"{str(path)!r} holds {name}, which the base has not.")
            if key.endswith(ROWS):
                state[name][value.long()] = tensors[name + VALUES].to(state[name].dtype)
            elif not key.endswith(VALUES):
                state[name].copy_(value)
    return model
