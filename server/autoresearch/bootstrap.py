"""Session setup as in the seed, or resume: branch, .gitignore, results.tsv header, recovery.

The baseline run itself belongs to the loop; this module leaves the repository on the
session's branch with records and git consistent, whatever a killed daemon left behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import MutableSequence
from pathlib import Path

import msgspec
import psutil

from . import diskspace, guarded_reset, notes, preflight, reconcile, results_tsv
from .config import CONFIG_FILE, Config
from .experiment import Experiment
from .journal import Entry, Journal
from .ledger import Ledger
from .repo import BRANCH_PREFIX, REF_PREFIX, Repo
from .runner import kill_marked, processes_with_env, signal_all
from .session_history import last_keep

log = logging.getLogger(__name__)

# The environment variable agents/command.py gives every agent process: the repository's path.
AGENT_ROOT_ENV = "AUTORESEARCH_ROOT"

# Recorded with an interrupted experiment whose commit runs again on resume; interrupted a
# second time (the journal's pending record has it already), it is recorded as a crash.
RERUN_EVENT = "interrupted by a stopped daemon: its commit ran again on resume"

IGNORED_FILES = ("results.tsv", "run.log")
IGNORED = (*IGNORED_FILES, ".autoresearch/")
STATE_DIR_NAME = ".autoresearch"


class Session(msgspec.Struct):
    tag: str
    branch: str
    resumed: bool
    # A resume's is the ledger's History: its records decoded when first used whole.
    history: MutableSequence[Experiment]
    # What recovery did, for the progress output.
    recovered: list[str] = msgspec.field(default_factory=list)
    # An experiment interrupted before its decision: its commit runs again (loop._rerun).
    rerun: Experiment | None = None


def default_tag(today: dt.date | None = None) -> str:
    day = today or dt.date.today()
    return day.strftime("%b%d").lower()


def start(repo: Repo, config: Config, ledger: Ledger, journal: Journal, tag: str | None) -> Session:
    entry = journal.read()
    if entry is not None and entry.step == "setup" and repo.branch_exists(entry.branch):
        return finish_setup(repo, config, ledger, journal, entry)
    current = repo.branch() or ""
    resumable = current.startswith(BRANCH_PREFIX) and (
        tag is None or current == BRANCH_PREFIX + tag
    )
    if resumable and (ledger.results.exists() or ledger.experiments(current[len(BRANCH_PREFIX) :])):
        return resume(repo, config, ledger, journal, current[len(BRANCH_PREFIX) :])
    return create(repo, config, ledger, journal, tag or default_tag())


def create(repo: Repo, config: Config, ledger: Ledger, journal: Journal, tag: str) -> Session:
    preflight.check_repo(repo)
    preflight.check_config(repo.root, config, repo.ls_files())
    # Before the session's branch and commit (only a check: nothing is written yet).
    diskspace.check(repo.root, config.run.min_free_mb, reserve=False)
    branch = BRANCH_PREFIX + tag
    if repo.branch_exists(branch):
        raise preflight.PreflightError(
            f"Branch {branch} already exists. Check it out to resume that session"
            f" (git switch {branch}), or start a new one with another tag (--tag {tag}b)."
        )
    origin = repo.branch() or ""
    before = {rel: _read(repo.root / rel) for rel in SETUP_FILES}
    # One journaled step: a start killed from here on is finished by the next (finish_setup).
    journal.write(Entry(tag=tag, branch=branch, step="setup", parent=repo.head(), origin=origin))
    repo.create_branch(branch)
    return _set_up(repo, config, ledger, journal, tag, origin, before)


SETUP_FILES = (".gitignore", notes.NOTES_FILE)
# How long a start waits for the setup commit of a killed start (its hooks may be slow).
SETUP_GIT_WAIT_S = 120.0


def _set_up(
    repo: Repo,
    config: Config,
    ledger: Ledger,
    journal: Journal,
    tag: str,
    origin: str,
    before: dict[str, bytes | None],
) -> Session:
    """On the new branch: ignore the loop's files, write the notes, commit; idempotent."""
    branch = BRANCH_PREFIX + tag
    _ignore_loop_files(repo.root)
    archived = _archive_old_results(ledger, tag)
    (repo.root / notes.NOTES_FILE).write_text(notes.render(config, tag, []), encoding="utf-8")
    paths = [".gitignore", notes.NOTES_FILE]
    if (repo.root / CONFIG_FILE).exists():
        paths.append(CONFIG_FILE)
    start = repo.head()
    subject = f"autoresearch: set up session {tag}"
    try:
        # A tracked results.tsv or run.log would be rewound by every revert: untrack them.
        repo.untrack(list(IGNORED_FILES))
        repo.stage(paths)
        repo.commit_staged(subject)
    except Exception as exc:
        if _made_meanwhile(repo, start, subject):
            pass  # a killed start's own `git commit` (its hook was slow) made it: done
        else:
            _fail_setup(repo, journal, origin, branch, before, archived, ledger, exc)
    ledger.start_session()
    journal.write(Entry(tag=tag, branch=branch))
    return Session(tag=tag, branch=branch, resumed=False, history=[])


