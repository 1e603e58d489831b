"""`autoresearch.toml`: the session config. Load, validate with errors that name the fix, save."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Literal

import msgspec
import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILE = "autoresearch.toml"
Direction = Literal["lower", "higher"]
AgentKind = Literal["sweep", "manual", "command", "editor"]
MemoryUnit = Literal["GB", "GiB", "MB", "MiB"]
Executor = Literal["local", "ray"]


class ConfigError(ValueError):
    """A config problem, worded for the user: what is wrong and how to fix it."""


class Metric(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    direction: Direction
    # A regex with one group; the last match in run.log wins.
    pattern: str | None = None
    # Or the seed's shell extraction, e.g. `grep "^val_bpb:" run.log`; the last number printed wins.
    extract: str | None = None
    # A regex with two groups, step and value, read live from run.log: the learning curve.
    curve: str | None = None


class Run(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    command: str
    timeout: float = 600.0
    # Peak memory as the command reports it; without it the daemon measures it.
    memory_pattern: str | None = None
    memory_unit: MemoryUnit = "GB"
    guard: str | None = None
    guard_timeout: float = 600.0
    # A log beyond this size stops the run: a runaway printer must not fill the disk.
    max_log_mb: float = 2048.0
    # Free space (MB) the repository's disk needs before each experiment; 0 turns it off.
    min_free_mb: float = 100.0
    # Run logs of the last this many experiments (and of every keep) stay plain; older ones
    # are gzip-compressed to <name>.log.gz.
    keep_logs: int = 20
    # Where each run executes: "local" (a process here) or "ray" (a job on the [ray] cluster).
    executor: Executor = "local"


class Scope(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    files: list[str] = msgspec.field(default_factory=list)
    off_limits: list[str] = msgspec.field(default_factory=list)


class Protocol(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    text: str = ""
    time_budget: float | None = None


ParamType = Literal["int", "float", "log", "choice"]


class SweepParam(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    # int, float, log (a float or int sampled on a log scale) or choice; default: the
    # constant's own kind (int for `N = 4`, float for `LR = 0.01`).
    type: ParamType | None = None
    low: float | None = None
    high: float | None = None
    log: bool | None = None
    # The grid of an int or float range: values are low, low + step, ...
    step: float | None = None
    # An int range's values are multiples of this (e.g. a width that heads must divide).
    multiple_of: int | None = None
    # For `choice`: the values to pick from, numbers or strings.
    choices: list[int | float | str] | None = None


class Agent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    kind: AgentKind = "sweep"
    # For `command`: a preset name (claude, codex, aider, gemini, opencode) or `custom`.
    preset: str | None = None
    # For `custom` (or to override a preset): a template with {prompt_file} and friends.
    command: str | None = None
    timeout: float = 900.0
    # For `editor`: the editor's chat model (vscode.lm), by vendor ("copilot") and family.
    vendor: str | None = None
    family: str | None = None
    # For `sweep`: the constants to tune; empty means every UPPER_CASE numeric constant in scope.
    params: list[SweepParam] = msgspec.field(default_factory=list)
    seed: int | None = None
    # For `sweep`: constants never tuned. Unset: the budget-like ones (steps, epochs, time,
    # seed) are frozen, so the sweep never "wins" by training longer.
    freeze: list[str] | None = None
    # For `sweep`: tune only these constants (with params declared, those are tuned).
    tune: list[str] = msgspec.field(default_factory=list)
    # For `sweep`: expressions over the constants every proposal must satisfy before it runs,
    # e.g. "N_EMBD % N_HEAD == 0".
    constraints: list[str] = msgspec.field(default_factory=list)


class Decision(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    min_improvement: float = 0.0
    # Extra baseline runs to estimate run-to-run noise; a win must beat 2 standard deviations.
    noise_repeats: int = 0
    # Re-runs of a win that lies within twice the threshold, each with its own seed
    # (AUTORESEARCH_SEED 1, 2, ...); their mean decides, and must beat two standard errors.
    confirmation_runs: int = 0
    # Early stopping: a run worse than the best run at the same step (by more than the margin
    # and the noise) is stopped, once past `prune_after` of the best run's steps. Needs a curve.
    prune: bool = False
    prune_after: float = 0.5
    prune_margin: float = 0.0


class Stop(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When the loop stops by itself, after the current experiment; none set: never."""

    # A best metric at least this good (in the metric's direction).
    target: float | None = None
    max_experiments: int | None = None
    # Experiments in a row without a keep.
    plateau: int | None = None
    # Time since the loop started, e.g. '8h', '90m', '3600s' or '1h30m'.
    wall_clock: str | None = None
    # The agent's reported cost summed over the session, in US dollars.
    agent_cost_usd: float | None = None


