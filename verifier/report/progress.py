"""Progress of long runs on stderr, for `prove`, `kernel` and `series` alike: a bar on a terminal (rich: count,
elapsed, time left), one plain line per step otherwise (CI logs, pipes) in the `  WHAT    [n/N] detail` style of
Kbuild, with the time left once a step has finished."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from verifier.util.progress import Progress

__all__ = ["BarProgress", "LineProgress", "Progress", "for_stream", "time_left"]


def time_left(elapsed: float, done: int, total: int) -> str:
    """`~1m05s left` from the mean time per finished step; empty until one has finished or when none is left."""
    if done <= 0 or done >= total:
        return ""
    seconds = round(elapsed / done * (total - done))
    return f", ~{seconds // 60}m{seconds % 60:02d}s left" if seconds >= 60 else f", ~{seconds}s left"


class LineProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream, self.stage, self.total, self.done = stream, "", 0, 0
        self.started = time.monotonic()

    def note(self, text: str) -> None:
        print(f"  {text}", file=self.stream, flush=True)

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done, self.started = stage.upper(), total, 0, time.monotonic()

    def advance(self, text: str) -> None:
        self.done += 1
        left = time_left(time.monotonic() - self.started, self.done, self.total)
        print(f"  {self.stage:<7} [{self.done}/{self.total}{left}] {text}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """A rich progress bar; other output to stderr (Kbuild's lines) is printed above it."""

    def __init__(self, stream: TextIO) -> None:
        self.bar = RichProgress(TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[last]}", markup=False),
                                console=Console(file=stream), redirect_stderr=True, transient=False)
        self.task: TaskID | None = None
        self.bar.start()

    def note(self, text: str) -> None:
        self.bar.console.print(f"  {text}", highlight=False, markup=False)

    def start(self, stage: str, total: int) -> None:
        if self.task is not None:
            self.bar.update(self.task, visible=False)
        self.task = self.bar.add_task(stage, total=total, last="")

    def advance(self, text: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, advance=1, last=text[:60])

    def close(self) -> None:
        self.bar.stop()


def for_stream(stream: TextIO = sys.stderr) -> Progress:
    return BarProgress(stream) if stream.isatty() else LineProgress(stream)
