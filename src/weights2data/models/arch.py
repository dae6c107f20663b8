"""What this project knows of a causal LM's architecture: its output matrix, its blocks, its
final norm, whether the head is tied, and whether two models can be a base and its finetune.

The leaf of the model layer: every other module asks here, so GPT-2, Llama-style and any new
architecture is taught in one place.
"""

from __future__ import annotations

from torch import nn

from ..errors import UserError

# names of the module list that holds the transformer blocks (GPT-2, Llama, BERT, others)
BLOCK_LISTS = ("h", "layers", "layer", "blocks")
FINAL_NORMS = ("ln_f", "norm")


def output_matrix(model: nn.Module):
    """The V×d output (unembedding) matrix; for tied models, the shared embedding."""
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        raise UserError(f"{type(model).__name__} has no output embedding layer to select on.")
    if getattr(head, "bias", None) is not None:
        raise UserError("output layers with a bias are not supported (GPT-2 and Llama have none).")
    return head.weight


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """(name, list) of the transformer blocks, bottom to top: the longest module list with a
    block-list name; None when the model has none."""
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in BLOCK_LISTS
    ]
    return max(found, key=lambda item: len(item[1])) if found else None


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """``find_blocks``, or a clear error naming what was looked for."""
    found = find_blocks(model)
    if found is None:
        raise UserError(
            f"{type(model).__name__} has no list of transformer blocks "
            f"({', '.join(BLOCK_LISTS)}); trainable head / top:N and blocks.N need one."
        )
    return found


def blocks_of(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks, bottom to top."""
    return block_list(model)[1]


def layer_of(name: str, blocks_prefix: str | None) -> str:
    """The layer a parameter belongs to: its block (``prefix.i``), else its owning module."""
    if blocks_prefix and name.startswith(blocks_prefix + "."):
        index = name[len(blocks_prefix) + 1 :].split(".", 1)[0]
        return f"{blocks_prefix}.{index}"
    return name.rsplit(".", 1)[0]


def final_norm(model: nn.Module) -> nn.Module:
    """The norm between the last block and the output layer (GPT-2 ln_f, Llama norm)."""
    body = model.base_model
    for name in FINAL_NORMS:
        module = getattr(body, name, None)
        if isinstance(module, nn.Module):
            return module
    raise UserError(f"{type(model).__name__}: no final norm (ln_f or norm) found.")


def is_tied(model: nn.Module) -> bool:
    """Whether the output matrix is the input embedding's own tensor."""
    return output_matrix(model) is model.get_input_embeddings().weight


def untie_output(model: nn.Module) -> nn.Module:
    """Give the output layer its own copy of the tied embedding (same function, same logits),
    and mark the config untied so a saved folder loads back untied."""
    if is_tied(model):
        head = model.get_output_embeddings()
        head.weight = nn.Parameter(model.get_input_embeddings().weight.detach().clone())
    model.config.tie_word_embeddings = False
    return model


# GPT-2's tanh GELU written as five Python-level tensor ops, and the same formula as one kernel
FAST_GELU = {"gelu_new": "gelu_pytorch_tanh"}


def fast_gelu(config):
    """Swap GPT-2's composite tanh GELU for torch's fused one: the same function, equal to
    float rounding, and 18% off a CPU training step of the default base (one thread)."""
    act = getattr(config, "activation_function", None)
    if act in FAST_GELU:
        config.activation_function = FAST_GELU[act]
    return config


def check_same_architecture(base: nn.Module, final: nn.Module) -> None:
    """Stop with a clear message when two models cannot be a base and its finetune."""
    import torch

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
