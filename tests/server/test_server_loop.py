"""The loop driven over the protocol: a real `autoresearch serve`, a real client, real repos."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsp_fixtures import TRAIN, Client, config, daemon, git, make_repo
from pygls.exceptions import JsonRpcException

from autoresearch import config as cfg
from autoresearch.protocol import Method

STATE, RECORDED, LOCKS = Method.STATE_CHANGED, Method.EXPERIMENT_RECORDED, Method.LOCKS_CHANGED
# The metric never changes whatever X is: every experiment is discarded (and reverted).
FLAT = "X = 1.0\nprint(f'X = {X}')\nprint('val_loss: 0.500000')\n"
BINARY = bytes(range(256))


def phases(client: Client) -> list[str]:
    """stateChanged phases with repeats collapsed."""
    out: list[str] = []
    for p in client.of(STATE):
        if not out or out[-1] != p["phase"]:
            out.append(p["phase"])
    return out


def ended(client: Client) -> bool:
    return any(p["phase"] in ("stopped", "failed") for p in client.of(STATE))


async def run_to_end(client: Client, root: Path, **params: Any) -> dict[str, Any]:
    state = await client.request(Method.START, {"root": str(root), **params})
    await client.until(lambda: ended(client))
    return state


async def test_bounded_loop_notifies_setup_baseline_experiments_then_stopped(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    async with daemon() as client:
        started = await run_to_end(client, root, config=config(), loop=3)
        assert started["mode"] == "loop"
        assert started["tag"] and started["branch"] == f"autoresearch/{started['tag']}"

        seen = phases(client)
        assert seen[0] == "setup"
        assert seen[1] == "baseline"
        assert seen[-1] == "stopped"
        assert seen.count("editing") == 3
        assert "failed" not in seen

        recorded = client.of(RECORDED)
        assert [r["experiment"]["number"] for r in recorded] == [0, 1, 2, 3]
        assert {r["tag"] for r in recorded} == {started["tag"]}
        assert recorded[0]["experiment"]["description"] == "baseline"
        # Each experiment is announced right after its decision, before the next edit starts.
        for i, (method, params) in enumerate(client.events):
            if method == RECORDED:
                before = [p for m, p in client.events[:i] if m == STATE][-1]
                assert before["phase"] == "deciding"
                assert before["current"] == params["experiment"]["number"]

        locks = client.of(LOCKS)
        assert locks[0]["locked"] == ["train.py"]
        assert locks[-1]["locked"] == []

        # The loop's lines for people reach the client's log, the summary block last.
        lines = [m.message for m in client.log_messages]
        assert any(line.startswith("repo: #1 ") for line in lines)
        assert "=== Autoresearch complete (3 experiments" in lines[-1]

        final = await client.request(Method.STATE, {"root": str(root)})
        assert final["phase"] == "stopped"
        assert final["iteration"] == 3
        assert final["remaining"] == 0
        assert sum(final["counts"].values()) == 3
        assert final["sessions"][0]["tag"] == started["tag"]
        assert final["sessions"][0]["total"] == 4

    # The config given to start was saved, and the session is on disk.
    assert cfg.load(root) == cfg.from_builtins(config())
    rows = (root / "results.tsv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("commit\t")


async def test_reverted_experiment_pages_changes_files_and_logs(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": FLAT, "data.bin": ""})
    (root / "data.bin").write_bytes(BINARY)
    git(root, "commit", "-q", "-am", "binary data")
    async with daemon() as client:
        started = await run_to_end(client, root, config=config(), loop=3)
        tag = started["tag"]

        async def numbers(**page: Any) -> list[int]:
            result = await client.request(Method.EXPERIMENTS, {"root": str(root), **page})
            assert result["total"] == 4 and result["tag"] == tag
            return [e["number"] for e in result["items"]]

        assert await numbers(limit=2) == [3, 2]
        assert await numbers(limit=2, offset=2) == [1, 0]
        assert await numbers(limit=2, offset=1, newest_first=False) == [1, 2]
        assert await numbers(offset=10) == []
        assert await numbers(tag=tag, limit=1) == [3]

        page = await client.request(Method.EXPERIMENTS, {"root": str(root), "limit": 4})
        baseline, second = page["items"][3], page["items"][1]
        assert second["status"] == "discard"
        # Reverted: not on the branch any more, but still reachable under its ref.
        assert git(root, "rev-parse", "HEAD") != second["commit"]
        assert git(root, "rev-parse", f"refs/autoresearch/{tag}/2") == second["commit"]

        by_number = await client.request(Method.CHANGES, {"root": str(root), "number": 2})
        by_commit = await client.request(
            Method.CHANGES, {"root": str(root), "commit": second["commit"][:7]}
        )
        assert by_number == by_commit
        assert by_number["commit"] == second["commit"]
        assert by_number["parent"] == baseline["commit"]
        assert by_number["status"] == "discard" and by_number["number"] == 2
        assert by_number["files"] == [
            {
                "path": "train.py",
                "status": "modified",
                "additions": 1,
                "deletions": 1,
                "old_path": None,
                "binary": False,
            }
        ]

        async def file_at(commit: str, path: str) -> dict[str, Any]:
            params = {"root": str(root), "commit": commit, "path": path}
            return await client.request(Method.FILE_AT, params)

        after = await file_at(second["commit"], "train.py")
        before = await file_at(by_number["parent"], "train.py")
        assert after["exists"] and after["encoding"] == "utf-8"
        assert after["content"] != before["content"] == FLAT
        assert (await file_at(second["commit"], "missing.py")) == {
            "exists": False,
            "content": "",
            "encoding": "utf-8",
        }
        binary = await file_at(second["commit"], "data.bin")
        assert binary["encoding"] == "base64"
        assert base64.b64decode(binary["content"]) == BINARY

        log = await client.request(Method.LOG, {"root": str(root), "number": 2})
        assert "val_loss: 0.500000" in log["text"] and not log["truncated"]
        assert log["path"] == f".autoresearch/runs/{tag}-2.log"
        short = await client.request(Method.LOG, {"root": str(root), "max_bytes": 10})
        assert short["truncated"] and len(short["text"]) <= 10 and short["size"] > 10


async def test_start_on_a_repository_locked_by_another_process_is_refused(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from autoresearch.lock import RepoLock;"
            " RepoLock(Path(sys.argv[1])).acquire('autoresearch run'); print('locked', flush=True);"
            " time.sleep(60)",
            str(root),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        async with daemon() as client:
            with pytest.raises(JsonRpcException) as refused:
                await client.request(Method.START, {"root": str(root), "config": config()})
            assert "already running" in refused.value.message
            assert f"pid {holder.pid}" in refused.value.message
            # Refused before touching anything: no session branch, and the daemon serves on.
            assert git(root, "branch", "--list", "autoresearch/*") == ""
            holder.kill()
            holder.wait()
            await run_to_end(client, root, config=config(), loop=1)
            assert phases(client)[-1] == "stopped"
    finally:
        holder.kill()
        holder.wait()


async def test_two_roots_run_their_own_loops_at_once(tmp_path: Path) -> None:
    roots = [make_repo(tmp_path / "a"), make_repo(tmp_path / "b")]
    async with daemon() as client:
        for root in roots:
            await client.request(Method.START, {"root": str(root), "config": config(), "loop": 1})

        def both_ended() -> bool:
            done = {p["root"] for p in client.of(STATE) if p["phase"] in ("stopped", "failed")}
            return done == {str(r) for r in roots}

        await client.until(both_ended)
        for root in roots:
            mine = [r for r in client.of(RECORDED) if r["root"] == str(root)]
            assert [r["experiment"]["number"] for r in mine] == [0, 1]
            state = await client.request(Method.STATE, {"root": str(root)})
            assert state["phase"] == "stopped" and state["root"] == str(root)


async def test_manual_mode_runs_the_humans_edit_and_stops_while_waiting(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    manual = {**config(), "agent": {"kind": "manual"}}
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": manual})
        await client.until(lambda: phases(client)[-1] == "editing")
        (root / "train.py").write_text(TRAIN.replace("X = 1.0", "X = 0.75"))
        ack = await client.request(
            Method.RUN_EXPERIMENT, {"root": str(root), "description": "X to 0.75"}
        )
        assert ack == {"ok": True, "message": "running the experiment"}
        await client.until(lambda: len(client.of(RECORDED)) == 2)
        exp = client.of(RECORDED)[1]["experiment"]
        assert exp["description"] == "X to 0.75" and exp["status"] == "keep"

        await client.until(lambda: phases(client)[-1] == "editing")
        half_done = TRAIN.replace("X = 1.0", "X = 0.5  # still thinking")
        (root / "train.py").write_text(half_done)
        started = time.monotonic()
        await client.request(Method.STOP, {"root": str(root)})
        await client.until(lambda: ended(client), timeout=10)
        assert phases(client)[-1] == "stopped" and time.monotonic() - started < 10
        assert (root / "train.py").read_text() == half_done  # a person's edit is never wiped
        late = await client.request(Method.RUN_EXPERIMENT, {"root": str(root)})
        assert not late["ok"] and "No loop is running" in late["message"]


async def test_pause_holds_the_loop_between_experiments_and_resume_goes_on(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    async with daemon() as client:
        await client.request(Method.START, {"root": str(root), "config": config()})
        await client.until(lambda: len(client.of(RECORDED)) >= 2)
        await client.request(Method.PAUSE, {"root": str(root)})
        await client.until(lambda: phases(client)[-1] == "paused")
        held = len(client.of(RECORDED))
        time.sleep(1.5)  # a paused loop starts no experiment
        assert len(client.of(RECORDED)) == held
        await client.request(Method.RESUME, {"root": str(root)})
        await client.until(lambda: len(client.of(RECORDED)) > held)
        stopped = await client.request(Method.STOP, {"root": str(root), "now": True})
        assert stopped["mode"] == "loop"
        await client.until(lambda: ended(client))
        assert phases(client)[-1] == "stopped"
        with pytest.raises(JsonRpcException, match="No loop is running"):
            await client.request(Method.PAUSE, {"root": str(root)})


async def test_guidance_is_written_for_the_edit_step(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    async with daemon() as client:
        ack = await client.request(
            Method.GUIDANCE, {"root": str(root), "text": "try smaller X first\n"}
        )
        assert ack["ok"]
    assert (root / ".autoresearch" / "guidance.md").read_text() == "try smaller X first\n"


STREAMING = """\
import time

