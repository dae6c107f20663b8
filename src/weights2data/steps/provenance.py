"""The step that shows how an artifact was made (``weights2data.provenance``)."""

from __future__ import annotations

from dataclasses import dataclass

from .args import arg


@dataclass(frozen=True, kw_only=True)
class ProvenanceArgs:
    path: str = arg(flag="path", help="an artifact, or the --out-stem of a table")


def provenance(args: ProvenanceArgs) -> str:
    """The artifact's record: code, config slice, git state and versions that made it."""
    from ..provenance import format_record, read_record

    sidecar, record = read_record(args.path)
    return format_record(sidecar, record)
