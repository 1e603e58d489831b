"""Bad repository states: a clear error naming the fix, and nothing lost (no row, no commit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ScriptedProposer, git, make_config, make_repo

from autoresearch import config as cfg
from autoresearch.bootstrap import default_tag
from autoresearch.loop import Loop
from autoresearch.preflight import PreflightError
from autoresearch.repo import RepoError
from autoresearch.results_tsv import ResultsError


def start(root: Path, **overrides) -> Loop:
    loop = Loop(root, make_config(**overrides), ScriptedProposer([]), limit=1)
    loop.run()
    return loop


def assert_untouched(root: Path, head: str) -> None:
    assert git(root, "rev-parse", "HEAD") == head
    assert not (root / "results.tsv").exists()
    assert git(root, "branch", "--list", "autoresearch/*") == ""


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="not a git repository. Run `git init`"):
        start(tmp_path)


def test_a_dirty_tree_is_refused_and_the_edit_kept(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("LR = 0.1\n")
    with pytest.raises(PreflightError, match=r"uncommitted changes \(train.py\). Commit or stash"):
        start(repo)
    assert (repo / "train.py").read_text() == "LR = 0.1\n"
    assert_untouched(repo, head)


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    with pytest.raises(PreflightError, match="HEAD is detached"):
        start(repo)


def test_existing_branch_is_refused(repo: Path) -> None:
    git(repo, "branch", f"autoresearch/{default_tag()}")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PreflightError, match="already exists.*--tag"):
        start(repo)
    assert git(repo, "rev-parse", "HEAD") == head


def test_missing_command(repo: Path) -> None:
    with pytest.raises(PreflightError, match="'no-such-tool' was not found on PATH"):
        start(repo, run__command="no-such-tool --fast")
    assert not (repo / "results.tsv").exists()


def test_scope_glob_matching_nothing(repo: Path) -> None:
    with pytest.raises(PreflightError, match="'model/\\*.py' matches no file"):
        start(repo, scope__files=["model/*.py"])


def test_off_limits_file_inside_a_scope_glob(repo: Path) -> None:
    with pytest.raises(PreflightError, match="evaluate.py is matched by both"):
        start(repo, scope__files=["*.py"], scope__off_limits=["evaluate.py"])


def test_no_commits_yet(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    with pytest.raises(PreflightError, match="no commits"):
        start(root)


def test_merge_in_progress(repo: Path) -> None:
    (repo / ".git" / "MERGE_HEAD").write_text(git(repo, "rev-parse", "HEAD"))
    with pytest.raises(PreflightError, match="merge is in progress"):
        start(repo)


def test_a_stale_index_lock_names_the_file(repo: Path) -> None:
    (repo / ".git" / "index.lock").write_text("")
    with pytest.raises(PreflightError, match="index.lock exists"):
        start(repo)


def test_a_failing_pre_commit_hook_stops_setup_cleanly(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint says no' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PreflightError, match="lint says no.*Nothing was changed"):
        start(repo)
    assert_untouched(repo, head)
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "status", "--porcelain") == ""


def test_a_hand_broken_results_row_is_refused_on_resume(repo: Path) -> None:
    start(repo)
    with open(repo / "results.tsv", "a") as f:
        f.write("oops\n")
    with pytest.raises(ResultsError, match="line 3: expected 5.*Fix or delete that line"):
        start(repo)


def test_read_only_results_file(repo: Path) -> None:
    start(repo)
    (repo / "results.tsv").chmod(0o444)
    try:
        import os

        if os.access(repo / "results.tsv", os.W_OK):
            pytest.skip("running as a user that ignores file modes (root)")
        with pytest.raises(PreflightError, match="read-only"):
            start(repo)
    finally:
        (repo / "results.tsv").chmod(0o644)


def test_invalid_toml_in_the_repository(repo: Path) -> None:
    (repo / "autoresearch.toml").write_text("[metric]\nname = \n")
    with pytest.raises(cfg.ConfigError, match="line 2"):
        cfg.load(repo)


def test_a_metric_that_is_never_printed(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"train.py": "LR = 1\nprint('hello')\n"})
    from autoresearch.loop import LoopStopped

    with pytest.raises(LoopStopped, match="score not found in run.log"):
        start(root)
    assert (root / "results.tsv").read_text().count("\n") == 1


def test_an_uncommitted_scope_file_is_refused(repo: Path) -> None:
    (repo / "model.py").write_text("WIDTH = 4\n")
    with pytest.raises(PreflightError, match="'model.py' matches only files git does not track"):
        start(repo, scope__files=["train.py", "model.py"])


def test_an_infinite_log_limit_is_refused_before_anything_runs() -> None:
    with pytest.raises(cfg.ConfigError, match="positive, finite"):
        make_config(run__max_log_mb=float("inf"))
