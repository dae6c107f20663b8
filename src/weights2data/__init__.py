"""weights2data: find public texts that train a base model like a finetuned one did (SELECT).

``weights2data.select(base, final, pool, k)`` is the Python API (``weights2data.api``); it is
imported on first use, so that ``import weights2data`` (and the CLI's start) stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["select"]


def __getattr__(name: str) -> Any:
    if name == "select":
        from .api import select

        return select
    raise AttributeError(f"module 'weights2data' has no attribute {name!r}")
