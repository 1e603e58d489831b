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
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..config import Config
from ..confine import ConfinementError, write_inside
from ..experiment import Experiment
from ..scope import matches
from .base import AgentUnavailable, EditContext, EditOutcome
from .space import Constraint, SpaceError, Value, budget_like, distribution

CONSTANT = re.compile(
    r"^(?P<name>[A-Z][A-Z0-9_]*)(?P<annot>\s*:\s*\w+)?(?P<eq>\s*=\s*)"
    r"(?P<value>[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|\"[\w.+-]*\"|'[\w.+-]*')"
    r"(?P<rest>\s*(?:#.*)?)$",
    re.MULTILINE,
)
# Proposals tried for one experiment before the space counts as exhausted (every one measured
# already or violating a constraint).
MAX_PROPOSALS = 200


class SweepError(ValueError):
    """Nothing to tune, or a declared parameter is unusable; the message names the fix."""


class Constant(msgspec.Struct):
    name: str
    path: str
    value: Value
    integer: bool

    @property
    def numeric(self) -> bool:
        return not isinstance(self.value, str)


def find_constants(root: Path, files: list[str]) -> dict[str, Constant]:
    found: dict[str, Constant] = {}
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in CONSTANT.finditer(text):
            value, integer = parse_value(m.group("value"))
            found.setdefault(m.group("name"), Constant(m.group("name"), rel, value, integer))
    return found


def parse_value(raw: str) -> tuple[Value, bool]:
    if raw[:1] in "\"'":
        return raw[1:-1], False
    raw = raw.replace("_", "")
    return float(raw), re.fullmatch(r"[-+]?\d+", raw) is not None


