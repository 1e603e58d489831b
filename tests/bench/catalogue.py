"""The bad-inputs catalogue: every bad config, repository state and request, run for real, with
the exact error the user sees. Writes tests/bench/BAD_INPUTS.md (the README's troubleshooting
section includes it).

    python tests/bench/catalogue.py            # run all, print and rewrite BAD_INPUTS.md
    python tests/bench/catalogue.py --check    # run all, fail on a traceback or an empty error

Configs and repository states go through the CLI (`autoresearch run --dir REPO --loop 1`, run
in-process: what it prints after `autoresearch:` is what a user reads in the terminal, and the
same message is what the daemon returns to VS Code). Requests go to a real `autoresearch
serve` over JSON-RPC. Paths are shown as <repo> and <tmp>.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from jsonrpc import Daemon, RpcError  # noqa: E402

from autoresearch import cli  # noqa: E402

OUTPUT = HERE / "BAD_INPUTS.md"

TRAIN = """\
LR = 0.5
print("training...")
print(f"score: {abs(LR - 0.3):.6f}")
"""

GOOD = f"""\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "{sys.executable} train.py"
timeout = 30

[scope]
files = ["train.py"]
off_limits = ["evaluate.py"]

[agent]
kind = "sweep"
seed = 1
"""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout.strip()


def repo(tmp: Path, config: str | None = GOOD, train: str = TRAIN, commit: bool = True) -> Path:
    root = tmp / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Catalogue")
    git(root, "config", "user.email", "catalogue@localhost")
    (root / "train.py").write_text(train)
    (root / "evaluate.py").write_text("THRESHOLD = 1\n")
    if config is not None:
        (root / "autoresearch.toml").write_text(config)
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "initial")
    return root


def bad_config(old: str, new: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        assert old in GOOD, old
        root = repo(tmp, GOOD.replace(old, new, 1))
        return ["run", "--dir", str(root), "--loop", "1"]

    return setup


def run_in(root: Path, *extra: str) -> list[str]:
    return ["run", "--dir", str(root), "--loop", "1", *extra]


# ---- the cases: (kind, bad input, setup -> argv for the CLI) --------------------------------

Case = tuple[str, str, Callable[[Path], list[str]]]
CASES: list[Case] = []


def case(kind: str, title: str) -> Callable[[Callable[[Path], list[str]]], None]:
    def register(setup: Callable[[Path], list[str]]) -> None:
        CASES.append((kind, title, setup))

    return register


CONFIGS = [
    ("not valid TOML (an unclosed string)", 'direction = "lower"', 'direction = "lower'),
    ("metric.direction missing", 'direction = "lower"\n', ""),
    ("metric.direction neither lower nor higher", 'direction = "lower"', 'direction = "down"'),
    ("a misspelt setting", "timeout = 30", "timout = 30"),
    ("run.timeout of 0", "timeout = 30", "timeout = 0"),
    ("a negative run.timeout", "timeout = 30", "timeout = -5"),
    ("run.timeout as a string", "timeout = 30", 'timeout = "30s"'),
    ("metric.pattern without a group", "(\\S+)", "\\S+"),
    ("metric.pattern with two groups", "(\\S+)", "(\\S+) (\\S+)"),
    ("metric.pattern that does not compile", "(\\S+)", "((\\S+)"),
    ("metric.pattern and metric.extract both set", "[run]", 'extract = "grep x run.log"\n[run]'),
    ("an empty metric.name", 'name = "score"', 'name = ""'),
    ("an empty run.command", f'command = "{sys.executable} train.py"', 'command = " "'),
    ("scope.files empty", 'files = ["train.py"]', "files = []"),
    ("a file both in scope and off limits", '["evaluate.py"]', '["evaluate.py", "train.py"]'),
    ("run.max_log_mb of 0", "timeout = 30", "timeout = 30\nmax_log_mb = 0"),
    ("run.memory_unit unknown", "timeout = 30", 'timeout = 30\nmemory_unit = "TB"'),
    ("a negative decision setting", "seed = 1", "seed = 1\n[decision]\nnoise_repeats = -1"),
    ("agent kind unknown", 'kind = "sweep"', 'kind = "gpt"'),
    ("agent command with neither preset nor command", 'kind = "sweep"', 'kind = "command"'),
    ("agent preset unknown", 'kind = "sweep"', 'kind = "command"\npreset = "copilot"'),
    (
        "agent template with an unknown placeholder",
        'kind = "sweep"',
        'kind = "command"\ncommand = "my-agent --file {prompt_path}"',
    ),
    ("agent editor without a model", 'kind = "sweep"', 'kind = "editor"'),
    (
        "agent vendor with a kind other than editor",
        'kind = "sweep"',
        'kind = "command"\npreset = "claude"\nvendor = "copilot"',
    ),
    (
        "agent editor run in a terminal (it needs VS Code)",
        'kind = "sweep"',
        'kind = "editor"\nvendor = "copilot"\nfamily = "gpt-4o"',
    ),
    (
        "agent preset whose CLI is not installed",
        'kind = "sweep"',
        'kind = "command"\npreset = "aider"',
    ),
    ("run.command whose program does not exist", f"{sys.executable} train.py", "trian.sh --fast"),
    ("run.command naming a missing script path", f"{sys.executable} train.py", "./train.sh"),
    ("scope.files glob matching nothing", 'files = ["train.py"]', 'files = ["model/*.py"]'),
    ("scope.files with an absolute pattern", 'files = ["train.py"]', 'files = ["/etc/*"]'),
    ("scope.files climbing out with '..'", 'files = ["train.py"]', 'files = ["../*"]'),
    ("scope.off_limits with an absolute path", '["evaluate.py"]', '["/etc/passwd"]'),
    ("scope.off_limits climbing out with '..'", '["evaluate.py"]', '["../secrets/*"]'),
    (
        "agent.constraints with code in it (never evaluated)",
        "seed = 1",
        "seed = 1\nconstraints = [\"__import__('os').system('rm -rf ~')\"]",
    ),
    ("agent.constraints that is no expression", "seed = 1", 'seed = 1\nconstraints = ["LR >"]'),
    (
        "agent.params choice without choices",
        "seed = 1",
        'seed = 1\n[[agent.params]]\nname = "LR"\ntype = "choice"',
    ),
    (
        "agent.params multiple_of on a float",
        "seed = 1",
        'seed = 1\n[[agent.params]]\nname = "LR"\ntype = "float"\nmultiple_of = 2',
    ),
    ("agent.freeze naming no constant", "seed = 1", 'seed = 1\nfreeze = ["MAX_STEPS"]'),
    ("metric.curve with one group", "[run]", "curve = 'step (\\d+)'\n[run]"),
    ("decision.prune without metric.curve", "seed = 1", "seed = 1\n[decision]\nprune = true"),
    (
        "decision.prune_after outside (0, 1]",
        "seed = 1",
        "seed = 1\n[decision]\nprune_after = 50",
    ),
    ("stop.wall_clock not a duration", "seed = 1", "seed = 1\n[stop]\nwall_clock = '8 hours'"),
    ("stop.plateau of 0", "seed = 1", "seed = 1\n[stop]\nplateau = 0"),
    ("stop.max_experiments misspelt", "seed = 1", "seed = 1\n[stop]\nmax_experiment = 5"),
    (
        "stop.agent_cost_usd negative",
        "seed = 1",
        "seed = 1\n[stop]\nagent_cost_usd = -5.0",
    ),
    (
        "notify.webhook not an http(s) URL",
        "seed = 1",
        "seed = 1\n[notify]\nwebhook = 'file:///etc/passwd'",
    ),
    ("parallel.workers of 0", "seed = 1", "seed = 1\n[parallel]\nworkers = 0"),
    (
        "parallel.workers neither a number nor auto",
        "seed = 1",
        "seed = 1\n[parallel]\nworkers = 'all'",
    ),
    (
        "parallel workers with the manual agent (one at a time)",
        'kind = "sweep"\nseed = 1',
        'kind = "manual"\n[parallel]\nworkers = 2',
    ),
]
for title, old, new in CONFIGS:
    case("config", title)(bad_config(old, new))


@case("config", "sweep with no numeric constant in scope")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, train='print("score: 0.5")\n'))


@case("config", "no autoresearch.toml")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, config=None))


@case("config", "`autoresearch init` cannot infer a direction (never guessed)")
def _(tmp: Path) -> list[str]:
    root = repo(tmp, config=None)
    return ["init", "--dir", str(root), "--metric", "score"]


@case("config", "parallel.workers beyond the GPUs the monitor sees (2 fake GPUs)")
def _(tmp: Path) -> list[str]:
    gpus = [
        {
            "index": i,
            "name": "Fake",
            "utilization": 0.0,
            "memory_used_mib": 0.0,
            "memory_total_mib": 81559.0,
        }
        for i in (0, 1)
    ]
    fake = tmp / "gpus.json"
    fake.write_text(json.dumps({"available": True, "message": "", "gpus": gpus}))
    os.environ["AUTORESEARCH_FAKE_GPU"] = str(fake)  # read by this in-process CLI run
    return run_in(repo(tmp, GOOD + "\n[parallel]\nworkers = 4\n"))


@case("command line", "--loop 0")
def _(tmp: Path) -> list[str]:
    return ["run", "--dir", str(repo(tmp)), "--loop", "0"]


@case("command line", "--dir that does not exist")
def _(tmp: Path) -> list[str]:
    return ["run", "--dir", str(tmp / "nowhere"), "--loop", "1"]


@case("repository", "not a git repository")
def _(tmp: Path) -> list[str]:
    (tmp / "plain").mkdir()
    (tmp / "plain" / "autoresearch.toml").write_text(GOOD)
    return run_in(tmp / "plain")


@case("repository", "a repository without commits")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, commit=False))


@case("repository", "uncommitted changes")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    (root / "train.py").write_text(TRAIN.replace("0.5", "0.4"))
    return run_in(root)


@case("repository", "a detached HEAD")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    git(root, "checkout", "-q", "--detach")
    return run_in(root)


@case("repository", "a merge in progress")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    (root / ".git" / "MERGE_HEAD").write_text(git(root, "rev-parse", "HEAD") + "\n")
    return run_in(root)


@case("repository", "a stale .git/index.lock")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    (root / ".git" / "index.lock").write_text("")
    return run_in(root)


@case("repository", "the session branch exists already (--tag reused)")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    git(root, "branch", "autoresearch/nov25")
    return run_in(root, "--tag", "nov25")


@case("repository", "a pre-commit hook that rejects the setup commit")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'trailing whitespace in train.py' >&2\nexit 1\n")
    hook.chmod(0o755)
    return run_in(root)


@case("repository", "another loop already running in the repository")
def _(tmp: Path) -> list[str]:
    from autoresearch.lock import RepoLock

    root = repo(tmp)
    holder = RepoLock(root)
    holder.acquire("autoresearch run")
    HELD.append(holder)
    return run_in(root)


HELD: list = []


@case("repository", "`run --detach` while a loop runs in the repository")
def _(tmp: Path) -> list[str]:
    from autoresearch.lock import RepoLock

    root = repo(tmp)
    holder = RepoLock(root)
    holder.acquire("autoresearch run --detach, since 2026-11-30T21:00:00+00:00")
    HELD.append(holder)
    return ["run", "--detach", "--dir", str(root)]


@case("repository", "`run --detach` with the manual agent")
def _(tmp: Path) -> list[str]:
    return [
        "run",
        "--detach",
        "--dir",
        str(repo(tmp, GOOD.replace('kind = "sweep"', 'kind = "manual"'))),
    ]


@case("repository", "`autoresearch stop` with no loop running")
def _(tmp: Path) -> list[str]:
    return ["stop", "--dir", str(repo(tmp))]


@case("repository", "`autoresearch attach` to a loop that runs in a terminal, not detached")
def _(tmp: Path) -> list[str]:
    from autoresearch.lock import RepoLock

    root = repo(tmp)
    holder = RepoLock(root)
    holder.acquire("autoresearch run")
    HELD.append(holder)
    return ["attach", "--dir", str(root)]


@case("repository", "an in-scope file that is a symbolic link out of the repository")
def _(tmp: Path) -> list[str]:
    (tmp / "decoy.py").write_text("LR = 0.5\n")
    root = repo(tmp, GOOD.replace('files = ["train.py"]', 'files = ["train.py", "ext.py"]'))
    os.symlink("../decoy.py", root / "ext.py")
    git(root, "add", "ext.py")
    git(root, "commit", "-q", "-m", "a link to a file outside")
    return run_in(root)


@case("repository", "scope.files under a folder that links out of the repository")
def _(tmp: Path) -> list[str]:
    (tmp / "outside").mkdir()
    (tmp / "outside" / "model.py").write_text("WIDTH = 512\n")
    root = repo(tmp, GOOD.replace('files = ["train.py"]', 'files = ["train.py", "lib/*.py"]'))
    os.symlink("../outside", root / "lib")
    git(root, "add", "lib")
    git(root, "commit", "-q", "-m", "a linked folder")
    return run_in(root)


@case("repository", "scope.files `*` glob whose files all lie in a subfolder")
def _(tmp: Path) -> list[str]:
    root = repo(tmp, GOOD.replace('files = ["train.py"]', 'files = ["train.py", "src/*.py"]'))
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "deep" / "model.py").write_text("WIDTH = 512\n")
    git(root, "add", "src")
    git(root, "commit", "-q", "-m", "a nested module")
    return run_in(root)


@case("repository", "another tool's results.tsv with a row that cannot be read: `results`")
def _(tmp: Path) -> list[str]:
    root = repo(tmp)
    git(root, "checkout", "-q", "-b", "autoresearch/mar8")
    (root / "results.tsv").write_text(
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.998000\t43.9\tBASELINE\tbaseline\n"
        "b2c3d4e\t-999\t0.0\tREVERT\tn_head 12 (crashed)\n"
        "c3d4e5f\t0.991000\t43.9\tMAYBE\twindow 512\n"
    )
    return ["results", "--dir", str(root)]


def resumable(tmp: Path) -> Path:
    """A session with its baseline recorded, stopped: the next `run` resumes it."""
    root = repo(tmp)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli.main(run_in(root))
    return root


@case("repository", "a hand-broken row in results.tsv, on resume")
def _(tmp: Path) -> list[str]:
    root = resumable(tmp)
    with open(root / "results.tsv", "a") as f:
        f.write("a1b2c3d\t0.25\tkeep\n")
    return run_in(root)


@case("repository", "results.tsv with an unknown status, on resume")
def _(tmp: Path) -> list[str]:
    root = resumable(tmp)
    with open(root / "results.tsv", "a") as f:
        f.write("a1b2c3d\t0.25\t0.0\tmaybe\tsomething\n")
    return run_in(root)


@case("repository", "results.tsv without its header, on resume")
def _(tmp: Path) -> list[str]:
    root = resumable(tmp)
    rows = (root / "results.tsv").read_text().splitlines()[1:]
    (root / "results.tsv").write_text("\n".join(rows) + "\n")
    return run_in(root)


@case("repository", "a corrupted line in .autoresearch/experiments.jsonl, on resume")
def _(tmp: Path) -> list[str]:
    root = resumable(tmp)
    jsonl = root / ".autoresearch" / "experiments.jsonl"
    jsonl.write_bytes(b'{"number": 0, "commit": \n' + jsonl.read_bytes())
    return run_in(root)


@case("repository", "results.tsv made read-only (chattr +i), on resume")
def _(tmp: Path) -> list[str]:
    root = resumable(tmp)
    if subprocess.run(["chattr", "+i", str(root / "results.tsv")], check=False).returncode:
        raise Skip("chattr +i is not available here")
    IMMUTABLE.append(root / "results.tsv")
    return run_in(root)


IMMUTABLE: list[Path] = []


@case("run", "the baseline never prints the metric")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, train='LR = 0.5\nprint("training...")\n'))


@case("run", "the baseline prints nan")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, train='LR = 0.5\nprint("score: nan")\n'))


@case("run", "the baseline crashes (exit 1)")
def _(tmp: Path) -> list[str]:
    crash = 'LR = 0.5\nprint("score: 1")\nraise SystemExit("CUDA error: out of memory")\n'
    return run_in(repo(tmp, train=crash))


@case("run", "the baseline needs a data file that is missing")
def _(tmp: Path) -> list[str]:
    return run_in(repo(tmp, train="LR = 0.5\nopen('data/shard_0000.bin')\nprint('score: 1')\n"))


@case("run", "the baseline runs past run.timeout")
def _(tmp: Path) -> list[str]:
    slow = "LR = 0.5\nimport time\ntime.sleep(30)\nprint('score: 1')\n"
    return run_in(repo(tmp, GOOD.replace("timeout = 30", "timeout = 1"), train=slow))


class Skip(Exception):
    pass


# ---- JSON-RPC requests -----------------------------------------------------------------------

RpcCase = tuple[str, Callable[[Path], tuple[str, object]]]


def rpc_cases() -> list[RpcCase]:
    def plain(method: str, params: object) -> Callable[[Path], tuple[str, object]]:
        return lambda tmp: (method, params)

    def on_repo(method: str, **params: object) -> Callable[[Path], tuple[str, object]]:
        def setup(tmp: Path) -> tuple[str, object]:
            return method, {"root": str(resumable(tmp)), **params}

        return setup

    def fresh(method: str, **params: object) -> Callable[[Path], tuple[str, object]]:
        def setup(tmp: Path) -> tuple[str, object]:
            return method, {"root": str(repo(tmp)), **params}

        return setup

    return [
        ("a request without root", plain("autoresearch/state", {})),
        ("root of the wrong type", plain("autoresearch/state", {"root": 42})),
        ("an unknown parameter", fresh("autoresearch/experiments", page=2)),
        ("a relative root", plain("autoresearch/state", {"root": "my/repo"})),
        ("a root that does not exist", plain("autoresearch/state", {"root": "/nonexistent/x"})),
        ("an unknown method", plain("autoresearch/frobnicate", {"root": "/tmp"})),
        ("start in a directory that is not a repository", lambda tmp: _plain_dir(tmp)),
        ("start with a config that fails validation", _bad_start),
        ("start with loop 0", fresh("autoresearch/start", loop=0)),
        ("start with a tag git cannot use", fresh("autoresearch/start", tag="my tag")),
        ("experiments with a negative offset", on_repo("autoresearch/experiments", offset=-1)),
        ("experiments with limit over 10,000", on_repo("autoresearch/experiments", limit=20000)),
        ("changes without commit or number", on_repo("autoresearch/changes")),
        ("changes of an experiment that does not exist", on_repo("autoresearch/changes", number=7)),
        ("changes of an unknown commit", on_repo("autoresearch/changes", commit="deadbeef")),
        ("fileAt of an unknown commit", on_repo("autoresearch/fileAt", commit="beef", path="a")),
        ("log of an experiment that does not exist", on_repo("autoresearch/log", number=99)),
        ("log with a negative max_bytes", on_repo("autoresearch/log", max_bytes=-1)),
        ("runExperiment when no manual loop runs", on_repo("autoresearch/runExperiment")),
        (
            "changes of a ref name that leads out of the repository",
            on_repo("autoresearch/changes", commit="refs/heads/" + "../" * 12 + "dev/zero"),
        ),
        (
            "fileAt of a revision expression",
            on_repo("autoresearch/fileAt", commit="HEAD~1", path="train.py"),
        ),
        (
            "log with a tag that climbs out of .autoresearch/runs",
            on_repo("autoresearch/log", tag="../../../secret", number=1),
        ),
        ("start whose scope leaves the repository", _escaping_start),
        ("guidance in a directory that is not a repository", _plain_guidance),
        ("guidance over 1 MiB", fresh("autoresearch/guidance", text="x" * (1024 * 1024 + 1))),
        (
            "runExperiment description over 2 KiB",
            fresh("autoresearch/runExperiment", description="y" * 2049),
        ),
    ]


def _plain_dir(tmp: Path) -> tuple[str, object]:
    (tmp / "plain").mkdir()
    return "autoresearch/start", {"root": str(tmp / "plain")}


def _plain_guidance(tmp: Path) -> tuple[str, object]:
    (tmp / "plain").mkdir()
    return "autoresearch/guidance", {"root": str(tmp / "plain"), "text": "try a lower LR"}


def _escaping_start(tmp: Path) -> tuple[str, object]:
    root = repo(tmp)  # its tracked autoresearch.toml stays as it is
    config = {
        "metric": {"name": "score", "direction": "lower", "pattern": "^score:\\s*(\\S+)"},
        "run": {"command": f"{sys.executable} train.py"},
        "scope": {"files": ["../*"]},
    }
    return "autoresearch/start", {"root": str(root), "config": config}


def _bad_start(tmp: Path) -> tuple[str, object]:
    root = repo(tmp, config=None)
    config = {
        "metric": {"name": "score", "direction": "lower", "pattern": "score: \\S+"},
        "run": {"command": "python3 train.py"},
        "scope": {"files": ["train.py"]},
    }
    return "autoresearch/start", {"root": str(root), "config": config}


# ---- running them ----------------------------------------------------------------------------


def run_cli(argv: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    except Exception as exc:  # a bad input that escapes as a traceback: a bug to report
        return f"UNCAUGHT {type(exc).__name__}: {exc}"
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    message = "\n".join(lines).strip()
    if code == 0 and "autoresearch: warning:" not in message:  # a warning is what they read
        return f"(no error: exit 0) {out.getvalue().strip()[-200:]}"
    return message or f"(exit {code}, nothing on stderr) {out.getvalue().strip()[-300:]}"


def tidy(text: str, tmp: Path) -> str:
    """What changes from one run to the next (paths, pids, commits) by a placeholder."""
    text = text.replace(str(tmp / "repo"), "<repo>").replace(str(tmp), "<tmp>")
    text = text.replace(sys.executable, "python")
    text = re.sub(r"\bpid \d+", "pid <pid>", text)
    return re.sub(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", "<commit>", text)


def run_all() -> list[tuple[str, str, str]]:
    results: list[tuple[str, str, str]] = []
    base = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    try:
        for i, (kind, title, setup) in enumerate(CASES):
            tmp = base / f"c{i}"
            tmp.mkdir()
            environ = dict(os.environ)
            try:
                message = run_cli(setup(tmp))
            except Skip as exc:
                message = f"(skipped: {exc})"
            finally:  # a case may set the environment for its own run only
                os.environ.clear()
                os.environ.update(environ)
            results.append((kind, title, tidy(message, tmp)))
            for holder in HELD:
                holder.release()
            HELD.clear()
        results += run_rpc(base)
    finally:
        for path in IMMUTABLE:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        shutil.rmtree(base, ignore_errors=True)
    return results


def run_rpc(base: Path) -> list[tuple[str, str, str]]:
    results = []
    daemon = Daemon(cwd=base)
    try:
        for i, (title, setup) in enumerate(rpc_cases()):
            tmp = base / f"r{i}"
            tmp.mkdir()
            method, params = setup(tmp)
            try:
                answer = daemon.request(method, params, timeout=90)
                if isinstance(answer, dict) and answer.get("ok") is False:
                    message = f"ok: false, {answer.get('message')}"  # an Ack that says no
                else:
                    message = f"(no error) {json.dumps(answer)[:200]}"
                if method == "autoresearch/start":
                    daemon.request("autoresearch/stop", {"root": params["root"], "now": True})  # type: ignore[index]
            except RpcError as exc:
                message = f"{exc.code}: {exc.message}"
            shown = json.dumps(params)
            if len(shown) > 300:  # a 1 MiB text shown as its size, not as itself
                shown = f"{shown[:200]}... ({len(shown):,} characters)"
            results.append(("request", f"{title}: `{method}` {shown}", message))
            results[-1] = (results[-1][0], tidy(results[-1][1], tmp), tidy(message, tmp))
    finally:
        daemon.close()
    return results


def markdown(results: list[tuple[str, str, str]]) -> str:
    lines = [
        "# Bad inputs and the errors they give",
        "",
        "Generated by `python tests/bench/catalogue.py` (each input run for real: the CLI for",
        "configs and repository states, a real `autoresearch serve` for JSON-RPC requests).",
        "The message is what the user sees after `autoresearch:` in a terminal, or in VS Code's",
        "notification; request errors show the JSON-RPC error code (-32602 invalid params,",
        "-32001 the repository said no, -32601 unknown method).",
        "",
        "| # | kind | bad input | what the user sees |",
        "| --- | --- | --- | --- |",
    ]
    for i, (kind, title, message) in enumerate(results, start=1):
        cell = message.replace("|", "\\|").replace("\n", "<br>")
        lines.append(f"| {i} | {kind} | {title.replace('|', chr(92) + '|')} | {cell} |")
    return "\n".join(lines) + "\n"


def problems(results: list[tuple[str, str, str]]) -> list[str]:
    bad = []
    for _, title, message in results:
        ours = message.split("End of run.log")[0]  # what follows is the command's own output
        if message.startswith(("UNCAUGHT", "(no error", "(exit")) or "Traceback" in ours:
            bad.append(f"{title}: {message}")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description="run every bad input, write BAD_INPUTS.md")
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    os.environ.pop("AUTORESEARCH_TEST_PAUSE_AT", None)
    started = time.monotonic()
    results = run_all()
    for _, title, message in results:
        print(f"- {title}\n    -> {message}")
    bad = problems(results)
    print(f"\n{len(results)} bad inputs in {time.monotonic() - started:.0f} s; {len(bad)} problems")
    for line in bad:
        print(f"  PROBLEM {line}")
    if not args.check:
        OUTPUT.write_text(markdown(results), encoding="utf-8")
        print(f"wrote {OUTPUT}")
    return 1 if bad else 0


if __name__ == "__main__":
    assert threading.current_thread() is threading.main_thread()
    sys.exit(main())
