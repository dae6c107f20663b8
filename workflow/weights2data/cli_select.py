"""Subcommands of the SELECT engine (autolabel, gradient-store, select); filled in below."""

from __future__ import annotations


def register(sub) -> None:
    """Add the SELECT subcommands to the parser (none yet)."""
