"""The smoke run's results as one JSON snapshot, kept from before a refactor, so a test can show
that a rebuild of the code left the experiment's numbers as they were.

Snapshot: every figures/**/*.csv (but runtime.csv, which holds timings), the row indices of every
selection, and every retraining JSON. Regenerate after a change that is meant to alter results:

    python -m tests.smoke_golden build/smoke > tests/golden/smoke.json
"""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).parent / "golden" / "smoke.json"
# relative tolerance for floats: a BLAS of another CPU rounds differently (byte-identical on the
# CPU that made the snapshot); integers, strings and selected indices must match exactly
RTOL, ATOL = 1e-4, 1e-6
# a paired table's differences of two nearby means keep their operands' absolute rounding, not
# its relative size: perplexities of ~240 that agree to 1e-4 differ by -2.0180 on an AMD EPYC
# (AVX2) and -2.0189 on the Intel Xeon that made the snapshot (4.7e-4 of the difference). Their
# operands, the retrainings' numbers, are checked at RTOL above. The gap closed, a ratio of two
# such differences, inherits their rounding (-0.07338 on an AMD EPYC family 25, -0.07340 in
# the snapshot).
DIFFERENCE_COLUMNS = ("mean_diff", "ci95", "low", "high", "gap_closed")
DIFFERENCE_RTOL = 1e-2


def snapshot(run_dir: Path) -> dict[str, object]:
    """Figures' CSV text, selections' indices and retraining JSONs of one smoke run."""
    shot: dict[str, object] = {}
    for path in sorted((run_dir / "figures").rglob("*.csv")):
        if path.name != "runtime.csv":
            shot[str(path.relative_to(run_dir))] = path.read_text()
    for path in sorted((run_dir / "data" / "selections").rglob("*.parquet")):
        indices = pd.read_parquet(path, columns=["index"])["index"].tolist()
        shot[str(path.relative_to(run_dir))] = indices
    for root in ("retrain", "ablations"):
        for path in sorted((run_dir / "data" / root).rglob("*.json")):
            if "retrain" in path.parts or root == "ablations" and "replacement" in path.parts:
                shot[str(path.relative_to(run_dir))] = json.loads(path.read_text())
    return shot


def differences(expected: object, actual: object, where: str = "") -> list[str]:
    """Where two snapshots (or parts of them) differ beyond float rounding."""
    if isinstance(expected, str) and where.endswith(".csv"):
        return _csv_differences(expected, actual, where)
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{where}: keys {sorted(set(expected) ^ set(actual))}"]
        found = found if set(expected) != set(actual) else []
        for key in sorted(set(expected) & set(actual)):
            found += differences(expected[key], actual[key], f"{where}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        pairs = enumerate(zip(expected, actual, strict=True))
        return [d for i, (e, a) in pairs for d in differences(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) or isinstance(actual, float):
        if _close(expected, actual):
            return []
    elif expected == actual:
        return []
    return [f"{where}: {expected!r} != {actual!r}"]


def _close(a: object, b: object, rtol: float = RTOL) -> bool:
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=ATOL)


def _csv_differences(expected: str, actual: object, where: str) -> list[str]:
    if expected == actual:
        return []
    if not isinstance(actual, str):
        return [f"{where}: missing"]
    old, new = (_read_csv(text) for text in (expected, actual))
    if list(old.columns) != list(new.columns) or len(old) != len(new):
        return [f"{where}: columns or rows changed"]
    found = []
    for column in old.columns:
        paired = where.endswith("_paired.csv") and column in DIFFERENCE_COLUMNS
        rtol = DIFFERENCE_RTOL if paired else RTOL
        for row, (e, a) in enumerate(zip(old[column], new[column], strict=True)):
            if e != a and not _close(e, a, rtol):
                found.append(f"{where} row {row} {column}: {e} != {a}")
    return found


def _read_csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


if __name__ == "__main__":
    print(json.dumps(snapshot(Path(sys.argv[1])), indent=1, sort_keys=True))
