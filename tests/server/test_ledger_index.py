"""The ledger's resume through its saved index (ledger.py, session_history.py, jsonl_index.py):
what it holds is what a full read would hold, records appended since are read and counted, and
an index that no longer describes the file (or the daemon's, which decodes only a few fields of
each line) is never taken for the ledger's read."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from conftest import git

from autoresearch import jsonl_index, results_tsv
from autoresearch.experiment import Experiment
from autoresearch.jsonl_index import INDEX_FILE, MIN_LINES
from autoresearch.ledger import Ledger, LedgerError
from autoresearch.records import Records
from autoresearch.session_history import History, HistoryError

N = MIN_LINES + 1000
_encode = msgspec.json.Encoder().encode


def record(n: int, tag: str = "a", status: str = "") -> Experiment:
    status = status or ("keep" if n % 10 == 0 else "discard")
    return Experiment(
        number=n,
        commit=f"{n:040x}",
        status=status,  # type: ignore[arg-type]
        metric=1.0 - n / 1e6,
        tag=tag,
        description=f"try {n}",
    )


def line(n: int, tag: str = "a", status: str = "") -> bytes:
    return _encode(record(n, tag, status)) + b"\n"


def jsonl_of(root: Path) -> Path:
    return root / ".autoresearch" / "experiments.jsonl"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Two sessions, their lines interleaved (b started while a ran), and a's results.tsv."""
    (tmp_path / ".autoresearch").mkdir()
    lines = [line(n) for n in range(N)]
    lines[100:100] = [line(n, "b") for n in range(50)]  # b's lines amid a's
    jsonl_of(tmp_path).write_bytes(b"".join(lines))
    table = results_tsv.HEADER + "".join(results_tsv.format_row(record(n)) for n in range(N))
    (tmp_path / "results.tsv").write_text(table)
    return tmp_path


def kept(discarded: bytes) -> bytes:
    """The same line of the same size, a keep (JSON allows the blanks)."""
    return discarded.replace(b'"status":"discard"', b'"status":"keep"   ')


def rewrite_in_place(path: Path, old: bytes, new: bytes) -> None:
    """`old` replaced by `new` (the same size, the same inode), with an mtime the index did not
    see (timestamps are coarse: written again until the clock moved on)."""
    assert len(old) == len(new)
    before = path.stat().st_mtime_ns
    data = path.read_bytes()
    assert data.count(old) == 1
    at = data.index(old)
    while True:
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(new)
        if path.stat().st_mtime_ns != before:
            return
        time.sleep(0.01)


def test_a_resume_through_the_index_holds_what_a_full_read_holds(root: Path) -> None:
    full = Ledger(root)
    full.load()  # no index yet: every line decoded, and the index saved
    assert (root / ".autoresearch" / INDEX_FILE).is_file()
    assert not isinstance(full.experiments("a"), History)

    resumed = Ledger(root)
    history = resumed.reconcile("a")
    assert isinstance(resumed.experiments("a"), History)  # taken from the index
    assert resumed.tallies == full.tallies  # counts, baseline, best and the best's record
    assert resumed.tally("a").best_record == record(N - 10)
    assert len(history) == N and history[0] == record(0) and history[-1] == record(N - 1)
    assert history == full.experiments("a") and resumed.experiments("b") == full.experiments("b")
    assert [e.number for e in history[-3:]] == [N - 3, N - 2, N - 1]
    # The loop's copy is its own list: what it appends is not the ledger's.
    history.append(record(N))
    assert len(resumed.experiments("a")) == N
    assert (root / "results.tsv").read_text().count("\n") == N + 1  # nothing rewritten


def test_records_appended_after_the_index_are_read_counted_and_completed(root: Path) -> None:
    Ledger(root).load()
    with open(jsonl_of(root), "ab") as f:  # the loop recorded 3 more, results.tsv lags
        f.write(line(N, status="keep") + line(N + 1) + line(N + 2, status="crash"))
    ledger = Ledger(root)
    history = ledger.reconcile("a")
    tally = ledger.tally("a")
    assert (tally.total, tally.best_number, tally.crash) == (N + 3, N, 1)
    assert tally.best_record == record(N, status="keep")
    assert [e.number for e in history[-4:]] == [N - 1, N, N + 1, N + 2]
    rows = results_tsv.read(root / "results.tsv")
    assert len(rows) == N + 3 and rows[-1].status == "crash"


def test_a_bad_line_after_the_index_is_named_by_its_line_in_the_whole_file(root: Path) -> None:
    Ledger(root).load()
    with open(jsonl_of(root), "ab") as f:
        f.write(line(N) + b'{"number": oops}\n')
    with pytest.raises(LedgerError, match=rf"experiments.jsonl line {N + 50 + 2} is not an exp"):
        Ledger(root).load()


