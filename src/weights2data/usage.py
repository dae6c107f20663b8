"""What a step cost: its wall time, peak memory and the CPU it ran on (standard library only,
so that every command can report it without importing anything heavy)."""

from __future__ import annotations

import platform
import resource
import time
from pathlib import Path


def peak_memory_mb() -> float:
    """This process's peak resident memory (VmHWM on Linux, ru_maxrss elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if platform.system() == "Darwin" else peak / 1024


def usage_line(command: str, started: float) -> str:
    """The last line of every step's log: how long it ran and its peak memory."""
    seconds = time.perf_counter() - started
    return f"weights2data {command}: done in {seconds:.1f} s, peak memory {peak_memory_mb():.0f} MB"


def cpu_model() -> str:
    """The CPU's model name, as `lscpu` shows it (timings depend on it 2-3x)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
