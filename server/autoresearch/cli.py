"""`autoresearch init | run | status | results | demo | serve | stop | attach | schema`: the
headless face."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import msgspec

from . import config as cfg
from . import repo
from .detect import detect
from .loop import Event, Progress
from .measure import default_pattern
from .protocol import LoopState, MetricCandidate

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# The CLI prints the running curve's latest point at most this often.
CURVE_LINE_S = 10.0
# Each stops `run` after the running experiment, a second one at once; exit 128 + the signal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXAMPLE = Path(__file__).parent / "examples" / "demo"


class UserError(Exception):
    """An error the user fixes; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"autoresearch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autoresearch",
        description="An autonomous experiment loop: edit, commit, run, measure, keep or revert.",
    )
    sub = p.add_subparsers(required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="infer and write autoresearch.toml for a repository")
    init.add_argument("--dir", type=Path, default=Path("."), help="repository (default: .)")
    init.add_argument("--direction", choices=["lower", "higher"], help="which way is better")
    init.add_argument("--metric", help="metric name, e.g. val_bpb")
    init.add_argument("--command", dest="run_command", help="command that runs one experiment")
    init.add_argument("--scope", nargs="+", help="files (globs) the agent may edit")
    init.add_argument("--agent", choices=["sweep", "manual", "command"], help="the edit step")
    init.add_argument("--preset", help="coding-agent preset for --agent command")
    init.add_argument("--force", action="store_true", help="overwrite an existing config")
    init.set_defaults(func=cmd_init)

    run = sub.add_parser("run", help="run the loop (resumes an existing session)")
    run.add_argument("--dir", type=Path, default=Path("."), help="repository (default: .)")
    run.add_argument("--loop", type=int, metavar="N", help="run exactly N experiments, then stop")
    run.add_argument("--tag", help="session tag (default: today, e.g. nov25)")
    run.add_argument("--detach", action="store_true", help="run in the background, detached")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="the session's state: branch, best, counts")
    status.add_argument("--dir", type=Path, default=Path("."))
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    results = sub.add_parser("results", help="the experiments of a session")
    results.add_argument("--dir", type=Path, default=Path("."))
    results.add_argument("--json", action="store_true", help="full records as JSON lines")
    results.add_argument("--tag", help="session tag (default: the current branch's)")
    results.set_defaults(func=cmd_results)

    report = sub.add_parser("report", help="draw progress.png and print the top improvements")
    report.add_argument("--dir", type=Path, default=Path("."))
    report.add_argument("--tag", help="session tag (default: the current branch's)")
    report.add_argument("--out", type=Path, help="where to write the chart (default: progress.png)")
    report.set_defaults(func=cmd_report)

    demo = sub.add_parser("demo", help="run the loop on a bundled example (no LLM, no GPU)")
    demo.add_argument("--dir", type=Path, help="where to create the example repository")
    demo.add_argument("--loop", type=int, default=10, metavar="N", help="experiments (10)")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="the JSON-RPC daemon over stdio (VS Code starts it)")
    serve.set_defaults(func=cmd_serve)

    from .cli_detached import add_commands

    add_commands(sub)  # stop, attach

    schema = sub.add_parser("schema", help="print the JSON schema of the protocol")
    schema.set_defaults(func=lambda a: print(json.dumps(_schema(), indent=1)))
    return p


def _root(path: Path) -> Path:
    root = path.expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"{root} is not a directory. Pass --dir with the repository's path.")
    return root


def cmd_init(args: argparse.Namespace) -> int:
    root = _root(args.dir)
    target = root / cfg.CONFIG_FILE
    if target.exists() and not args.force:
        raise UserError(f"{target} exists. Edit it, or pass --force to infer a new one.")
    result = detect(root, existing=not args.force)  # --force: infer afresh
    config = result.config
    for note in result.notes:
        print(f"inferred {note}")
    metric = args.metric or _choose_metric(result.metrics, config.metric.name)
    if metric and (metric != config.metric.name or args.metric):
        config.metric.name = metric
        config.metric.pattern = default_pattern(metric)
    if args.run_command:
        config.run.command = args.run_command
    if args.scope:
        config.scope.files = list(args.scope)
        config.scope.off_limits = [f for f in config.scope.off_limits if f not in args.scope]
    if args.agent:
        config.agent.kind = args.agent
    if args.preset:
        config.agent.preset = args.preset
    direction = args.direction or _ask_direction(config.metric.name)
    config.metric.direction = direction
    missing = {
        "run.command": not config.run.command,
        "metric.name": not metric and "metric.name" in result.ask,
        "scope.files": not config.scope.files,
    }
    flags = {"run.command": "--command", "metric.name": "--metric", "scope.files": "--scope"}
    needed = [k for k, v in missing.items() if v]
    if needed:
        raise UserError(
            "could not infer "
            + ", ".join(needed)
            + ". Pass "
            + " ".join(f"{flags[k]} ..." for k in needed)
            + "."
        )
    try:
        cfg.save(root, config)
    except cfg.ConfigError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {target}")
    return EXIT_OK


