"""A resumed session's History (session_history.py) as its users hold it: it behaves as the list
it replaces, a look back from the newest record (the notes, the streak since the last keep, the
stop conditions, resume's last keep) reads only the records it reaches, and the copies the
parallel coordinator hands its jobs share one decode. Real files on disk: a record the file no
longer holds whole is read only by what really reads it (HistoryError names the fix)."""

from __future__ import annotations

from collections.abc import Callable, MutableSequence
from pathlib import Path

import pytest
from conftest import EVAL, make_repo, set_lr
from test_ledger_index import N, jsonl_of, line, record, rewrite_in_place, root  # noqa: F401
from test_parallel import SPREAD, Together, run

from autoresearch import edit_step, notes, results_tsv, stops
from autoresearch.config import Stop
from autoresearch.experiment import Experiment
from autoresearch.ledger import Ledger
from autoresearch.session_history import History, HistoryError, copy_of, last_keep
from autoresearch.slots import Slot

Op = Callable[[MutableSequence[Experiment]], object]

# What the loop, the coordinator and the edit step do with a session's records.
OPS: dict[str, Op] = {
    "len": len,
    "truth": bool,
    "first": lambda h: h[0],
    "last": lambda h: h[-1],
    "a middle one": lambda h: h[N // 2],
    "negative": lambda h: h[-N],
    "the last ten": lambda h: h[-10:],
    "a slice across the whole": lambda h: h[5 : N - 5],
    "a stepped slice": lambda h: h[N - 1 : 100 : -997],
    "an empty slice": lambda h: h[N + 5 :],
    "everything": list,
    "newest first": lambda h: list(reversed(h)),
    "the newest 100 first": lambda h: [e for _, e in zip(range(100), reversed(h), strict=False)],
    "index": lambda h: h.index(record(N - 3)),
    "count": lambda h: h.count(record(7)),
    "in": lambda h: record(N - 2) in h,
    "not in": lambda h: record(N + 7) in h,
    "appended": lambda h: (h.append(record(N)), h[-2:], len(h), list(h)[-1]),
    "appended then newest first": lambda h: (h.append(record(N)), list(reversed(h))[:3]),
    "extended": lambda h: (h.extend([record(N), record(N + 1)]), h[-3:], len(h)),
    "popped": lambda h: (h.pop(), len(h), h[-1]),
    "deleted": lambda h: (h.__delitem__(3), h[:5], len(h)),
    "set": lambda h: (h.__setitem__(2, record(9)), h[:4]),
    "inserted": lambda h: (h.insert(1, record(9)), h[:3], len(h)),
    "a copy, then the original appended to": lambda h: (
        (c := copy_of(h), h.append(record(N)))[0] == list(h)[:-1],
        len(c),
    ),
    "last keep": last_keep,
    "reverts in a row": edit_step.reverts_in_a_row,
    "tried": notes.tried,
}


@pytest.mark.parametrize("name", list(OPS))
def test_a_resumed_history_behaves_as_the_list_it_replaces(root: Path, name: str) -> None:  # noqa: F811
    Ledger(root).load()  # the index saved
    history = Ledger(root).reconcile("a")
    assert isinstance(history, History)
    plain = Ledger(root)
    plain.jsonl.with_name("experiments.idx").unlink()
    whole = plain.reconcile("a")
    assert isinstance(whole, list)
    assert OPS[name](history) == OPS[name](whole)
    assert history == whole  # and the same list after it


def break_early_record(root: Path) -> None:  # noqa: F811
    """Record 3000, far behind the newest, no longer readable (garbage of the same size)."""
    old = line(3000)
    rewrite_in_place(jsonl_of(root), old, b"x" * (len(old) - 1) + b"\n")


def test_a_look_back_from_the_newest_reads_only_the_records_it_reaches(root: Path) -> None:  # noqa: F811
    """What the loop asks of a resumed session before (and after) each experiment: only the last
    records are read, so the first experiment does not wait for 100,000 to be decoded."""
    Ledger(root).load()
    ledger = Ledger(root)
    history = ledger.reconcile("a")
    break_early_record(root)  # read by anything that reads the whole session
    last = N - 1  # every tenth a keep (record()), the last keep is N - 10
    assert last_keep(history) == record(N - 10)
    assert edit_step.reverts_in_a_row(history) == 9
    assert (
        notes.tried(history)[0] == f"({N - notes.TRIED_LIMIT} earlier experiments in results.tsv)"
    )
    assert notes.tried(history)[-1].startswith(f"- #{last} discard")
    plateau = Stop(plateau=9, target=0.5, max_experiments=10 * N)
    assert stops.stop_reason(plateau, "lower", history, 0.0) == (
        "9 experiments in a row without a keep (stop.plateau 9)"
    )
    assert stops.stop_reason(Stop(target=0.5), "lower", history, 0.0) is None
    history.append(record(N, status="keep"))
    assert last_keep(history) == record(N, status="keep") and history[-2:][0] == record(last)
    # What needs the whole session reads the broken record, and says what to do.
    with pytest.raises(HistoryError, match="Stop the loop and resume it"):
        list(history)
    # The ledger's own tally was never in doubt: it came with the index.
    assert ledger.tally("a").best_number == N - 10


def test_a_long_look_back_reads_the_session_once_whole(root: Path) -> None:  # noqa: F811
    """Past its first chunks a look back decodes the rest in one pass (and keeps it), as a
    forward pass would: a session without a keep for thousands of records is not read twice."""
    Ledger(root).load()
    history = Ledger(root).reconcile("a")
    newest_first = list(reversed(history))
    assert newest_first == list(reversed(Ledger(root).experiments("a")))
    break_early_record(root)
    assert list(history) == newest_first[::-1]  # decoded before the break: not read again


def test_the_copies_a_coordinator_hands_its_jobs_share_one_decode(root: Path) -> None:  # noqa: F811
    Ledger(root).load()
    history = Ledger(root).reconcile("a")
    jobs = [copy_of(history) for _ in range(3)]
    history.append(record(N))
    assert [len(j) for j in jobs] == [N, N, N] and len(history) == N + 1
    assert list(jobs[0])[-1] == record(N - 1)  # one job's prompt decodes the session...
    break_early_record(root)
    # ...for every copy: the others, and the coordinator's own, read nothing again.
    assert list(jobs[2]) == list(jobs[0]) and list(history)[-2:] == [record(N - 1), record(N)]
    assert copy_of([record(0)]) == [record(0)] and isinstance(copy_of(()), list)


def test_parallel_workers_resume_through_the_index_and_run_on(tmp_path: Path) -> None:
    """A real parallel loop (two workers, real worktrees and runs) resumed over an older
    session of thousands of records: the first resume reads every line and saves the index,
    the second takes the records from it, and each job is handed the session as it stood."""
    repo = make_repo(tmp_path / "repo", {"train.py": SPREAD, "evaluate.py": EVAL})
    slots = [Slot(1, (0,)), Slot(2, (1,))]
    loop, _ = run(repo, Together({1: set_lr("0.35"), 2: set_lr("0.9")}, 2), slots, 2)
    tag = loop.tag
    ours = jsonl_of(repo).read_bytes()
    jsonl_of(repo).write_bytes(b"".join(line(n, "older") for n in range(N)) + ours)

    run(repo, Together({3: set_lr("0.3"), 4: set_lr("0.4")}, 2, first=3), slots, 2)
    assert (repo / ".autoresearch" / "experiments.idx").is_file()
    third = Together({5: set_lr("0.33"), 6: set_lr("0.31")}, 2, first=5)
    loop, _ = run(repo, third, slots, 2)

    records = loop.ledger.experiments(tag)
    assert isinstance(records, History)  # taken from the index, appended to since
    assert [e.number for e in records] == list(range(7))
    assert loop.ledger.tally("older").total == N
    for ctx in third.contexts:
        numbers = [e.number for e in ctx.history]
        assert numbers == list(range(len(numbers))) and 5 <= len(numbers) <= ctx.number
    rows = results_tsv.read(repo / "results.tsv")
    assert [r.commit for r in rows] == [e.commit[:7] for e in records]
