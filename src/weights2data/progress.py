"""Progress bars that suit where they are shown: a live bar in a terminal, and in a log file a
plain line every ~30 s (step, rate, time left, loss) instead of one carriage return per step."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm as _tqdm

LOG_INTERVAL = float(os.environ.get("W2D_PROGRESS_SECONDS", "30"))
LOG_FORMAT = (
    "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) {elapsed}<{remaining}, {rate_fmt}{postfix}"
)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class tqdm(_tqdm):  # noqa: N801 (a drop-in for tqdm)
    """tqdm, except that output to a non-terminal becomes whole lines at most every
    ``LOG_INTERVAL`` seconds (plus the first and the last)."""

    def __init__(self, *args, **kwargs):
        self._as_lines = not _is_terminal(kwargs.get("file") or sys.stderr)
        if self._as_lines:
            kwargs.setdefault("mininterval", LOG_INTERVAL)
            kwargs.setdefault("maxinterval", LOG_INTERVAL)
            kwargs.setdefault("bar_format", LOG_FORMAT)
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if not self._as_lines:
            return super().display(msg, pos)
        self.fp.write((msg if msg is not None else self.__str__()) + "\n")
        self.fp.flush()
        return True

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        # in a log, the postfix waits for the next timed line
        super().set_postfix(ordered_dict, refresh=refresh and not self._as_lines, **kwargs)
