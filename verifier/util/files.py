"""Reading the project's data files (TOML under proofs/, JSON reports) with errors users can act on."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from verifier.util.errors import UserError


def read_toml(path: str | Path, what: str) -> tuple[dict[str, Any], str]:
    """The parsed file and its text; UserError (file:line:col where TOML says) otherwise."""
    path = Path(path)
    try:
        raw = path.read_text()
        return tomllib.loads(raw), raw
    except OSError as err:
        raise UserError(f"cannot read {what}: {err.strerror}", str(path)) from None
    except tomllib.TOMLDecodeError as err:
        m = re.search(r"line (\d+), column (\d+)", str(err))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        raise UserError(f"invalid TOML: {err}", str(path), line, col) from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise UserError(f"cannot read: {err.strerror}", str(path)) from None
    except json.JSONDecodeError as err:
        raise UserError(f"invalid JSON: {err.msg}", str(path), err.lineno, err.colno) from None
