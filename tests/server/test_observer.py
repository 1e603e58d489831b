"""Observer mode: a loop run by someone else (results.tsv + commits), served like our own."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lsp_fixtures import TRAIN, config, daemon, git, make_repo, write_config
from tables import baseline_keep_revert

from autoresearch.lock import RepoLock
from autoresearch.protocol import Method

SAMPLE = Path(__file__).parent / "data" / "extra-columns.tsv"
HEADER = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"


class ExternalAgent:
    """Does what a coding agent following the autoresearch skill does: edit, commit, run,
    append a row to results.tsv, and `git reset --hard` what it discards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        git(root, "checkout", "-q", "-b", "autoresearch/ext")
        (root / ".gitignore").write_text("results.tsv\nrun.log\n")
        git(root, "add", ".gitignore")
        git(root, "commit", "-q", "-m", "ignore the loop's files")
        (root / "results.tsv").write_text(HEADER)
        self.row(git(root, "rev-parse", "HEAD"), 1.25, "keep", "baseline")

    def experiment(self, value: str, metric: float, status: str, description: str) -> str:
        train = self.root / "train.py"
        train.write_text(train.read_text().replace(self._x(train), f"X = {value}", 1))
        git(self.root, "commit", "-q", "-am", description)
        sha = git(self.root, "rev-parse", "HEAD")
        (self.root / "run.log").write_text(f"val_bpb: {metric}\n")
        self.row(sha, metric, status, description)
        if status != "keep":
            git(self.root, "reset", "-q", "--hard", "HEAD~1")
        return sha

    def row(self, sha: str, metric: float, status: str, description: str) -> None:
        with open(self.root / "results.tsv", "a") as f:
            f.write(f"{sha[:7]}\t{metric:.6f}\t12.5\t{status}\t{description}\n")

    @staticmethod
    def _x(path: Path) -> str:
        return next(line for line in path.read_text().splitlines() if line.startswith("X = "))


async def test_a_loop_run_by_another_tool_is_served_and_followed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    agent = ExternalAgent(root)
    base = git(root, "rev-parse", "HEAD")
    kept = agent.experiment("0.8", 1.1, "keep", "X down to 0.8")
    discarded = agent.experiment("3.0", 1.9, "discard", "X up to 3.0")
    async with daemon() as client:
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["mode"] == "observer"
        assert (state["tag"], state["branch"]) == ("ext", "autoresearch/ext")
        assert state["metric"] == "val_bpb"
        assert state["iteration"] == 2
        assert state["counts"] == {"keep": 1, "discard": 1, "crash": 0}
        assert (state["best"], state["best_number"], state["baseline"]) == (1.1, 1, 1.25)
        assert state["sessions"][0]["tag"] == "ext" and state["sessions"][0]["total"] == 3

        page = await client.request(Method.EXPERIMENTS, {"root": str(root)})
        assert page["tag"] == "ext" and page["total"] == 3
        newest, middle, oldest = page["items"]
        # Short commits from the table, resolved to full ones, with parents from git.
        assert (oldest["commit"], middle["commit"], newest["commit"]) == (base, kept, discarded)
        assert newest["parent"] == kept and middle["parent"] == base
        assert newest["status"] == "discard" and newest["description"] == "X up to 3.0"
        assert newest["memory_gb"] == 12.5

        changes = await client.request(Method.CHANGES, {"root": str(root), "number": 2})
        assert (changes["commit"], changes["parent"]) == (discarded, kept)
        assert [(f["path"], f["additions"], f["deletions"]) for f in changes["files"]] == [
            ("train.py", 1, 1)
        ]
        reverted = await client.request(
            Method.FILE_AT, {"root": str(root), "commit": discarded[:7], "path": "train.py"}
        )
        assert "X = 3.0" in reverted["content"]
        live = await client.request(Method.LOG, {"root": str(root)})
        assert live["text"] == "val_bpb: 1.9\n"

        # The agent goes on: its new row is pushed, then the new state.
        third = agent.experiment("0.5", 0.9, "keep", "X down to 0.5")
        pushed = await client.until(lambda: client.of(Method.EXPERIMENT_RECORDED))
        assert len(pushed) == 1
        assert pushed[0]["tag"] == "ext" and pushed[0]["root"] == str(root)
        assert pushed[0]["experiment"]["number"] == 3
        assert pushed[0]["experiment"]["commit"] == third
        assert pushed[0]["experiment"]["parent"] == kept
        newer = await client.until(
            lambda: [s for s in client.of(Method.STATE_CHANGED) if s["iteration"] == 3]
        )
        assert newer[-1]["mode"] == "observer" and newer[-1]["best"] == 0.9


