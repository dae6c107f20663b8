"""Read and validate a config file with the same schema Snakemake uses, defaults filled in."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import yaml

from .errors import UserError

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"  # package data


def validate_config(config: dict) -> dict:
    """Validate in place against the schema (filling defaults); a bad key stops with its path."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as exc:
        raise UserError(f"invalid config: {_one_line(str(exc))}") from exc
    check_references(config)
    return config


def _one_line(message: str) -> str:
    """jsonschema's reason and where in the config it failed, without the schema dump."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("ValidationError")), None)
    if reason is None:
        return " ".join(lines)
    reason = reason.removeprefix("ValidationError:").strip()
    where = re.search(r"in schema((?:\[[^\]]+\])+)", message)
    keys = re.findall(r"\['([^']+)'\]", where.group(1)) if where else []
    keys = [k for k in keys if k not in ("properties", "patternProperties", "additionalProperties")]
    return f"{reason} (at {'.'.join(keys)})" if keys else reason


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"config file {str(path)!r} does not exist.")
    try:
        loaded = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"config file {path} is not readable YAML ({first}); fix it.") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise UserError(
            f"config file {path} holds a YAML {type(loaded).__name__}, not a mapping of keys; "
            "start from config.yaml."
        )
    if not loaded:
        raise UserError(f"config file {path} is empty; start from config.yaml.")
    try:
        return validate_config(loaded)
    except UserError as exc:
        raise UserError(f"config file {path}: {exc}") from exc


def check_references(config: dict) -> None:
    """Names that point to other sections must exist (the schema cannot say this)."""
    if config["base"] not in config["bases"]:
        raise UserError(f"base {config['base']!r} is not a key of `bases`.")
    for name, base in config["bases"].items():
        if base["kind"] == "pretrain":
            for corpus in base.get("corpus") or []:
                _known(config, corpus, f"bases.{name}.corpus")
            if not base.get("corpus"):
                raise UserError(f"bases.{name} has kind pretrain but no `corpus` list.")
    for name, task in config["tasks"].items():
        _known(config, task["dataset"], f"tasks.{name}.dataset")


def _known(config: dict, dataset: str, where: str) -> None:
    if dataset not in config["datasets"]:
        raise UserError(
            f"{where} names dataset {dataset!r}, which is not a key of `datasets` "
            f"(known: {', '.join(sorted(config['datasets']))})."
        )


def task_finetune(config: dict, task: str) -> dict:
    """The finetuning hyper-parameters of one task: global section + the task's overrides."""
    merged = copy.deepcopy(config["finetune"])
    merged.update(config["tasks"][task].get("finetune") or {})
    return merged