class Notify(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    # POSTed a JSON body {"text": ...} (Slack and Discord accept it) on the loop's notices.
    webhook: str | None = None
    # Also notify on each new best (off: only stops and crashes in a row).
    new_best: bool = False


class Parallel(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    # "auto": one worker per GPU the monitor sees (within CUDA_VISIBLE_DEVICES), 1 without a
    # GPU; a number: that many (CPU slots when there is no GPU). 1 is the one-at-a-time loop.
    workers: int | Literal["auto"] = 1
    gpus_per_worker: int = 1


class Ray(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The cluster runs go to with run.executor = "ray" (ray_runner.py)."""

    # The cluster's Jobs API (its dashboard), e.g. "http://head:8265"; unset: $RAY_ADDRESS.
    address: str | None = None
    gpus_per_experiment: int = 1
    # How long a job may wait for the cluster's resources before the loop stops saying so.
    start_timeout: float = 300.0


class Config(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    metric: Metric
    run: Run
    scope: Scope = msgspec.field(default_factory=Scope)
    protocol: Protocol = msgspec.field(default_factory=Protocol)
    constraints: str = ""
    agent: Agent = msgspec.field(default_factory=Agent)
    decision: Decision = msgspec.field(default_factory=Decision)
    stop: Stop = msgspec.field(default_factory=Stop)
    notify: Notify = msgspec.field(default_factory=Notify)
    parallel: Parallel = msgspec.field(default_factory=Parallel)
    ray: Ray = msgspec.field(default_factory=Ray)


def parse(text: str, source: str = CONFIG_FILE) -> Config:
    """Parse and validate TOML text. Raises ConfigError naming the problem and the fix."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}. Fix the syntax there.") from exc
    return from_builtins(raw, source)


def from_builtins(raw: object, source: str = CONFIG_FILE) -> Config:
    try:
        config = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(exc)}") from exc
    validate(config, source)
    return config


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    where = re.search(r"at `\$\.?(.*)`", message)
    hint = "; see the config reference in the README"
    if "Object missing required field" in message:
        field = re.search(r"field `(\w+)`", message)
        name = field.group(1) if field else "?"
        section = where.group(1) if where else ""
        key = f"{section}.{name}" if section else name
        return f"missing required setting `{key}`{hint}"
    if "unknown field" in message:
        field = re.search(r"unknown field `(\w+)`", message)
        section = where.group(1) if where else ""
        name = field.group(1) if field else "?"
        key = f"{section}.{name}" if section else name
        return f"unknown setting `{key}` (a typo?){hint}"
    key = where.group(1) if where else "a setting"
    text = message.split(" - at ")[0]
    enum = re.match(r"Invalid enum value (.+)", text)
    if enum:
        choices = _ENUM_CHOICES.get(key.rsplit(".", 1)[-1])
        return f"`{key}` is {enum.group(1)}; it must be one of {choices or 'the documented values'}"
    expected = re.match(r"Expected `(.+?)`, got `(.+?)`", text)
    if expected:
        want, got = expected.group(1), expected.group(2)
        return f"`{key}` must be {_a(want)} {want}, not {_a(got)} {got}{hint}"
    return f"`{key}`: {text}{hint}"


_ENUM_CHOICES = {
    "direction": '"lower", "higher"',
    "kind": '"sweep", "manual", "command", "editor"',
    "type": '"int", "float", "log", "choice"',
    "memory_unit": '"GB", "GiB", "MB", "MiB"',
    "workers": '1, 2, ... (a number of workers) or "auto" (one per GPU)',
    "executor": '"local", "ray"',
}


def validate(config: Config, source: str = CONFIG_FILE) -> None:
    """Checks that need no repository: regexes, numbers, contradictory settings."""
    m, r = config.metric, config.run
    if not m.name.strip():
        raise ConfigError(
            f'{source}: metric.name is empty. Name the metric, e.g. name = "val_bpb".'
        )
    if not r.command.strip():
        raise ConfigError(
            f"{source}: run.command is empty. Set the command that runs one experiment."
        )
    if m.pattern and m.extract:
        raise ConfigError(
            f"{source}: metric.pattern and metric.extract are both set. Keep one of them."
        )
    if m.pattern is not None:
        check_pattern(m.pattern, "metric.pattern", source)
    if r.memory_pattern is not None:
        check_pattern(r.memory_pattern, "run.memory_pattern", source)
    if m.curve is not None:
        check_pattern(m.curve, "metric.curve", source, groups=2)
    for name in ("timeout", "guard_timeout", "max_log_mb"):
        value = getattr(r, name)
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(
                f"{source}: run.{name} is {value:g}; it must be a positive, finite number"
                f"{' of seconds' if 'timeout' in name else ''}."
            )
    if not (r.min_free_mb >= 0 and math.isfinite(r.min_free_mb)):
        raise ConfigError(
            f"{source}: run.min_free_mb is {r.min_free_mb:g}; it must be a number of MB, at least"
            " 0 (0 turns the free-space check off)."
        )
    if r.keep_logs < 0:
        raise ConfigError(
            f"{source}: run.keep_logs is {r.keep_logs}; it must be 0 or more (how many of the"
            " latest experiments keep a plain run log)."
        )
    if not config.agent.timeout > 0:
        raise ConfigError(f"{source}: agent.timeout must be a positive number of seconds.")
    d = config.decision
    if d.min_improvement < 0 or d.noise_repeats < 0 or d.confirmation_runs < 0:
        raise ConfigError(f"{source}: decision settings must not be negative.")
    from .stops import check_config

    check_config(config, source)
    if config.agent.kind == "command" and not (config.agent.preset or config.agent.command):
        raise ConfigError(
            f'{source}: agent.kind is "command" but neither agent.preset nor agent.command is set.'
            " Pick a preset (claude, codex, aider, gemini, opencode) or write a command template."
        )
    if config.agent.kind == "command":
        from .agents.presets import TemplateError, resolve

        try:
            resolve(config.agent)
        except TemplateError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    _validate_editor(config.agent, source)
    _validate_sweep(config.agent, source)
    _validate_parallel(config, source)
    _validate_ray(config, source)
    if not config.scope.files:
        raise ConfigError(
            f"{source}: scope.files is empty. List the files the agent may edit, e.g."
            ' files = ["train.py"].'
        )
    for key in ("files", "off_limits"):
        for glob in getattr(config.scope, key):
            check_scope_pattern(glob, f"scope.{key}", source)
    overlap = set(config.scope.files) & set(config.scope.off_limits)
    if overlap:
        raise ConfigError(
            f"{source}: {', '.join(sorted(overlap))} is both in scope.files and in"
            " scope.off_limits. Remove it from one of them."
        )


def _validate_parallel(config: Config, source: str) -> None:
    p = config.parallel
    if p.workers != "auto" and p.workers < 1:
        raise ConfigError(
            f"{source}: parallel.workers is {p.workers}; set a number of workers (1 or more)"
            ' or "auto" (one per GPU).'
        )
    if p.gpus_per_worker < 1:
        raise ConfigError(
            f"{source}: parallel.gpus_per_worker is {p.gpus_per_worker}; it must be 1 or more."
        )
    if p.workers != 1 and config.agent.kind in ("manual", "editor"):
        raise ConfigError(
            f"{source}: parallel.workers is {p.workers!r}, but agent.kind {config.agent.kind!r}"
            " edits one experiment at a time. Set parallel.workers = 1, or use the sweep or a"
            " command agent for parallel experiments."
        )


def _validate_ray(config: Config, source: str) -> None:
    ray = config.ray
    if not (ray.gpus_per_experiment >= 0 and math.isfinite(ray.gpus_per_experiment)):
        raise ConfigError(
            f"{source}: ray.gpus_per_experiment is {ray.gpus_per_experiment:g}; it must be 0 or"
            " more (0: the job runs on CPUs only)."
        )
    if not (ray.start_timeout > 0 and math.isfinite(ray.start_timeout)):
        raise ConfigError(
            f"{source}: ray.start_timeout is {ray.start_timeout:g}; it must be a positive number"
            " of seconds (how long a job may wait for the cluster's GPUs)."
        )
    if ray.address is not None and not re.match(r"https?://[^/\s]+", ray.address):
        raise ConfigError(
            f"{source}: ray.address is {ray.address!r}; it must be the cluster's Jobs API URL,"
            ' e.g. "http://head:8265" (the dashboard address), or left out to use $RAY_ADDRESS.'
        )


def _validate_editor(agent: Agent, source: str) -> None:
    if agent.kind == "editor":
        if not (agent.vendor or "").strip():
            raise ConfigError(
                f'{source}: agent.kind is "editor" but agent.vendor is not set. Pick the model'
                " in VS Code's Start Loop wizard, or set vendor (and family), e.g."
                ' vendor = "copilot", family = "gpt-4o".'
            )
        return
    for key in ("vendor", "family"):
        if getattr(agent, key) is not None:
            raise ConfigError(
                f'{source}: agent.{key} is set but agent.kind is "{agent.kind}"; {key} names the'
                f' editor\'s chat model. Set kind = "editor", or remove agent.{key}.'
            )


def _validate_sweep(agent: Agent, source: str) -> None:
    if not (agent.params or agent.constraints):
        return  # the checks import Optuna: only when there is something to check
    from .agents.space import SpaceError, check_constraint, check_param

    try:
        for param in agent.params:
            check_param(param)
        for expr in agent.constraints:
            check_constraint(expr)
    except SpaceError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def check_scope_pattern(glob: str, key: str, source: str = CONFIG_FILE) -> None:
    """Scope patterns name files of this repository: relative, never climbing out of it."""
    norm = glob.replace("\\", "/")
    files = key == "scope.files"
    example = "e.g. 'src/*.py'" if files else "e.g. 'data/*'"
    why = "files outside it are never in scope" if files else "the loop never edits outside it"
    if norm.startswith(("/", "~")) or re.match(r"[A-Za-z]:/", norm):
        raise ConfigError(
            f"{source}: {key}: {glob!r} is absolute; patterns are relative to the repository"
            f" root, {example}. Write it relative to the repository, or drop it ({why})."
        )
    if ".." in norm.split("/"):
        raise ConfigError(
            f"{source}: {key}: {glob!r} climbs out of the repository with '..'; patterns are"
            f" relative to the repository root and stay inside it, {example}. Remove the '..'"
            f" ({why})."
        )


def check_pattern(
    pattern: str, key: str, source: str = CONFIG_FILE, groups: int = 1
) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern, re.MULTILINE)
        re.compile(pattern.encode(), re.MULTILINE)  # run.log is searched as bytes
    except re.error as exc:
        raise ConfigError(f"{source}: {key} does not compile: {exc}. Fix the regex.") from exc
    if groups == 2 and compiled.groups != 2:
        raise ConfigError(
            f"{source}: {key} has {compiled.groups} group(s); it needs exactly two, the step"
            r" and the value, e.g. '^step (\d+).*val_loss:? ([-+0-9.eE]+)'."
        )
    if groups == 1 and compiled.groups != 1:
        raise ConfigError(
            f"{source}: {key} has {compiled.groups} groups; it needs exactly one, around the"
            r" number, e.g. '^val_bpb:\s*([-+0-9.eE]+)'."
        )
    return compiled


def load(root: Path) -> Config:
    path = root / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"No {CONFIG_FILE} in {root}. Run `autoresearch init` there (or Start Loop in VS Code)."
        )
    return parse(path.read_text(encoding="utf-8"), str(path))


def dumps(config: Config) -> str:
    return tomli_w.dumps(msgspec.to_builtins(config))


def save(root: Path, config: Config) -> Path:
    validate(config)
    path = root / CONFIG_FILE
    path.write_text(dumps(config), encoding="utf-8")
    return path


def _a(word: str) -> str:
    """The article for a type name in a message: "an int", "a str"."""
    return "an" if word[:1] in "aeiou" else "a"