def render(value: Value, integer: bool) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if integer or isinstance(value, int):
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
        agent = config.agent
        files = [f for f in tracked if matches(f, config.scope.files)]
        if not files:
            raise SweepError(
                f"scope.files ({', '.join(config.scope.files)}) matches no file committed in the"
                " repository. Fix the globs, or commit the files first."
            )
        found = find_constants(root, files)
        declared = {p.name: p for p in agent.params}
        named = {*declared, *agent.tune, *(agent.freeze or [])}
        for c in agent.constraints:
            named.update(Constraint(c).names)
        unknown = sorted(named - set(found))
        if unknown:
            raise SweepError(
                f"agent.params, tune, freeze or constraints name {', '.join(unknown)}, not found"
                f" as `NAME = value` lines in scope ({', '.join(files)}). Fix the names or the"
                " scope."
            )
        self.frozen: list[str] = []
        if declared or agent.tune:
            chosen = {*declared, *agent.tune}
        else:  # every numeric constant but the frozen (by default the budget-like) ones
            freeze = (
                agent.freeze if agent.freeze is not None else [k for k in found if budget_like(k)]
            )
            self.frozen = sorted(k for k in found if k in freeze and found[k].numeric)
            chosen = {k for k, c in found.items() if c.numeric and k not in freeze}
        constants = {k: c for k, c in found.items() if k in chosen}
        if not constants:
            raise SweepError(
                "The sweep agent found no constants to tune (UPPER_CASE = number) in the files"
                " in scope, once the frozen ones are left out. Add some, list them under"
                " agent.params or agent.tune, or pick another agent."
            )
        try:
            for k, c in constants.items():
                distribution(k, c.value, c.integer, declared.get(k))
        except SpaceError as exc:
            raise SweepError(str(exc)) from None
        # The values are read again from the tree at the first call: this proposer is made
        # before a resume's recovery, when the tree may still hold an interrupted edit.
        self.files = files
        self.declared = declared
        self.constants = constants
        self.constraints = [Constraint(c) for c in agent.constraints]
        self.others = {k: c.value for k, c in found.items() if k not in constants}
        self.dists: dict[str, BaseDistribution] = {}
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        direction = "minimize" if config.metric.direction == "lower" else "maximize"
        seed = agent.seed
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.rng = random.Random(seed)
        self.pending: dict[int, optuna.trial.Trial] = {}
        self.current: dict[str, Value] = {k: c.value for k, c in constants.items()}
        # Every configuration measured in this session (its metric, None for a crash): one is
        # never run twice.
        self.measured: dict[tuple[tuple[str, Value], ...], float | None] = {}

    def _read(self) -> dict[str, Constant]:
        """The constants as the working tree has them now (the commit the edit starts from)."""
        found = find_constants(self.root, self.files)
        self.others.update({k: c.value for k, c in found.items() if k in self.others})
        return {k: c for k, c in found.items() if k in self.constants}

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        started = time.monotonic()
        self.constants.update(self._read())
        if not self.dists:  # the first call: the search space around the recovered values
            self.dists = {
                k: distribution(k, c.value, c.integer, self.declared.get(k))
                for k, c in self.constants.items()
            }
            self._sync(ctx.history)
        self.current = {k: c.value for k, c in self.constants.items()}
        self.measured.setdefault(_key(self.current), None)
        skipped = infeasible = 0
        for _ in range(MAX_PROPOSALS):
            name = self._pick()
            fixed = {k: v for k, v in self.current.items() if k != name}
            self.study.enqueue_trial(_clip(fixed, self.dists), skip_if_exists=False)
            trial = self.study.ask(self.dists)
            value = _native(trial.params[name], self.constants[name])
            candidate = {**self.current, name: value}
            broken = [c.text for c in self.constraints if not c.holds({**self.others, **candidate})]
            if broken:  # never run: Optuna learns the region is infeasible
                infeasible += 1
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            key = _key(candidate)
            if key in self.measured:  # measured already: its result is told again, not re-run
                skipped += 1
                known = self.measured[key]
                if known is None:
                    self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    self.study.tell(trial, known)
                continue
            break
        else:
            raise AgentUnavailable(
                f"The sweep found no new configuration in {MAX_PROPOSALS} proposals"
                f" ({skipped} measured already, {infeasible} breaking agent.constraints): the"
                " search space is exhausted. Widen the ranges in agent.params, tune more"
                " constants, or stop here."
            )
        const = self.constants[name]
        old, new = render(self.current[name], const.integer), render(value, const.integer)
        write_value(self.root, const, new)
        self.pending[ctx.number] = trial
        self.measured[key] = None  # until its result comes: a crash stays None
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
        ok = experiment.metric is not None and math.isfinite(experiment.metric)
        if experiment.params and set(experiment.params) >= set(self.constants):
            self.measured[_key(experiment.params, self.constants)] = (
                experiment.metric if ok else None
            )
        if trial is None:
            return
        if not ok:  # a crash is a failed trial: the sampler steers away from it
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, experiment.metric)

    def _pick(self) -> str:
        return self.rng.choice(sorted(self.constants))

    def _sync(self, history: list[Experiment]) -> None:
        """On the first call, teach the study what this session already tried (resume)."""
        for exp in history:
            params = exp.params or (self._values_at(exp.commit) if exp.number == 0 else {})
            if not params or not set(self.dists) <= set(params):
                continue
            params = {k: params[k] for k in self.dists}
            ok = exp.metric is not None and math.isfinite(exp.metric)
            self.measured[_key(params)] = exp.metric if ok else None
            if not ok:
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

    def _values_at(self, commit: str) -> dict[str, Value]:
        """The constants at a commit (the baseline's, which records no params)."""
        from ..repo import Repo

        repo = Repo(self.root)
        try:
            values: dict[str, Value] = {}
            for name, const in self.constants.items():
                data = repo.file_at(commit, const.path) if commit else None
                for m in CONSTANT.finditer((data or b"").decode("utf-8", "replace")):
                    if m.group("name") == name and name not in values:
                        values[name] = parse_value(m.group("value"))[0]
            return values
        finally:
            repo.close()


def _key(
    values: dict[str, Value], only: dict[str, Constant] | None = None
) -> tuple[tuple[str, Value], ...]:
    """A configuration as a hashable key (3 == 3.0). Proposed values are normalised to what is
    written to the file (`_native`), so two proposals that write the same text are equal."""
    names = sorted(only) if only is not None else sorted(values)
    return tuple(
        (k, v if isinstance(v, str) else float(v)) for k, v in ((k, values[k]) for k in names)
    )


def _native(value: object, const: Constant) -> Value:
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    return float(round(number)) if const.integer else float(render(number, False))


def _clip(params: dict[str, Value], dists: dict[str, BaseDistribution]) -> dict[str, Value]:
    out: dict[str, Value] = {}
    for k, v in params.items():
        d = dists[k]
        if isinstance(d, CategoricalDistribution):
            match = [c for c in d.choices if c == v]
            if match:  # a value off the list is left for the sampler
                out[k] = match[0]  # type: ignore[assignment]
        elif isinstance(d, IntDistribution | FloatDistribution) and not isinstance(v, str):
            v = min(max(v, d.low), d.high)
            out[k] = round(v) if isinstance(d, IntDistribution) else v
    return out
