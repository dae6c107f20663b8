"""Statistics over seeds: Student-t confidence intervals and paired comparisons.

With three seeds a standard deviation says little; a reviewer wants the interval of the mean
(t with n − 1 degrees of freedom) and, for "does SELECT beat Random", the interval of the
per-seed difference, since both strategies share each seed's expert, pool and test split.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from .errors import UserError

CI_LEVEL = 0.95


def t_quantile(level: float, dof: int) -> float:
    """The two-sided Student-t critical value t_{(1+level)/2, dof}."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, dof))


def confidence_interval(values: Iterable[float], level: float = CI_LEVEL) -> dict[str, float]:
    """Mean, sample std and the half-width of the Student-t confidence interval of the mean.

    ``ci`` = t_{(1+level)/2, n-1} · std / sqrt(n); with fewer than two finite values std and
    ci are NaN (no interval from one seed). NaN inputs are dropped.
    """
    if not 0 < level < 1:
        raise UserError(f"confidence level must lie in (0, 1), got {level!r}.")
    arr = np.asarray([float(v) for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    n = int(arr.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci": math.nan, "n": 0}
    mean = float(arr.mean())
    if n < 2:
        return {"mean": mean, "std": math.nan, "ci": math.nan, "n": 1}
    std = float(arr.std(ddof=1))
    half = t_quantile(level, n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci": half, "n": n}


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], level: float = CI_LEVEL
) -> dict[str, float | bool]:
    """a − b paired by seed: mean difference, its Student-t CI and whether the CI excludes 0.

    Only seeds present (and finite) in both are used; ``significant`` needs at least two.
    """
    seeds = sorted(
        s for s in set(a) & set(b) if math.isfinite(float(a[s])) and math.isfinite(float(b[s]))
    )
    diff = confidence_interval([float(a[s]) - float(b[s]) for s in seeds], level)
    low, high = diff["mean"] - diff["ci"], diff["mean"] + diff["ci"]
    significant = diff["n"] >= 2 and math.isfinite(diff["ci"]) and (low > 0 or high < 0)
    return dict(diff, low=low, high=high, significant=bool(significant), seeds=len(seeds))
