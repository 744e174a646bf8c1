"""LALR parsers for the project's Lark grammars, their tables kept in the cache between runs: building them
costs more than a short series run's whole policy parse. Lark writes a digest of the grammar and options
into the file and analyses the grammar again when they differ; a cache it cannot read or write only costs
time."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, cast

import lark

from verifier.util.paths import GRAMMARS, cache_root


def lalr_parser(grammar: str, **options: Any) -> lark.Lark:
    """The LALR parser of grammar/`grammar` with Lark `options`."""
    store = cache_root() / "lark"
    with contextlib.suppress(OSError):
        store.mkdir(parents=True, exist_ok=True)
    kept = store / f"{grammar}.lark-{lark.__version__}.py{sys.version_info[0]}{sys.version_info[1]}.cache"
    return lark.Lark((GRAMMARS / grammar).read_text(), parser="lalr", cache=str(kept), **options)


# Lark types every child of a parse tree as Token | Tree; the grammar says which one each child is.


def as_token(branch: lark.Token | lark.Tree[Any]) -> lark.Token:
    """A parse tree child the grammar makes a token (a terminal)."""
    return cast(lark.Token, branch)


def as_tree(branch: lark.Token | lark.Tree[Any]) -> lark.Tree[Any]:
    """A parse tree child the grammar makes a subtree (a rule's match)."""
    return cast("lark.Tree[Any]", branch)
