"""How a step declares its command-line arguments: a frozen dataclass whose fields the CLI turns
into flags (``weights2data.cli``), so a new option is one field, typed once.

A field's type says how its flag is read: ``Path`` / ``int`` / ``float`` / ``str`` (``| None``
when it may be left out), ``tuple[X, ...]`` for several values, ``dict`` for a JSON object, and
a spec class of ``weights2data.specs`` for a config slice given as JSON (parsed into the spec).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

MISSING = dataclasses.MISSING


def arg(
    default: Any = MISSING,
    *,
    help: str = "",  # noqa: A002 - argparse's own name for it
    flag: str | None = None,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """One argument of a step: its default (none: required), help, flag (default: the field's
    name as ``--field-name``), allowed values and a parser for one value."""
    meta = {"help": help, "flag": flag, "choices": choices, "parse": parse}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def threads() -> Any:
    """The torch thread count of a model step (Snakemake passes the job's threads)."""
    return arg(2, help="torch threads")


def trunk_caches() -> Any:
    """The trunk caches a model step reads its frozen trunk from (``models.cache``): the step
    hands them to every model it opens (``model_ref``), which then runs only its top."""
    return arg((), help="trunk cache files (safetensors) of the datasets this step reads")


def model_ref(path: Path, task, finetune, caches: tuple[Path, ...], base: Path | None = None):
    """The step's model as a ``ModelRef``: its folder, the task's encoding, the finetune's
    regime and the trunk caches (opened once; ``ModelRef.sibling`` shares them)."""
    from ..formats import Encoding
    from ..models.cache import CacheSet
    from ..models.lm import ModelRef

    kind = "classification" if task.classification else "sft"
    encoding = Encoding(kind, finetune.max_length, finetune.truncate)
    return ModelRef(Path(path), base, finetune.trainable, encoding, CacheSet.open(caches))


def fraction(text: str) -> float:
    """A share in [0, 1]."""
    import argparse

    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction must lie in [0, 1], got {text}")
    return value
