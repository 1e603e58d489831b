"""A session setup whose commit fails is undone; when undoing fails too, the error says so
(never "Nothing was changed") and the traceback goes to the log, not into silence."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import ScriptedProposer, git, make_config

from autoresearch.loop import Loop
from autoresearch.preflight import PreflightError

# Rejects the setup commit after deleting the branch the setup started from, so the undo's
# `git checkout main` has nothing to go back to.
HOOK = "#!/bin/sh\ngit update-ref -d refs/heads/main\necho 'lint says no' >&2\nexit 1\n"


def test_a_failed_undo_of_the_setup_is_said_and_logged(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    caplog.set_level(logging.ERROR, logger="autoresearch.bootstrap")
    with pytest.raises(PreflightError) as refused:
        Loop(repo, make_config(), ScriptedProposer([]), limit=1).run()
    message = str(refused.value)
    assert "lint says no" in message
    assert "Undoing the setup failed too" in message and "Nothing was changed" not in message
    assert "git status" in message  # what to check, named
    failed = [r for r in caplog.records if "undoing the failed session setup" in r.getMessage()]
    assert failed and failed[0].exc_info is not None  # with its traceback
    # The person's commit is still reachable on the session branch the setup left.
    assert git(repo, "rev-parse", "HEAD") == head
