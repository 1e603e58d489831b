"""The `command` proposer: one fresh, short call of a coding-agent CLI per iteration.

It writes the prompt, runs the agent in the repository as a contained process tree (procs)
with a timeout, keeps a bounded log of its output (`.autoresearch/agents/<n>.log`, never all
of it in memory), and reads the one-line description the agent leaves. The loop does
everything else.
"""

from __future__ import annotations

import collections
import os
import re
import shlex
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

from .. import procs, repo
from ..config import Config
from ..experiment import Experiment
from ..prompt import DESCRIPTION_FILE, PROMPT_FILE, build_prompt
from ..scope import expand_paths, matches
from ..triage import log_tail
from .base import AgentUnavailable, EditContext, EditOutcome
from .presets import Resolved, Values, render_argv, render_shell, resolve
from .usage import parse_cost

AGENTS_DIR = ".autoresearch/agents"
# Every process the agent starts carries this in its environment: where the tree cannot be
# contained (not Linux), the ones that leave the process group are still found and killed.
MARKER = "AUTORESEARCH_AGENT_ID"
LOG_HEAD_BYTES = 256 * 1024
LOG_TAIL_BYTES = 768 * 1024
KILL_GRACE_S = 2.0
POLL_S = 0.05
_CHUNK = 64 * 1024
_ERROR_TAIL = 2_000
_MAX_DESCRIPTION = 200
Ending = Literal["exited", "timeout", "cancelled", "unavailable"]
# Lines of the agent's own words quoted when it cannot work.
_QUOTED_LINES = 8
# How long a preset's status check may take (it answers in seconds when the program works).
CHECK_TIMEOUT_S = 60.0
_SHELL_WORDS = {"cd", "env", "exec", "export", "set", "source", ".", "time", "nice", "nohup"}


