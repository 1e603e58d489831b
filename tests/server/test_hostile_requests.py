"""Hostile requests and repositories stay outside: a raw JSON-RPC client on the real
`autoresearch serve`, as a security reviewer would drive it.

Names that point outside the repository (or at a FIFO, or /dev/zero), log tags that climb out of
.autoresearch/runs/, refused starts that must write nothing, malformed JSON, oversized texts and
a folder the daemon cannot fully read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import tomli_w
from conftest import git, make_repo

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
from jsonrpc import Daemon, RpcError

sys.path.pop(0)

INVALID_PARAMS = -32602
USER_ERROR = -32001
# Generous: a refusal takes milliseconds; a request stuck on a FIFO never answers at all.
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon takes every hostile request of this module, as one would in a session: each
    test also checks that it serves on after the last."""
    home = tmp_path_factory.mktemp("daemon")
    client = Daemon(cwd=home, log=home / "daemon.stderr")
    try:
        yield client
    finally:
        client.close()


def refused(client: Daemon, method: str, params: dict[str, object]) -> RpcError:
    with pytest.raises(RpcError) as caught:
        client.request(method, params, timeout=DEADLINE_S)
    return caught.value


def escaping(target: Path) -> str:
    """A branch-looking name whose ref file would be `target`, from .git/refs/heads/."""
    return "refs/heads/" + "../" * 24 + str(target).lstrip("/")


# ---- 1. commit names are names, never paths --------------------------------------------------


