"""The one table of selection strategies, read by selection, the CLI, tables and figures.

A row holds a strategy's name, the paper's label for it, its figure colour and marker, whether
it reads the gradient store, and its ``pick_*`` rule in :mod:`weights2data.selection`. The CLI's
``choices=``, table rows and figure styles come from here, and a test checks the config schema's
``$defs/strategy`` enum against ``NAMES``, so a new strategy is one row here plus that enum.
No matplotlib here: selection and ``--help`` stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .selection import (
    Picked,
    Request,
    pick_bottomk,
    pick_pmax,
    pick_pmin,
    pick_random,
    pick_select,
    pick_select_batch,
    pick_topk,
    pick_topk_balanced,
)


@dataclass(frozen=True)
class Strategy:
    """One strategy: how it is named, drawn and run. ``pick`` is None for the Expert row."""

    name: str
    label: str  # the paper's name, in tables and legends
    color: str  # the same in every figure (Okabe–Ito colour-blind-safe palette, grey, black)
    marker: str
    rank: int  # position in figures and tables: Random first, SELECT's last, Expert after them
    needs_store: bool = False
    pick: Callable[[Request], Picked] | None = None
    # reads the store's Adam-aware space g ⊘ D (gradients.precondition) instead of g
    preconditioned: bool = False


# In the order the CLI offers them (and the schema's enum lists them). Colours: Okabe–Ito.
STRATEGIES: tuple[Strategy, ...] = (
    # vermilion: the method
    Strategy("select", "SELECT", "#D55E00", "*", 7, True, pick_select),
    # bluish green
    Strategy("select_batch", "SELECT (Batch)", "#009E73", "P", 6, True, pick_select_batch),
    # the same two in the Adam-aware space: darker shades of their colours
    Strategy("select_pre", "SELECT (Adam-aware)", "#8F3A00", "H", 9, True, pick_select, True),
    Strategy(
        "select_batch_pre",
        "SELECT (Batch, Adam-aware)",
        "#005C44",
        "d",
        8,
        True,
        pick_select_batch,
        True,
    ),
    # grey: the reference everything is measured against
    Strategy("random", "Random", "#7F7F7F", "o", 0, pick=pick_random),
    # blue
    Strategy("topk", "Top-K", "#0072B2", "^", 2, True, pick_topk),
    # sky blue
    Strategy("topk_balanced", "Top-K (Balanced)", "#56B4E9", "v", 1, True, pick_topk_balanced),
    # reddish purple
    Strategy("bottomk", "Bottom-K", "#CC79A7", "<", 3, True, pick_bottomk),
    # orange
    Strategy("pmin", "P-Min", "#E69F00", "s", 4, pick=pick_pmin),
    # brown
    Strategy("pmax", "P-Max", "#8C6D31", "D", 5, pick=pick_pmax),
)
# The finetuned model itself: a row of every table and a reference in figures, never selected.
EXPERT = Strategy("expert", "Expert", "#000000", "X", 10)  # black: the upper reference

NAMES: tuple[str, ...] = tuple(s.name for s in STRATEGIES)
NEEDS_STORE: tuple[str, ...] = tuple(s.name for s in STRATEGIES if s.needs_store)
PRECONDITIONED: tuple[str, ...] = tuple(s.name for s in STRATEGIES if s.preconditioned)
# Every strategy figures and tables know, in the order they list them.
SHOWN: tuple[Strategy, ...] = tuple(sorted((*STRATEGIES, EXPERT), key=lambda s: s.rank))
DISPLAY_ORDER: tuple[str, ...] = tuple(s.name for s in SHOWN)
_BY_NAME = {s.name: s for s in SHOWN}


# --------------------------------------------------------------------------- lookups


def selectable(name: str) -> Strategy:
    """The strategy ``name`` names; a name that selects nothing is an error."""
    if name not in NAMES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(NAMES)}.")
    return _BY_NAME[name]


def shown(name: str) -> Strategy:
    """The row of a strategy a record names (Expert included); an unknown name is an error."""
    if name not in _BY_NAME:
        raise UserError(
            f"unknown strategy {name!r}; known strategies are {', '.join(DISPLAY_ORDER)}. "
            "Fix the name in the records (or add it to weights2data.strategies)."
        )
    return _BY_NAME[name]


def display_name(name: str) -> str:
    """The paper's name for a strategy key (``select_batch`` → ``SELECT (Batch)``)."""
    return shown(name).label


