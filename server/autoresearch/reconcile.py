"""Resume's check of the attempt refs and the branch against the records, journal or not.

Every attempt has a ref `refs/autoresearch/<tag>/<n>` on a commit "autoresearch #<n>: ...",
so what the records lack can be proven from git: a ref with no record was never decided (the
last one runs again, once; an earlier one is recorded as a crash), and the branch belongs on
the last keep. Loop commits above it (an undecided or discarded experiment) are undone with a
message; a person's commits are never reset away: the start is refused, naming them.
"""

from __future__ import annotations

import re
from collections.abc import MutableSequence, Sequence

import msgspec

from .experiment import Experiment
from .guarded_reset import BOOKKEEPING_SUBJECT, EXPERIMENT_SUBJECT, name_commits
from .ledger import Ledger
from .preflight import PreflightError
from .repo import BRANCH_PREFIX, REF_PREFIX, Repo
from .session_history import last_keep

# Recorded with an experiment whose record was lost, when its commit runs again.
LOST_EVENT = "its record was lost (results.tsv and experiments.jsonl): run again"


def description_of(repo: Repo, sha: str) -> str:
    return re.sub(r"^autoresearch #\d+: ", "", repo.subject(sha)) if sha else ""


def fill_from_refs(
    repo: Repo,
    ledger: Ledger,
    tag: str,
    history: MutableSequence[Experiment],
    rerun: Experiment | None,
) -> tuple[Experiment | None, list[str]]:
    """Numbers with a ref but no record: the last runs again (when nothing else does and its
    parent is the last keep), the others are recorded as crashes. `history` is appended to."""
    refs = repo.attempt_refs(tag)
    top = max(refs, default=-1)
    done: list[str] = []
    if not history:  # the baseline runs (again) first; its number is 0
        return rerun, done
    for n in range(max(len(history), 1), top + 1):  # a missing baseline runs again anyway
        if rerun is not None and n == rerun.number:
            continue
        sha = refs.get(n, "")
        parent = (repo.parent(sha) or "") if sha else ""
        keep = last_keep(history)
        base = Experiment(
            number=n,
            commit=sha,
            status="crash",
            description=description_of(repo, sha),
            tag=tag,
            parent=parent,
        )
        if n == top and rerun is None and sha and keep and _on_keep(repo, keep.commit, parent):
            rerun = msgspec.structs.replace(base, events=[LOST_EVENT])
            done.append(f"experiment #{n} ({sha[:7]}) has a ref but no record: it runs again")
            continue
        exp = msgspec.structs.replace(
            base,
            crash_kind="interrupted",
            reason="its record was lost and it could not run again",
        )
        ledger.record(exp)
        history.append(exp)
        done.append(f"experiment #{n} had a ref ({REF_PREFIX}{tag}/{n}) but no record: a crash")
    return rerun, done


def _on_keep(repo: Repo, keep: str, parent: str) -> bool:
    """`parent` is the last keep, or the loop's bookkeeping commits above it (the notes a
    loop's end refreshes, a changed config): an attempt made there can run again."""
    if parent == keep:
        return True
    if not parent or not repo.is_ancestor(keep, parent):
        return False
    return all(s.startswith(BOOKKEEPING_SUBJECT) for _, s in repo.commits_between(keep, parent))


def put_head(
    repo: Repo, tag: str, history: Sequence[Experiment], rerun: Experiment | None
) -> tuple[bool, list[str]]:
    """Put HEAD on the last keep (with the loop's own bookkeeping commits above it), or on the
    commit of the experiment to run again. Returns whether that re-run can go ahead (its parent
    is still the branch's tip) and what was done."""
    keep = last_keep(history)
    if keep is None or repo.resolve(keep.commit) is None:
        return rerun is not None, []
    keep_sha = repo.resolve(keep.commit) or keep.commit  # another tool's table has short shas
    branch = BRANCH_PREFIX + tag
    head = repo.head()
    if not repo.is_ancestor(keep_sha, head):
        raise PreflightError(
            f"{branch} is at {head[:7]}, which does not contain its last keep #{keep.number}"
            f" ({keep.short}); nothing was changed. Put the branch back (git reset --keep"
            f" {keep.short}) and run again, or start a new session (--tag)."
        )
    commits = repo.commits_between(keep_sha, head)
    # The loop's own: its bookkeeping commits, and attempts that have a ref of this session.
    attempts = repo.ref_commits(f"{REF_PREFIX}{tag}/")
    foreign = [
        (sha, subject)
        for sha, subject in commits
        if not subject.startswith(BOOKKEEPING_SUBJECT)
        and not (subject.startswith(EXPERIMENT_SUBJECT) and sha in attempts)
    ]
    if foreign:
        raise PreflightError(
            f"{branch} has commits that are not the loop's above its last keep #{keep.number}"
            f" ({keep.short}): {name_commits(foreign)}. The loop never resets them away; nothing"
            f" was changed. Move them to another branch (git branch my-work {head[:7]}, then"
            f" git reset --keep {keep.short}) and run again, or start a new session from them."
        )
    tip = keep_sha
    for sha, subject in commits:
        if subject.startswith(EXPERIMENT_SUBJECT):
            break
        tip = sha
    can_rerun = rerun is not None and rerun.parent == tip
    want = rerun.commit if rerun is not None and can_rerun else tip
    done: list[str] = []
    if head != want:
        undone = [c for c in commits if c[0] != want and not repo.is_ancestor(c[0], tip)]
        repo.reset_keep(want)
        where = (
            f"HEAD is on {want[:7]}, experiment #{rerun.number}'s commit, to run it again"
            if rerun is not None and want == rerun.commit
            else f"HEAD is back on the last keep #{keep.number} ({want[:7]})"
        )
        if undone:
            done.append(
                f"undid {name_commits(undone)} left on {branch} undecided or reverted: {where}"
            )
        else:
            done.append(where)
    return can_rerun, done