def test_a_ref_name_leading_to_a_file_outside_holding_a_sha_is_not_resolved(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sha").write_text(git(root, "rev-parse", "HEAD") + "\n")
    for method, extra in (("autoresearch/changes", {}), ("autoresearch/fileAt", {"path": "a"})):
        error = refused(
            daemon, method, {"root": str(root), "commit": escaping(outside / "sha"), **extra}
        )
        assert error.code == INVALID_PARAMS, (method, extra)
        assert error.message.startswith(f"{method}: ")
        assert "is not a commit name" in error.message
        assert "a commit sha" in error.message and "a branch name" in error.message


def test_a_ref_name_leading_to_a_fifo_outside_is_refused_and_hangs_nothing(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for method, extra in (("autoresearch/changes", {}), ("autoresearch/fileAt", {"path": "a"})):
        error = refused(daemon, method, {"root": str(root), "commit": escaping(fifo), **extra})
        assert error.code == INVALID_PARAMS
        assert "is not a commit name" in error.message
    # The repository's own requests are answered: nothing waits on the FIFO.
    head = git(root, "rev-parse", "HEAD")
    params = {"root": str(root), "commit": head, "path": "train.py"}
    assert daemon.request("autoresearch/fileAt", params, timeout=DEADLINE_S)["exists"]
    changes = daemon.request("autoresearch/changes", {"root": str(root), "commit": head})
    assert {f["path"] for f in changes["files"]} == {"train.py", "evaluate.py"}


def test_a_fifo_inside_the_repositorys_refs_hangs_nothing(tmp_path: Path, daemon: Daemon) -> None:
    root = make_repo(tmp_path / "repo")
    os.mkfifo(root / ".git" / "refs" / "heads" / "evil")  # a valid branch name, not a file
    error = refused(daemon, "autoresearch/changes", {"root": str(root), "commit": "evil"})
    assert "git did not resolve 'refs/heads/evil' within" in error.message, error.message
    head = git(root, "rev-parse", "HEAD")
    params = {"root": str(root), "commit": head, "path": "train.py"}
    assert daemon.request("autoresearch/fileAt", params, timeout=DEADLINE_S)["exists"]


def test_a_ref_name_leading_to_dev_zero_is_refused_before_anything_is_read(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    for method, extra in (("autoresearch/changes", {}), ("autoresearch/fileAt", {"path": "a"})):
        commit = escaping(Path("/dev/zero"))
        error = refused(daemon, method, {"root": str(root), "commit": commit, **extra})
        assert error.code == INVALID_PARAMS and "is not a commit name" in error.message
    # Refused, not read: the daemon did not grow by gigabytes of zeros.
    assert psutil.Process(daemon.pid).memory_info().rss < 1024**3


def test_a_results_tsv_carrying_a_path_as_commit_is_not_followed(
    tmp_path: Path, daemon: Daemon
) -> None:
    """A cloned repository's results.tsv is read by the observer: its commit column is data."""
    root = make_repo(tmp_path / "repo")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sha").write_text(git(root, "rev-parse", "HEAD") + "\n")
    (root / "results.tsv").write_text(
        "commit\tmetric\tmemory_gb\tstatus\tdescription\n"
        f"{escaping(outside / 'sha')}\t0.5\t0.0\tkeep\tbaseline\n"
    )
    page = daemon.request("autoresearch/experiments", {"root": str(root)})
    assert page["total"] == 1
    error = refused(daemon, "autoresearch/changes", {"root": str(root), "number": 0})
    assert error.code == USER_ERROR
    assert "The recorded commit is unusable" in error.message
    assert "is not a commit name" in error.message


def test_commit_names_the_extension_and_people_use_still_resolve(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    head = git(root, "rev-parse", "HEAD")
    git(root, "update-ref", "refs/autoresearch/nov30/1", head)
    git(root, "update-ref", "refs/autoresearch/nov30/2-crash1", head)
    git(root, "branch", "feature/x")
    for name in (
        head,
        head[:7],
        "HEAD",
        "main",
        "refs/heads/main",
        "feature/x",
        "refs/autoresearch/nov30/1",
        "refs/autoresearch/nov30/2-crash1",
    ):
        params = {"root": str(root), "commit": name, "path": "train.py"}
        answer = daemon.request("autoresearch/fileAt", params, timeout=DEADLINE_S)
        assert answer["exists"] and "LR = 0.5" in answer["content"], name
    error = refused(
        daemon, "autoresearch/fileAt", {"root": str(root), "commit": "gone", "path": "a"}
    )
    assert error.code == USER_ERROR and "is not in this repository" in error.message
    for name in ("HEAD~1", "main@{1}", "-x", "a..b", "refs/tags/v1", "x" * 300):
        params = {"root": str(root), "commit": name, "path": "train.py"}
        assert refused(daemon, "autoresearch/fileAt", params).code == INVALID_PARAMS, name


def test_a_file_over_the_read_bound_is_refused_with_its_size(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    with open(root / "weights.bin", "wb") as f:
        f.truncate(17 * 1024 * 1024)  # sparse: 17 MiB of zeros, over the 16 MiB bound
    git(root, "add", "weights.bin")
    git(root, "commit", "-q", "-m", "weights")
    params = {"root": str(root), "commit": "HEAD", "path": "weights.bin"}
    error = refused(daemon, "autoresearch/fileAt", params)
    assert error.code == USER_ERROR
    assert "weights.bin" in error.message and "17.0 MiB" in error.message
    assert "at most 16 MiB" in error.message and "git show" in error.message


# ---- 2. log tags stay under .autoresearch/runs/ ----------------------------------------------


def test_a_log_tag_that_climbs_out_of_the_runs_folder_is_refused(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    runs = root / ".autoresearch" / "runs"
    runs.mkdir(parents=True)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "secret-1.log").write_text("TOP SECRET\n")
    for tag in ("../../../secret/secret", "../x", "a/b", "", ".hidden"):
        error = refused(daemon, "autoresearch/log", {"root": str(root), "tag": tag, "number": 1})
        assert error.code == INVALID_PARAMS, tag
        assert "tag" in error.message and "letters, digits" in error.message
        assert "TOP SECRET" not in error.message
    # A log file in runs/ that is a link to a file outside is not followed either.
    (runs / "nov30-1.log").symlink_to(secret / "secret-1.log")
    error = refused(daemon, "autoresearch/log", {"root": str(root), "tag": "nov30", "number": 1})
    assert error.code == USER_ERROR and "a link out of .autoresearch/runs/" in error.message
    # So is a run.log that a cloned repository carries as a link to a file outside.
    (root / "run.log").symlink_to(secret / "secret-1.log")
    error = refused(daemon, "autoresearch/log", {"root": str(root)})
    assert error.code == USER_ERROR and "run.log is a link to a file outside" in error.message
    assert "TOP SECRET" not in error.message
    # A real one is read.
    (runs / "nov30-2.log").write_text("step 1\nval_loss: 0.5\n")
    answer = daemon.request("autoresearch/log", {"root": str(root), "tag": "nov30", "number": 2})
    assert answer["text"].endswith("val_loss: 0.5\n")


# ---- 4. a refused start writes nothing -------------------------------------------------------

TRACKED_CONFIG = {
    "constraints": "Never touch the data loader.",
    "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
    "run": {"command": f"{sys.executable} train.py", "timeout": 123},
    "scope": {"files": ["train.py"], "off_limits": ["evaluate.py"]},
    "protocol": {"text": "Fixed seed, one shard.", "time_budget": 60},
    "agent": {"kind": "sweep", "seed": 42},
}


def _refusable_configs() -> list[tuple[str, dict[str, object]]]:
    base = {k: v for k, v in TRACKED_CONFIG.items() if k != "constraints"}
    metric = {"name": "score", "direction": "lower", "pattern": r"^score:\s*\S+"}
    return [
        ("scope escaping the repository", {**base, "scope": {"files": ["../*"]}}),
        ("a metric pattern without a group", {**base, "metric": metric}),
        ("a command that does not exist", {**base, "run": {"command": "no-such-trainer --x"}}),
    ]


@pytest.mark.parametrize(("case", "config"), _refusable_configs())
def test_a_refused_start_leaves_the_tracked_config_and_the_tree_as_they_were(
    tmp_path: Path, daemon: Daemon, case: str, config: dict[str, object]
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "autoresearch.toml").write_text(tomli_w.dumps(TRACKED_CONFIG))
    make_repo(root)
    before = (root / "autoresearch.toml").read_bytes()
    error = refused(daemon, "autoresearch/start", {"root": str(root), "config": config, "loop": 1})
    assert error.code == USER_ERROR, case
    assert (root / "autoresearch.toml").read_bytes() == before, case
    assert not (root / ".autoresearch").exists(), case
    assert git(root, "status", "--porcelain", "--untracked-files=all") == "", case
    assert git(root, "branch", "--list", "autoresearch/*") == "", case


def test_start_and_guidance_in_a_folder_that_is_not_a_repository_write_nothing(
    tmp_path: Path, daemon: Daemon
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "train.py").write_text("print('score: 1')\n")
    error = refused(
        daemon, "autoresearch/start", {"root": str(plain), "config": TRACKED_CONFIG, "loop": 1}
    )
    assert "is not a git repository" in error.message and "git init" in error.message
    error = refused(daemon, "autoresearch/guidance", {"root": str(plain), "text": "try LR 0.1"})
    assert "is not a git repository" in error.message
    assert sorted(p.name for p in plain.iterdir()) == ["train.py"]


# ---- 5. malformed JSON gets an answer --------------------------------------------------------


def test_malformed_json_is_answered_with_a_parse_error_and_the_daemon_serves_on(
    tmp_path: Path,
) -> None:
    root = make_repo(tmp_path / "repo")
    daemon = Daemon(cwd=tmp_path, log=tmp_path / "daemon.stderr")  # its own log, read below
    try:
        _malformed(daemon, root, tmp_path / "daemon.stderr")
    finally:
        daemon.close()


def _malformed(daemon: Daemon, root: Path, stderr: Path) -> None:
    daemon.send_raw(b'{"jsonrpc": "2.0", "id": 7, "method": "autoresearch/state", "params": {')
    daemon.wait_for(lambda: len(daemon.orphans) >= 1, DEADLINE_S)
    answer = daemon.orphans[0]
    assert answer["id"] is None and answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == -32700
    assert answer["error"]["message"].startswith("Parse error: ")
    daemon.send_raw(b"\xff\xfe not even text")
    daemon.send_raw(b"[1, 2, 3]")
    daemon.wait_for(lambda: len(daemon.orphans) >= 3, DEADLINE_S)
    assert [a["error"]["code"] for a in daemon.orphans[1:]] == [-32700, -32600]
    # Served on, in order: the next request is answered as usual.
    state = daemon.request("autoresearch/state", {"root": str(root)})
    assert state["phase"] == "idle"
    log = stderr.read_text()
    assert "Traceback" not in log
    lines = [line for line in log.splitlines() if "answered id null" in line]
    assert len(lines) == 3 and "-32700: Parse error" in lines[0]


# ---- 6. bounded texts, and a folder that cannot all be read -----------------------------------


def test_oversized_guidance_and_description_are_refused_naming_the_field_and_the_bound(
    tmp_path: Path, daemon: Daemon
) -> None:
    root = make_repo(tmp_path / "repo")
    text = "x" * (5 * 1024 * 1024)
    error = refused(daemon, "autoresearch/guidance", {"root": str(root), "text": text})
    assert error.code == INVALID_PARAMS
    assert "text is 5,242,880 bytes; at most 1,048,576 are accepted" in error.message
    assert not (root / ".autoresearch").exists()
    long = "y" * 5000
    params = {"root": str(root), "description": long}
    error = refused(daemon, "autoresearch/runExperiment", params)
    assert error.code == INVALID_PARAMS
    assert "description is 5,000 bytes; at most 2,048 are accepted" in error.message
    # Within the bound, guidance is written as before.
    daemon.request("autoresearch/guidance", {"root": str(root), "text": "try a lower LR"})
    assert (root / ".autoresearch" / "guidance.md").read_text() == "try a lower LR\n"


def test_detect_on_the_whole_file_system_answers(daemon: Daemon) -> None:
    """Bounded, and what this user may not read (/proc/1/cwd...) is skipped, not fatal."""
    answer = daemon.request("autoresearch/detect", {"root": "/"}, timeout=DEADLINE_S)
    assert "metric.direction" in answer["ask"]
    assert not [n for n in answer["notes"] if "Errno" in n]


def test_detect_says_what_it_could_not_read_and_goes_on(tmp_path: Path, daemon: Daemon) -> None:
    plain = tmp_path / "plain"
    (plain / "locked").mkdir(parents=True)
    (plain / "locked" / "notes.txt").write_text("private\n")
    (plain / "train.py").write_text('print(f"val_loss: {0.5}")\n')
    (plain / "locked").chmod(0)
    try:
        if os.access(plain / "locked", os.R_OK):
            pytest.skip("this user reads folders whatever their mode (root)")
        answer = daemon.request("autoresearch/detect", {"root": str(plain)}, timeout=DEADLINE_S)
    finally:
        (plain / "locked").chmod(0o755)
    assert answer["config"]["run"]["command"].endswith("train.py")
    assert answer["config"]["metric"]["name"] == "val_loss"
    skipped = [note for note in answer["notes"] if note.startswith("could not read")]
    assert skipped and f"{plain / 'locked'} (Permission denied)" in skipped[0]
