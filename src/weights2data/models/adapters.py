"""PEFT (LoRA) adapter folders as final models: merged over the base, their update kept.

The most common open-weights finetune is a LoRA adapter on the attention and MLP projections.
Every step that runs the final model (pseudolabels, Δ, gradients under θf, diagnostics) loads it
merged over the base with ``peft``; the adapter's own update s·BA of each adapted module is kept
beside the merged model (``lm.LM.updates``), so Δ of those modules is exactly the adapter's
and not a difference of two rounded float32 weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import UserError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def is_adapter_folder(path: str | Path) -> bool:
    """A PEFT adapter folder (``adapter_config.json`` beside the adapter weights)."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def _adapter_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except ValueError as exc:
        raise UserError(f"{str(folder / ADAPTER_CONFIG)!r} is not valid JSON ({exc}).") from exc
    if not isinstance(config, dict):
        raise UserError(f"{str(folder / ADAPTER_CONFIG)!r} must hold a JSON object.")
    return config


def adapter_base(folder: str | Path, base: str | Path | None = None) -> Path:
    """The base folder an adapter is applied to: ``base`` when given, else the adapter's own
    ``base_model_name_or_path`` when it names a local folder (as given, or beside the adapter)."""
    folder = Path(folder)
    if base is not None:
        return Path(base)
    named = _adapter_config(folder).get("base_model_name_or_path")
    for candidate in (Path(named), folder / named) if named else ():
        if (candidate / "config.json").is_file():
            return candidate
    raise UserError(
        f"the adapter {str(folder)!r} is applied to base {named!r}, which is not a local model "
        "folder; pass the base folder (--base) that the adapter was trained on."
    )


def load_adapter_model(
    folder: str | Path, base_model: torch.nn.Module
) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """``base_model`` with the adapter in ``folder`` merged in, and the adapter's own update of
    each adapted module (the caller keeps it: ``lm.LM.updates``)."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    folder = Path(folder)
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise UserError(
            f"the adapter {str(folder)!r} has no {ADAPTER_WEIGHTS}; only safetensors are loaded "
            "(no pickles). Save it with `model.save_pretrained(dir)` (safetensors by default)."
        )
    kind = _adapter_config(folder).get("peft_type")
    if kind != "LORA":
        raise UserError(f"the adapter {str(folder)!r} is {kind!r}; only LoRA adapters are read.")
    try:
        peft_model = PeftModel.from_pretrained(base_model, folder, is_trainable=False)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise UserError(
            f"could not apply the adapter {str(folder)!r} to this base: {exc}. Give the base "
            "the adapter was trained on."
        ) from exc
    updates = {}
    with torch.no_grad():
        for name, module in peft_model.base_model.model.named_modules():
            if isinstance(module, LoraLayer) and module.active_adapters:
                delta = sum(module.get_delta_weight(a) for a in module.active_adapters)
                updates[name] = delta.detach().clone()
    if not updates:
        raise UserError(f"the adapter {str(folder)!r} adapts no module of this base.")
    return peft_model.merge_and_unload().eval(), updates
