"""Atomic writes: a failed writer leaves nothing under the output's name; a dead writer's
leftovers are cleared by the next one."""

from __future__ import annotations

import pytest

from weights2data.atomic import atomic_path, write_json


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_a_directory_whole(tmp_path):
    out = tmp_path / "store"
    for name in ("old", "new"):
        with atomic_path(out) as tmp:
            tmp.mkdir()
            (tmp / name).write_text(name)
    assert [p.name for p in out.iterdir()] == ["new"]


def test_leftovers_of_a_killed_writer_are_removed(tmp_path):
    dead = tmp_path / ".result.json.abc123.tmp"  # what a SIGKILLed writer leaves
    dead.mkdir()
    (dead / "result.json").write_text("{half")
    other = tmp_path / ".other.json.abc123.tmp"  # another output's: left alone
    other.mkdir()
    write_json(tmp_path / "result.json", {"ok": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc123.tmp", "result.json"]
