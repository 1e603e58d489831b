"""One owner per fact: every face of a session (the loop's state, its session list, the daemon's
records, `status`, the observer) names the same best and counts that add up, and a record that
cannot be read shifts no other experiment's number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from branch_head import head_past_notes
from conftest import ScriptedProposer, git, make_config, make_repo, set_lr

from autoresearch import config as cfg
from autoresearch import status
from autoresearch.lock import RepoLock
from autoresearch.loop import Loop
from autoresearch.records import Records

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from jsonrpc import Daemon

sys.path.pop(0)

COMMENT = "# The score is best (lowest) at LR = 0.3; a negative LR crashes the run.\n"


def drop_comment(root: Path) -> str:
    """Same score, one line fewer: the policy keeps it ("equal metric with 1 fewer lines")."""
    path = root / "train.py"
    path.write_text(path.read_text().replace(COMMENT, ""))
    return "drop a comment"


def session(root: Path) -> Loop:
    config = make_config()
    (root / cfg.CONFIG_FILE).write_text(cfg.dumps(config))
    git(root, "add", cfg.CONFIG_FILE)
    git(root, "commit", "-qm", "config")
    proposer = ScriptedProposer([set_lr("0.3"), drop_comment, set_lr("0.9"), set_lr("-1")])
    loop = Loop(root, config, proposer, emit=lambda _: None, limit=4)
    loop.run()
    return loop


def test_every_face_names_the_branchs_last_keep_as_best_and_counts_add_up(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    loop = session(root)
    records = loop.ledger.experiments(loop.tag)
    assert [r.status for r in records] == ["keep", "keep", "keep", "discard", "crash"]
    assert records[1].metric == records[2].metric  # #2 kept for its fewer lines, not its metric
    assert head_past_notes(root).startswith(records[2].commit)  # the branch holds #2

    state = loop.state
    faces = {
        "loop state": (state.best_number, state.best, state.counts, state.iteration + 1),
        "loop sessions": _face(state.sessions[0]),
        "daemon records": _face(Records(root).summaries()[0]),
        "status": _face(status.read_status(root).sessions[0]),
    }
    for name, (best_number, best, counts, total) in faces.items():
        assert best_number == 2 and best == records[2].metric, name
        assert total == 5, name
        # The baseline is the one record the counts leave out, everywhere.
        assert counts.keep + counts.discard + counts.crash == total - 1, name
        assert (counts.keep, counts.discard, counts.crash) == (2, 1, 1), name


def _face(summary: object) -> tuple[object, object, object, int]:
    return (summary.best_number, summary.best, summary.counts, summary.total)  # type: ignore[attr-defined]


def test_an_unreadable_record_shifts_no_number_in_the_daemons_answers(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    loop = session(root)
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    lines = jsonl.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"number": 1, "commit": "cut off by a hand edit\n'
    jsonl.write_bytes(b"".join(lines))
    records = loop.ledger.experiments(loop.tag)

    daemon = Daemon(cwd=root)
    try:
        params = {"root": str(root), "tag": loop.tag}
        pages = {"offset": 0, "limit": 10, "newest_first": False}
        change = daemon.request("autoresearch/changes", {**params, "number": 3})
        assert change["number"] == 3 and change["commit"] == records[3].commit
        # results.tsv still has #1's row: the view fills the gap from it, numbers unmoved.
        page = daemon.request("autoresearch/experiments", {**params, **pages})
        assert [e["number"] for e in page["items"]] == [0, 1, 2, 3, 4]
        assert [e["commit"] for e in page["items"]][2:] == [r.commit for r in records[2:]]

        (root / "results.tsv").unlink()  # the records alone (an agent deleted the table)
        change = daemon.request("autoresearch/changes", {**params, "number": 3})
        assert change["number"] == 3 and change["commit"] == records[3].commit
        page = daemon.request("autoresearch/experiments", {**params, **pages})
        assert [e["number"] for e in page["items"]] == [0, 2, 3, 4]
        state = daemon.request("autoresearch/state", {"root": str(root)})
        # Left out, never silently: the state says which line, and what to do.
        assert "experiments.jsonl line 2 is not an experiment record" in state["message"]
        assert "Restore or delete that line" in state["message"]
    finally:
        daemon.close()


def test_results_and_status_of_a_session_whose_loop_runs_in_another_process(
    tmp_path: Path,
) -> None:
    """The table is then read as the observer reads it, records and all: same rows, same
    summary as when no loop runs."""
    root = make_repo(tmp_path / "repo")
    loop = session(root)
    quiet = _cli(root, "results", "--json")
    with RepoLock(root):  # as an `autoresearch run` in a terminal holds it
        listed = _cli(root, "results", "--json")
        shown = json.loads(_cli(root, "status", "--json"))
    assert listed == quiet
    assert [json.loads(line)["number"] for line in listed.splitlines()] == [0, 1, 2, 3, 4]
    summary = shown["sessions"][0]
    assert (summary["tag"], summary["total"], summary["best_number"]) == (loop.tag, 5, 2)
    assert shown["running"]


def _run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "autoresearch", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _cli(root: Path, *args: str) -> str:
    return _run_cli(root, *args).stdout


def test_status_and_results_read_past_an_unreadable_record_and_name_it(tmp_path: Path) -> None:
    """The CLI reads the records as the daemon does (one read of experiments.jsonl): a line it
    cannot read is left out with a warning naming it, and every other number stays."""
    root = make_repo(tmp_path / "repo")
    loop = session(root)
    (root / "results.tsv").unlink()  # the records alone
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    lines = jsonl.read_bytes().splitlines(keepends=True)
    lines[1] = b'{"number": 1, "commit": "cut off by a hand edit\n'
    jsonl.write_bytes(b"".join(lines))
    for args in (("results", "--json"), ("status", "--json")):
        done = _run_cli(root, *args)
        assert "experiments.jsonl line 2 is not an experiment record" in done.stderr, args
    listed = _cli(root, "results", "--json")
    assert [json.loads(line)["number"] for line in listed.splitlines()] == [0, 2, 3, 4]
    summary = json.loads(_cli(root, "status", "--json"))["sessions"][0]
    assert (summary["tag"], summary["total"], summary["best_number"]) == (loop.tag, 4, 2)
