"""The strategy registry is the one list of strategies: the config schema validates exactly its
names, and every strategy a table or figure can show has a label, colour and marker."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.markers
import pytest
import yaml

from weights2data import strategies
from weights2data.config import SCHEMA
from weights2data.errors import UserError
from weights2data.report.tables import TABLE1_ROWS, TABLE2_ROWS

STRATEGY_REF = {"$ref": "#/$defs/strategy"}


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _enums(node, where=""):
    """Every enum of the schema with where it sits."""
    if isinstance(node, dict):
        if "enum" in node:
            yield where, node["enum"]
        for key, value in node.items():
            yield from _enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _enums(value, f"{where}/{i}")


def test_schema_strategy_enum_is_the_registry():
    schema = _schema()
    assert schema["$defs"]["strategy"]["enum"] == list(strategies.NAMES)
    elsewhere = [w for w, enum in _enums(schema) if "select" in enum and w != "/$defs/strategy"]
    assert elsewhere == []  # every other strategy list refers to $defs/strategy


def test_schema_strategy_lists_refer_to_the_definition():
    props = _schema()["properties"]
    assert props["selection"]["properties"]["strategies"]["items"] == STRATEGY_REF
    table2 = props["tables"]["properties"]["table2"]["properties"]
    assert table2["strategies"]["items"] == STRATEGY_REF


def test_every_strategy_has_a_label_colour_and_marker():
    shown = strategies.SHOWN
    assert [s.name for s in shown] == list(strategies.DISPLAY_ORDER)
    assert set(strategies.NAMES) | {"expert"} == set(strategies.DISPLAY_ORDER)
    for s in shown:
        assert s.label and strategies.display_name(s.name) == s.label
        assert matplotlib.colors.is_color_like(s.color), s.name
        assert s.marker in matplotlib.markers.MarkerStyle.markers, s.name
    for field in ("label", "color", "marker", "rank"):
        values = [getattr(s, field) for s in shown]
        assert len(set(values)) == len(values), field


def test_selectable_strategies_have_a_rule_and_expert_has_none():
    assert all(callable(s.pick) for s in strategies.STRATEGIES)
    assert strategies.EXPERT.pick is None
    assert strategies.NEEDS_STORE == (
        "select",
        "select_batch",
        "select_pre",
        "select_batch_pre",
        "topk",
        "topk_balanced",
        "bottomk",
    )
    assert strategies.PRECONDITIONED == ("select_pre", "select_batch_pre")


def test_table_rows_are_registry_names():
    assert set(TABLE1_ROWS) <= set(strategies.DISPLAY_ORDER)
    assert set(TABLE2_ROWS) <= set(strategies.DISPLAY_ORDER)


def test_lookups_name_the_fix():
    with pytest.raises(UserError, match="choose one of select, select_batch"):
        strategies.selectable("expert")
    with pytest.raises(UserError, match="known strategies are random, topk_balanced"):
        strategies.sort_strategies(["select", "magic"])
    assert strategies.sort_strategies(["select", "expert", "random", "select"]) == [
        "random",
        "select",
        "expert",
    ]
