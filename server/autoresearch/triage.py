"""Crash triage: why a run failed, decided from its exit status and the end of its log.

Three answers matter to the loop: a trivial code error goes back to the agent with the log
tail (a typo should not waste an idea), an environment failure stops the loop (retrying cannot
install a package), anything else is a `crash`. Pure functions, plus a bounded log reader.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Collection
from pathlib import Path

import msgspec

from . import runlogs
from .experiment import CrashKind

TAIL_BYTES = 8_192


class Triage(msgspec.Struct, frozen=True):
    kind: CrashKind
    # A small code error the agent can fix: send the log tail back (at most 2 retries).
    trivial: bool = False
    # The machine, not the code, is at fault: stop the loop and tell the user `reason`.
    environment: bool = False
    # One line for results and the progress output; for environment failures, with the fix.
    reason: str = ""


_OOM = re.compile(
    r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|out of memory|std::bad_alloc"
    r"|Cannot allocate memory|RESOURCE_EXHAUSTED|CUBLAS_STATUS_ALLOC_FAILED",
    re.IGNORECASE,
)
_KILLED = re.compile(r"^\s*Killed\s*$|\bKilled\b.*\b(?:signal 9|SIGKILL)\b", re.MULTILINE)
# `bash: foo: command not found`, `sh: 1: foo: not found`, `zsh: command not found: foo`;
# only a shell's own wording, so an ordinary log line saying "x: not found" is not taken for it.
_NOT_FOUND = re.compile(
    r"^(?:\S*/)?(?:ba|z|da|k)?sh:\s*(?:line \d+:\s*|\d+:\s*)?(?:command not found: (\S+)"
    r"|([^\s:]+): (?:command )?not found)\s*$",
    re.MULTILINE,
)
_PERMISSION = re.compile(r"([^\s:'\"]+)?:?\s*Permission denied", re.IGNORECASE)
_CANT_OPEN = re.compile(r"can't open file '([^']+)': \[Errno 2\] No such file or directory")
_NO_SUCH_FILE = re.compile(
    r"(?:FileNotFoundError|IOError|OSError)?:?\s*\[Errno 2\] No such file or directory: "
    r"'([^']+)'|([^\s:'\"]+): No such file or directory"
)
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")
# The last `SomeError: message` line of a Python traceback (or a JS error).
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Interrupt))(?::\s?(.*))?$", re.M)
# A compiler's `file:line:col: error: ...` (gcc, clang, nvcc, tsc) or rustc's `error[E0425]: ...`.
_COMPILE_ERROR = re.compile(r"^\S+:\d+(?::\d+)?: (?:fatal )?error: .+$|^error\[E\d+\]: .+$", re.M)
_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+', re.MULTILINE)
# Python errors that mean "the code as written is wrong in an obvious way".
_TRIVIAL = {
    "SyntaxError",
    "IndentationError",
    "TabError",
    "NameError",
    "UnboundLocalError",
    "ImportError",
    "TypeError",
    "AttributeError",
}
_LIBRARY_PATH = re.compile(r"site-packages|dist-packages|/lib/python\d|<frozen |^<")


def classify_failure(
    exit_code: int | None,
    timed_out: bool,
    log_tail: str,
    metric_found: bool,
    *,
    local_modules: Collection[str] = (),
    diff: str = "",
) -> Triage | None:
    """Why a run failed; None when it did not (exit 0 with a metric).

    `exit_code` is the command's status (negative: killed by that signal; 128+N as shells
    report it is understood too). `local_modules`: top-level module names that belong to the
    repository (see `local_modules()`), so a missing one is a code error, not a missing
    package. `diff`: the
    experiment's diff; a missing command, file or package that the diff itself introduced is
    the agent's mistake, not the environment's.
    """
    if timed_out:
        return Triage("timeout", reason="timed out")
    if exit_code == 0 and metric_found:
        return None
    tail = log_tail[-TAIL_BYTES:]
    oom = _oom(exit_code, tail)
    if oom:
        return Triage("oom", reason=oom)
    added = _added_lines(diff)
    env = _environment(exit_code, tail, local_modules, added)
    if env:
        return Triage("environment", environment=True, reason=env)
    code = _code_error(tail, local_modules, added)
    if exit_code == 0:
        reason = f"no metric in the output ({code})" if code else "no metric in the output"
        return Triage("missing_metric", trivial=bool(code), reason=reason)
    if code:
        return Triage("exit", trivial=True, reason=code)
    return Triage("exit", reason=_exit_reason(exit_code, tail))


def read_tail(path: Path | str, max_bytes: int) -> tuple[bytes, int, int]:
    """The last `max_bytes` of a file, its size and where the bytes start; read from the end,
    so a log of gigabytes costs no more than a small one. A missing file is empty; a pruned
    log (`.log.gz`) is read by its tail too (runlogs)."""
    if str(path).endswith(".gz"):
        return runlogs.read_gz_tail(path, max_bytes)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            f.seek(start)
            return f.read(max_bytes), size, start
    except FileNotFoundError:
        return b"", 0, 0


def log_tail(path: Path | str, max_bytes: int = TAIL_BYTES) -> str:
    """The last `max_bytes` of a file as text, from its first whole line."""
    data, _, start = read_tail(path, max_bytes)
    if start > 0:
        # Drop the partial first line, unless that would leave nothing.
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            data = data[cut + 1 :]
    return data.decode("utf-8", errors="replace")


def local_modules(root: Path) -> set[str]:
    """Top-level Python module names that live in the repository (root and src/)."""
    names: set[str] = set()
    for base in (root, root / "src"):
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.name.endswith(".py"):
                names.add(entry.name[:-3])
            elif entry.is_dir() and not entry.name.startswith("__"):
                names.add(entry.name)
    return names


def _oom(exit_code: int | None, tail: str) -> str:
    match = _OOM.search(tail)
    if match:
        return f"out of memory ({_line_at(tail, match.start())})"
    killed = exit_code in (137, -signal.SIGKILL)
    if killed and _KILLED.search(tail):
        return "out of memory (killed by the system)"
    return ""


def _environment(exit_code: int | None, tail: str, local: Collection[str], added: str) -> str:
    missing = _NOT_FOUND.search(tail)
    if missing or exit_code == 127:
        name = (missing.group(1) or missing.group(2)) if missing else "the command"
        if missing and _introduced(name, added):
            return ""
        return (
            f"command not found: {name}. Install it (or activate the environment that has it)"
            " or fix run.command in autoresearch.toml."
        )
    denied = _PERMISSION.search(tail)
    if exit_code == 126 or (denied and exit_code != 0):
        what = denied.group(1) if denied and denied.group(1) else "the command"
        return (
            f"permission denied: {what}. Make it executable (chmod +x) or run it through"
            " its interpreter."
        )
    script = _CANT_OPEN.search(tail)
    if script:
        return f"no such file: {script.group(1)}. Fix run.command in autoresearch.toml."
    module = _NO_MODULE.search(tail)
    if module:
        name = module.group(1)
        top = name.split(".")[0]
        if top in local or _introduced(top, added):
            return ""
        return (
            f"Python package not installed: {top} (No module named '{name}'). Install it in the"
            " environment that runs the command (e.g. pip install ...), then start the loop again."
        )
    missing_file = _NO_SUCH_FILE.search(tail)
    if missing_file:
        path = missing_file.group(1) or missing_file.group(2)
        if _introduced(Path(path).name, added):
            return ""
        return (
            f"no such file or directory: {path}. Check that the data the command needs is there"
            " (a prepare step?), then start the loop again."
        )
    return ""


def _code_error(tail: str, local: Collection[str], added: str) -> str:
    """'Error: message' for an obvious code error, else ''."""
    matches = list(_EXCEPTION.finditer(tail))
    if matches:
        last = matches[-1]
        name, message = last.group(1), (last.group(2) or "").strip()
        summary = f"{name}: {message}" if message else name
        if name in ("SyntaxError", "IndentationError", "TabError"):
            return summary[:300]
        if name == "ModuleNotFoundError":
            module = _NO_MODULE.search(last.group(0))
            top = module.group(1).split(".")[0] if module else ""
            return summary[:300] if top in local or _introduced(top, added) else ""
        if name in _TRIVIAL and _in_user_code(tail[: last.start()]):
            return summary[:300]
        return ""
    compile_error = _COMPILE_ERROR.search(tail)
    if compile_error:
        return compile_error.group(0).strip()[:300]
    return ""


def _in_user_code(traceback: str) -> bool:
    """Some frame of the traceback is outside installed libraries (or there are no frames)."""
    frames = _FRAME.findall(traceback)
    return not frames or any(not _LIBRARY_PATH.search(f) for f in frames)


def _exit_reason(exit_code: int | None, tail: str) -> str:
    if exit_code is None:
        return "no exit status"
    signum = -exit_code if exit_code < 0 else exit_code - 128 if exit_code > 128 else 0
    if signum:
        try:
            return f"killed by {signal.Signals(signum).name} (exit {exit_code})"
        except ValueError:
            pass
    last = _last_exception(tail)
    return f"exit {exit_code}: {last}" if last else f"exit {exit_code}"


def _last_exception(tail: str) -> str:
    matches = list(_EXCEPTION.finditer(tail))
    return matches[-1].group(0).strip()[:300] if matches else ""


def _added_lines(diff: str) -> str:
    return "\n".join(
        line[1:]
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    )


def _introduced(name: str, added: str) -> bool:
    return bool(name) and bool(added) and re.search(rf"\b{re.escape(name)}\b", added) is not None


def _line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start : end if end >= 0 else len(text)].strip()[:200]
