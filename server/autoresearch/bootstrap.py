"""Session setup as in the seed, or resume: branch, .gitignore, results.tsv header, recovery.

The baseline run itself belongs to the loop; this module leaves the repository on the
session's branch with records and git consistent, whatever a killed daemon left behind.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import msgspec
import psutil

from . import notes, preflight, results_tsv
from .config import CONFIG_FILE, Config
from .experiment import Experiment
from .journal import Entry, Journal
from .ledger import Ledger
from .repo import BRANCH_PREFIX, Repo
from .runner import kill_marked, processes_with_env, signal_all

# The environment variable agents/command.py gives every agent process: the repository's path.
AGENT_ROOT_ENV = "AUTORESEARCH_ROOT"

IGNORED_FILES = ("results.tsv", "run.log")
IGNORED = (*IGNORED_FILES, ".autoresearch/")
STATE_DIR_NAME = ".autoresearch"


class Session(msgspec.Struct):
    tag: str
    branch: str
    resumed: bool
    history: list[Experiment]
    # What recovery did, for the progress output.
    recovered: list[str] = msgspec.field(default_factory=list)


def default_tag(today: dt.date | None = None) -> str:
    day = today or dt.date.today()
    return day.strftime("%b%d").lower()


def start(repo: Repo, config: Config, ledger: Ledger, journal: Journal, tag: str | None) -> Session:
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
    branch = BRANCH_PREFIX + tag
    if repo.branch_exists(branch):
        raise preflight.PreflightError(
            f"Branch {branch} already exists. Check it out to resume that session"
            f" (git switch {branch}), or start a new one with another tag (--tag {tag}b)."
        )
    origin = repo.branch() or ""
    before = {rel: _read(repo.root / rel) for rel in (".gitignore", notes.NOTES_FILE)}
    repo.create_branch(branch)
    _ignore_loop_files(repo.root)
    archived = _archive_old_results(ledger, tag)
    (repo.root / notes.NOTES_FILE).write_text(notes.render(config, tag, []), encoding="utf-8")
    paths = [".gitignore", notes.NOTES_FILE]
    if (repo.root / CONFIG_FILE).exists():
        paths.append(CONFIG_FILE)
    try:
        # A tracked results.tsv or run.log would be rewound by every revert: untrack them.
        repo.git.rm("-q", "--cached", "--ignore-unmatch", "--", *IGNORED_FILES)
        repo.git.add("-A", "--", *paths)
        repo.git.commit("-q", "-m", f"autoresearch: set up session {tag}")
    except Exception as exc:
        _undo_setup(repo, origin, branch, before, archived, ledger)
        raise preflight.PreflightError(
            f"git commit of the session setup failed: {_git_message(exc)}."
            " Nothing was changed. Fix the repository's commit hooks or configuration, then"
            " start again."
        ) from None
    ledger.start_session()
    journal.write(Entry(tag=tag, branch=branch))
    return Session(tag=tag, branch=branch, resumed=False, history=[])


def resume(repo: Repo, config: Config, ledger: Ledger, journal: Journal, tag: str) -> Session:
    branch = BRANCH_PREFIX + tag
    recovered = recover(repo, ledger, journal, tag)
    preflight.check_repo(repo)
    preflight.check_config(repo.root, config, repo.ls_files())
    if _foreign_results(ledger, tag):
        # results.tsv is untracked: after switching back to this branch it can be another
        # session's table. Set it aside; reconcile rebuilds this session's from the jsonl.
        _archive_old_results(ledger, tag)
        recovered.append(f"results.tsv belonged to another session: moved to {STATE_DIR_NAME}/")
    if any(c.path == CONFIG_FILE for c in repo.status()):
        # A config edited since (or saved by the wizard) is committed, or the next revert
        # would silently put the old one back.
        repo.git.add("--", CONFIG_FILE)
        repo.git.commit("-q", "-m", "autoresearch: config changed", "--", CONFIG_FILE)
        recovered.append(f"committed the changed {CONFIG_FILE}")
    history = ledger.reconcile(tag)
    keeps = [e for e in history if e.status == "keep"]
    if keeps and repo.resolve(keeps[-1].commit) is None:
        recovered.append(f"the last keep {keeps[-1].commit[:7]} is not in this repository")
    journal.write(Entry(tag=tag, branch=branch))
    return Session(tag=tag, branch=branch, resumed=True, history=history, recovered=recovered)


def recover(repo: Repo, ledger: Ledger, journal: Journal, tag: str) -> list[str]:
    """Complete or undo the step a killed daemon was in (see journal.Step)."""
    entry = journal.read()
    if entry is None or entry.tag != tag or entry.step == "idle":
        return []
    done: list[str] = []
    if entry.marker and kill_marked(entry.marker):
        done.append(f"killed the processes left running by experiment #{entry.number}")
    if entry.step == "editing" and _kill_agent_leftovers(repo.root):
        done.append(f"killed the edit step's processes left by experiment #{entry.number}")
    repo.abort_in_progress()
    if entry.step == "editing" and entry.keep_edit:
        done.append(f"your unfinished edit of experiment #{entry.number} is left in the tree")
    elif entry.step == "editing":
        repo.reset_hard(entry.parent)
        done.append(f"discarded the unfinished edit of experiment #{entry.number}")
    elif entry.step == "committed" and entry.number > 0:
        exp = entry.record or Experiment(number=entry.number, commit=entry.commit, status="crash")
        subject = repo.subject(entry.commit) if not exp.description else ""
        exp = msgspec.structs.replace(
            exp,
            description=exp.description or re.sub(r"^autoresearch #\d+: ", "", subject),
            parent=exp.parent or entry.parent,
            status="crash",
            metric=None,
            crash_kind="interrupted",
            reason="the daemon stopped during this experiment",
            tag=tag,
        )
        ledger.reconcile(tag)
        ledger.record(exp)
        repo.reset_hard(entry.parent)
        done.append(f"recorded the interrupted experiment #{entry.number} as a crash")
    elif entry.step == "committed":
        done.append("the baseline was interrupted: it runs again")
    elif entry.step == "decided" and entry.record is not None:
        ledger.reconcile(tag, pending=entry.record)
        ledger.record(entry.record)
        if entry.record.status != "keep":
            repo.reset_hard(entry.parent)
        done.append(f"finished recording experiment #{entry.number}")
    journal.write(Entry(tag=tag, branch=entry.branch))
    return done


def _kill_agent_leftovers(root: Path) -> int:
    """An agent CLI outlives a killed daemon (its own process group) and would go on editing
    the tree recovery just reset. Every agent process has AUTORESEARCH_ROOT=<root> in its
    environment (agents/command.py); with the repository lock held, none of them is ours."""
    mine = {p.pid for p in psutil.Process().parents()}
    procs = [p for p in processes_with_env(AGENT_ROOT_ENV, str(root)) if p.pid not in mine]
    return signal_all(procs)


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
    rows = results_tsv.read(ledger.results, ledger.metric_name, strict=False)
    ours = ledger.experiments(tag)
    if not rows:
        return False
    if ours:
        return not ours[0].commit.startswith(rows[0].commit)
    return any(
        exps and exps[0].commit.startswith(rows[0].commit)
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
) -> None:
    """A setup that could not commit leaves the repository as it found it."""
    try:
        repo.git.reset("-q")
        for rel, data in before.items():
            path = repo.root / rel
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        if origin:
            repo.git.checkout("-q", origin)
            repo.git.branch("-q", "-D", branch)
        if archived is not None and not ledger.results.exists():
            shutil.move(archived, ledger.results)
    except Exception:  # the original error matters more; leave what could not be undone
        pass


def _git_message(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).split())[-500:]
