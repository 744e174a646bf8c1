"""The Lark parsers for operands, directive arguments and expressions (grammar/gas.lark)."""

from __future__ import annotations

from functools import cache

from lark import Lark, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from verifier.util.grammars import lalr_parser


class ParseError(Exception):
    def __init__(self, message: str, column: int | None) -> None:
        super().__init__(message)
        self.column = column  # 1-based within the parsed text


@cache
def _parser() -> Lark:
    return lalr_parser("gas.lark", start=["operands", "arguments", "expr"], propagate_positions=False)


def _describe(err: UnexpectedInput, text: str) -> ParseError:
    column = getattr(err, "column", None)
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream
        assert pos is not None  # lark sets it for UnexpectedCharacters
        char = text[pos] if pos < len(text) else "end of line"
        return ParseError(f"unexpected '{char}'", column)
    if isinstance(err, UnexpectedEOF):
        return ParseError("unexpected end of line", len(text) + 1)
    if isinstance(err, UnexpectedToken):
        if err.token.type == "$END":
            return ParseError("unexpected end of line", len(text) + 1)
        return ParseError(f"unexpected '{err.token}'", column)
    return ParseError(str(err).splitlines()[0], column)


def parse(text: str, start: str) -> Tree:
    try:
        return _parser().parse(text, start=start)
    except UnexpectedInput as err:
        raise _describe(err, text) from None


def parse_operands(text: str) -> list[Tree]:
    return list(parse(text, "operands").children)


def parse_arguments(text: str) -> list[Tree]:
    return list(parse(text, "arguments").children)


def parse_expr(text: str) -> Tree:
    return parse(text, "expr")
