"""Slot proofs in a process pool: one job per (inputs, vector slot), across slots and across commits.

Workers keep the last few linked images, so the jobs of one commit lift its files about once per worker.
When this process runs no other thread (nothing a fork could copy half-held: a terminal's progress bar
refreshes from a thread) the workers are forked from it, after it has prepared the inputs the jobs share,
and start at once with them; otherwise a fork server starts them from a clean process, and each prepares
its own. A series commit that proves two classes again costs a few tenths of a second, so starting a fresh
interpreter per worker and lifting its files again was most of it. Results travel back as plain data
(SlotOutcome)."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from verifier.proof.config import ProveConfig
from verifier.proof.slot import Setup, SlotOutcome, run_slot, setup
from verifier.spec.slots import slot_by_name

Job = tuple[ProveConfig, str]  # the inputs and how to prove them, a vector slot's name
OnDone = Callable[[int, SlotOutcome], None]  # job index, its outcome

_SETUPS: dict[str, Setup] = {}
_KEEP = 2

# The synchronous slots from EL0 take far longest (every syscall and fault path); starting them first
# keeps the pool busy to the end.
_SLOW_FIRST = ("el0_64_sync", "el0_32_sync", "el1h_sync")


def _fingerprint(config: ProveConfig) -> str:
    """The config and the content of every file it names: a file rewritten in place (a test's tree copy, an
    edited .s) must never be proved from the image lifted before."""
    digest = hashlib.sha256(repr(config).encode())
    for path in [*config.files, config.contracts, config.assumptions, config.waivers, config.policy]:
        if path is not None:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _prepared(config: ProveConfig, key: str | None = None) -> Setup:
    key = key or _fingerprint(config)
    if key not in _SETUPS:
        while len(_SETUPS) >= _KEEP:
            _SETUPS.pop(next(iter(_SETUPS)))
        _SETUPS[key] = setup(config)
    return _SETUPS[key]


def prove_job(job: Job) -> SlotOutcome:
    config, slot_name = job
    return run_slot(config, _prepared(config), slot_by_name(slot_name))


# A forked worker's jobs and their configs' fingerprints, inherited from the process that forked it: nothing
# to pickle (a Debian build's facts are large) and no file read again. Set only while a forked pool runs.
_INHERITED: tuple[Sequence[Job], list[str]] = ((), [])


def _prove_inherited(index: int) -> SlotOutcome:
    jobs, keys = _INHERITED
    config, slot_name = jobs[index]
    return run_slot(config, _prepared(config, keys[index]), slot_by_name(slot_name))


def _order(jobs: Sequence[Job]) -> list[int]:
    def weight(index: int) -> tuple[int, int]:
        name = jobs[index][1]
        return (_SLOW_FIRST.index(name) if name in _SLOW_FIRST else len(_SLOW_FIRST), index)

    return sorted(range(len(jobs)), key=weight)


def run_slot_jobs(jobs: Sequence[Job], workers: int, on_done: OnDone) -> None:
    """Run every job; `on_done` is called in this process as each one finishes. With one worker the jobs
    run here, in order."""
    if workers <= 1 or len(jobs) <= 1:
        for index, job in enumerate(jobs):
            on_done(index, prove_job(job))
        return
    global _INHERITED
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        keys = [_fingerprint(config) for config, _ in jobs]
        if len(set(keys)) == 1:
            _prepared(jobs[0][0], keys[0])  # inherited by every worker
        _INHERITED = (jobs, keys)
        gc.freeze()  # the workers' collector leaves the inherited heap alone (no copying, no traversal)
        try:
            _run_pool(workers, on_done, multiprocessing.get_context("fork"),
                      lambda pool, i: pool.submit(_prove_inherited, i), _order(jobs))
        finally:
            gc.unfreeze()
            _INHERITED = ((), [])
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["verifier.proof.pool"])
    _run_pool(workers, on_done, context, lambda pool, i: pool.submit(prove_job, jobs[i]), _order(jobs))


def _run_pool(workers: int, on_done: OnDone, context: multiprocessing.context.BaseContext,
              submit: Callable[[ProcessPoolExecutor, int], Future[SlotOutcome]], order: list[int]) -> None:
    """Submit the jobs in `order` (every job's index, once), at most `workers` at a time."""
    # a worker's collector runs as this process's does (a fork server's workers would start with the default)
    with ProcessPoolExecutor(max_workers=min(workers, len(order)), mp_context=context, initializer=gc.set_threshold,
                             initargs=gc.get_threshold()) as pool:
        pending: dict[Future[SlotOutcome], int] = {submit(pool, i): i for i in order}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_done(pending.pop(future), future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