def _made_meanwhile(repo: Repo, start: str, subject: str) -> bool:
    head = repo.head()
    return head != start and repo.parent(head) == start and repo.subject(head) == subject


def _fail_setup(
    repo: Repo,
    journal: Journal,
    origin: str,
    branch: str,
    before: dict[str, bytes | None],
    archived: Path | None,
    ledger: Ledger,
    exc: Exception,
) -> None:
    """A setup that could not commit is undone, and says why (and what could not be undone)."""
    undo = _undo_setup(repo, origin, branch, before, archived, ledger)
    journal.path.unlink(missing_ok=True)  # nothing in flight (what is left is said below)
    if undo:
        raise preflight.PreflightError(
            f"git commit of the session setup failed: {_git_message(exc)}. Undoing the setup"
            f" failed too ({undo}): check `git status` and `git branch` (the loop may have left"
            f" {branch} and staged files), fix the repository's commit hooks or configuration,"
            " then start again."
        ) from None
    raise preflight.PreflightError(
        f"git commit of the session setup failed: {_git_message(exc)}."
        " Nothing was changed. Fix the repository's commit hooks or configuration, then"
        " start again."
    ) from None


def finish_setup(
    repo: Repo, config: Config, ledger: Ledger, journal: Journal, entry: Entry
) -> Session:
    """A start was killed during the session's setup (journal step "setup"; the branch
    exists): finish it. Before the setup commit it is made again; after it, only the records'
    header is left to write. Anything else on the branch is a person's: refused, unchanged."""
    tag, branch = entry.tag, entry.branch
    # The killed start's `git commit` runs on in its own session (a Ctrl-C never cuts git in
    # half), its hooks perhaps for a while: what it made is known only once it is done.
    preflight.wait_for_index(repo, SETUP_GIT_WAIT_S)
    if repo.branch() != branch:
        raise preflight.PreflightError(
            f"The setup of session {tag} was interrupted and {branch} is not checked out."
            f" Switch to it (git switch {branch}) and run again to finish the setup, or delete"
            f" it (git branch -D {branch}) to start over."
        )
    head = repo.head()
    subject = f"autoresearch: set up session {tag}"
    if head != entry.parent and not (
        repo.parent(head) == entry.parent and repo.subject(head) == subject
    ):
        raise preflight.PreflightError(
            f"The setup of session {tag} was interrupted, and {branch} has commits since"
            f' ({head[:7]} "{repo.subject(head)}"): nothing was changed. Start a new session'
            f" with another tag (--tag {tag}b), or delete the branch to start over."
        )
    if head != entry.parent:  # the setup commit was made: only the records are left
        ledger.start_session()
        journal.write(Entry(tag=tag, branch=branch))
        return Session(tag=tag, branch=branch, resumed=False, history=[])
    repo.unstage()  # the killed commit's staging
    dirty = [
        c.path
        for c in guarded_reset.tracked_changes(repo)
        if c.path not in (*SETUP_FILES, CONFIG_FILE)
    ]
    if dirty:
        raise preflight.PreflightError(
            f"The setup of session {tag} was interrupted, and {', '.join(dirty)} changed since."
            " Commit or stash them (git stash), then run again to finish the setup."
        )
    preflight.check_config(repo.root, config, repo.ls_files())
    before = {rel: repo.file_at(entry.parent, rel) for rel in SETUP_FILES}
    return _set_up(repo, config, ledger, journal, tag, entry.origin, before)


