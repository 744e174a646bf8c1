"""Progress of long runs on stderr: a bar on a terminal (rich), one plain line per step otherwise (CI logs,
pipes), in the `  WHAT    detail` style of Kbuild."""

from __future__ import annotations

import sys
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress


class Progress(Protocol):
    def note(self, text: str) -> None: ...
    def start(self, stage: str, total: int) -> None: ...
    def advance(self, text: str) -> None: ...
    def close(self) -> None: ...


class LineProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream, self.stage, self.total, self.done = stream, "", 0, 0

    def note(self, text: str) -> None:
        print(f"  {text}", file=self.stream, flush=True)

    def start(self, stage: str, total: int) -> None:
        self.stage, self.total, self.done = stage.upper(), total, 0

    def advance(self, text: str) -> None:
        self.done += 1
        print(f"  {self.stage:<7} [{self.done}/{self.total}] {text}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """A rich progress bar; other output to stderr (Kbuild's lines) is printed above it."""

    def __init__(self, stream: TextIO) -> None:
        self.bar = RichProgress(TextColumn("{task.description:<7}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("{task.fields[last]}", markup=False),
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
