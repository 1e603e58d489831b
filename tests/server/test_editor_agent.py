"""agent.kind "editor" over the protocol: the real daemon asks this client (standing in for
VS Code and its chat model) for each edit with `autoresearch/editorEdit`; the scripted replies
are applied, told back when broken, and the loop stops with a clear message when no answer
comes, no model is there or consent is refused."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from lsp_fixtures import Client, config, daemon, git, make_repo

from autoresearch.protocol import Method

STATE, RECORDED = Method.STATE_CHANGED, Method.EXPERIMENT_RECORDED


def editor_config(timeout: float = 60) -> dict[str, Any]:
    raw = config()
    raw["agent"] = {"kind": "editor", "vendor": "test", "family": "scripted", "timeout": timeout}
    raw["scope"] = {"files": ["train.py"], "off_limits": ["evaluate.py"]}
    return raw


def plain(params: Any) -> dict[str, Any]:
    if isinstance(params, dict):
        return params
    if hasattr(params, "_asdict"):
        return params._asdict()
    return dict(vars(params))


def answer_with(
    client: Client, replies: list[Any], late: asyncio.Event | None = None
) -> list[dict[str, Any]]:
    """Answer each editorEdit with the next scripted reply (a dict, or an exception to raise,
    or None: answer only once `late` is set, long after the daemon's timeout); returns the
    requests as they come."""
    asked: list[dict[str, Any]] = []

    @client.feature(Method.EDITOR_EDIT)
    async def edit(params: Any) -> Any:
        asked.append(plain(params))
        reply = replies[len(asked) - 1]
        if reply is None:
            assert late is not None
            await late.wait()
            return {"text": "DESCRIPTION: too late\n" + block("X = 1.0", "X = 0.1")}
        if isinstance(reply, Exception):
            raise reply
        return reply

    return asked


def block(search: str, replace: str, path: str = "train.py") -> str:
    return (
        f"{path}\n```python\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n"
    )


def final(client: Client) -> dict[str, Any]:
    return [p for p in client.of(STATE) if p["phase"] in ("stopped", "failed")][-1]


async def test_three_experiments_from_the_editors_model(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", None)
    (root / "evaluate.py").write_text("SECRET = 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "evaluation")
    whole = (root / "train.py").read_text().replace("X = 1.0", "X = 0.7")
    replies = [
        {
            "text": "DESCRIPTION: X 1.0 -> 0.8\n" + block("X = 1.0", "X = 0.8"),
            "tokens_in": 900,
            "tokens_out": 40,
            "model": "test/scripted",
        },
        # A reply that also edits an off-limits file: refused whole, told back, nothing written.
        {
            "text": "DESCRIPTION: cheat\n"
            + block("X = 0.8", "X = 0.7")
            + block("SECRET = 1", "SECRET = 0", "evaluate.py"),
            "tokens_in": 1000,
            "tokens_out": 50,
        },
        {
            "text": "DESCRIPTION: whole file, X = 0.7\ntrain.py\n```python\n" + whole + "```\n",
            "tokens_in": 1100,
        },
        {"text": "DESCRIPTION: X back to 2\n" + block("X = 0.7", "X = 2.0"), "tokens_out": 30},
    ]
    async with daemon() as client:
        asked = answer_with(client, replies)
        # Three experiments (--loop counts experiments), four calls: #2's refused reply too.
        # Asked to detach, an editor loop still runs here: it needs this client.
        state = await client.request(
            Method.START,
            {"root": str(root), "config": editor_config(), "loop": 3, "detach": True},
        )
        assert state["mode"] == "loop"
        await client.until(
            lambda: any(p["phase"] in ("stopped", "failed") for p in client.of(STATE)), 120
        )
        assert final(client)["phase"] == "stopped", final(client)

    exps = [r["experiment"] for r in client.of(RECORDED)]
    assert [e["number"] for e in exps] == [0, 1, 2, 3]
    assert [e["description"] for e in exps[1:]] == [
        "X 1.0 -> 0.8",
        "whole file, X = 0.7",
        "X back to 2",
    ]
    assert [e["status"] for e in exps[1:]] == ["keep", "keep", "discard"]
    # Tokens, prompt and reply together, as for the coding agents.
    assert [e.get("tokens") for e in exps[1:]] == [940, 1100, 30]
    # The off-limits reply wrote nothing and was told back in the next prompt.
    assert (root / "evaluate.py").read_text() == "SECRET = 1\n"
    assert "evaluate.py is off-limits" in asked[2]["prompt"]
    # Each call keeps its own log: the refused reply's is not overwritten by the next one's.
    logs = root / ".autoresearch" / "agents"
    assert "DESCRIPTION: cheat" in (logs / "2.log").read_text()
    assert "DESCRIPTION: whole file" in (logs / "2.call2.log").read_text()
    # Each request carries the model, the prompt with the file's current contents, the number.
    assert [(a["vendor"], a["family"], a["number"]) for a in asked] == [
        ("test", "scripted", 1),
        ("test", "scripted", 2),
        ("test", "scripted", 2),
        ("test", "scripted", 3),
    ]
    assert "X = 1.0" in asked[0]["prompt"] and "<<<<<<< SEARCH" in asked[0]["prompt"]
    assert "X = 0.8" in asked[1]["prompt"]
    # The branch holds the kept edits; the records say the same.
    assert "X = 0.7" in git(root, "show", "HEAD:train.py")
    lines = (root / ".autoresearch" / "experiments.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["tokens"] == 940


async def test_a_persons_edit_while_the_model_answers_is_not_written_over(
    tmp_path: Path,
) -> None:
    # The reply rewrites train.py whole; a person saved train.py (outside VS Code, whose lock
    # only makes its own editor read-only) while the model answered: their line must survive.
    root = make_repo(tmp_path / "repo", None)
    whole = (root / "train.py").read_text().replace("X = 1.0", "X = 0.5")
    async with daemon() as client:

        @client.feature(Method.EDITOR_EDIT)
        async def edit(params: Any) -> Any:
            train = root / "train.py"
            train.write_text(train.read_text() + "PERSON = 1\n")
            return {"text": "DESCRIPTION: X = 0.5\ntrain.py\n```python\n" + whole + "```\n"}

        await client.request(
            Method.START, {"root": str(root), "config": editor_config(), "loop": 1}
        )
        await client.until(
            lambda: any(p["phase"] in ("stopped", "failed") for p in client.of(STATE)), 120
        )
    # Kept in an experiment's commit (its attempt ref at least), never overwritten unsaved.
    assert "+PERSON = 1" in git(root, "log", "--all", "-p")


async def stops_with(tmp_path: Path, reply: Any, timeout: float = 60) -> str:
    root = make_repo(tmp_path / "repo", None)
    late = asyncio.Event()
    async with daemon() as client:
        answer_with(client, [reply], late)
        await client.request(
            Method.START, {"root": str(root), "config": editor_config(timeout), "loop": 3}
        )
        await client.until(
            lambda: any(p["phase"] in ("stopped", "failed") for p in client.of(STATE)), 120
        )
        message = final(client)["message"]
        late.set()  # a late answer is dropped: the loop has stopped, nothing is written
        await asyncio.sleep(0.5)
    exps = [r["experiment"]["number"] for r in client.of(RECORDED)]
    assert exps == [0], "no experiment is recorded without an edit"
    assert git(root, "status", "--porcelain", "--untracked-files=no") == ""
    return message


async def test_no_answer_within_the_timeout_stops_the_loop(tmp_path: Path) -> None:
    message = await stops_with(tmp_path, None, timeout=2)
    assert "did not answer within 2 s (agent.timeout)" in message
    assert "keep the VS Code window open" in message


async def test_no_model_stops_the_loop_saying_so(tmp_path: Path) -> None:
    reply = {"problem": "no_model", "message": 'no chat model of vendor "test"'}
    message = await stops_with(tmp_path, reply)
    assert "VS Code has no chat model of that vendor/family" in message
    assert 'no chat model of vendor "test"' in message
    assert "pick another model in Start Loop" in message


async def test_consent_refused_stops_the_loop_saying_so(tmp_path: Path) -> None:
    message = await stops_with(tmp_path, {"problem": "consent"})
    assert "the user refused this extension's use of the language model" in message
    assert "allow Autoresearch to use the model" in message


async def test_an_error_answer_stops_the_loop_with_its_message(tmp_path: Path) -> None:
    message = await stops_with(tmp_path, RuntimeError("the window has no chat model at all"))
    assert "VS Code answered with an error" in message
    assert "the window has no chat model at all" in message


async def test_a_failed_request_is_tried_again_then_the_loop_stops(tmp_path: Path) -> None:
    # A failed request (quota, network) is no reason to stop at once: like an agent exiting
    # non-zero it is tried again (10 s later), and the third failure in a row stops the loop.
    root = make_repo(tmp_path / "repo", None)
    failed = {"problem": "failed", "message": "rate limited, try later"}
    async with daemon() as client:
        asked = answer_with(client, [failed, failed, failed])
        await client.request(
            Method.START, {"root": str(root), "config": editor_config(), "loop": 5}
        )
        await client.until(
            lambda: any(p["phase"] in ("stopped", "failed") for p in client.of(STATE)), 120
        )
        message = final(client)["message"]
    assert len(asked) == 3
    assert "the agent failed 3 times in a row" in message
    assert "the editor's model (test/scripted) failed: rate limited, try later" in message
    assert [r["experiment"]["number"] for r in client.of(RECORDED)] == [0]