def resume(repo: Repo, config: Config, ledger: Ledger, journal: Journal, tag: str) -> Session:
    branch = BRANCH_PREFIX + tag
    recovered, rerun = recover(repo, ledger, journal, tag)
    preflight.check_repo(repo)
    preflight.check_config(repo.root, config, repo.ls_files())
    if _foreign_results(ledger, tag):
        # results.tsv is untracked: after switching back to this branch it can be another
        # session's table. Set it aside; reconcile rebuilds this session's from the jsonl.
        _archive_old_results(ledger, tag)
        recovered.append(f"results.tsv belonged to another session: moved to {STATE_DIR_NAME}/")
    if _exclude_loop_files(repo):
        recovered.append(
            "results.tsv, run.log and .autoresearch/ were not ignored: added to .git/info/exclude"
        )
    history = ledger.reconcile(tag)
    # The records, the attempt refs and the branch, checked against each other: the journal
    # may be gone, and a kill can leave a ref without its record.
    rerun, done = reconcile.fill_from_refs(repo, ledger, tag, history, rerun)
    recovered += done
    config_changed = any(c.path == CONFIG_FILE for c in repo.status())
    can_rerun, done = reconcile.put_head(repo, tag, history, rerun)
    recovered += done
    if rerun is not None and (config_changed or not can_rerun):
        why = "the config changed since" if config_changed else "the branch moved on since"
        _record_interrupted(ledger, history, rerun, f"it did not run again: {why}")
        recovered.append(f"recorded the interrupted experiment #{rerun.number} as a crash ({why})")
        rerun = None
        _, done = reconcile.put_head(repo, tag, history, None)
        recovered += done
    if config_changed:
        # A config edited since (or saved by the wizard) is committed, or the next revert
        # would silently put the old one back.
        repo.stage([CONFIG_FILE])
        repo.commit_only("autoresearch: config changed", [CONFIG_FILE])
        recovered.append(f"committed the changed {CONFIG_FILE}")
    keep = last_keep(history)
    if keep is not None and repo.resolve(keep.commit) is None:
        recovered.append(f"the last keep {keep.commit[:7]} is not in this repository")
    if rerun is None:  # a re-run's pending record stays journaled until it runs
        journal.write(Entry(tag=tag, branch=branch))
    return Session(
        tag=tag, branch=branch, resumed=True, history=history, recovered=recovered, rerun=rerun
    )


def recover(
    repo: Repo, ledger: Ledger, journal: Journal, tag: str
) -> tuple[list[str], Experiment | None]:
    """Complete the step a killed daemon was in (see journal.Step), and return what was done
    and the experiment to run again, if one was interrupted before its decision. Nothing of a
    person's is discarded: uncommitted changes are stashed under a named entry. HEAD is left
    where it is for reconcile.put_head, which checks it against the records and refs."""
    entry = journal.read()
    if entry is None or entry.tag != tag or entry.step not in ("editing", "committed", "decided"):
        return [], None
    done: list[str] = []
    n = entry.number
    if entry.marker and kill_marked(entry.marker):
        done.append(f"killed the processes left running by experiment #{n}")
    if entry.step == "editing" and kill_agent_leftovers(repo.root):
        done.append(f"killed the edit step's processes left by experiment #{n}")
    repo.abort_in_progress()
    if entry.step == "editing" and entry.keep_edit:
        done.append(f"your unfinished edit of experiment #{n} is left in the tree")
    else:
        # The config (saved by a new start) and the notes are the loop's files, committed by
        # it later; anything else uncommitted is a person's, or an edit never committed.
        repo.unstage()  # a half-made commit's staging (its new files stay, untracked)
        changes = [
            c for c in guarded_reset.tracked_changes(repo) if c.path not in preflight.LOOP_WRITTEN
        ]
        if changes:
            names = guarded_reset.paths_of(changes)
            what = f"uncommitted changes to {', '.join(names)} found after #{n} was interrupted"
            done.append(guarded_reset.stash(repo, names, what))
    rerun = None
    if entry.step == "editing":
        head = repo.head()
        if (
            head != entry.parent
            and repo.subject(head).startswith(f"autoresearch #{n}: ")
            and repo.parent(head) == entry.parent
            and repo.resolve(_ref(tag, n)) is None
        ):
            repo.reset_keep(entry.parent)  # committed, never run nor referenced: ours
            done.append(f"undid experiment #{n}'s commit {head[:7]}, made but never run")
    elif entry.step == "committed" and n > 0:
        exp = entry.record or Experiment(number=n, commit=entry.commit, status="crash")
        exp = msgspec.structs.replace(
            exp,
            commit=entry.commit,
            description=exp.description or reconcile.description_of(repo, entry.commit),
            parent=exp.parent or entry.parent,
            tag=tag,
        )
        ledger.reconcile(tag)
        if RERUN_EVENT in exp.events:
            _record_interrupted(ledger, None, exp, "it was interrupted again when run again")
            done.append(f"experiment #{n} was interrupted again: recorded as a crash")
        else:
            rerun = exp
            done.append(f"experiment #{n} was interrupted: its commit {exp.short} runs again")
    elif entry.step == "committed":
        done.append("the baseline was interrupted: it runs again")
    elif entry.step == "decided" and entry.record is not None:
        ledger.reconcile(tag, pending=entry.record)
        ledger.record(entry.record)
        done.append(f"finished recording experiment #{n}")
    if rerun is None:
        journal.write(Entry(tag=tag, branch=entry.branch))
    return done, rerun


