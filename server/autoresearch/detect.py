"""Infer a proposed config from a repository: command, metric, scope, off-limits files.

Everything inferred is said in `notes`; what cannot be inferred is listed in `ask`. The metric's
direction is never guessed: it is always asked.
"""

from __future__ import annotations

import json
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


def detect(root: Path) -> DetectResult:
    notes: list[str] = []
    ask: list[str] = ["metric.direction"]
    tracked = _tracked(root)
    existing = root / cfg.CONFIG_FILE
    if existing.is_file():
        try:
            config = cfg.load(root)
            notes.append(f"loaded the existing {cfg.CONFIG_FILE}")
            return DetectResult(
                config=config,
                notes=notes,
                ask=[],
                candidates=_candidates(tracked),
                resumable=_resumable(root),
            )
        except cfg.ConfigError as exc:
            notes.append(f"ignored the existing {cfg.CONFIG_FILE}: {exc}")
    command, script = _command(root, tracked, notes)
    if not command:
        ask.append("run.command")
    name = _metric_name(root, script, notes)
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
    memory = _memory_pattern(root, script)
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
        resumable=_resumable(root),
    )


def _tracked(root: Path) -> list[str]:
    try:
        repo = Repo(root)
        try:
            return repo.ls_files()
        finally:
            repo.close()
    except RepoError:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())[:5000]


def _command(root: Path, tracked: list[str], notes: list[str]) -> tuple[str, str]:
    for name in TRAIN_SCRIPTS:
        if name in tracked or (root / name).is_file():
            runner = "uv run" if (root / "uv.lock").exists() else "python3"
            notes.append(f"command: {runner} {name} (found {name})")
            return f"{runner} {name}", name
    makefile = root / "Makefile"
    if makefile.is_file():
        targets = re.findall(r"^([A-Za-z][\w-]*):", makefile.read_text(errors="replace"), re.M)
        for target in ("train", "bench", "benchmark", "eval", "experiment", "run"):
            if target in targets:
                notes.append(f"command: make {target} (a Makefile target)")
                return f"make {target}", ""
    package = root / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(package.read_text()).get("scripts", {})
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


def _metric_name(root: Path, script: str, notes: list[str]) -> str:
    results = root / "results.tsv"
    if results.is_file():
        header = results.read_text(errors="replace").split("\n", 1)[0].split("\t")
        if len(header) > 1 and header[0] == "commit" and header[1] != "metric":
            notes.append(f"metric: {header[1]} (the results.tsv header)")
            return header[1]
    md = root / "autoresearch.md"
    if md.is_file():
        found = re.search(r"Primary:\s*`?([\w/.-]+)`?", md.read_text(errors="replace"))
        if found:
            notes.append(f"metric: {found.group(1)} (autoresearch.md)")
            return found.group(1)
    if script and (root / script).is_file():
        names = PRINTED.findall((root / script).read_text(errors="replace"))
        for hint in METRIC_HINTS:
            for name in names:
                if hint in name.lower():
                    notes.append(f"metric: {name} (printed by {script})")
                    return name
    return ""


def _memory_pattern(root: Path, script: str) -> tuple[str, str] | None:
    if not script or not (root / script).is_file():
        return None
    text = (root / script).read_text(errors="replace")
    for name in re.findall(r"""["']\s*(peak_\w*mem\w*|peak_vram_mb|memory_gb)\s*:""", text):
        unit = "MB" if name.endswith("mb") else "GB"
        return rf"^{name}:\s*([0-9.]+)", unit
    return None


def _candidates(tracked: list[str]) -> list[str]:
    return [p for p in tracked if Path(p).suffix.lower() in CODE_SUFFIXES][:2000]


def _resumable(root: Path) -> bool:
    try:
        repo = Repo(root)
    except RepoError:
        return False
    try:
        branch = repo.branch() or ""
    finally:
        repo.close()
    return branch.startswith(BRANCH_PREFIX) and (root / "results.tsv").is_file()
