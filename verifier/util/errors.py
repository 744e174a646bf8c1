"""User-facing errors: one line in the style of compilers and objtool, exit status 2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UserError(Exception):
    """Bad input or usage. Printed as `file:line:col: error: message` (location parts optional)."""

    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    source_line: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        text = f"{where}error: {self.message}"
        if self.source_line is not None:
            text += "\n" + self.source_line.rstrip("\n")
            if self.col is not None:
                text += "\n" + " " * (self.col - 1) + "^"
        return text
