"""The saved index of experiments.jsonl (jsonl_index.py) is a cache that never lies: used while
it describes the file, followed by what was appended since, dropped when the file was
rewritten, replaced or the index itself is damaged."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from autoresearch.experiment import Experiment
from autoresearch.jsonl_index import INDEX_FILE, MIN_LINES
from autoresearch.ledger import Ledger
from autoresearch.records import Records, RecordsError

N = MIN_LINES + 1000
_encode = msgspec.json.Encoder().encode


def line(n: int, status: str = "") -> bytes:
    status = status or ("keep" if n % 10 == 0 else "discard")
    exp = Experiment(number=n, commit=f"{n:040x}", status=status, metric=1.0 - n / 1e6, tag="t")
    return _encode(exp) + b"\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    state = tmp_path / ".autoresearch"
    state.mkdir()
    (state / "experiments.jsonl").write_bytes(b"".join(line(n) for n in range(N)))
    return tmp_path


def summary(root: Path) -> tuple[int, int, int, int | None]:
    s = Records(root).summaries()[0]
    return s.total, s.counts.keep, s.counts.discard, s.best_number


def test_the_index_is_saved_then_restored_and_follows_appends(root: Path) -> None:
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    whole = summary(root)
    assert whole == (N, N // 10 - 1, N - N // 10, N - 10)
    assert (root / ".autoresearch" / INDEX_FILE).is_file()
    with open(jsonl, "ab") as f:  # the loop records three more
        f.write(line(N, "keep") + line(N + 1) + line(N + 2))
    records = Records(root)
    assert records.summaries()[0].total == N + 3
    assert records.summaries()[0].best_number == N
    assert [e.number for e in records.session("t")[-4:]] == [N - 1, N, N + 1, N + 2]
    # Written by the loop's ledger at a resume, the same index serves the daemon.
    (root / ".autoresearch" / INDEX_FILE).unlink()
    Ledger(root).load()
    assert (root / ".autoresearch" / INDEX_FILE).is_file()
    assert Records(root).summaries()[0].best_number == N


def test_a_file_rewritten_in_place_is_read_again_not_taken_from_the_index(root: Path) -> None:
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    summary(root)  # saves the index
    data = jsonl.read_bytes()
    old = line(101)
    new = old.replace(b'"status":"discard"', b'"status":"keep"   ')  # same size, same inode
    assert len(new) == len(old) and data.count(old) == 1
    with open(jsonl, "r+b") as f:
        f.seek(data.index(old))
        f.write(new)
    assert summary(root) == (N, N // 10, N - N // 10 - 1, N - 10)


def test_a_damaged_or_foreign_index_is_ignored(root: Path) -> None:
    whole = summary(root)
    index = root / ".autoresearch" / INDEX_FILE
    index.write_bytes(b"\x93not an index")
    assert summary(root) == whole
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    replaced = jsonl.with_name("new.jsonl")
    replaced.write_bytes(b"".join(line(n) for n in range(N // 2)))
    os.replace(replaced, jsonl)  # another file under the same name
    assert summary(root)[0] == N // 2


def even(n: int, status: str = "", size: int = 160) -> bytes:
    """A record padded to `size` bytes: lines of one length put a newline wherever an old one
    was, so only the lines themselves tell a rewrite from an append."""
    exp = Experiment(number=n, commit=f"{n:040x}", status=status or "discard", metric=0.5, tag="t")  # type: ignore[arg-type]
    exp.description = "x" * (size - len(_encode(exp)) - 1)
    return _encode(exp) + b"\n"


def test_a_daemons_index_follows_a_rewrite_in_place_not_only_appends(tmp_path: Path) -> None:
    (tmp_path / ".autoresearch").mkdir()
    jsonl = tmp_path / ".autoresearch" / "experiments.jsonl"
    jsonl.write_bytes(
        even(0, "keep") + b"".join(even(n, "keep" if n == 3 else "") for n in (1, 2, 3))
    )
    records = Records(tmp_path)
    assert records.summaries()[0].best_number == 3
    # A hand edit deletes #3's line in place (same inode), then the loop records #4 and #5:
    # the file is one line longer, with a newline where the index's last one was.
    with open(jsonl, "r+b") as f:
        f.truncate(0)
        f.write(b"".join(even(n, "keep" if n == 0 else "") for n in (0, 1, 2, 4, 5)))
    records.invalidate()  # as the observer does when the file's stat changes
    s = records.summaries()[0]
    assert (s.total, s.counts.keep, s.best_number) == (5, 0, 0)
    assert [e.number for e in records.session("t")] == [0, 1, 2, 4, 5]

    # The same size, rewritten: #5 kept after all.
    before = jsonl.stat().st_mtime_ns
    data = jsonl.read_bytes().replace(even(5), even(5, "keep"))
    while True:  # a later mtime than the index saw (timestamps are coarse)
        with open(jsonl, "r+b") as f:
            f.write(data)
        if jsonl.stat().st_mtime_ns != before:
            break
        time.sleep(0.01)
    records.invalidate()
    assert records.summaries()[0].best_number == 5


def test_a_page_that_finds_its_lines_rewritten_says_ask_again_and_the_next_ask_reads_anew(
    tmp_path: Path,
) -> None:
    (tmp_path / ".autoresearch").mkdir()
    jsonl = tmp_path / ".autoresearch" / "experiments.jsonl"
    jsonl.write_bytes(b"".join(even(n) for n in range(4)))
    records = Records(tmp_path)
    view = records.session("t")
    # Rewritten in place, shorter lines, with no stat poll in between (a loop of this daemon
    # runs: its observer is paused).
    with open(jsonl, "r+b") as f:
        f.truncate(0)
        f.write(b"".join(even(n, size=120) for n in range(4)))
    with pytest.raises(RecordsError, match="ask again"):
        view[2]
    assert records.session("t")[2].number == 2


def test_a_view_handed_out_keeps_its_experiments_when_an_earlier_number_arrives_late(
    tmp_path: Path,
) -> None:
    (tmp_path / ".autoresearch").mkdir()
    jsonl = tmp_path / ".autoresearch" / "experiments.jsonl"
    jsonl.write_bytes(even(0, "keep") + even(1) + even(3))
    records = Records(tmp_path)
    page = records.session("t")  # a snapshot's experiments, or a page being read
    with open(jsonl, "ab") as f:
        f.write(even(2))  # out of order: it goes between #1 and #3
    records.invalidate()
    assert [e.number for e in records.session("t")] == [0, 1, 2, 3]
    assert [e.number for e in page] == [0, 1, 3]
