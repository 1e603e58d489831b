"""The `sweep` proposer: no LLM, Optuna tunes declared numeric constants in in-scope files.

A constant is a module-level `NAME = number` line with an UPPER_CASE name. Each experiment
changes one constant (Optuna's TPE proposes its value, the others stay at the current best), so
every diff is one readable hypothesis. Results are told back; a resumed sweep replays history.

Parallel experiments: several workers call `propose` at once, each in its own worktree
(`ctx.root`). The study is asked under a lock; a configuration being measured by one worker is
pending (a running trial to the sampler's constant liar) and never proposed to another.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
import warnings
from collections.abc import Sequence
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


Key = tuple[tuple[str, Value], ...]


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


def params_in(
    root: Path, tracked: list[str], scope: list[str], names: list[str]
) -> dict[str, Value]:
    """The values of the constants `names` in the files in scope at `root` (a commit measured
    on another best than it was made on holds that best's values of the other constants)."""
    found = find_constants(root, [f for f in tracked if matches(f, scope)])
    return {k: c.value for k, c in found.items() if k in names}


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


class InFlight(msgspec.Struct):
    """A configuration being measured: its trial, and the trials that asked for it again
    meanwhile (told its result when it comes, as a measured one's are)."""

    key: Key
    trial: optuna.trial.Trial
    again: list[optuna.trial.Trial] = msgspec.field(default_factory=list)


class SweepProposer:
    name = "sweep"

    def __init__(self, config: Config, root: Path, tracked: list[str]) -> None:
        # The repository root: the session's files at construction, commits for a resume. Each
        # call edits its own ctx.root (a worker's worktree, or this root with one worker).
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
        with warnings.catch_warnings():  # experimental before Optuna 4: said once per session
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # The constant liar: a running trial counts as a bad result, so workers asking at
            # once are steered apart (Optuna 5's default, asked for on older ones).
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=True)
        self.study = optuna.create_study(direction=direction, sampler=sampler)
        self.rng = random.Random(seed)
        # Workers ask and tell the study, and read and change what follows, one at a time.
        self._lock = threading.Lock()
        # The configurations being measured now, by experiment number and by configuration.
        self.pending: dict[int, InFlight] = {}
        self.in_flight: dict[Key, InFlight] = {}
        # Every configuration measured in this session (its metric, None for a crash): one is
        # never run twice.
        self.measured: dict[Key, float | None] = {}

    def _read(self, root: Path) -> dict[str, Constant]:
        """Every constant as the tree at `root` has them now (the commit the edit starts from)."""
        return find_constants(root, self.files)

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        started = time.monotonic()
        found = self._read(ctx.root)
        with self._lock:
            if not self.dists:  # the first call: the search space around the recovered values
                self.constants.update({k: c for k, c in found.items() if k in self.constants})
                self.dists = {
                    k: distribution(k, c.value, c.integer, self.declared.get(k))
                    for k, c in self.constants.items()
                }
                self._sync(ctx.history)
            # A retry or rework of this number: its last attempt is over, never run again.
            self._settle(ctx.number, None)
            current = {k: found.get(k, c).value for k, c in self.constants.items()}
            others = {k: (found[k].value if k in found else v) for k, v in self.others.items()}
            proposal = self._ask(current, others, ctx.number)
            if isinstance(proposal, str):
                return EditOutcome(
                    error=proposal, agent_s=time.monotonic() - started, after_decision=True
                )
            name, value, trial = proposal
            key = _key({**current, name: value})
            self.pending[ctx.number] = self.in_flight[key] = InFlight(key, trial)
        const = self.constants[name]
        old, new = render(current[name], const.integer), render(value, const.integer)
        try:
            write_value(ctx.root, const, new)
        except BaseException:
            with self._lock:  # not measured: it may be proposed again
                self._settle(ctx.number, None, measured=False)
            raise
        # What the edited files hold, so the record matches its commit whatever was there.
        params = {k: c.value for k, c in self._read(ctx.root).items() if k in self.constants}
        return EditOutcome(
            description=f"{name} {old} -> {new}",
            agent_s=time.monotonic() - started,
            params=params,
        )

    def _ask(
        self, current: dict[str, Value], others: dict[str, Value], number: int
    ) -> tuple[str, Value, optuna.trial.Trial] | str:
        """A new configuration one constant away from `current` (name, value, its trial), or
        why there is none while other experiments run. Called with the lock held."""
        self.measured.setdefault(_key(current), None)
        skipped = infeasible = busy = 0
        for _ in range(MAX_PROPOSALS):
            name = self._pick()
            fixed = {k: v for k, v in current.items() if k != name}
            self.study.enqueue_trial(_clip(fixed, self.dists), skip_if_exists=False)
            trial = self.study.ask(self.dists)
            value = _native(trial.params[name], self.constants[name])
            candidate = {**current, name: value}
            broken = [c.text for c in self.constraints if not c.holds({**others, **candidate})]
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
            if key in self.in_flight:  # another worker measures it now: told its result later
                busy += 1
                self.in_flight[key].again.append(trial)
                continue
            return name, value, trial
        # A keep among the running experiments may move the best: not the end. Only one
        # numbered before this one can be decided first (decisions go in number order).
        if any(n < number for n in self.pending):
            return (
                f"the sweep found no configuration next to the best that is not measured or"
                f" being measured ({skipped} measured already, {busy} running now,"
                f" {infeasible} breaking agent.constraints in {MAX_PROPOSALS} proposals);"
                f" {len(self.pending)} running experiment(s) may move the best: ask again once"
                " one is decided"
            )
        raise AgentUnavailable(
            f"The sweep found no new configuration in {MAX_PROPOSALS} proposals"
            f" ({skipped} measured already, {infeasible} breaking agent.constraints): the"
            " search space is exhausted. Widen the ranges in agent.params, tune more"
            " constants, or stop here."
        )

    def observe(self, experiment: Experiment) -> None:
        ok = experiment.metric is not None and math.isfinite(experiment.metric)
        result = experiment.metric if ok else None
        with self._lock:
            if experiment.params and set(experiment.params) >= set(self.constants):
                self.measured[_key(experiment.params, self.constants)] = result
            self._settle(experiment.number, result)

    def _settle(self, number: int, result: float | None, measured: bool = True) -> None:
        """Tell the trials of experiment `number` its result (None: failed, as a crash is, so
        the sampler steers away from it). Called with the lock held."""
        flight = self.pending.pop(number, None)
        if flight is None:
            return
        del self.in_flight[flight.key]
        if measured:  # never run again (the record's params may differ, if it was rebased)
            self.measured.setdefault(flight.key, result)
        for trial in (flight.trial, *flight.again):
            if result is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, result)

    def _pick(self) -> str:
        return self.rng.choice(sorted(self.constants))

    def _sync(self, history: Sequence[Experiment]) -> None:
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