class CommandProposer:
    name = "command"

    def __init__(
        self,
        config: Config,
        root: Path,
        *,
        kill_grace_s: float = KILL_GRACE_S,
        log_head_bytes: int = LOG_HEAD_BYTES,
        log_tail_bytes: int = LOG_TAIL_BYTES,
    ) -> None:
        self.config = config
        self.root = root.resolve()
        # A bad template is a config error: raise (TemplateError) now, not mid-loop.
        self.command: Resolved = resolve(config.agent)
        self.kill_grace_s = kill_grace_s
        self.log_head_bytes = log_head_bytes
        self.log_tail_bytes = log_tail_bytes
        # By the call's root: each worktree of parallel workers has its own git directory.
        self._index_locks: dict[Path, Path] = {}

    def preflight(self) -> None:
        """Raise AgentUnavailable when the agent's binary is not installed, or when its own
        status check says it cannot work (not logged in, no key): before any baseline."""
        program = self._program()
        if program and not _findable(program, self.root):
            raise AgentUnavailable(self._not_found(program))
        check = self.command.preset.check
        if (
            check
            and not self.command.shell
            and not any(os.environ.get(v) for v in self.command.preset.check_unless)
        ):
            self._check(list(check))

    def _check(self, argv: list[str]) -> None:
        """Run the preset's status check with a short timeout; its words on failure."""
        env = {**os.environ, **self.command.preset.env, "BROWSER": "true", "NO_COLOR": "1"}
        env["PWD"] = str(self.root)
        marker = uuid.uuid4().hex
        env[MARKER] = marker
        try:
            tree = procs.spawn(
                argv,
                cwd=self.root,
                env=env,
                stdout=procs.PIPE,
                grace=self.kill_grace_s,
                marker=(MARKER, marker),
            )
        except OSError as exc:
            raise AgentUnavailable(self._not_found(argv[0], exc)) from exc
        watch = Watch(self.command.preset.unavailable)
        reader = threading.Thread(target=_pump, args=(tree, None, watch), daemon=True)
        reader.start()
        state = self._wait(tree, threading.Event(), time.monotonic() + CHECK_TIMEOUT_S, watch)
        code = tree.finish().exit_code
        reader.join(timeout=2.0)
        shown = shlex.join(argv)
        if state == "timeout":
            raise AgentUnavailable(
                f'The agent (preset "{self.command.name}") did not answer its status check'
                f" `{shown}` within {CHECK_TIMEOUT_S:g} s. To fix: run it by hand to see why"
                f" (network, login), then start the loop again.\n{watch.lines(_QUOTED_LINES)}"
            )
        found = not self.command.preset.check_ok or re.search(
            self.command.preset.check_ok, watch.text
        )
        if watch.seen.is_set() or code != 0 or not found:
            if not watch.seen.is_set():
                watch.word = f"exit code {code}" if code else "no login and no key"
            raise AgentUnavailable(
                f'The agent (preset "{self.command.name}") cannot work here: its status check'
                f' `{shown}` said "{watch.word}". To fix: log it in or give it an API key,'
                f" then start the loop again.\n{watch.lines(_QUOTED_LINES)}"
            )

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        """Run the agent once. The template comes from the constructor's config; the
        timeout, scope and prompt from `ctx` (the loop may have reloaded the config)."""
        if cancel.is_set():
            return EditOutcome(error="agent cancelled")
        started = time.monotonic()
        root = ctx.root.resolve()
        prompt_path = root / PROMPT_FILE
        description_path = root / DESCRIPTION_FILE
        prompt_path.parent.mkdir(parents=True, exist_ok=True)
        prompt = build_prompt(ctx)
        prompt_path.write_text(prompt, encoding="utf-8")
        description_path.unlink(missing_ok=True)  # a stale one would describe the last edit
        values = Values(
            prompt_file=str(prompt_path),
            prompt=prompt,
            root=str(root),
            description_file=str(description_path),
            files=tuple(scope_files(root, ctx.config.scope.files, ctx.config.scope.off_limits)),
            number=ctx.number,
        )
        log_path = free_log_path(root / AGENTS_DIR, ctx.number, ctx.attempt)
        exclude_caches(root, self.command.preset.caches)
        argv = self._argv(values)
        display = self._display(values)
        marker = uuid.uuid4().hex
        env = {**os.environ, **ctx.env, **self._env(values), MARKER: marker}
        lock = self._lock_path(root)
        locked = lock is not None and lock.exists()
        with BoundedLog(log_path, self.log_head_bytes, self.log_tail_bytes) as log:
            log.note(f"$ {display}\n")
            try:
                tree = procs.spawn(
                    argv,
                    cwd=root,
                    env=env,
                    stdout=procs.PIPE,
                    grace=self.kill_grace_s,
                    marker=(MARKER, marker),
                )
            except OSError as exc:
                message = self._not_found(argv[0], exc)
                log.note(message + "\n")
                raise AgentUnavailable(message) from exc
            watch = Watch(self.command.preset.unavailable)
            reader = threading.Thread(target=_pump, args=(tree, log, watch), daemon=True)
            reader.start()
            state = self._wait(tree, cancel, started + ctx.config.agent.timeout, watch)
            # Ends the agent (on timeout or cancel) and every process it left behind.
            code = tree.finish().exit_code
            # Something outside our reach may still hold the pipe: then leave the reader be
            # (its later writes are dropped once the log is closed).
            reader.join(timeout=2.0)
        if state == "exited" and code != 0 and watch.seen.is_set():  # said it, then gave up
            state = "unavailable"
        agent_s = time.monotonic() - started
        # Every process of the agent is gone now: a lock that appeared meanwhile is stale.
        stale = lock is not None and not locked and _remove_stale_lock(lock)
        description = read_description(description_path)
        if state == "unavailable":
            raise AgentUnavailable(self._unavailable(watch, log_path, root))
        if state == "timeout":
            error = f"agent timed out after {ctx.config.agent.timeout:g} s (its processes killed)"
        elif state == "cancelled":
            error = "agent cancelled"
        elif code in (126, 127):
            program = self._program() or argv[0]
            raise AgentUnavailable(self._not_found(program, tail=log_tail(log_path, _ERROR_TAIL)))
        elif code != 0:
            error = f"agent exited with code {code}"
        else:
            error = None
        usage = parse_cost(self.command.preset.cost, log_path)
        return EditOutcome(
            description=description,
            agent_s=agent_s,
            error=error,
            log=str(log_path.relative_to(root)),
            output=log_tail(log_path, _ERROR_TAIL) if error else "",
            events=[STALE_LOCK] if stale else [],
            cost_usd=usage.cost_usd,
            tokens=usage.tokens,
        )

    def observe(self, experiment: Experiment) -> None:
        """Nothing to learn: each call is fresh and the prompt carries the history."""

    def _lock_path(self, root: Path) -> Path | None:
        """`.git/index.lock` of the repository (worktrees have their own git dir)."""
        if root not in self._index_locks:
            git_dir = repo.git_dir_of(root)
            if git_dir is None:
                return None
            self._index_locks[root] = git_dir / "index.lock"
        return self._index_locks[root]

    def _wait(
        self, tree: procs.Tree, cancel: threading.Event, deadline: float, watch: Watch
    ) -> Ending:
        while True:
            if tree.wait(POLL_S):
                return "exited"
            if watch.seen.is_set():
                return "unavailable"
            if cancel.is_set():
                return "cancelled"
            if time.monotonic() > deadline:
                return "timeout"

    def _argv(self, values: Values) -> list[str]:
        template = self.command.template
        if isinstance(template, str):
            return [_shell(), "-c", render_shell(template, values)]
        return render_argv(template, values)

    def _display(self, values: Values) -> str:
        # The prompt text would swamp the log header; name the file instead.
        shown = Values(
            prompt_file=values.prompt_file,
            prompt=f"<{PROMPT_FILE}>",
            root=values.root,
            description_file=values.description_file,
            files=values.files,
            number=values.number,
        )
        template = self.command.template
        if isinstance(template, str):
            return render_shell(template, shown)
        return shlex.join(render_argv(template, shown))

    def _env(self, values: Values) -> dict[str, str]:
        return {
            **self.command.preset.env,
            "AUTORESEARCH_PROMPT_FILE": values.prompt_file,
            "AUTORESEARCH_DESCRIPTION_FILE": values.description_file,
            "AUTORESEARCH_ROOT": values.root,
            "AUTORESEARCH_NUMBER": str(values.number),
            # The daemon's own PWD would be inherited: OpenCode takes it as its project folder
            # and refuses the repository's files as "external_directory".
            "PWD": values.root,
            # An agent that runs `git commit` or `git merge` must not hang in an editor.
            "GIT_EDITOR": "true",
            "GIT_MERGE_AUTOEDIT": "no",
            "GIT_TERMINAL_PROMPT": "0",
            "NO_COLOR": "1",
            # Nothing the agent starts may open a browser (a login page): nobody is there.
            "BROWSER": "true",
        }

    def _unavailable(self, watch: Watch, log_path: Path, root: Path) -> str:
        """The agent's own words on why it cannot work, and the fix."""
        words = watch.lines(_QUOTED_LINES)
        return (
            f'The agent (preset "{self.command.name}") cannot work here: it said "{watch.word}".'
            " To fix: log it in or give it an API key (run its command once by hand to check),"
            f" then start the loop again. Its log: {log_path.relative_to(root)}\n{words}"
        )

    def _program(self) -> str | None:
        """The binary the command starts, when it can be told without running it."""
        template = self.command.template
        if not isinstance(template, str):
            return template[0]
        try:
            words = shlex.split(template)
        except ValueError:
            return None
        if not words or "=" in words[0] or words[0] in _SHELL_WORDS or "{" in words[0]:
            return None
        return words[0]

    def _not_found(self, program: str, exc: OSError | None = None, tail: str = "") -> str:
        what = (
            "was not found"
            if exc is None or isinstance(exc, FileNotFoundError)
            else (f"could not be started ({exc.strerror or exc})")
        )
        if tail:
            what = "could not start (exit 126/127)"
        how = (
            f"install it ({self.command.preset.install})"
            if self.command.preset.install
            else "install it"
        )
        message = (
            f'The agent command "{program}" {what} (agent preset "{self.command.name}").'
            f" To fix: {how}, make sure it is on PATH for the daemon, or choose another"
            " agent.preset / agent.command in autoresearch.toml."
        )
        return f"{message}\nLast output:\n{tail}" if tail else message


