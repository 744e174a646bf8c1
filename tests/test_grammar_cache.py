"""The grammars' LALR tables kept between runs: read back for the same grammar, analysed again for an
edited one, and a cache that cannot be written costs only time."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.util import grammars


def test_tables_are_kept_and_read_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path))
    first = grammars.lalr_parser("constraint.lark", propagate_positions=True)
    kept = list((tmp_path / "lark").glob("constraint.lark*.cache"))
    assert len(kept) == 1 and kept[0].stat().st_size > 0
    again = grammars.lalr_parser("constraint.lark", propagate_positions=True)
    text = "spsr.D == 1 && mdscr.SS == 0"
    assert again.parse(text) == first.parse(text)


def test_an_edited_grammar_is_analysed_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    grammar_dir = tmp_path / "grammar"
    grammar_dir.mkdir()
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(grammars, "GRAMMARS", grammar_dir)
    (grammar_dir / "g.lark").write_text('start: "a"\n')
    assert grammars.lalr_parser("g.lark").parse("a") is not None
    (grammar_dir / "g.lark").write_text('start: "b"\n')
    assert grammars.lalr_parser("g.lark").parse("b") is not None  # not the old tables, which want "a"


def test_an_unwritable_cache_only_costs_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("ENTRY_VERIFY_CACHE", str(blocked))
    parser = grammars.lalr_parser("constraint.lark", propagate_positions=True)
    assert parser.parse("spsr.D == 1") is not None
