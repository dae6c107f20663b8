"""Load, save, build and compare causal LMs; safetensors only, never remote code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from .atomic import atomic_path
from .device import autocast, compute_device
from .errors import UserError


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


def load_model(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    *,
    base: str | Path | None = None,
):
    """Load a causal LM from a local folder of safetensors weights, in eval mode, onto
    ``device`` (default: ``compute_device()``, i.e. CUDA when present).

    A PEFT adapter folder is loaded merged over its base (``base``, else the adapter's own
    ``base_model_name_or_path``): see ``weights2data.adapters``; a folder of only the tensors a
    head / top:N finetune changed, over the base it names (``weights2data.finals``).
    """
    from .adapters import adapter_base, is_adapter_folder, load_adapter_model
    from .finals import apply_top, is_top_folder, top_base
    from .trunk_cache import attach_active

    if is_adapter_folder(path):
        base_model = _load_folder(adapter_base(path, base), dtype, device)
        model = load_adapter_model(path, base_model)
    elif is_top_folder(path):  # a head / top:N final saved as what changed over its base
        model = apply_top(_load_folder(top_base(path, base), dtype, device), path)
    else:
        model = _load_folder(path, dtype, device)
    attach_active(model, path)
    return model


def _load_folder(path: str | Path, dtype: torch.dtype, device: torch.device | None):
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
    return model.to(device or compute_device())


# GPT-2's tanh GELU written as five Python-level tensor ops, and the same formula as one kernel
FAST_GELU = {"gelu_new": "gelu_pytorch_tanh"}


def fast_gelu(config):
    """Swap GPT-2's composite tanh GELU for torch's fused one: the same function, equal to
    float rounding, and 18% off a CPU training step of the default base (one thread)."""
    act = getattr(config, "activation_function", None)
    if act in FAST_GELU:
        config.activation_function = FAST_GELU[act]
    return config


def load_tokenizer(path: str | Path, *, base: str | Path | None = None):
    """The tokenizer of a model folder; an adapter folder saved without one uses its base's."""
    from transformers import AutoTokenizer

    from .adapters import adapter_base, is_adapter_folder

    folder = Path(path)
    if is_adapter_folder(folder) and not (folder / "tokenizer_config.json").is_file():
        folder = adapter_base(folder, base)
    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"could not load a tokenizer from {str(folder)!r}: {exc}") from exc


def save_model(model, tokenizer, out: str | Path, extra: dict | None = None) -> None:
    """Save model (safetensors) + tokenizer atomically; ``extra`` goes to ``w2d.json`` beside."""
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            (tmp / "w2d.json").write_text(json.dumps(extra, indent=2, sort_keys=True) + "\n")


def weights_fingerprint(path: str | Path) -> str:
    """SHA-256 over the safetensors files of a model folder (identifies the exact weights)."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).glob("*.safetensors")):
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def output_matrix(model) -> torch.Tensor:
    """The V×d output (unembedding) matrix; for tied models, the shared embedding."""
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        raise UserError(f"{type(model).__name__} has no output embedding layer to select on.")
    if getattr(head, "bias", None) is not None:
        raise UserError("output layers with a bias are not supported (GPT-2 and Llama have none).")
    return head.weight


def final_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Hidden states after the final norm (B×T×d): the input of the output matrix.

    Every step's forward pass goes through here: a model with a trunk cache attached
    (``weights2data.trunk_cache``) reads its frozen trunk's states from the cache and runs only
    its top; any other model runs whole (``body_hidden``).
    """
    attached = getattr(model, "_w2d_trunk", None)
    if attached is not None:
        return attached.final_states(model, input_ids, attention_mask)
    return body_hidden(model, input_ids, attention_mask)


def body_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The whole body's final states. It runs under bf16 autocast on a capable GPU; the states
    come back in the model's dtype, so the head and the closed-form gradients are computed in
    full precision."""
    weight = output_matrix(model)
    with autocast(weight.device):
        out = model.base_model(input_ids=input_ids, attention_mask=attention_mask)
    return out.last_hidden_state.to(weight.dtype)


def check_same_architecture(base, final) -> None:
    """Stop with a clear message when two models cannot be a base and its finetune."""
    if type(base) is not type(final):
        raise UserError(
            f"base is {type(base).__name__} but final is {type(final).__name__}; "
            "both must be the same architecture."
        )
    wb, wf = output_matrix(base), output_matrix(final)
    if wb.shape[0] != wf.shape[0]:
        raise UserError(
            f"vocabulary sizes differ: base {wb.shape[0]}, final {wf.shape[0]}; "
            "the final model must be a finetune of the base with the same tokenizer."
        )
    if wb.shape != wf.shape:
        raise UserError(
            f"output layer shapes differ: base {tuple(wb.shape)}, final {tuple(wf.shape)}."
        )
    sb, sf = base.state_dict(), final.state_dict()
    if sb.keys() != sf.keys():
        missing = sorted(set(sb) ^ set(sf))[:3]
        raise UserError(f"parameter names differ between base and final (e.g. {missing}).")
    for name, tensor in sb.items():
        if tensor.shape != sf[name].shape:
            raise UserError(
                f"parameter {name} has shape {tuple(tensor.shape)} in base but "
                f"{tuple(sf[name].shape)} in final."
            )
    if not torch.isfinite(wf).all():
        raise UserError("the final model's output layer holds NaN or inf weights.")