class BoundedLog:
    """The agent's output on disk: the first `head` bytes, then only the last `tail` bytes.

    The head is written as it arrives (readable live); beyond it, output is kept in a rolling
    in-memory tail of at most `tail` bytes and written when the log closes.
    """

    def __init__(self, path: Path, head: int, tail: int) -> None:
        self.path = path
        self.head = head
        self.tail = tail
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._written = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._held = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        """A line of our own (header, error), outside the output budget."""
        with self._lock:
            self._file.write(text.encode("utf-8", errors="replace"))
            self._file.flush()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:
                return
            room = self.head - self._written
            if room > 0:
                self._file.write(data[:room])
                self._file.flush()
                self._written += min(room, len(data))
                data = data[room:]
            if not data:
                return
            self._chunks.append(data)
            self._held += len(data)
            while self._held - len(self._chunks[0]) >= self.tail:
                self._dropped += len(self._chunks[0])
                self._held -= len(self._chunks.popleft())
            excess = self._held - self.tail
            if excess > 0:  # trim the oldest chunk so the tail holds exactly `tail` bytes
                self._chunks[0] = self._chunks[0][excess:]
                self._held -= excess
                self._dropped += excess

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            if self._dropped:
                self._file.write(f"\n[... {self._dropped} bytes of output omitted ...]\n".encode())
            for chunk in self._chunks:
                self._file.write(chunk)
            self._chunks.clear()
            self._file.close()

    def __enter__(self) -> BoundedLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


STALE_LOCK = "the agent left .git/index.lock behind (a git command killed midway): removed"


