"""Infer a proposed config from a repository: command, metric, scope, off-limits files.

Everything inferred is said in `notes`; what cannot be inferred is listed in `ask`. The metric's
direction is never guessed: it is always asked.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from . import config as cfg
from .measure import default_pattern
from .protocol import DetectResult
from .repo import BRANCH_PREFIX, Repo, RepoError

TRAIN_SCRIPTS = ("train.py", "train_gpt.py", "main.py", "run.py", "experiment.py", "bench.py")
HARNESS = ("prepare.py", "evaluate.py", "eval.py", "evaluation.py", "harness.py", "data.py")
PRINTED = re.compile(r"""print\(\s*f?["']\s*([A-Za-z_][\w/.-]*)\s*[:=]""")
METRIC_HINTS = ("val_bpb", "val_loss", "bpb", "loss", "acc", "score", "error", "ppl", "time")
CODE_SUFFIXES = {
    ".py",
    ".sh",
    ".toml",
    ".yaml",
    ".yml",
    ".json",
    ".cfg",
    ".c",
    ".cu",
    ".cpp",
    ".h",
    ".rs",
    ".go",
    ".js",
    ".ts",
    ".jl",
    ".r",
    ".md",
    ".txt",
    ".ini",
}
# A folder that is not a repository is walked for candidates up to this many files.
MAX_WALKED = 5000
# What is read of one file to infer from it (a script, a Makefile, results.tsv).
MAX_READ = 4 * 1024 * 1024


def detect(root: Path) -> DetectResult:
    """The proposed config; what could not be read (permissions, odd files) is skipped and
    said in one note, never an error."""
    skipped: list[str] = []
    result = _detect(root, skipped)
    skipped = list(dict.fromkeys(skipped))  # a script is read twice: said once
    if skipped:
        shown = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        result.notes.append(f"could not read {shown}: skipped")
    return result


def _detect(root: Path, skipped: list[str]) -> DetectResult:
    notes: list[str] = []
    ask: list[str] = ["metric.direction"]
    tracked = _tracked(root, skipped)
    existing = root / cfg.CONFIG_FILE
    if _is_file(existing, skipped):
        try:
            config = cfg.load(root)
            notes.append(f"loaded the existing {cfg.CONFIG_FILE}")
            return DetectResult(
                config=config,
                notes=notes,
                ask=[],
                candidates=_candidates(tracked),
                resumable=_resumable(root, skipped),
            )
        except cfg.ConfigError as exc:
            notes.append(f"ignored the existing {cfg.CONFIG_FILE}: {exc}")
        except OSError as exc:
            _skip(skipped, existing, exc)
    command, script = _command(root, tracked, notes, skipped)
    if not command:
        ask.append("run.command")
    name = _metric_name(root, script, notes, skipped)
    if not name:
        ask.append("metric.name")
    scope = [script] if script else []
    if scope:
        notes.append(f"scope: {script} (the script the command runs)")
    else:
        ask.append("scope.files")
    off = [h for h in HARNESS if h in tracked and h not in scope]
    if off:
        notes.append(f"off limits: {', '.join(off)} (evaluation/data harness)")
    memory = _memory_pattern(root, script, skipped)
    if memory:
        notes.append(f"memory: reported by the script ({memory[1]})")
    config = cfg.Config(
        metric=cfg.Metric(
            name=name or "metric",
            direction="lower",
            pattern=default_pattern(name or "metric"),
        ),
        run=cfg.Run(
            command=command or "",
            memory_pattern=memory[0] if memory else None,
            memory_unit=memory[1] if memory else "GB",  # type: ignore[arg-type]
        ),
        scope=cfg.Scope(files=scope, off_limits=off),
    )
    return DetectResult(
        config=config,
        notes=notes,
        ask=ask,
        candidates=_candidates(tracked),
        resumable=_resumable(root, skipped),
    )


def _tracked(root: Path, skipped: list[str]) -> list[str]:
    try:
        repo = Repo(root)
        try:
            return repo.ls_files()
        finally:
            repo.close()
    except RepoError:
        return _walk(root, skipped)


def _walk(root: Path, skipped: list[str]) -> list[str]:
    """Files of a folder that is not a repository, sorted, at most MAX_WALKED: a root such as
    / must neither take minutes nor fail on the first folder it may not read."""
    found: list[str] = []
    for top, dirs, files in os.walk(root, onerror=lambda exc: _skip(skipped, exc.filename, exc)):
        dirs.sort()
        for name in sorted(files):
            found.append(os.path.relpath(os.path.join(top, name), root))
            if len(found) >= MAX_WALKED:
                return found
    return found


def _skip(skipped: list[str], path: object, exc: OSError) -> None:
    skipped.append(f"{path} ({exc.strerror or type(exc).__name__})")


def _is_file(path: Path, skipped: list[str]) -> bool:
    try:
        return path.is_file()
    except OSError as exc:
        _skip(skipped, path, exc)
        return False


def _read(path: Path, skipped: list[str]) -> str | None:
    """A regular file's text; None (and a note) when it cannot be read."""
    if not _is_file(path, skipped):
        return None
    try:
        with path.open("rb") as f:
            return f.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError as exc:
        _skip(skipped, path, exc)
        return None


def _command(
    root: Path, tracked: list[str], notes: list[str], skipped: list[str]
) -> tuple[str, str]:
    for name in TRAIN_SCRIPTS:
        if name in tracked or _is_file(root / name, skipped):
            runner = "uv run" if _is_file(root / "uv.lock", skipped) else "python3"
            notes.append(f"command: {runner} {name} (found {name})")
            return f"{runner} {name}", name
    makefile = _read(root / "Makefile", skipped)
    if makefile is not None:
        targets = re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M)
        for target in ("train", "bench", "benchmark", "eval", "experiment", "run"):
            if target in targets:
                notes.append(f"command: make {target} (a Makefile target)")
                return f"make {target}", ""
    package = _read(root / "package.json", skipped)
    if package is not None:
        try:
            scripts = json.loads(package).get("scripts", {})
        except (ValueError, AttributeError):
            scripts = {}
        for target in ("bench", "benchmark", "train", "experiment"):
            if target in scripts:
                notes.append(f"command: npm run {target} (a package.json script)")
                return f"npm run {target}", ""
    for rel in tracked:
        if rel.endswith(".sh") and any(w in rel for w in ("train", "bench", "run", "exp")):
            notes.append(f"command: bash {rel} (a script)")
            return f"bash {rel}", ""
    return "", ""


