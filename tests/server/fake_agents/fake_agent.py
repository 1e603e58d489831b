#!/usr/bin/env python3
"""A stand-in for a coding-agent CLI in non-interactive mode, well-behaved or not.

Takes the prompt like the real tools do (`-p TEXT_OR_FILE`, `--message-file FILE`, or a
positional as in `codex exec PROMPT` / `opencode run PROMPT`), reads the editable and off-limits
files from it, and acts out one behaviour chosen by `--mode` or $FAKE_AGENT_MODE:

  good            edit a constant in the first editable file, write the description
  worse           edit the constant the other way (the metric gets worse: a discard)
  bigger          like good, a bigger step (another change that also improves the metric)
  reworker        like good; when the prompt says the guard failed, also add GUARD_OK = 1
  fixer           remove what `syntax` added (a crash retry's fix), then edit like good
  out_of_scope    also edit a tracked file outside scope and create an untracked file
  evaluator       also edit the first off-limits file
  committer       edit, then `git commit -a`
  brancher        switch to a new branch, then edit
  stasher         edit, then `git stash`
  results_deleter edit and delete results.tsv
  merge_state     commit on a side branch and on HEAD, then merge: a conflict in progress
  hang            sleep forever, with a forked child that sleeps too (--pid-file records both)
  escape          edit, start a setsid'd grandchild that sleeps forever, exit 0
  chatty          print --mb megabytes (default 50), then edit
  fail            print an error and exit 1
  logged_out      print "Not logged in · Please run /login", then wait as for a login
  cache           like good, and write a cache in the repository as aider does
  syntax          edit so that the file no longer parses
  noop            change nothing
  args            write argv, the prompt and AUTORESEARCH_* env as JSON to --out

--modes-file FILE scripts a sequence: each call takes (and removes) the first line of FILE as its
mode, falling back to --mode once FILE is empty. --keep-prompts DIR copies each call's prompt to
DIR/<call>.md (1, 2, ...), so a test can read every prompt of a run, not only the last one.
--ignore-term makes the hanging processes ignore SIGTERM. Unknown flags are ignored, so a preset's
argv (e.g. `claude -p ... --permission-mode acceptEdits`) can point at this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DESCRIPTION_FILE = ".autoresearch/description.txt"
BROKEN = "\ndef broken(:\n    pass\n"
CONSTANT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*=\s*([-+]?\d[\d_.eE+-]*)\s*(#.*)?$", re.MULTILINE)


# The status checks the presets run before the baseline (claude, codex, aider), answered
# as a logged-in program would; FAKE_AGENT_STATUS=logged-out answers as one without a key.
STATUS_CHECKS = (["auth", "status"], ["login", "status"], ["auth", "list"])


def status_check() -> int | None:
    if sys.argv[1:] not in STATUS_CHECKS and "--exit" not in sys.argv[1:]:
        return None
    if os.environ.get("FAKE_AGENT_STATUS") == "logged-out":
        print('{\n  "loggedIn": false,\n  "authMethod": "none"\n}\nNot logged in', flush=True)
        print("0 credentials", flush=True)
        return 1 if sys.argv[1:] != ["auth", "list"] else 0
    print('{"loggedIn": true, "authMethod": "api_key"}', flush=True)
    print("1 environment variable", flush=True)
    return 0


def main() -> int:
    checked = status_check()
    if checked is not None:
        return checked
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-p", "--prompt", "--print", dest="prompt")
    parser.add_argument("--message-file", "--prompt-file", dest="prompt_file")
    parser.add_argument("--mode", default=os.environ.get("FAKE_AGENT_MODE", "good"))
    parser.add_argument("--file", default=os.environ.get("FAKE_AGENT_FILE"))
    parser.add_argument("--other")
    parser.add_argument("--pid-file", default=os.environ.get("FAKE_AGENT_PID_FILE"))
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--out", default=".autoresearch/agents/fake_args.json")
    parser.add_argument("--modes-file", default=os.environ.get("FAKE_AGENT_MODES_FILE"))
    parser.add_argument("--keep-prompts")
    parser.add_argument("rest", nargs="*")
    args, unknown = parser.parse_known_args()
    prompt = read_prompt(args, [*args.rest, *unknown])
    editable = section(prompt, "## Files you may edit")
    off_limits = section(prompt, "## Off-limits files")
    target = args.file or next(iter(editable), None) or next(iter(existing(args.rest)), None)
    match = re.search(r"to `([^`]*description[^`]*)`", prompt)
    description_file = Path(match.group(1) if match else DEFAULT_DESCRIPTION_FILE)
    mode = next_mode(args.modes_file) or args.mode
    print(f"fake agent: mode {mode}, prompt {len(prompt)} chars, editing {target}", flush=True)
    if args.keep_prompts:
        keep = Path(args.keep_prompts)
        keep.mkdir(parents=True, exist_ok=True)
        (keep / f"{len(list(keep.glob('*.md'))) + 1}.md").write_text(prompt)
    if mode == "args":
        record = {
            "argv": sys.argv[1:],
            "prompt": prompt,
            "cwd": os.getcwd(),
            "stdin_is_tty": sys.stdin.isatty(),
            "stdin": sys.stdin.read() if not sys.stdin.isatty() else "",
            "env": {k: v for k, v in os.environ.items() if k.startswith(("AUTORESEARCH_", "GIT_"))}
            | {k: os.environ[k] for k in ("OPENCODE_PERMISSION", "BROWSER") if k in os.environ},
            "unknown": unknown,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record))
        return 0
    if mode == "noop":
        print("Nothing worth changing.")
        return 0
    if mode == "fail":
        print("Error: the model API returned 401 Unauthorized", file=sys.stderr)
        return 1
    if mode == "hang":
        return hang(args.pid_file, args.ignore_term)
    if mode == "logged_out":
        print("Not logged in · Please run /login", flush=True)
        time.sleep(600)
        return 1
    if mode == "cache":
        cache = Path(".aider.tags.cache.v4")
        cache.mkdir(exist_ok=True)
        (cache / "cache.db").write_bytes(b"SQLite format 3\0")
        mode = "good"
    if mode == "chatty":
        block = (b"thinking about the next experiment... " * 27 + b"\n") * 1024  # ~1 MB
        for _ in range(int(args.mb)):
            sys.stdout.buffer.write(block)
        sys.stdout.flush()
    if target is None:
        print("fake agent: no editable file in the prompt", file=sys.stderr)
        return 2
    if mode == "brancher":
        git("checkout", "-q", "-B", "fake-agent-branch")
    if mode == "merge_state":
        described = merge_conflict(Path(target))
    elif mode == "syntax":
        with open(target, "a") as f:
            f.write(BROKEN)
        described = "add a helper"
    else:
        if mode == "fixer":
            source = Path(target).read_text()
            Path(target).write_text(source.replace(BROKEN, ""))
        factor = {"worse": 1.1, "bigger": 0.5}.get(mode, 0.9)
        described = edit_constant(Path(target), factor)
    if mode == "reworker" and "the guard failed" in prompt:
        with open(target, "a") as f:
            f.write("GUARD_OK = 1\n")
        described += " (guard-safe)"
    if mode == "out_of_scope":
        other = Path(args.other or pick_other(editable, off_limits))
        with open(other, "a") as f:
            f.write("\n# touched by the agent\n")
        Path("agent_notes.txt").write_text("scratch notes\n")
    elif mode == "evaluator":
        victim = Path(args.other or off_limits[0])
        with open(victim, "a") as f:
            f.write("\n# the agent made the evaluation easier\n")
    elif mode == "committer":
        git("commit", "-qam", "agent: my own commit")
    elif mode == "stasher":
        git("stash", "-q")
    elif mode == "results_deleter":
        Path("results.tsv").unlink(missing_ok=True)
    elif mode == "escape":
        escape(args.pid_file)
    description_file.parent.mkdir(parents=True, exist_ok=True)
    description_file.write_text(described + "\n")
    print(f"Done: {described}")
    if "--output-format" in sys.argv:  # as `claude -p --output-format json` ends
        usage = {"input_tokens": 1000, "output_tokens": 50}
        result = {"type": "result", "total_cost_usd": 0.0125, "usage": usage}
        print(json.dumps(result))
    return 0


def read_prompt(args: argparse.Namespace, words: list[str]) -> str:
    if args.prompt_file:
        return Path(args.prompt_file).read_text()
    if args.prompt:
        # `-p FILE` or `-p TEXT` (as `claude -p` and `gemini -p` take it).
        is_path = "\n" not in args.prompt and len(args.prompt) < 4096
        return Path(args.prompt).read_text() if is_path else args.prompt
    # `codex exec PROMPT`, `opencode run PROMPT`: the longest positional is the prompt.
    longest = max(words, key=len, default="")
    return longest if "\n" in longest else ""


def section(prompt: str, title: str) -> list[str]:
    lines = prompt.splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith(title):
            for item in lines[i + 1 :]:
                m = re.match(r"- `([^`]+)`", item)
                if not m:
                    break
                found.append(m.group(1))
    return found


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if Path(p).is_file()]


def next_mode(path: str | None) -> str | None:
    """Pop the first line of a modes file; None when there is no file or it is used up."""
    if not path or not Path(path).exists():
        return None
    lines = Path(path).read_text().splitlines()
    if not lines:
        return None
    Path(path).write_text("".join(line + "\n" for line in lines[1:]))
    return lines[0].strip() or None


def edit_constant(path: Path, factor: float = 0.9) -> str:
    text = path.read_text()
    m = CONSTANT.search(text)
    if m is None:
        path.write_text(text + "\nFAKE_TWEAK = 1\n")
        return "add FAKE_TWEAK"
    name, old = m.group(1), m.group(2)
    value = float(old.replace("_", ""))
    new = repr(round(value * factor, 12)) if value else "1"
    line = f"{name} = {new}" + (f"  {m.group(3)}" if m.group(3) else "")
    path.write_text(text[: m.start()] + line + text[m.end() :])
    return f"{name} {old} -> {new}"


def pick_other(editable: list[str], off_limits: list[str]) -> str:
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    for name in out.split():
        if name not in editable and name not in off_limits and not name.startswith("."):
            return name
    return "README.md"


def merge_conflict(path: Path) -> str:
    branch = git("rev-parse", "--abbrev-ref", "HEAD").strip()
    git("checkout", "-q", "-B", "fake-agent-side")
    path.write_text("SIDE = 1\n" + path.read_text())
    git("commit", "-qam", "side change")
    git("checkout", "-q", branch)
    path.write_text("MAIN = 2\n" + path.read_text())
    git("commit", "-qam", "main change")
    subprocess.run(["git", "merge", "--no-edit", "fake-agent-side"], capture_output=True)
    return "merge two variants"


def hang(pid_file: str | None, ignore_term: bool) -> int:
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        sleep_forever()
    if pid_file:
        Path(pid_file).write_text(f"{os.getpid()} {child}\n")
    print("thinking...", flush=True)
    sleep_forever()
    return 0


def escape(pid_file: str | None) -> None:
    """A grandchild in a session of its own: outside the agent's process group."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if pid_file:
                Path(pid_file).write_text(f"{os.getpid()}\n")
            sleep_forever()
        os._exit(0)
    # Wait for the pid file so the test can look for the grandchild.
    deadline = time.monotonic() + 5
    while pid_file and not Path(pid_file).exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def sleep_forever() -> None:
    while True:
        time.sleep(3600)


def git(*argv: str) -> str:
    return subprocess.run(["git", *argv], capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":
    sys.exit(main())