def _remove_stale_lock(lock: Path, wait_s: float = 1.0) -> bool:
    """Remove an index.lock nobody releases within `wait_s` (a user's git may hold it briefly)."""
    deadline = time.monotonic() + wait_s
    while lock.exists() and time.monotonic() < deadline:
        time.sleep(POLL_S)
    try:
        lock.unlink()
    except FileNotFoundError:
        return False
    return True


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Watch:
    """Looks through the agent's output, as it arrives, for words meaning it cannot work."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = tuple(w.lower() for w in words)
        self.seen = threading.Event()
        self.word = ""
        self._text = ""  # the first output, kept to quote it

    def feed(self, chunk: bytes) -> None:
        if len(self._text) > 64 * 1024:
            return
        self._text += chunk.decode("utf-8", errors="replace")
        if self.seen.is_set():
            return
        lower = self._text.lower()
        for word in self.words:
            if word in lower:
                self.word = word
                self.seen.set()
                return

    @property
    def text(self) -> str:
        return self._text

    def lines(self, count: int) -> str:
        """The output's first lines that say something, around the word seen."""
        text = _ANSI.sub("", self._text)
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        at = next((i for i, line in enumerate(lines) if self.word in line.lower()), 0)
        start = max(0, at - count // 2)
        return "\n".join(line[:300] for line in lines[start : start + count])


def exclude_caches(root: Path, caches: tuple[str, ...]) -> None:
    """Name the program's caches in .git/info/exclude: untracked files the loop must not
    blame on the agent (they are not its edits), and not the user's to see either."""
    if not caches:
        return
    with _EXCLUDE_LOCK:  # parallel workers' worktrees share one info/exclude
        _exclude_caches(root, caches)


_EXCLUDE_LOCK = threading.Lock()


def _exclude_caches(root: Path, caches: tuple[str, ...]) -> None:
    git_dir = repo.git_dir_of(root)
    if git_dir is None:
        return
    common = git_dir / "commondir"  # a linked worktree: info/exclude lives in the common dir
    if common.is_file():
        git_dir = (git_dir / common.read_text().strip()).resolve()
    exclude = git_dir / "info" / "exclude"
    try:
        text = exclude.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    missing = [c for c in caches if c not in text.splitlines()]
    if missing:
        exclude.parent.mkdir(parents=True, exist_ok=True)
        sep = "" if not text or text.endswith("\n") else "\n"
        lines = "".join(f"{c}\n" for c in missing)
        exclude.write_text(f"{text}{sep}# autoresearch: agent caches\n{lines}", encoding="utf-8")


def free_log_path(folder: Path, number: int, attempt: int) -> Path:
    """Where this call's log goes: `<n>.log` (or `<n>.<k>.log`), then `<n>.call2.log`, ...
    when an earlier call for the same experiment (one that made none) left its log there."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / agent_log_name(number, attempt)
    call = 2
    while path.exists():
        path = folder / f"{path.name.split('.call')[0].removesuffix('.log')}.call{call}.log"
        call += 1
    return path


def agent_log_name(number: int, attempt: int) -> str:
    """`<n>.log` for an experiment's first call; `<n>.<k>.log` for its k-th retry or rework."""
    return f"{number}.log" if not attempt else f"{number}.{attempt}.log"


def read_description(path: Path) -> str | None:
    """The first non-empty line the agent wrote, stripped and capped; None when there is none."""
    try:
        with open(path, "rb") as f:
            data = f.read(4 * _MAX_DESCRIPTION)
    except OSError:
        return None
    for line in data.decode("utf-8", errors="replace").splitlines():
        text = " ".join(line.split())
        if text:
            return text[:_MAX_DESCRIPTION]
    return None


def scope_files(root: Path, patterns: list[str], off_limits: list[str]) -> list[str]:
    """The tracked files the agent may edit (the loop's one expansion of the scope), in the
    order the scope names them: a main file listed first stays first. A plain name that is no
    file yet is passed as written: the agent may create it, and the loop keeps it."""
    files = expand_paths(_tracked(root), patterns, off_limits).files
    named = [
        p for p in patterns if not any(ch in p for ch in "*?[\\") and not matches(p, off_limits)
    ]
    absent = [p for p in named if not any(matches(f, [p]) for f in files)]
    files += [p.removeprefix("./").rstrip("/") for p in absent]
    return sorted(files, key=lambda f: next(i for i, p in enumerate(patterns) if matches(f, [p])))


def _tracked(root: Path) -> list[str]:
    return repo.tracked_files(root)


def _pump(tree: procs.Tree, log: BoundedLog | None, watch: Watch) -> None:
    """Copy the agent's output to the log in chunks: never more than one chunk in hand."""
    assert tree.stdout is not None
    with tree.stdout:
        fd = tree.stdout.fileno()
        while chunk := os.read(fd, _CHUNK):
            if log is not None:
                log.write(chunk)
            watch.feed(chunk)


def _findable(program: str, root: Path) -> bool:
    if "/" in program:
        path = Path(program) if os.path.isabs(program) else root / program
        return path.is_file()
    return shutil.which(program) is not None


def _shell() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
