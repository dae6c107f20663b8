"""Warm start: a command forked from the resident server behaves like one in its own process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weights2data import warm
from weights2data.cli import main as cold_main

SPEC = json.dumps({"source": "bbc_news", "max_rows": 120})


def _wait_for(path: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"the warm server made no socket at {path}")
        time.sleep(0.2)


def _end_server(path: Path, seconds: float = 30.0) -> None:
    """End exactly the server of the socket at ``path``, by its pid, and wait until it is gone."""
    pid = warm.server_pid(path)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while warm.server_pid(path) is not None:  # its lock is released only when it exits
        if time.monotonic() > deadline:
            raise AssertionError(f"the warm server {pid} did not end on SIGTERM")
        time.sleep(0.2)
    with contextlib.suppress(ChildProcessError):  # warm.run started it from this process: reap
        os.waitpid(pid, 0)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A warm server of this interpreter, in a socket folder of the test's own."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    path = warm.socket_path()
    proc = subprocess.Popen([sys.executable, "-m", "weights2data.warm", str(path)])
    _wait_for(path)
    yield path
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def test_a_warm_command_writes_what_a_cold_one_writes(server, tmp_path, capfd):
    cold, hot = tmp_path / "cold.parquet", tmp_path / "hot.parquet"
    assert cold_main(["dataset", "--spec", SPEC, "--out", str(cold)]) == 0
    code = warm.run(["dataset", "--spec", SPEC, "--out", str(hot)])
    assert code == 0  # answered by the server (None would mean: run it here)
    assert hot.read_bytes() == cold.read_bytes()
    out, err = capfd.readouterr()
    assert out.count("bbc_news: 120 rows") == 2  # the child wrote to this process's stdout
    assert err.count("weights2data dataset: done in") == 2


def test_a_warm_command_runs_in_the_callers_folder(server, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    code = warm.run(["dataset", "--spec", SPEC, "--out", "relative.parquet"])
    assert code == 0 and (tmp_path / "relative.parquet").exists()


def test_a_warm_error_keeps_its_message_and_exit_code(server, tmp_path, capfd):
    bad = json.dumps({"source": "no_such_dataset"})
    code = warm.run(["dataset", "--spec", bad, "--out", str(tmp_path / "x.parquet")])
    assert code == 2
    err = capfd.readouterr().err
    assert "weights2data dataset: error:" in err and "Traceback" not in err
    assert not (tmp_path / "x.parquet").exists()
    assert warm.run(["no-such-command"]) == 2  # argparse's exit code


def test_without_a_server_the_command_runs_here_and_starts_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    path = warm.socket_path()
    assert warm.run(["--help"]) is None  # nobody answered: the caller runs it itself
    try:
        _wait_for(path)
        assert warm.run(["dataset", "--help"]) == 0
        pid = warm.server_pid(path)  # the server of exactly this socket
        assert pid is not None and str(path) in Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    finally:
        _end_server(path)


def test_a_server_is_per_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    first = warm.socket_path()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # read once, at import: another server
    assert warm.socket_path() != first
    monkeypatch.setenv("W2D_WARM", "0")
    assert not warm.enabled()


def test_stop_ends_the_servers_of_this_environment(server):
    assert warm.stop() >= 1
    deadline = time.monotonic() + 30
    while server.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server.exists()  # the server removed its socket on the way out
