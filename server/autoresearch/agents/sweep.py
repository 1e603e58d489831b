"""The `sweep` proposer: no LLM, Optuna tunes declared numeric constants in in-scope files.

A constant is a module-level `NAME = number` line with an UPPER_CASE name. Each experiment
changes one constant (Optuna's TPE proposes its value, the others stay at the current best), so
every diff is one readable hypothesis. Results are told back; a resumed sweep replays history.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from pathlib import Path

import msgspec
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from ..config import Config, SweepParam
from ..confine import ConfinementError, write_inside
from ..experiment import Experiment
from ..scope import matches
from .base import AgentUnavailable, EditContext, EditOutcome

CONSTANT = re.compile(
    r"^(?P<name>[A-Z][A-Z0-9_]*)(?P<annot>\s*:\s*\w+)?(?P<eq>\s*=\s*)"
    r"(?P<value>[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))"
    r"(?P<rest>\s*(?:#.*)?)$",
    re.MULTILINE,
)


class SweepError(ValueError):
    """Nothing to tune, or a declared parameter is unusable; the message names the fix."""


class Constant(msgspec.Struct):
    name: str
    path: str
    value: float
    integer: bool


def find_constants(root: Path, files: list[str]) -> dict[str, Constant]:
    found: dict[str, Constant] = {}
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in CONSTANT.finditer(text):
            raw = m.group("value").replace("_", "")
            integer = re.fullmatch(r"[-+]?\d+", raw) is not None
            found.setdefault(m.group("name"), Constant(m.group("name"), rel, float(raw), integer))
    return found


def distribution(const: Constant, declared: SweepParam | None) -> BaseDistribution:
    v = const.value
    low = declared.low if declared and declared.low is not None else None
    high = declared.high if declared and declared.high is not None else None
    if const.integer:
        lo = int(low) if low is not None else (max(1, int(v) // 4) if v > 0 else int(v) - 10)
        hi = int(high) if high is not None else (max(int(v) * 4, lo + 1) if v > 0 else int(v) + 10)
        log = declared.log if declared and declared.log is not None else lo > 0
        return IntDistribution(lo, max(hi, lo + 1), log=bool(log))
    if v > 0:
        lo_f, hi_f = low if low is not None else v / 10, high if high is not None else v * 10
    else:
        lo_f, hi_f = low if low is not None else v - 1, high if high is not None else v + 1
    log = declared.log if declared and declared.log is not None else lo_f > 0
    if lo_f >= hi_f:
        raise SweepError(f"agent.params {const.name}: low must be below high.")
    return FloatDistribution(lo_f, hi_f, log=bool(log))


def render(value: float, integer: bool) -> str:
    if integer:
        return str(round(value))
    text = f"{value:.3g}"
    return text if any(c in text for c in ".e") else text + ".0"


def write_value(root: Path, const: Constant, text: str) -> None:
    path = root / const.path
    source = path.read_text(encoding="utf-8")

    def swap(m: re.Match[str]) -> str:
        if m.group("name") != const.name:
            return m.group(0)
        return f"{m.group('name')}{m.group('annot') or ''}{m.group('eq')}{text}{m.group('rest')}"

    try:  # never through a symbolic link: preflight refuses them, this catches a later one
        write_inside(root, const.path, CONSTANT.sub(swap, source, count=0))
    except ConfinementError as exc:
        raise AgentUnavailable(str(exc)) from None


class SweepProposer:
    name = "sweep"

    def __init__(self, config: Config, root: Path, tracked: list[str]) -> None:
        self.root = root
        files = [f for f in tracked if matches(f, config.scope.files)]
        constants = find_constants(root, files)
        declared = {p.name: p for p in config.agent.params}
        if declared:
            unknown = sorted(set(declared) - set(constants))
            if unknown:
                raise SweepError(
                    f"agent.params names {', '.join(unknown)}, not found as `NAME = number`"
                    f" lines in scope ({', '.join(files)}). Fix the names or the scope."
                )
            constants = {k: c for k, c in constants.items() if k in declared}
        if not files:
            raise SweepError(
                f"scope.files ({', '.join(config.scope.files)}) matches no file committed in the"
                " repository. Fix the globs, or commit the files first."
            )
        if not constants:
            raise SweepError(
                "The sweep agent found no numeric constants (UPPER_CASE = number) in the files"
                " in scope. Add some, list them under agent.params, or pick another agent."
            )
        # The values are read again from the tree at the first call: this proposer is made
        # before a resume's recovery, when the tree may still hold an interrupted edit.
        self.files = files
        self.declared = declared
        self.constants = constants
        self.dists: dict[str, BaseDistribution] = {}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "minimize" if config.metric.direction == "lower" else "maximize"
        seed = config.agent.seed
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.rng = random.Random(seed)
        self.pending: dict[int, optuna.trial.Trial] = {}
        self.current = {k: c.value for k, c in constants.items()}

    def _read(self) -> dict[str, Constant]:
        """The constants as the working tree has them now (the commit the edit starts from)."""
        found = find_constants(self.root, self.files)
        return {k: c for k, c in found.items() if k in self.constants}

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        started = time.monotonic()
        self.constants.update(self._read())
        if not self.dists:  # the first call: the search space around the recovered values
            self.dists = {
                k: distribution(c, self.declared.get(k)) for k, c in self.constants.items()
            }
            self._sync(ctx.history)
        self.current = {k: c.value for k, c in self.constants.items()}
        name = self._pick()
        fixed = {k: v for k, v in self.current.items() if k != name}
        self.study.enqueue_trial(_clip(fixed, self.dists), skip_if_exists=False)
        trial = self.study.ask(self.dists)
        value = trial.params[name]
        const = self.constants[name]
        old, new = render(self.current[name], const.integer), render(value, const.integer)
        if old == new:  # the sampler repeated the current value: nudge it
            value = value * 1.5 if value else 1.0
            new = render(value, const.integer)
        write_value(self.root, const, new)
        self.pending[ctx.number] = trial
        # What the edited files hold, so the record matches its commit whatever was there.
        params = {k: c.value for k, c in self._read().items()}
        return EditOutcome(
            description=f"{name} {old} -> {new}",
            agent_s=time.monotonic() - started,
            params=params,
        )

    def observe(self, experiment: Experiment) -> None:
        trial = self.pending.pop(experiment.number, None)
        if experiment.status == "keep" and experiment.params:
            self.current.update({k: v for k, v in experiment.params.items() if k in self.current})
        if trial is None:
            return
        if experiment.metric is None or not math.isfinite(experiment.metric):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, experiment.metric)

    def _pick(self) -> str:
        return self.rng.choice(sorted(self.constants))

    def _sync(self, history: list[Experiment]) -> None:
        """On the first call, teach the study what this session already tried (resume)."""
        for exp in history:
            params = exp.params or (self._values_at(exp.commit) if exp.number == 0 else {})
            if not params or set(params) != set(self.dists) or exp.metric is None:
                continue
            try:
                frozen = optuna.trial.create_trial(
                    params=_clip(params, self.dists), distributions=self.dists, value=exp.metric
                )
                self.study.add_trial(frozen)
            except ValueError:
                continue
            if exp.status == "keep":
                self.current.update(params)

    def _values_at(self, commit: str) -> dict[str, float]:
        """The constants at a commit (the baseline's, which records no params)."""
        from ..repo import Repo

        repo = Repo(self.root)
        try:
            values: dict[str, float] = {}
            for name, const in self.constants.items():
                data = repo.file_at(commit, const.path) if commit else None
                for m in CONSTANT.finditer((data or b"").decode("utf-8", "replace")):
                    if m.group("name") == name and name not in values:
                        values[name] = float(m.group("value").replace("_", ""))
            return values
        finally:
            repo.close()


def _clip(params: dict[str, float], dists: dict[str, BaseDistribution]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in params.items():
        d = dists[k]
        if isinstance(d, IntDistribution | FloatDistribution):
            v = min(max(v, d.low), d.high)
            out[k] = round(v) if isinstance(d, IntDistribution) else v
    return out