async def test_results_from_other_tools_load_with_their_columns(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    git(root, "checkout", "-q", "-b", "autoresearch/blitz")
    shutil.copy(SAMPLE, root / "results.tsv")
    rows = SAMPLE.read_text().splitlines()[1:]
    async with daemon() as client:
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["mode"] == "observer" and state["metric"] == "val_bpb"
        assert state["iteration"] == len(rows) - 1
        page = await client.request(
            Method.EXPERIMENTS, {"root": str(root), "newest_first": False, "limit": 500}
        )
        assert page["total"] == len(rows)
        first = page["items"][0]
        # Commits of another repository stay as the table spells them.
        assert first["commit"] == "c2ae6d8" and first["metric"] == 1.374486
        assert first["extra"] == {"artifact_mb": "11.96"} and first["memory_gb"] == 10.0
        assert [e["description"] for e in page["items"]] == [r.split("\t")[5] for r in rows]


async def test_a_baseline_keep_revert_table_is_served_whole_with_its_unread_rows(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    git(root, "checkout", "-q", "-b", "autoresearch/mar8")
    lines = baseline_keep_revert().splitlines()
    lines.insert(20, "7c6b5a4\t0.99\t43.9\tMAYBE\ttried something")  # line 21
    (root / "results.tsv").write_text("\n".join(lines) + "\n")
    async with daemon() as client:
        state = await client.request(Method.STATE, {"root": str(root)})
        assert state["mode"] == "observer" and state["iteration"] == 65
        assert state["baseline"] == 0.998  # the BASELINE row, not the first KEEP
        assert 0 < state["best"] < 0.998  # never the -999 of a failed run
        assert "1 row(s) cannot be read: results.tsv line 21 is left out" in state["message"]
        page = await client.request(
            Method.EXPERIMENTS, {"root": str(root), "newest_first": False, "limit": 500}
        )
        assert page["total"] == 66
        assert {e["status"] for e in page["items"]} == {"keep", "discard"}


async def test_a_terminal_run_is_observed_with_locks_until_it_stops(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": TRAIN.replace("SLOW = 0", "SLOW = 1")})
    write_config(root, config())
    git(root, "add", "autoresearch.toml")
    git(root, "commit", "-q", "-m", "config")
    cli = subprocess.Popen(
        [sys.executable, "-m", "autoresearch", "run", "--dir", str(root), "--tag", "term"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with daemon() as client:
            # The terminal's loop has its baseline and runs experiment #1 (slow) now.
            await client.until(lambda: len(_rows(root)) == 1 and _lock_held(root))
            state = await client.request(Method.STATE, {"root": str(root)})
            assert state["mode"] == "observer" and state["tag"] == "term"
            assert "autoresearch run" in state["message"]
            locked = await client.until(lambda: client.of(Method.LOCKS_CHANGED))
            assert locked[0]["locked"] == ["train.py"]

            cli.send_signal(signal.SIGINT)
            time.sleep(0.5)
            cli.send_signal(signal.SIGINT)  # a second Ctrl-C abandons the running experiment
            assert cli.wait(30) == 130

            recorded = await client.until(lambda: client.of(Method.EXPERIMENT_RECORDED))
            assert recorded[0]["experiment"]["number"] == 1
            assert recorded[0]["experiment"]["crash_kind"] == "interrupted"
            unlocked = await client.until(
                lambda: [e for e in client.of(Method.LOCKS_CHANGED) if not e["locked"]]
            )
            assert unlocked[0]["root"] == str(root)
            # Our own tool's finished session: no longer someone else's loop.
            after = await client.request(Method.STATE, {"root": str(root)})
            assert after["mode"] == "none" and after["sessions"][0]["tag"] == "term"
    finally:
        cli.kill()
        cli.wait()


def _rows(root: Path) -> list[str]:
    try:
        return (root / "results.tsv").read_text().splitlines()[1:]
    except FileNotFoundError:
        return []


def _lock_held(root: Path) -> bool:
    return RepoLock(root).held_elsewhere() is not None
