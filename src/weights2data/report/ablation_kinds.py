"""The registry of ablation report kinds: ``weights2data ablation-report --kind K`` runs one.

A rule registers an ablation with its kind (``register_ablation`` in the workflow); a new kind
is one function here, taking the rule's spec (``{"runs": [...], ...}``) and an output stem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import UserError
from .ablations import (
    leakage_report,
    optimizer_report,
    pool_matrix_report,
    replacement_report,
    sweep_report,
)
from .layer_ablation import layers_report

REPORTS = {
    "sweep": sweep_report,
    "leakage": leakage_report,
    "replacement": replacement_report,
    "pools": pool_matrix_report,
    "optimizer": optimizer_report,
    "layers": layers_report,
}


def write_report(kind: str, spec: Mapping, out_stem: str | os.PathLike) -> dict[str, Path]:
    """Write the ablation report ``kind`` of ``spec`` to ``{out_stem}.csv/.md/.pdf/.png``."""
    if kind not in REPORTS:
        raise UserError(f"unknown ablation report {kind!r}; choose one of {', '.join(REPORTS)}.")
    if not isinstance(spec.get("runs"), list):
        raise UserError("the report spec needs a 'runs' list.")
    return REPORTS[kind](spec, out_stem)