def test_a_half_written_line_after_the_index_is_cut_off_where_it_starts(root: Path) -> None:
    Ledger(root).load()
    whole = jsonl_of(root).stat().st_size
    with open(jsonl_of(root), "ab") as f:
        f.write(line(N)[:40])  # the loop was killed mid-write
    ledger = Ledger(root)
    ledger.load()
    assert jsonl_of(root).stat().st_size == whole
    assert len(ledger.experiments("a")) == N


def test_the_daemons_index_is_not_taken_for_the_ledgers_read(root: Path) -> None:
    """The daemon reads a few fields of each line: a line without a commit passes there, but
    the ledger must still refuse to resume over it, naming it."""
    bad = line(7)
    short = b'{"number":7,"status":"discard","tag":"a"}'
    data = jsonl_of(root).read_bytes().replace(bad, short.ljust(len(bad) - 1) + b"\n")
    jsonl_of(root).write_bytes(data)
    assert Records(root).summaries()  # the daemon opens the session: its index is saved
    assert (root / ".autoresearch" / INDEX_FILE).is_file()
    with pytest.raises(LedgerError, match="experiments.jsonl line 8 is not an experiment"):
        Ledger(root).load()


def test_a_saved_tally_the_file_no_longer_matches_is_not_trusted(root: Path) -> None:
    Ledger(root).load()
    rewrite_in_place(jsonl_of(root), line(101), kept(line(101)))
    tally = Ledger(root).tally("a")
    assert tally.keep == N // 10  # one more than the index counted
    # Appended to after its last indexed line was rewritten: read again as well.
    Ledger(root).load()  # saves the index of the file as it is now
    last = line(N - 1)
    rewrite_in_place(jsonl_of(root), last, kept(last))
    with open(jsonl_of(root), "ab") as f:
        f.write(line(N, status="discard"))
    tally = Ledger(root).tally("a")
    assert (tally.total, tally.keep, tally.best_number) == (N + 1, N // 10 + 1, N - 1)


def test_a_record_rewritten_under_a_loaded_history_is_an_error_not_a_wrong_record(
    root: Path,
) -> None:
    Ledger(root).load()
    history = Ledger(root).reconcile("a")
    old = line(3000)
    with open(jsonl_of(root), "r+b") as f:  # garbage of the same size
        f.seek(jsonl_of(root).read_bytes().index(old))
        f.write(b"x" * (len(old) - 1))
    with pytest.raises(HistoryError, match="Stop the loop and resume it"):
        list(history)


def test_the_index_is_saved_again_once_the_session_has_grown(root: Path) -> None:
    Ledger(root).load()
    more = N // 2 + MIN_LINES
    with open(jsonl_of(root), "ab") as f:
        f.write(b"".join(line(n) for n in range(N, N + more)))
    Ledger(root).load()
    with open(jsonl_of(root), "rb") as f:
        saved = jsonl_index.load(jsonl_of(root), f.fileno())
    assert saved is not None and saved.whole and saved.lineno == N + 50 + more
    ledger = Ledger(root)
    assert len(ledger.experiments("a")) == N + more
    assert ledger.tally("a").best_number == (N + more - 1) // 10 * 10
    assert ledger.experiments("a")[-1] == record(N + more - 1)


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoresearch", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_a_real_loop_resumes_through_the_index_and_runs_on(repo: Path) -> None:
    """`autoresearch run` resumed twice on a repository whose records hold an older session of
    thousands of experiments: the first resume reads every line and saves the index, the
    second takes its session's records from the index and the loop runs on from them."""
    assert run(repo, "init", "--direction", "lower", "--metric", "score").returncode == 0
    git(repo, "add", "autoresearch.toml")
    git(repo, "commit", "-qm", "config")
    done = run(repo, "run", "--loop", "2")
    assert done.returncode == 0, done.stderr
    jsonl = jsonl_of(repo)
    ours = jsonl.read_bytes()
    tag = msgspec.json.decode(ours.splitlines()[0])["tag"]
    jsonl.write_bytes(b"".join(line(n, "older") for n in range(N)) + ours)

    first = run(repo, "run", "--loop", "1")
    assert first.returncode == 0, first.stderr
    assert "after 3 experiments" in first.stdout
    with open(jsonl, "rb") as f:
        saved = jsonl_index.load(jsonl, f.fileno())
    assert saved is not None and saved.whole and saved.lineno == N + 3
    second = run(repo, "run", "--loop", "1")  # through the index: its 3 records, then #3
    assert second.returncode == 0, second.stderr
    assert "after 4 experiments" in second.stdout

    rows = results_tsv.read(repo / "results.tsv")
    assert [r.number for r in rows] == [0, 1, 2, 3, 4]
    ledger = Ledger(repo)
    assert [e.number for e in ledger.experiments(tag)] == [0, 1, 2, 3, 4]
    assert ledger.tally(tag).total == 5 and ledger.tally("older").total == N
    assert [e.commit[:7] for e in ledger.experiments(tag)] == [r.commit for r in rows]