def _metric_name(root: Path, script: str, notes: list[str], skipped: list[str]) -> str:
    results = _read(root / "results.tsv", skipped)
    if results is not None:
        header = results.split("\n", 1)[0].split("\t")
        if len(header) > 1 and header[0] == "commit" and header[1] != "metric":
            notes.append(f"metric: {header[1]} (the results.tsv header)")
            return header[1]
    md = _read(root / "autoresearch.md", skipped)
    if md is not None:
        found = re.search(r"Primary:\s*`?([\w/.-]+)`?", md)
        if found:
            notes.append(f"metric: {found.group(1)} (autoresearch.md)")
            return found.group(1)
    text = _read(root / script, skipped) if script else None
    if text is not None:
        names = PRINTED.findall(text)
        for hint in METRIC_HINTS:
            for name in names:
                if hint in name.lower():
                    notes.append(f"metric: {name} (printed by {script})")
                    return name
    return ""


def _memory_pattern(root: Path, script: str, skipped: list[str]) -> tuple[str, str] | None:
    text = _read(root / script, skipped) if script else None
    if text is None:
        return None
    for name in re.findall(r"""["']\s*(peak_\w*mem\w*|peak_vram_mb|memory_gb)\s*:""", text):
        unit = "MB" if name.endswith("mb") else "GB"
        return rf"^{name}:\s*([0-9.]+)", unit
    return None


def _candidates(tracked: list[str]) -> list[str]:
    return [p for p in tracked if Path(p).suffix.lower() in CODE_SUFFIXES][:2000]


def _resumable(root: Path, skipped: list[str]) -> bool:
    try:
        repo = Repo(root)
    except RepoError:
        return False
    try:
        branch = repo.branch() or ""
    finally:
        repo.close()
    return branch.startswith(BRANCH_PREFIX) and _is_file(root / "results.tsv", skipped)
