"""Moving the session branch back without destroying what is not provably the loop's own.

The loop resets after every decision, after an abandoned edit and on recovery. Before each, it
compares the repository with what it left there: a commit someone else made on the branch (or
a branch switch) stops the loop and is never reset away; a person's uncommitted edit of a file
in scope is stashed under a named entry; any other uncommitted edit is left in place. HEAD then
moves with `git reset --keep`, which rewrites only the files that differ between the two
commits: the loop's own.
"""

from __future__ import annotations

from .confine import put_back, read_own
from .repo import Change, Repo
from .scope import LOOP_FILES, STASH_MESSAGE, matches

# The subject every experiment commit has (loop._commit): "autoresearch #<n>: <description>".
EXPERIMENT_SUBJECT = "autoresearch #"
# Commits the loop makes for itself (setup, notes, config): "autoresearch: ...".
BOOKKEEPING_SUBJECT = "autoresearch: "


class ForeignWork(RuntimeError):
    """The branch holds work that is not the loop's: the message names it and the fix."""


def check_head(repo: Repo, branch: str, expected: str, when: str) -> None:
    """HEAD is on `branch` at `expected` (what the loop left), or ForeignWork says what moved.
    `when` words the moment, e.g. "during experiment #3"."""
    current = repo.branch()
    if current != branch:
        raise ForeignWork(
            f"Stopped: the repository was switched to {current or 'a detached HEAD'} {when};"
            f" the loop works on {branch}. Nothing was reset. Switch back (git switch {branch})"
            " and run again."
        )
    head = repo.head()
    if head == expected:
        return
    if repo.is_ancestor(expected, head):
        raise ForeignWork(
            f"Stopped: {branch} has commits that are not the loop's, made {when}:"
            f" {name_commits(repo.commits_between(expected, head))}. The loop never resets them"
            f" away. Move them to another branch (git branch my-work {head[:7]}, then git reset"
            f" --keep {expected[:7]}) and run again, or start a new session from them."
        )
    raise ForeignWork(
        f"Stopped: {branch} was moved to {head[:7]} {when} (the loop left it at"
        f" {expected[:7]}). Nothing was reset. Put it back (git reset --keep {expected[:7]}) and"
        " run again."
    )


def name_commits(commits: list[tuple[str, str]]) -> str:
    shown = ", ".join(f'{sha[:7]} "{subject}"' for sha, subject in commits[:5])
    return shown + (f" and {len(commits) - 5} more" if len(commits) > 5 else "")


def tracked_changes(repo: Repo) -> list[Change]:
    """Uncommitted changes of tracked files, the loop's own files (records, run.log) left out."""
    # No untracked scan, and no index refresh (Repo sets GIT_OPTIONAL_LOCKS=0): status writes
    # nothing, so it still answers on a full disk, before the decision is written.
    return _tracked(repo.tracked_status())


def paths_of(changes: list[Change]) -> list[str]:
    out: list[str] = []
    for c in changes:
        out += [c.path] if c.old_path is None else [c.path, c.old_path]
    return out


def stash(repo: Repo, paths: list[str], what: str) -> str:
    """Stash `paths` under "autoresearch: <what>"; returns the event that says so."""
    message = f"{STASH_MESSAGE}{what}"
    repo.stash_push(message, paths)
    return f'{what}: stashed as "{message}" (git stash list; git stash pop brings it back)'


def set_aside(
    repo: Repo, target: str, scope: list[str], n: int, status: list[Change] | None = None
) -> tuple[list[str], list[Change]]:
    """Before HEAD (checked to be the loop's) moves to `target` after experiment #n: in-scope
    edits are a person's (the edit step is over), and so is any edit of a file the move would
    rewrite: stashed. `status`: the repository's whole `git status`, when the caller has just
    read it. Returns the events and the changes left in place (outside the scope)."""
    changes = tracked_changes(repo) if status is None else _tracked(status)
    if not changes:
        return [], []
    own = set(_changed_between(repo, target))
    mine = [c for c in changes if matches(c.path, scope) or c.path in own]
    events: list[str] = []
    if mine:
        names = paths_of(mine)
        events.append(stash(repo, names, f"your edit of {', '.join(names)} during #{n}"))
    return events, [c for c in changes if c not in mine]


def _changed_between(repo: Repo, target: str) -> list[str]:
    return repo.changed_files(target, "HEAD")


Snapshot = tuple[dict[str, bytes | None], set[str]]


def snapshot(repo: Repo, status: list[Change] | None = None) -> Snapshot:
    """The tracked files a person has changed, with their content (None: deleted), so what an
    edit step changes on top can be told from what was there before it; and the untracked
    files (ignored ones not). One `git status` for both (`status`, when the caller has just
    read it): it runs before every edit."""
    changes = repo.status() if status is None else status
    out: dict[str, bytes | None] = {}
    for path in paths_of(_tracked(changes)):
        out[path] = read_own(repo.root, path)
    return out, {c.path for c in changes if c.untracked}


def _tracked(status: list[Change]) -> list[Change]:
    """What tracked_changes() lists, out of a whole `git status`."""
    return [c for c in status if not c.untracked and not matches(c.path, list(LOOP_FILES))]


def discard_edit(repo: Repo, parent: str, before: dict[str, bytes | None]) -> None:
    """Undo an unfinished edit step's changes of tracked files (HEAD is at `parent`), leaving
    a person's changes that were there before it (`before`, from snapshot()) as they were."""
    repo.unstage()
    restore: list[str] = []
    for path in paths_of(tracked_changes(repo)):
        if path in before and read_own(repo.root, path) == before[path]:
            continue
        if path in before:
            put_back(repo.root, path, before[path])  # never through a link the edit made
        else:
            restore.append(path)
    if not restore:
        return
    present = repo.present_at(parent, restore)
    repo.restore([p for p in restore if p in present], parent)
    for rel in restore:
        if rel not in present:
            (repo.root / rel).unlink(missing_ok=True)
