"""The command proposer against fake agent CLIs: real processes, real git repositories."""

from __future__ import annotations

import json
import os
import shlex
import threading
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest
from fake_agents import FAKE_AGENT, agent_command, git, make_config, make_repo

from autoresearch.agents.base import EditContext
from autoresearch.agents.command import (
    AgentUnavailable,
    BoundedLog,
    CommandProposer,
    read_description,
)
from autoresearch.agents.presets import PLACEHOLDERS, PRESETS, TemplateError, resolve
from autoresearch.config import Agent, Config
from autoresearch.experiment import Experiment
from autoresearch.prompt import DESCRIPTION_FILE, PROMPT_FILE


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def context(root: Path, config: Config, number: int = 1, **kw: object) -> EditContext:
    baseline = Experiment(number=0, commit="0" * 40, status="keep", metric=0.1)
    return EditContext(
        root=root, number=number, config=config, history=[baseline], best=baseline, **kw
    )


def propose(root: Path, command: str, timeout: float = 30.0, **kw: object):
    config = make_config(command, timeout=timeout)
    proposer = CommandProposer(config, root, **kw)
    return proposer.propose(context(root, config), threading.Event())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def test_good_agent_edits_and_its_description_is_read(repo: Path) -> None:
    outcome = propose(repo, agent_command("good"))
    assert outcome.error is None
    assert outcome.description == "LEARNING_RATE 0.01 -> 0.009"
    assert outcome.agent_s > 0
    assert "LEARNING_RATE = 0.009" in (repo / "train.py").read_text()
    assert "val_loss" in (repo / PROMPT_FILE).read_text()
    log = (repo / ".autoresearch/agents/1.log").read_text()
    assert "Done: LEARNING_RATE" in log


def test_stale_description_is_removed_and_noop_reports_nothing(repo: Path) -> None:
    (repo / ".autoresearch").mkdir()
    (repo / DESCRIPTION_FILE).write_text("the previous iteration's change\n")
    outcome = propose(repo, agent_command("noop"))
    assert outcome.error is None
    assert outcome.description is None
    assert git(repo, "status", "--porcelain") == ""


def test_failing_agent_reports_exit_code_and_log_tail(repo: Path) -> None:
    outcome = propose(repo, agent_command("fail"))
    assert outcome.error is not None
    assert outcome.error == "agent exited with code 1"
    assert "401 Unauthorized" in outcome.output
    assert outcome.log == ".autoresearch/agents/1.log"
    assert outcome.description is None