def sort_strategies(names: Iterable[str]) -> list[str]:
    """Unique strategy keys in the order figures and tables list them (unknown keys: error)."""
    return sorted({_known(name) for name in names}, key=DISPLAY_ORDER.index)


def _known(name: str) -> str:
    shown(name)
    return name


# --------------------------------------------------------------------------- running one


def _check_request(name: str, n: int, k: int) -> Strategy:
    strategy = selectable(name)
    if n == 0:
        raise UserError("the pool is empty; there is nothing to select from.")
    if not isinstance(k, int | np.integer) or k < 1:
        raise UserError(f"K must be a positive integer, got {k!r}.")
    if k > n:
        raise UserError(f"K={k} is larger than the pool ({n} texts); lower K or grow the pool.")
    return strategy


def _pool_size(grads, losses, pseudolabels) -> int:
    for thing in (grads, losses, pseudolabels):
        if thing is not None:
            return len(thing)
    raise UserError("give a gradient store, losses or pseudolabels so the pool size is known.")


def run_strategy(
    name: str,
    *,
    grads: np.ndarray | None = None,
    target: np.ndarray | None = None,
    losses: np.ndarray | None = None,
    pseudolabels: np.ndarray | None = None,
    k: int,
    seed: int = 0,
    batch_size: int | None = None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run one strategy; return exactly K distinct pool indices (int64) and a score for each.

    Scores: the greedy objective after each pick (select, select_batch), cos(g, Δ) (top/bottom
    and random when a store is given, else NaN), or the final model's loss (pmin, pmax).
    """
    n = _pool_size(grads, losses, pseudolabels)
    strategy = _check_request(name, n, k)
    if strategy.needs_store and grads is None:
        raise UserError(f"strategy {name!r} needs the gradient store.")
    request = Request(
        n=n,
        k=int(k),
        grads=grads,
        target=target,
        losses=losses,
        pseudolabels=pseudolabels,
        seed=seed,
        batch_size=batch_size,
        block_rows=block_rows,
    )
    return strategy.pick(request)


def choose(labels, store, strategy: str, k: int, seed: int, batch_size: int | None):
    """Run one strategy over a labelled pool (a frame) and its gradient store (a folder, for
    the strategies that read one); the rows picked, in pick order."""
    from .gradients.store import load_gradient_store  # here: --help stays free of torch

    row = selectable(strategy)  # an unknown name stops here, before the store is read
    grads = target = None
    if strategy in NEEDS_STORE:
        if store is None:
            raise UserError(f"strategy {strategy!r} needs a gradient store.")
        grads, target, meta = load_gradient_store(store, preconditioned=row.preconditioned)
        if meta["N"] != len(labels):
            raise UserError(
                f"the gradient store holds {meta['N']} texts but the pool has {len(labels)}; "
                "rebuild the store from this pool."
            )
    losses, pseudolabels = labels["loss"].to_numpy(), labels["pseudolabel"].to_numpy()
    idx, scores = run_strategy(
        strategy,
        grads=grads,
        target=target,
        losses=losses,
        pseudolabels=pseudolabels,
        k=k,
        seed=seed,
        batch_size=batch_size,
    )
    picked = labels.iloc[idx].reset_index(drop=True)
    picked.insert(0, "index", idx.astype(np.int64))
    picked["score"] = scores
    picked["rank"] = np.arange(len(idx))
    return picked