def _choose_metric(found: list[MetricCandidate], likeliest: str) -> str:
    """Which metric-like line is the metric: asked on a terminal (the likeliest prefilled),
    else the likeliest, said with the alternatives."""
    if len(found) < 2:
        return likeliest
    default = likeliest or found[0].name
    if not sys.stdin.isatty():
        others = ", ".join(m.name for m in found if m.name != default)
        print(f"metric: took {default}; also printed: {others} (pass --metric NAME to pick one)")
        return default
    print("Metric-like lines the command prints:")
    for i, m in enumerate(found, 1):
        value = f" = {m.value:g}" if m.value is not None else ""
        print(f"  {i}. {m.name}{value} ({m.source})")
    while True:
        answer = input(f"Which is the metric? [{default}] ").strip()
        if not answer:
            return default
        if answer.isdigit() and 1 <= int(answer) <= len(found):
            return found[int(answer) - 1].name
        if any(m.name == answer for m in found):
            return answer
        print(f"  {answer!r} is none of them: type a number from 1 to {len(found)} or a name")


def _ask_direction(metric: str) -> str:
    if not sys.stdin.isatty():
        raise UserError(
            f"is a lower or a higher {metric} better? It is never guessed: pass --direction"
            " lower or --direction higher."
        )
    while True:
        answer = input(f"Is a lower or a higher {metric} better? [lower/higher] ").strip().lower()
        if answer in ("lower", "higher"):
            return answer


def cmd_run(args: argparse.Namespace) -> int:
    root = _root(args.dir)
    if args.loop is not None and args.loop < 1:
        raise UserError("--loop must be at least 1.")
    if args.detach:
        from .cli_detached import run_detached

        return run_detached(root, args.loop, args.tag)
    return run_loop(root, args.loop, args.tag)


def run_loop(root: Path, limit: int | None, tag: str | None) -> int:
    from .gpu import GpuMonitor, open_source
    from .lock import LockError
    from .repo import RepoError
    from .session_factory import open_session

    # GPU memory of the run's processes, as the daemon records it (nothing without a GPU).
    monitor = GpuMonitor(open_source(root=root)).start()
    try:
        session = open_session(
            root, None, limit, tag, owner="autoresearch run", emit=_printer(), gpu=monitor.latest
        )
    except (cfg.ConfigError, RepoError, LockError, ValueError, RuntimeError) as exc:
        monitor.stop()
        raise UserError(str(exc)) from None
    loop, lock, config = session.loop, session.lock, session.loop.config
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        # Ctrl-C, SIGTERM (a `kill`, a scheduler's stop) and SIGHUP (the terminal went away)
        # all stop the loop the same way; the run's processes are never signalled directly.
        received.append(signum)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if len(received) == 1:
            again = "Ctrl-C again" if signum == signal.SIGINT else f"{name} again"
            _tell(f"\n{name}: stopping after this experiment ({again} to abandon it now)")
            loop.stop(now=loop.state.phase == "editing" and config.agent.kind == "manual")
        else:
            _tell(f"\n{name}: abandoning the running experiment")
            loop.stop(now=True)

    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:  # under nohup a hang-up is not ours to act on
            signal.signal(sig, on_signal)
    try:
        loop.run()
    except Exception as exc:
        if received and _killed_git(exc):  # a signal sent to our whole process group
            _say(
                f"autoresearch: stopped while git was running ({exc.__class__.__name__})."
                " Run `autoresearch run` again: it resumes where this stopped.",
                file=sys.stderr,
            )
            return 128 + received[0]
        _say(f"autoresearch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        monitor.stop()
        lock.release()
    return 128 + received[0] if received else EXIT_OK


def _tell(text: str) -> None:
    """A line straight to stdout's file descriptor: safe inside a signal handler (no buffered
    writer to re-enter) and silent when the terminal is gone."""
    try:
        os.write(1, f"{text}\n".encode(errors="replace"))
    except OSError:
        pass


def _killed_git(exc: Exception) -> bool:
    from .repo import GitError

    return isinstance(exc, GitError) and isinstance(exc.status, int) and exc.status < 0


def _say(text: str, file: TextIO | None = None) -> None:
    """A line on stdout (or `file`). A terminal that went away (SIGHUP) must not break the
    loop: output then goes to /dev/null."""
    try:
        print(text, file=file, flush=True)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)


