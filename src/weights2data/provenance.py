"""Provenance sidecars: which code, config and package versions made each artifact.

Records live in a mirror tree under the working directory (the project root, where Snakemake
runs jobs), not beside the artifacts: DVC reads every JSON file in ``data/metrics/expert`` as
metrics and plots, and some steps glob their folders. One rule: the artifact at PATH (relative
to the working directory) gets ``provenance/PATH.json``, ``.json`` always appended
(``data/retrain/…/0.json`` → ``provenance/data/retrain/…/0.json.json``); an ``--out-stem STEM``
gets ``provenance/STEM.json``, whose ``files`` lists the ``STEM.*`` files the step wrote; an
artifact outside the working directory gets none. ``cli.main`` writes them after a step
succeeds, for each output flag in ``OUTPUTS``; a failure to write one only warns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from .atomic import write_json
from .codeprint import step_fingerprint
from .errors import UserError

MIRROR = Path("provenance")
PACKAGE_DIR = Path(__file__).resolve().parent
# dests of what a step writes (--metrics only in finetune: experts-report reads a list of them)
OUTPUTS = ("out", "sum_out", "json")
STEP_OUTPUTS = {"finetune": ("metrics",)}
STEMS = ("out_stem",)
TOOLS = ("torch", "transformers", "snakemake", "dvc")
_GIT = ("git", "--no-optional-locks")  # parallel jobs: never wait on .git/index.lock
_ORDER = "artifact step utc version git_commit git_dirty code_fingerprint versions files".split()


def sidecar_path(artifact: str | os.PathLike) -> Path | None:
    """``provenance/<artifact>.json`` relative to the working directory; None outside it."""
    relative = _relative(artifact)
    return None if relative is None else MIRROR / f"{relative}.json"


def _relative(path: str | os.PathLike) -> str | None:
    """``path`` relative to the working directory, POSIX style; None outside it."""
    path = Path(os.path.abspath(path))
    target = Path(os.path.realpath(path.parent)) / path.name  # the artifact may be a DVC link
    try:
        relative = target.relative_to(os.path.realpath(os.getcwd()))
    except ValueError:
        return None
    return relative.as_posix() if relative.parts else None


def outputs_of(command: str, args: object) -> list[tuple[str, bool]]:
    """(path, is_stem) of each output the step was given."""
    names = (*OUTPUTS, *STEP_OUTPUTS.get(command, ()))
    found = [(getattr(args, n, None), False) for n in names]
    found += [(getattr(args, n, None), True) for n in STEMS]
    return [(str(path), stem) for path, stem in found if isinstance(path, str | os.PathLike)]


def stem_files(stem: str | os.PathLike, since: float) -> list[str]:
    """The ``STEM.*`` files modified since ``since`` (a step's start, seconds since the epoch)."""
    found = Path(stem).parent.glob(glob.escape(Path(stem).name) + ".*")
    fresh = [p for p in found if p.is_file() and p.stat().st_mtime >= since - 1]  # coarse clocks
    return sorted(_relative(p) or p.as_posix() for p in fresh)


def _jsonable(value: object) -> object:
    """A step's arguments as JSON: specs as their objects, paths as text."""
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value) if isinstance(value, os.PathLike) else value


def build_record(command: str, args: object, artifact: str, files: list[str] | None = None) -> dict:
    """The record of one artifact: package, git state, step, config slice, code, versions."""
    commit, dirty = git_state()
    record = {
        "artifact": _relative(artifact) or artifact,
        "step": command,
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": _version("weights2data"),
        "git_commit": commit,
        "git_dirty": dirty,
        "code_fingerprint": step_fingerprint(command),
        "versions": {"python": platform.python_version(), **{t: _version(t) for t in TOOLS}},
        "config": _jsonable(args),
    }
    if files is not None:
        record["files"] = files
    return record


def write_sidecars(command: str, args: object, since: float) -> None:
    """Record every output of a step that succeeded; on any failure warn and go on."""
    for artifact, is_stem in outputs_of(command, args):
        sidecar = None
        try:
            sidecar = sidecar_path(artifact)
            files = stem_files(artifact, since) if is_stem else None
            if sidecar is None or not (files if is_stem else os.path.lexists(artifact)):
                continue  # outside the working directory, or nothing was made there
            write_json(sidecar, build_record(command, args, artifact, files))
        except Exception as exc:  # noqa: BLE001 - provenance must never fail a finished step
            with contextlib.suppress(Exception):  # a stale record would describe the old one
                sidecar.unlink(missing_ok=True)
            print(
                f"weights2data {command}: warning: no provenance for {artifact}: {exc}",
                file=sys.stderr,
            )


@cache
def git_state() -> tuple[str | None, bool | None]:
    """HEAD of the checkout holding the package, and whether tracked files differ from it
    (not counting ``dvc.lock``: ``dvc repro`` rewrites it between stages). (None, None) where
    git is missing or does not track the package (a wheel, even in a checkout's venv)."""
    try:
        _git("ls-files", "--error-unmatch", "__init__.py")
        commit = _git("rev-parse", "HEAD")
        changes = _git(
            "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)dvc.lock"
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(changes)


def _git(*args: str) -> str:
    done = subprocess.run(
        [*_GIT, *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_record(artifact: str) -> tuple[Path, dict]:
    """The sidecar of ``artifact``, or of the ``--out-stem`` whose files list it; its record."""
    sidecar = sidecar_path(artifact)
    if sidecar is None:
        raise UserError(
            f"{artifact} is outside the working directory, so it has no provenance record; "
            "run this from the folder the step ran in (the project root for the pipeline)."
        )
    stem = sidecar_path(Path(artifact).with_suffix("")) if Path(artifact).suffix else None
    for path in (sidecar, stem):
        if path is None or not path.is_file():
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path} is not a readable provenance record: {exc}") from exc
        if path == sidecar or _relative(artifact) in record.get("files", []):
            return path, record
    raise UserError(
        f"{artifact} has no provenance record ({sidecar} does not exist); records are written "
        "by weights2data steps, under provenance/ of the folder the step ran in."
    )


def format_record(sidecar: Path, record: dict) -> str:
    """One ``key: value`` per line; nested maps as ``key.sub: value``, the config as JSON."""
    lines = [f"sidecar: {sidecar.as_posix()}"]
    keys = [k for k in _ORDER if k in record] + sorted(set(record) - {*_ORDER, "config"})
    for key in keys:
        value = record[key]
        if isinstance(value, dict):
            lines += [f"{key}.{k}: {_scalar(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {_scalar(value)}")
    config = json.dumps(record.get("config", {}), indent=2, sort_keys=True)
    lines.append("config:")
    lines += ["  " + line for line in config.splitlines()]
    return "\n".join(lines)


def _scalar(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value)