def test_timeout_kills_the_agent_and_its_forked_child(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    outcome = propose(repo, agent_command("hang", "--pid-file", str(pids)), timeout=1.0)
    elapsed = time.monotonic() - started
    assert outcome.error is not None and "timed out after 1 s" in outcome.error
    assert "thinking..." in outcome.output
    parent, child = map(int, pids.read_text().split())
    assert gone(parent) and gone(child)
    assert elapsed < 4.0


def test_timeout_escalates_to_sigkill_when_sigterm_is_ignored(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    command = agent_command("hang", "--pid-file", str(pids), "--ignore-term")
    outcome = propose(repo, command, timeout=3.0, kill_grace_s=0.3)
    assert outcome.error is not None and "timed out" in outcome.error
    parent, child = map(int, pids.read_text().split())
    assert gone(parent) and gone(child)


def test_cancel_is_honoured_promptly(repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    config = make_config(agent_command("hang", "--pid-file", str(pids)), timeout=60)
    proposer = CommandProposer(config, repo)
    cancel = threading.Event()
    set_at: list[float] = []

    def trigger() -> None:
        wait_for_file(pids)
        set_at.append(time.monotonic())
        cancel.set()

    threading.Thread(target=trigger).start()
    outcome = proposer.propose(context(repo, config), cancel)
    returned = time.monotonic()
    assert outcome.error == "agent cancelled"
    assert returned - set_at[0] < 1.0
    parent, child = map(int, pids.read_text().split())
    assert gone(parent) and gone(child)


def test_process_that_left_the_group_is_killed_after_the_agent_exits(
    repo: Path, tmp_path: Path
) -> None:
    pid_file = tmp_path / "escaped"
    outcome = propose(repo, agent_command("escape", "--pid-file", str(pid_file)))
    assert outcome.error is None
    escaped = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while not gone(escaped) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(escaped)


def test_huge_output_is_bounded_on_disk_and_in_memory(repo: Path) -> None:
    tracemalloc.start()
    try:
        outcome = propose(repo, agent_command("chatty", "--mb", "50"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.error is None
    assert outcome.description == "LEARNING_RATE 0.01 -> 0.009"
    log = repo / ".autoresearch/agents/1.log"
    assert log.stat().st_size < 1024 * 1024 + 4096
    text = log.read_text()
    assert "bytes of output omitted" in text
    assert text.rstrip().endswith("Done: LEARNING_RATE 0.01 -> 0.009")
    # 50 MB went through; the proposer never held more than the 768 KB tail plus a chunk.
    assert peak < 4 * 1024 * 1024


def test_retries_and_reworks_get_their_own_agent_log(repo: Path) -> None:
    config = make_config(agent_command("fail"))
    proposer = CommandProposer(config, repo)
    first = proposer.propose(context(repo, config), threading.Event())
    retry = proposer.propose(context(repo, config, attempt=2), threading.Event())
    assert (first.log, retry.log) == (".autoresearch/agents/1.log", ".autoresearch/agents/1.2.log")
    assert (repo / first.log).exists() and (repo / retry.log).exists()


def test_bounded_log_keeps_head_and_exact_tail(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    with BoundedLog(path, head=10, tail=20) as log:
        log.note("$ cmd\n")
        for i in range(10):
            log.write(bytes([ord("a") + i]) * 7)
    data = path.read_bytes()
    body = b"".join(bytes([ord("a") + i]) * 7 for i in range(10))
    assert data.startswith(b"$ cmd\n" + body[:10])
    assert data.endswith(body[-20:])
    assert b"[... 40 bytes of output omitted ...]" in data


def test_small_output_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    with BoundedLog(path, head=10, tail=100) as log:
        log.write(b"0123456789abcdef")
    assert path.read_bytes() == b"0123456789abcdef"


def test_missing_preset_binary_raises_agent_unavailable(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    config = make_config(preset="claude")
    proposer = CommandProposer(config, repo)
    with pytest.raises(AgentUnavailable) as preflight:
        proposer.preflight()
    with pytest.raises(AgentUnavailable) as raised:
        proposer.propose(context(repo, config), threading.Event())
    for message in (str(preflight.value), str(raised.value)):
        assert '"claude" was not found' in message
        assert "npm install -g @anthropic-ai/claude-code" in message
        assert "another agent.preset" in message


def test_missing_custom_command_raises_agent_unavailable(repo: Path) -> None:
    config = make_config("no-such-agent-xyz --prompt-file {prompt_file}")
    proposer = CommandProposer(config, repo)
    with pytest.raises(AgentUnavailable):
        proposer.preflight()
    with pytest.raises(AgentUnavailable) as raised:
        proposer.propose(context(repo, config), threading.Event())
    assert "no-such-agent-xyz" in str(raised.value)


def test_shell_placeholders_are_substituted_and_quoted(repo: Path) -> None:
    (repo / "data dir").mkdir()
    (repo / "data dir" / "it's.py").write_text("X = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "more files")
    out = repo / ".autoresearch" / "args.json"
    command = (
        f"{shlex.quote(str(FAKE_AGENT))} --mode args --out {{root}}/.autoresearch/args.json"
        " -p {prompt_file} -- {prompt} {number} {description_file} {files} ${HOME+home}"
    )
    config = make_config(command)
    config.scope.files = ["train.py", "data dir/*.py"]
    guidance = 'try $(touch pwned) and `touch pwned2`; it\'s "quoted" \\ too'
    ctx = context(repo, config, number=7, guidance=guidance)
    outcome = CommandProposer(config, repo).propose(ctx, threading.Event())
    assert outcome.error is None
    record = json.loads(out.read_text())
    prompt = (repo / PROMPT_FILE).read_text()
    rest = record["argv"][record["argv"].index("--") + 1 :]
    assert rest == [
        prompt,
        "7",
        str(repo.resolve() / DESCRIPTION_FILE),
        "train.py",
        "data dir/it's.py",
        "home",
    ]
    assert guidance in prompt
    assert not (repo / "pwned").exists() and not (repo / "pwned2").exists()
    assert record["cwd"] == str(repo.resolve())
    assert record["env"]["AUTORESEARCH_NUMBER"] == "7"
    assert record["env"]["GIT_EDITOR"] == "true"
    assert record["stdin_is_tty"] is False and record["stdin"] == ""


def shim(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the fake agent on PATH under a real tool's name."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).symlink_to(FAKE_AGENT)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_runs_its_tool_and_the_edit_lands(
    preset: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim(tmp_path, PRESETS[preset].argv[0], monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_MODE", "good")
    config = make_config(preset=preset)
    proposer = CommandProposer(config, repo)
    proposer.preflight()
    outcome = proposer.propose(context(repo, config), threading.Event())
    assert outcome.error is None
    assert outcome.description == "LEARNING_RATE 0.01 -> 0.009"


def test_preset_argv_carries_prompt_files_and_env(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("claude", "aider", "opencode"):
        shim(tmp_path, name, monkeypatch)
    monkeypatch.setenv("FAKE_AGENT_MODE", "args")
    out = repo / ".autoresearch/agents/fake_args.json"
    records = {}
    for preset in ("claude", "aider", "opencode"):
        config = make_config(preset=preset)
        config.scope.files = ["train.py", "prepare2.py"]
        outcome = CommandProposer(config, repo).propose(context(repo, config), threading.Event())
        assert outcome.error is None
        records[preset] = json.loads(out.read_text())
    prompt = (repo / PROMPT_FILE).read_text()
    assert records["claude"]["argv"] == [
        *("-p", prompt, "--permission-mode", "acceptEdits", "--output-format", "json")
    ]
    aider = records["aider"]["argv"]
    assert aider[aider.index("--message-file") + 1] == str(repo.resolve() / PROMPT_FILE)
    # The description file is in the chat, and aider may write it although it is gitignored.
    description = str(repo.resolve() / DESCRIPTION_FILE)
    assert aider[-3:] == ["train.py", "prepare2.py", description]
    assert "--no-auto-commits" in aider and "--add-gitignore-files" in aider
    assert records["opencode"]["argv"] == ["run", "--format", "json", prompt]
    # Edits only: a shell command is never granted.
    permission = json.loads(records["opencode"]["env"]["OPENCODE_PERMISSION"])
    assert permission["edit"] == "allow" and permission["bash"] == "deny"
    assert "*" not in permission
    # Nothing an agent starts opens a browser.
    assert records["claude"]["env"]["BROWSER"] == "true"


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(TemplateError) as raised:
        resolve(Agent(kind="command", command="agent --in {prompt_path}"))
    message = str(raised.value)
    assert "{prompt_path}" in message
    for name in PLACEHOLDERS:
        assert "{" + name + "}" in message


def test_shell_text_that_is_not_a_placeholder_is_left_alone() -> None:
    resolved = resolve(Agent(kind="command", command="x ${HOME} | awk '{print $1}' {prompt_file}"))
    assert resolved.shell


def test_unknown_preset_and_empty_custom_are_clear_errors() -> None:
    with pytest.raises(TemplateError, match="claude, codex, aider, gemini, opencode, custom"):
        resolve(Agent(kind="command", preset="cursor"))
    with pytest.raises(TemplateError, match=r"agent\.command is empty"):
        resolve(Agent(kind="command", preset="custom"))


def test_command_overrides_a_preset_but_keeps_its_environment() -> None:
    resolved = resolve(Agent(kind="command", preset="opencode", command="my-opencode {prompt}"))
    assert resolved.template == "my-opencode {prompt}"
    assert "OPENCODE_PERMISSION" in resolved.preset.env


def test_every_preset_is_documented_and_gets_the_prompt() -> None:
    for name, preset in PRESETS.items():
        assert preset.note and preset.checked and preset.install, name
        text = " ".join(preset.argv)
        assert "{prompt}" in text or "{prompt_file}" in text, name
        assert resolve(Agent(kind="command", preset=name)).template == preset.argv


def test_description_is_first_non_empty_line_capped(tmp_path: Path) -> None:
    path = tmp_path / "d.txt"
    path.write_text("\n\n   tried   a  bigger\tbatch  \nsecond line\n")
    assert read_description(path) == "tried a bigger batch"
    path.write_text("x" * 10_000_000)
    assert read_description(path) == "x" * 200
    path.write_text("  \n")
    assert read_description(path) is None
    assert read_description(tmp_path / "missing.txt") is None


# What each misbehaving fake agent leaves behind, so the loop's tests can rely on it.
MISBEHAVIOURS = {
    "out_of_scope": lambda r: "README.md" in status(r) and "agent_notes.txt" in status(r),
    "evaluator": lambda r: "prepare.py" in status(r),
    "committer": lambda r: git(r, "rev-list", "--count", "HEAD").strip() == "2",
    "brancher": lambda r: git(r, "branch", "--show-current").strip() == "fake-agent-branch",
    "stasher": lambda r: status(r) == "" and git(r, "stash", "list") != "",
    "results_deleter": lambda r: not (r / "results.tsv").exists() and "train.py" in status(r),
    "merge_state": lambda r: (r / ".git" / "MERGE_HEAD").exists() and "<<<<<<<" in train(r),
    "syntax": lambda r: not compiles(train(r)),
}


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


def train(root: Path) -> str:
    return (root / "train.py").read_text()


def compiles(source: str) -> bool:
    try:
        compile(source, "train.py", "exec")
    except SyntaxError:
        return False
    return True


@pytest.mark.parametrize("mode", sorted(MISBEHAVIOURS))
def test_misbehaving_fake_agents_do_what_they_say(mode: str, repo: Path) -> None:
    outcome = propose(repo, agent_command(mode))
    assert outcome.error is None
    assert outcome.description
    assert MISBEHAVIOURS[mode](repo), status(repo)
