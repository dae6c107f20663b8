"""Warm start: one resident process holds torch and transformers imported, and every
`weights2data` command forks from it instead of paying the ~10 s import again.

A pipeline runs some 400 short jobs; on a 2-core laptop their imports alone cost over half an
hour. The server imports third-party libraries only, never this package, so a forked command
always runs the package code on disk. A command that finds no server runs in its own process
(and starts a server for the commands after it), so the warm path can only make a run faster,
never change what it computes. ``W2D_WARM=0`` turns it off.

The client passes its stdin/stdout/stderr, working directory, environment and arguments over a
Unix socket; the forked child runs the command on those descriptors and sends the exit code
back. A child whose client goes away (Snakemake cancelled the job) ends itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

# a server with no command for this long ends itself (W2D_WARM_IDLE overrides)
IDLE_SECONDS = 600
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors.torch",
    "tqdm.auto",
    "yaml",
    "ot",
)
# transformers imports its models lazily: touch the ones the steps build
PRELOAD_ATTRS = ("GPT2LMHeadModel", "GPT2Config", "AutoModel", "AutoModelForCausalLM")
_HEADER = struct.Struct("!I")
# settings that libraries read once, when imported: a server serves only clients that agree
_ENV_READ_AT_IMPORT = (
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "HF_",
    "TRANSFORMERS_",
    "TORCH",
    "PYTORCH_",
    "ATEN_",
    "DNNL_",
    "ONEDNN_",
    "CUDA_",
    "TOKENIZERS_",
    "PYTHON",
)


def enabled() -> bool:
    return os.environ.get("W2D_WARM", "1") != "0" and hasattr(socket, "send_fds")


def socket_path() -> Path:
    """One server per environment, installed packages and import-time settings: a
    `pip install` or another OMP_NUM_THREADS gets a fresh server instead of a stale one."""
    purelib = next((Path(p) for p in sys.path if p.endswith("site-packages")), Path(sys.prefix))
    read_at_import = sorted(
        (k, v) for k, v in os.environ.items() if k.startswith(_ENV_READ_AT_IMPORT)
    )
    # sys.prefix, not sys.executable: `python` and `python3` of one environment share a server
    key = json.dumps([sys.prefix, _mtime(purelib), read_at_import])
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/weights2data-{os.getuid()}")
    return root / f"warm-{digest}.sock"


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _send(conn: socket.socket, payload: bytes, fds: list[int]) -> None:
    """The length and the descriptors in one small message, then the payload (any size)."""
    socket.send_fds(conn, [_HEADER.pack(len(payload))], fds)
    conn.sendall(payload)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        part = conn.recv(n - len(chunks))
        if not part:
            raise ConnectionError("peer closed")
        chunks += part
    return chunks


# --------------------------------------------------------------------------- client


def run(argv: list[str]) -> int | None:
    """Run a command in a forked warm child; None when no server answers (run it here)."""
    path = socket_path()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        _start_server(path)
        return None
    with conn:
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        try:
            _send(conn, json.dumps(request).encode(), [0, 1, 2])
            (code,) = _HEADER.unpack(_recv_exact(conn, _HEADER.size))
        except (ConnectionError, OSError):
            print(
                "weights2data: the warm worker ended without an exit code (killed, or out of "
                "memory?); rerun with W2D_WARM=0 to run the step in its own process.",
                file=sys.stderr,
            )
            return 1
    return code


def _start_server(path: Path) -> None:
    """Start a server in the background for the commands that follow; never wait for it."""
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "weights2data.warm", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )


# --------------------------------------------------------------------------- server


def serve(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid():
        return  # someone else's folder: never serve from it
    lock = open(f"{path}.lock", "a+")  # noqa: SIM115 (held for the server's lifetime)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server owns this socket
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    _preload()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(64)
    listener.settimeout(float(os.environ.get("W2D_WARM_IDLE", IDLE_SECONDS)))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # remove the socket on the way out
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                return
            if os.fork() == 0:
                listener.close()
                lock.close()
                _child(conn)
            conn.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def stop() -> int:
    """End the servers of this environment, whatever settings they serve
    (`python -m weights2data.warm stop`, which `make test` runs last); returns how many."""
    stopped = 0
    for lock in socket_path().parent.glob("warm-*.sock.lock"):
        try:
            pid = int(lock.read_text().strip() or 0)
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, ValueError):
            continue
        same_env = Path(argv0).parent == Path(sys.executable).parent
        if same_env and _held(lock):  # a live server of this environment
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                stopped += 1
    return stopped


def server_pid(path: Path) -> int | None:
    """The pid of the live server of the socket at ``path``, or None when there is none.

    A server writes its pid into ``<path>.lock`` once it holds the lock on it, and the lock is
    released only when it exits, so a held lock means that pid is still running.
    """
    lock = Path(f"{path}.lock")
    try:
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _held(lock) else None


def _held(lock: Path) -> bool:
    try:
        with open(lock) as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    transformers = sys.modules.get("transformers")
    for attr in PRELOAD_ATTRS:
        with contextlib.suppress(Exception):
            getattr(transformers, attr)


def _child(conn: socket.socket) -> None:
    """Become the client's process: its descriptors, folder and environment; then run."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 1
    try:
        head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        head += _recv_exact(conn, _HEADER.size - len(head))
        (length,) = _HEADER.unpack(head)
        request = json.loads(_recv_exact(conn, length))
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _reopen_std_streams()
        with contextlib.suppress(OSError):  # peak memory from here on, not the server's
            Path("/proc/self/clear_refs").write_text("5")
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.setsid()
        threading.Thread(target=_exit_when_client_leaves, args=(conn,), daemon=True).start()
        with contextlib.suppress(OSError, IndexError):  # `ps`/`top` name the step, not the server
            Path("/proc/self/comm").write_text(f"w2d-{request['argv'][0]}"[:15])
        code = _run_command(request["argv"])
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            conn.sendall(_HEADER.pack(code & 0xFF))
        os._exit(code & 0xFF)


def _reopen_std_streams() -> None:
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _exit_when_client_leaves(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(1):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


def _run_command(argv: list[str]) -> int:
    import traceback

    sys.argv = ["weights2data", *argv]
    try:
        from weights2data.cli import main

        return int(main(argv) or 0)
    except SystemExit as exc:  # argparse errors and --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what an uncaught exception prints in a process of its own
        traceback.print_exc()
        return 1


def main() -> None:
    """Console entry point: warm when a server answers, otherwise in this process."""
    argv = sys.argv[1:]
    if enabled():
        code = run(argv)
        if code is not None:
            sys.exit(code)
    from weights2data.cli import main as cold_main

    sys.exit(cold_main(argv))


if __name__ == "__main__":
    sys.path.pop(0)  # the folder the server was started from is no import root of a command
    if sys.argv[1:] == ["stop"]:
        print(f"stopped {stop()} warm server(s) of {sys.executable}")
    else:
        serve(Path(sys.argv[1]))