def _record_interrupted(
    ledger: Ledger, history: MutableSequence[Experiment] | None, exp: Experiment, why: str
) -> None:
    crashed = msgspec.structs.replace(
        exp,
        status="crash",
        metric=None,
        crash_kind="interrupted",
        reason=f"the daemon stopped during this experiment; {why}",
    )
    ledger.record(crashed)
    if history is not None:
        history.append(crashed)


def _ref(tag: str, n: int) -> str:
    return f"{REF_PREFIX}{tag}/{n}"


def kill_agent_leftovers(root: Path) -> int:
    """An agent CLI outlives a killed daemon (its own process group) and would go on editing
    the tree recovery just reset. Every agent process has AUTORESEARCH_ROOT=<root> in its
    environment (agents/command.py); with the repository lock held, none of them is ours."""
    mine = {p.pid for p in psutil.Process().parents()}
    procs = [p for p in processes_with_env(AGENT_ROOT_ENV, str(root)) if p.pid not in mine]
    return signal_all(procs)


def _exclude_loop_files(repo: Repo) -> bool:
    """A session set up by another tool may not ignore the loop's files (a `git add -A` would
    commit them): they go into .git/info/exclude, which is not tracked, so no commit is made."""
    missing = [name for name in IGNORED if not repo.ignored(name.rstrip("/"))]
    if not missing:
        return False
    exclude = repo.common_dir / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    prefix = "" if not text or text.endswith("\n") else "\n"
    with open(exclude, "a", encoding="utf-8") as f:
        f.write(prefix + "# autoresearch: the loop's own files\n" + "\n".join(missing) + "\n")
    return True


def _ignore_loop_files(root: Path) -> None:
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    present = {line.strip() for line in text.splitlines()}
    missing = [name for name in IGNORED if name not in present and name.rstrip("/") not in present]
    if missing:
        prefix = "" if not text or text.endswith("\n") else "\n"
        path.write_text(text + prefix + "\n".join(missing) + "\n", encoding="utf-8")


def _archive_old_results(ledger: Ledger, tag: str) -> Path | None:
    """A results.tsv from an earlier session is moved aside, never overwritten."""
    if ledger.results.exists() and ledger.results.stat().st_size > len(results_tsv.HEADER):
        ledger.state_dir.mkdir(exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = ledger.state_dir / f"results-before-{tag}-{stamp}.tsv"
        shutil.move(ledger.results, target)
        return target
    return None


def _foreign_results(ledger: Ledger, tag: str) -> bool:
    """results.tsv's first row is not this session's baseline (it is another session's)."""
    if not ledger.results.exists():
        return False
    first = results_tsv.first_row(ledger.results, ledger.metric_name)
    ours = ledger.experiments(tag)
    if first is None:
        return False
    if ours:
        return not ours[0].commit.startswith(first.commit)
    return any(
        exps and exps[0].commit.startswith(first.commit)
        for other, exps in ledger.sessions.items()
        if other != tag
    )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _undo_setup(
    repo: Repo,
    origin: str,
    branch: str,
    before: dict[str, bytes | None],
    archived: Path | None,
    ledger: Ledger,
) -> str:
    """A setup that could not commit leaves the repository as it found it; returns what
    could not be undone ("" when all was)."""
    try:
        repo.unstage()
        for rel, data in before.items():
            path = repo.root / rel
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        if origin:
            repo.checkout(origin)
            repo.delete_branch(branch)
        if archived is not None and not ledger.results.exists():
            shutil.move(archived, ledger.results)
    except Exception as exc:  # said with the original error; the traceback goes to the log
        log.exception("undoing the failed session setup in %s failed", repo.root)
        return _git_message(exc)
    return ""


def _git_message(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).split())[-500:]