X = 1.0
for step in range(8):
    print(f"step {step}", flush=True)
    time.sleep(0.2)
print("val_loss: 0.5")
"""


async def test_a_long_run_streams_its_log_and_reports_progress(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": STREAMING})
    async with daemon() as client:
        started = await client.request(
            Method.START, {"root": str(root), "config": config(timeout=20), "loop": 1}
        )
        await client.until(lambda: client.of(RECORDED))
        await client.request(Method.STOP, {"root": str(root), "now": True})
        log = (root / ".autoresearch" / "runs" / f"{started['tag']}-0.log").read_text()
        chunks = await client.until(
            lambda: (
                (c := [e for e in client.of(Method.LOG_APPENDED) if e["number"] == 0])
                and "".join(e["text"] for e in c) == log
                and c
            )
        )
        # Throttled: 9 lines over 1.6 s come in a few chunks, not one message per line.
        assert 2 <= len(chunks) <= 6

        baseline = [r for r in client.progress_reports.values() if r[0].title == "Baseline"]
        assert len(baseline) == 1
        begin, *reports, end = baseline[0]
        assert begin.kind == "begin" and end.kind == "end"
        assert reports and all(r.kind == "report" for r in reports)
        assert reports[-1].message.endswith("s of 20 s")
        assert 0 < reports[-1].percentage < 100
        await client.until(lambda: ended(client))
    daemon_log = (root / ".autoresearch" / "daemon.log").read_text()
    assert "#0 keep" in daemon_log and "loop started" in daemon_log
