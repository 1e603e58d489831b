"""Infer a proposed config from a repository: command, metric, scope, off-limits files.

Everything inferred is said in `notes`; what cannot be inferred is listed in `ask`. The metric's
direction is never guessed: it is always asked.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

from . import config as cfg
from .measure import default_pattern
from .protocol import DetectResult, MetricCandidate
from .repo import BRANCH_PREFIX, Repo, RepoError

TRAIN_SCRIPTS = ("train.py", "train_gpt.py", "main.py", "run.py", "experiment.py", "bench.py")
HARNESS = ("prepare.py", "evaluate.py", "eval.py", "evaluation.py", "harness.py", "data.py")
PRINTED = re.compile(r"""print\(\s*f?["']\s*([A-Za-z_][\w/.-]*)\s*[:=]""")
METRIC_HINTS = ("val_bpb", "val_loss", "bpb", "loss", "acc", "score", "error", "ppl", "time")
# A `name: number` line of a run's output.
LOGGED = re.compile(r"^\s*([A-Za-z_][\w/.-]*)\s*[:=]\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$", re.M)
HELD_OUT = re.compile(r"(^|[_/.-])(test|val|valid|validation|eval|dev|heldout)([_/.-]|$)", re.I)
QUALITY = re.compile(r"loss|bpb|acc|ppl|perplexity|score|error|f1|auc|bleu|rmse|mae", re.I)
COUNTER = re.compile(r"(^|_)(step|steps|epoch|iter|seconds|secs|time|lr|tokens)(_|$)", re.I)
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


def detect(root: Path, existing: bool = True) -> DetectResult:
    """The proposed config; what could not be read (permissions, odd files) is skipped and
    said in one note, never an error. `existing=False` infers afresh even where a config is
    (`init --force`)."""
    skipped: list[str] = []
    result = _detect(root, skipped, existing)
    skipped = list(dict.fromkeys(skipped))  # a script is read twice: said once
    if skipped:
        shown = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        result.notes.append(f"could not read {shown}: skipped")
    return result


def _detect(root: Path, skipped: list[str], use_existing: bool) -> DetectResult:
    notes: list[str] = []
    ask: list[str] = ["metric.direction"]
    tracked = _tracked(root, skipped)
    existing = root / cfg.CONFIG_FILE
    if use_existing and _is_file(existing, skipped):
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
    metrics = metric_candidates(root, script, skipped)
    name = _metric_name(root, script, notes, skipped, metrics)
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
    runs = [m for m in _local_imports(root, script, tracked, skipped) if m not in scope + off]
    if runs:
        off += runs
        notes.append(f"off limits: {', '.join(runs)} (run by {script}, not in scope)")
    freeze = _constants_note(root, scope, notes)
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
        agent=cfg.Agent(freeze=freeze),
    )
    return DetectResult(
        config=config,
        notes=notes,
        ask=ask,
        candidates=_candidates(tracked),
        resumable=_resumable(root, skipped),
        metrics=metrics,
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
            runner, why = _python(root, skipped)
            notes.append(f"command: {runner} {name} (found {name}; {why})")
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


def _metric_name(
    root: Path, script: str, notes: list[str], skipped: list[str], metrics: list[MetricCandidate]
) -> str:
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
    first = metrics[0] if metrics and _rank(metrics[0].name) < 3 else None
    if first is None:  # only counters: a benchmark's time is its metric
        hinted = [m for h in METRIC_HINTS for m in metrics if h in m.name.lower()]
        first = hinted[0] if hinted else None
    if first is None:
        return ""
    others = ", ".join(m.name for m in metrics if m is not first)
    notes.append(
        f"metric: {first.name} (printed by {script}; the likeliest of {len(metrics)}"
        + (f", others: {others})" if others else ")")
    )
    if metrics[0] is not first:  # the likeliest goes first for the question
        metrics.remove(first)
        metrics.insert(0, first)
    return first.name


def metric_candidates(root: Path, script: str, skipped: list[str]) -> list[MetricCandidate]:
    """Every metric-like name the script prints or an existing run.log holds (with its last
    value), the likeliest first: a held-out quality (test, validation) before a training one,
    counters (steps, seconds) last."""
    found: dict[str, MetricCandidate] = {}
    text = _read(root / script, skipped) if script else None
    for name in PRINTED.findall(text or ""):
        found.setdefault(name, MetricCandidate(name=name, source=script))
    log = _read(root / "run.log", skipped)
    for name, value in LOGGED.findall(log or ""):
        try:
            number = float(value)
        except ValueError:
            continue
        found[name] = MetricCandidate(name=name, value=number, source="run.log")
    order = list(found)
    return sorted(found.values(), key=lambda m: (_rank(m.name), order.index(m.name)))


def _rank(name: str) -> int:
    quality = QUALITY.search(name) is not None
    if quality and HELD_OUT.search(name) and not COUNTER.search(name):
        return 0
    if quality and "train" not in name.lower():
        return 1
    if quality:
        return 2
    if any(hint in name.lower() for hint in METRIC_HINTS) and not COUNTER.search(name):
        return 2
    return 3


def _python(root: Path, skipped: list[str]) -> tuple[str, str]:
    """The interpreter that has the project's packages: uv's, the active virtual environment's,
    or the repository's own .venv; python3 only when there is none."""
    if _is_file(root / "uv.lock", skipped):
        return "uv run", "uv.lock"
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        env = os.environ.get(var)
        if env and _is_file(Path(env) / "bin" / "python", skipped):
            path = Path(env) / "bin" / "python"
            try:
                shown = str(path.relative_to(root))
            except ValueError:
                shown = str(path)
            return shown, f"the active environment's Python, ${var}"
    for name in (".venv", "venv"):
        if _is_file(root / name / "bin" / "python", skipped):
            return f"{name}/bin/python", f"the repository's {name}"
    return "python3", "no virtual environment is active: activate one and run init again"


def _local_imports(root: Path, script: str, tracked: list[str], skipped: list[str]) -> list[str]:
    """The repository's own modules the script imports (the trainer a wrapper calls): the run
    depends on them, so they are proposed off limits."""
    text = _read(root / script, skipped) if script else None
    if not text:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    base = str(Path(script).parent)
    found: list[str] = []
    for name in names:
        rel = name.replace(".", "/")
        for path in (f"{rel}.py", f"{rel}/__init__.py"):
            path = os.path.normpath(os.path.join(base, path))
            if path in tracked and path not in found:
                found.append(path)
    return found


def _constants_note(root: Path, scope: list[str], notes: list[str]) -> list[str] | None:
    """Say which constants the sweep would tune; the budget-like ones are frozen, and said."""
    if not scope:
        return None
    from .agents.space import budget_like
    from .agents.sweep import find_constants

    found = find_constants(root, scope)
    if not found:
        return None
    shown = ", ".join(f"{k}={_show(c.value)}" for k, c in found.items())
    notes.append(f"constants: {shown} (what the sweep agent may tune)")
    frozen = [k for k, c in found.items() if c.numeric and budget_like(k)]
    if frozen:
        notes.append(
            f"frozen: {', '.join(frozen)} (budget-like: a sweep must not win by training"
            " longer; edit agent.freeze to tune them)"
        )
    return frozen


def _show(value: float | str) -> str:
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}"


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