def _printer(live: bool | None = None) -> callable:  # type: ignore[valid-type]
    """Progress lines; on a terminal also a live `#n running 12 s / 600 s` line, rewritten in
    place and cleared before the next progress line."""
    last_phase = [""]
    live = sys.stdout.isatty() if live is None else live
    shown = [False]
    curve_said = [0.0]

    def clear() -> None:
        if shown[0]:
            shown[0] = False
            _write("\r\033[K")

    def emit(event: Event) -> None:
        if isinstance(event, Progress):
            clear()
            _say(event.text)
        elif isinstance(event, LoopState):
            curve = (
                f" · step {event.curve_step}: {event.curve_value:.6g}"
                if event.curve_step is not None and event.curve_value is not None
                else ""
            )
            if live and event.phase in ("running", "baseline") and event.elapsed_s is not None:
                limit = f" / {event.timeout_s:g} s" if event.timeout_s else ""
                _write(f"\r\033[K#{event.current} running {event.elapsed_s:.0f} s{limit}{curve}")
                shown[0] = True
            elif event.phase != "running" or event.elapsed_s is None:
                clear()
            if event.phase != last_phase[0]:
                last_phase[0] = event.phase
                if event.phase in ("setup", "baseline"):
                    _say(f"[{event.phase}] {event.message}")
            now = time.monotonic()  # not on a terminal: the curve's latest point now and then
            if curve and not live and now - curve_said[0] >= CURVE_LINE_S:
                curve_said[0] = now
                _say(f"  #{event.current} step {event.curve_step}: {event.curve_value:.6g}")

    return emit


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError:
        pass


def cmd_status(args: argparse.Namespace) -> int:
    from .status import read_status

    try:
        status = read_status(_root(args.dir))
    except (cfg.ConfigError, ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(msgspec.to_builtins(status), indent=1))
    else:
        print(status.text)
    _warn(status.warnings)
    return EXIT_OK


def _warn(lines: list[str]) -> None:
    """Rows of results.tsv that cannot be read: said on stderr, never dropped silently."""
    for line in lines:
        print(f"autoresearch: warning: {line}", file=sys.stderr)


def cmd_results(args: argparse.Namespace) -> int:
    from .status import read_experiments

    try:
        table = read_experiments(_root(args.dir), args.tag)
    except (cfg.ConfigError, ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    tag, experiments = table.tag, table.experiments
    _warn(table.warnings)
    if args.json:
        for exp in experiments:
            print(msgspec.json.encode(exp).decode())
        return EXIT_OK
    from .results_tsv import format_metric

    print(f"session {tag}: {len(experiments)} experiments")
    print(
        f"{'#':>4}  {'commit':7}  {'metric':>12}  {'mem GB':>6}  {'time s':>7}  {'status':7}"
        "  description"
    )
    for exp in experiments:
        # Why a run crashed (or what the decision saw) is said with it, not left to the logs.
        shown = exp.status != "keep" or exp.confirmation  # a confirmed keep: mean ± sd
        why = f"  [{exp.reason}]" if shown and exp.reason else ""
        seconds = f"{exp.runtime_s:.1f}" if exp.runtime_s else "-"
        print(
            f"{exp.number:>4}  {exp.commit[:7]:7}  {format_metric(exp.metric):>12}"
            f"  {exp.memory_gb:>6.1f}  {seconds:>7}  {exp.status:7}  {exp.description}{why}"
        )
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    from .status import read_experiments

    root = _root(args.dir)
    try:
        config = cfg.load(root)
        table = read_experiments(root, args.tag)
    except (cfg.ConfigError, ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    _warn(table.warnings)
    direction, name = config.metric.direction, config.metric.name
    out = (args.out or root / "progress.png").expanduser().resolve()
    if not out.parent.is_dir():
        raise UserError(f"{out.parent} is not a directory. Pass --out with a path in one.")
    try:
        report.draw(table.experiments, direction, name, out)
    except OSError as exc:
        raise UserError(
            f"could not write {out}: {exc.strerror or exc}. Pass another --out."
        ) from None
    print(f"session {table.tag}: wrote {out}")
    print(report.text(table.experiments, direction, name))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    if args.loop < 1:
        raise UserError("--loop must be at least 1.")
    root = (args.dir or Path(tempfile.mkdtemp(prefix="autoresearch-demo-"))).resolve()
    if root.exists() and not root.is_dir():
        raise UserError(f"{root} is a file. Pick a new --dir (or omit it for a temp dir).")
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} is not empty. Pick a new --dir (or omit it for a temp dir).")
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    repo.create(root, "autoresearch demo", "demo@localhost", "demo example")
    print(f"demo repository: {root}")
    print(f"running {args.loop} experiments with the sweep agent (Optuna, no LLM, no GPU)")
    code = run_loop(root, args.loop, None)
    print(f"\nlook around: cd {root} && cat results.tsv && git log --oneline autoresearch/*")
    return code


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve()
    return EXIT_OK


def _schema() -> dict[str, object]:
    from .protocol import schema

    return schema()


if __name__ == "__main__":
    sys.exit(main())
