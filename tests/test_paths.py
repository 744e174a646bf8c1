"""verifier.engine.paths: the merge of two paths, here what it does to memory a call made them forget."""

from __future__ import annotations

from collections import Counter

import z3

from verifier.engine.paths import Path, merge_paths
from verifier.semantics.state import BV, Memory, Region, concrete_state

TASK = Region(("current",))
TURNS = 12


def test_a_loop_that_forgets_memory_and_merges_at_each_turn_builds_each_word_once() -> None:
    """Each turn calls a function that forgets memory on one side of a branch, and the sides merge after it:
    the epochs of the two sides share everything before the turn. Walked as a tree, the word read at the
    end is 2**TURNS leaves; there are TURNS + 1 epochs, each word of each built once."""
    built: Counter[tuple[Region, int, int]] = Counter()

    def initial(region: Region, word: int, epoch: int) -> BV:
        built[(region, word, epoch)] += 1
        return z3.BitVec(f"mem[{region}+{word}]@{epoch}", 64)

    state = concrete_state()
    state.memory = Memory(initial=initial)
    path = Path(state, z3.BoolVal(True), (), 0, [])
    called = [z3.Bool(f"called{turn}") for turn in range(TURNS)]
    for cond in called:
        other = path.copy()
        other.guard = z3.And(path.guard, cond)
        other.state.memory.havoc_class("all")
        path.guard = z3.And(path.guard, z3.Not(cond))
        path = merge_paths(other, path)
        path.state.memory.load(TASK, 0, 8)  # read at each turn, as the loop's condition would
    loaded = path.state.memory.load(TASK, 0, 4)

    assert set(built.values()) == {1} and len(built) == TURNS + 1
    # the word of the epoch as many calls later as the path made
    for taken in ([], called, called[::2], called[5:6]):
        fixed = z3.substitute(loaded, *[(c, z3.BoolVal(c in taken)) for c in called])
        expected = z3.Extract(31, 0, z3.BitVec(f"mem[{TASK}+0]@{len(taken)}", 64))
        assert z3.simplify(fixed).eq(z3.simplify(expected)), (len(taken), fixed)
