"""One call of the edit step as the loop makes it: the context in, the proposer, the repo put back.

Whatever the proposer did, afterwards the repository is on the loop's branch and commit with only
in-scope changes in the working tree (scope.enforce), the loop's own records are intact, and what
was undone is said in plain words. The loop decides what the edit is worth; this module only
hands it over clean, and words what the next call must be told when there was nothing to run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from . import scope
from .agents.base import EditContext, EditOutcome, FailureKind, Proposer
from .config import Config
from .experiment import Experiment
from .ledger import Ledger
from .repo import REF_PREFIX, Repo

GUIDANCE_FILE = ".autoresearch/guidance.md"


class Edit(msgspec.Struct):
    outcome: EditOutcome
    enforcement: scope.Enforcement

    @property
    def strays(self) -> list[str]:
        """Paths the edit touched but may not: undone."""
        return self.enforcement.off_limits + self.enforcement.reverted


class EditStep:
    def __init__(
        self, repo: Repo, ledger: Ledger, proposer: Proposer, tag: str, watch_results: bool = True
    ) -> None:
        self.repo = repo
        # A parallel worker edits its own worktree while the coordinator writes results.tsv:
        # only the one-worker loop watches the table during its edit step.
        self.watch_results = watch_results
        self.ledger = ledger
        self.proposer = proposer
        self.tag = tag
        self.stash = scope.StashWatch(repo)

    def call(
        self,
        ctx: EditContext,
        branch: str | None,
        parent: str,
        off_limits: list[str],
        kept_in_tree: set[str],
        cancel: threading.Event,
        dirt: dict[str, bytes | None] | None = None,
        untracked: set[str] | None = None,
    ) -> Edit:
        """Run the proposer once, then undo what it may not do. `kept_in_tree`: files of an
        earlier attempt left in the working tree on purpose (not the user's untracked files);
        `dirt`: a person's uncommitted edits of tracked files before the call, left alone;
        `untracked`: the untracked files before the call, when the caller has them already.
        The proposer's exceptions (AgentUnavailable) propagate; the tree is then undefined."""
        repo = self.repo
        untracked = (repo.untracked() if untracked is None else untracked) - kept_in_tree
        stash = self.stash.entries()
        results = _stat(self.ledger.results) if self.watch_results else None
        started = time.monotonic()
        outcome = self.proposer.propose(ctx, cancel)
        if not outcome.agent_s:
            outcome.agent_s = time.monotonic() - started
        files = ctx.config.scope.files
        stashed = self.stash.stashed(stash)
        enforcement = scope.enforce(
            repo,
            branch,
            parent,
            files,
            off_limits,
            untracked,
            stashed,
            dirt or {},
            save_as=lambda: self._free_ref(ctx.number),
        )
        enforcement.events[:0] = outcome.events
        if self.watch_results and _stat(self.ledger.results) != results:
            self.ledger.results.unlink(missing_ok=True)
            self.ledger.reconcile(self.tag)
            enforcement.events.append(
                "results.tsv was changed or deleted during the edit: rebuilt from"
                " .autoresearch/experiments.jsonl"
            )
        return Edit(outcome, enforcement)

    def _free_ref(self, n: int) -> str:
        """`refs/autoresearch/<tag>/<n>-reverted` (-2, -3, ... after a retry or a resume)."""
        base = f"{REF_PREFIX}{self.tag}/{n}-reverted"
        ref, i = base, 1
        while self.repo.resolve(ref) is not None:
            i += 1
            ref = f"{base}-{i}"
        return ref


def context(
    root: Path,
    config: Config,
    history: Sequence[Experiment],
    best: Experiment | None,
    failure: tuple[str, FailureKind] | None,
    attempt: int,
) -> EditContext:
    """What one call is given: the session so far and its best (as session_records keeps it),
    the failure to fix, the user's guidance."""
    return EditContext(
        root=root,
        number=len(history),
        config=config,
        history=history,
        best=best,
        failure=failure[0] if failure else None,
        failure_kind=failure[1] if failure else None,
        reverts_in_a_row=reverts_in_a_row(history),
        guidance=read_guidance(root),
        attempt=attempt,
    )


def reverts_in_a_row(history: Sequence[Experiment]) -> int:
    """Discards and crashes since the last keep (a History decodes back only to it)."""
    count = 0
    for exp in reversed(history):
        if exp.status == "keep":
            break
        count += 1
    return count


def read_guidance(root: Path) -> str:
    """The user's steering, read at every call: text appended mid-run counts from the next."""
    try:
        return (root / GUIDANCE_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return ""


def nothing_to_run(edit: Edit) -> tuple[str, tuple[str, FailureKind]]:
    """Why an edit left nothing to run (one line), and what the next call is told."""
    outcome = edit.outcome
    if outcome.error:
        why = outcome.error
    elif edit.strays:
        why = f"every change was outside the editable files ({', '.join(edit.strays)}): undone"
    else:
        why = "the edit step changed nothing"
    detail = f"{why}\nIts last output:\n{outcome.output}" if outcome.output else why
    kind: FailureKind = "scope" if edit.strays and not outcome.error else "no_change"
    return why, (f"The previous call produced no experiment: {detail}", kind)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
