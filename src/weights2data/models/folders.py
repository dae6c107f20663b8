"""Model folders on disk: load and save plain Hugging Face folders, PEFT adapter folders and
top folders (``tops``); safetensors only, never remote code. Knows nothing of trunk caches:
``lm.open_lm`` hands those over."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn

from ..atomic import atomic_path
from ..device import compute_device
from ..errors import UserError
from .adapters import adapter_base, is_adapter_folder, load_adapter_model
from .arch import fast_gelu
from .fingerprint import record_fingerprints, stored_fingerprints, tensor_hash
from .tops import apply_top, is_top_folder, top_base, top_names


def _require_hf_folder(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"model folder {str(path)!r} does not exist; give a local HF model folder.")
    if not (path / "config.json").exists():
        raise UserError(f"{str(path)!r} has no config.json; it is not a Hugging Face model folder.")
    if not list(path.glob("*.safetensors")):
        raise UserError(
            f"{str(path)!r} has no *.safetensors weights; only safetensors are loaded "
            "(no pickles). Convert with `model.save_pretrained(dir, safe_serialization=True)`."
        )
    return path


@dataclass
class Loaded:
    """A folder's weights as one module; ``updates``: a merged LoRA adapter's own update of each
    adapted module (out × in, in the module weight's layout), None for full weights."""

    module: nn.Module
    updates: dict[str, torch.Tensor] | None = None
    hashes: dict[str, str] | None = None  # each parameter's hash, where the folders record them


def load_weights(
    path: str | Path,
    *,
    base: str | Path | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> Loaded:
    """The full model in a folder, in eval mode, on ``device`` (default ``compute_device()``).

    A PEFT adapter folder is merged over its base (``base``, else the adapter's own
    ``base_model_name_or_path``); a top folder (only the tensors a head / top:N finetune
    changed) is written over the base it names.
    """
    device = device or compute_device()
    if is_adapter_folder(path):
        base_model = _load_folder(adapter_base(path, base), dtype, device)
        return Loaded(*load_adapter_model(path, base_model))
    if is_top_folder(path):
        base_dir = top_base(path, base)
        module = apply_top(_load_folder(base_dir, dtype, device), path)
        return Loaded(module, hashes=_top_hashes(module, base_dir, top_names(path)))
    return Loaded(_load_folder(path, dtype, device), hashes=_recorded_hashes(path))


def _recorded_hashes(path: str | Path) -> dict[str, str] | None:
    record = stored_fingerprints(path)
    return record.get("parameters") if record else None


def _top_hashes(module: nn.Module, base_dir: Path, names: list[str]) -> dict[str, str] | None:
    """The base's recorded hashes with those of the tensors the top folder wrote in."""
    hashes = _recorded_hashes(base_dir)
    if hashes is None:
        return None
    params = dict(module.named_parameters())
    return dict(hashes, **{name: tensor_hash(params[name]) for name in names if name in params})


def load_model(path: str | Path, *, base: str | Path | None = None, **options) -> nn.Module:
    """``load_weights(...).module``: the plain module, for callers that need no adapter update."""
    return load_weights(path, base=base, **options).module


def _load_folder(path: str | Path, dtype: torch.dtype, device: torch.device) -> nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = _require_hf_folder(path)
    try:
        config = fast_gelu(AutoConfig.from_pretrained(folder, trust_remote_code=False))
        model = AutoModelForCausalLM.from_pretrained(
            folder, config=config, use_safetensors=True, trust_remote_code=False, dtype=dtype
        )
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(
            f"could not load the model in {str(folder)!r}: {exc}. The weights may be corrupted; "
            "re-download or re-save them."
        ) from exc
    model.eval()
    return model.to(device)


def load_tokenizer(path: str | Path, *, base: str | Path | None = None):
    """The tokenizer of a model folder; an adapter folder saved without one uses its base's."""
    from transformers import AutoTokenizer

    folder = Path(path)
    if is_adapter_folder(folder) and not (folder / "tokenizer_config.json").is_file():
        folder = adapter_base(folder, base)
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load a tokenizer from {str(folder)!r}: {exc}") from exc


def save_model(model: nn.Module, tokenizer, out: str | Path, extra: dict | None = None) -> None:
    """Save model (safetensors) + tokenizer atomically; ``extra`` goes to ``w2d.json`` beside."""
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record_fingerprints(tmp, model)
        if extra is not None:
            (tmp / "w2d.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")
