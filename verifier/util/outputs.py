"""Writing results: to stdout, to a file atomically (never half written), or into a device or pipe."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from verifier.util.errors import UserError


def write_output(text: str, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    if path.exists() and not path.is_file():
        # a device or pipe (-o /dev/null, -o /dev/stderr): write into it; renaming over it would replace it
        try:
            with open(path, "w") as handle:
                handle.write(text)
        except OSError as err:
            raise UserError(f"cannot write: {err.strerror}", str(path)) from None
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as err:
        raise UserError(f"cannot write: {err.strerror}", str(path)) from None
