"""Provenance sidecars: a real cheap step records what made its output, `provenance` prints it,
and a failed step, a path without a record or a missing git leave no false record."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from weights2data import provenance
from weights2data.cli import main
from weights2data.codeprint import step_fingerprint

SPEC = '{"source": "bbc_news", "max_rows": 60}'
SIDECAR = "provenance/tmp/x.parquet.json"


@pytest.fixture()
def made(tmp_path, monkeypatch):
    """Run `weights2data dataset` in a fresh working directory; its sidecar's record."""
    monkeypatch.chdir(tmp_path)
    assert main(["dataset", "--spec", SPEC, "--out", "tmp/x.parquet"]) == 0
    return json.loads((tmp_path / SIDECAR).read_text())


def test_a_step_records_code_config_and_versions(made):
    import importlib.metadata

    assert made["artifact"] == "tmp/x.parquet"
    assert made["step"] == "dataset"
    assert made["version"] == importlib.metadata.version("weights2data")
    assert made["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", made["git_commit"])
    assert made["git_dirty"] is None or isinstance(made["git_dirty"], bool)
    assert (made["git_commit"] is None) == (made["git_dirty"] is None)
    assert made["config"] == {
        "spec": {"source": "bbc_news", "max_rows": 60},
        "split_seed": 0,
        "out": "tmp/x.parquet",
    }
    assert made["code_fingerprint"] == step_fingerprint("dataset")
    versions = made["versions"]
    assert versions["torch"] and versions["transformers"] and versions["python"]
    assert set(versions) == {"python", "torch", "transformers", "snakemake", "dvc"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", made["utc"])


def test_provenance_prints_the_record(made, capsys):
    capsys.readouterr()
    assert main(["provenance", "tmp/x.parquet"]) == 0
    out = capsys.readouterr().out
    assert f"sidecar: {SIDECAR}\n" in out
    assert "step: dataset\n" in out
    assert f"code_fingerprint: {made['code_fingerprint']}\n" in out
    assert f"versions.torch: {made['versions']['torch']}\n" in out
    assert out.split("config:\n", 1)[1].startswith('  {\n    "out": "tmp/x.parquet",')


def test_a_failed_step_writes_no_record(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = '{"source": "no_such_source"}'
    assert main(["dataset", "--spec", bad, "--out", "tmp/x.parquet"]) == 2
    assert not (tmp_path / "provenance").exists()


def test_a_path_without_a_record_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["provenance", "data/nothing.parquet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("weights2data provenance: error: data/nothing.parquet has no ")
    assert "provenance/data/nothing.parquet.json" in err


def test_an_output_outside_the_working_directory_gets_no_record(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert main(["dataset", "--spec", SPEC, "--out", str(tmp_path / "x.parquet")]) == 0
    assert (tmp_path / "x.parquet").exists() and not (tmp_path / "work" / "provenance").exists()


def test_a_stem_record_lists_its_files_and_answers_for_them(made, capsys):
    roles = json.dumps({"x": {"source": "bbc_news", "role": "task", "path": "tmp/x.parquet"}})
    args = ["datasets-table", "--roles", roles]
    assert main([*args, "--out-stem", "figures/table3"]) == 0
    record = json.loads(Path("provenance/figures/table3.json").read_text())
    assert record["step"] == "datasets-table" and "figures/table3.csv" in record["files"]
    assert record["artifact"] == "figures/table3"
    capsys.readouterr()
    assert main(["provenance", "figures/table3.csv"]) == 0
    assert "sidecar: provenance/figures/table3.json\n" in capsys.readouterr().out


def test_without_git_commit_and_dirty_are_null(tmp_path, monkeypatch):
    def no_git(*args):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance, "_git", no_git)
    provenance.git_state.cache_clear()
    try:
        monkeypatch.chdir(tmp_path)
        assert main(["dataset", "--spec", SPEC, "--out", "tmp/x.parquet"]) == 0
        record = json.loads((tmp_path / SIDECAR).read_text())
    finally:
        provenance.git_state.cache_clear()
    assert record["git_commit"] is None and record["git_dirty"] is None
