"""The `editor` proposer: the editor's own chat model (VS Code's Language Model API) edits.

Each call builds the prompt the coding agents get plus the editable files' contents and the
reply format, and asks the client (a daemon -> VS Code request, `ask`) to send it to the model
chosen in the wizard. The reply's edits are applied here, to in-scope files only
(reply_edits); a reply that edits nothing or breaks the format comes back as an error the next
call is told. No client, no model or consent refused stops the loop (AgentUnavailable); the
wait for the client is bounded by agent.timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..experiment import Experiment
from ..prompt import PROMPT_FILE, build_prompt, fence
from ..protocol import EditorEditParams, EditorEditResult
from . import reply_edits
from .base import AgentUnavailable, EditContext, EditOutcome
from .command import AGENTS_DIR, free_log_path, scope_files

# ask(params, timeout_s, cancel) -> the client's answer, or None when cancelled. Raises
# EditorUnreachable when no answer can come (no client, timeout, an error answer).
EditorAsk = Callable[[EditorEditParams, float, threading.Event], EditorEditResult | None]

# Bounds on the files shown to the model, so the prompt stays a prompt.
MAX_FILE_CHARS = 60_000
MAX_FILES_CHARS = 200_000
_OUTPUT_TAIL = 2_000


class EditorUnreachable(RuntimeError):
    """The client gave no answer (none connected, none in time, or an error response)."""


PROBLEMS = {
    "no_window": "no VS Code window is connected to answer for the editor's model",
    "no_model": "VS Code has no chat model of that vendor/family",
    "consent": "the user refused this extension's use of the language model",
    "failed": "the editor's language model request failed",
}


def _not_here() -> str:
    return (
        'agent.kind "editor" uses the editor\'s own language model, so it runs only inside'
        " VS Code (the daemon the extension starts). To fix: start the loop from VS Code's"
        " Start Loop, or choose another agent.kind (command, sweep) for the terminal."
    )


class EditorProposer:
    name = "editor"

    def __init__(self, config: Config, root: Path, ask: EditorAsk | None) -> None:
        self.config = config
        self.root = root.resolve()
        self.ask = ask

    def preflight(self) -> None:
        if self.ask is None:
            raise AgentUnavailable(_not_here())

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        if self.ask is None:
            raise AgentUnavailable(_not_here())
        if cancel.is_set():
            return EditOutcome(error="agent cancelled")
        started = time.monotonic()
        root = ctx.root.resolve()
        agent = ctx.config.agent
        editable = scope_files(root, ctx.config.scope.files, ctx.config.scope.off_limits)
        shown: dict[str, str | None] = {}
        prompt = editor_prompt(ctx, root, editable, shown)
        (root / PROMPT_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / PROMPT_FILE).write_text(prompt, encoding="utf-8")
        params = EditorEditParams(
            root=str(root),
            vendor=agent.vendor or "",
            family=agent.family,
            prompt=prompt,
            number=ctx.number,
            attempt=ctx.attempt,
        )
        model = f"{agent.vendor}/{agent.family}" if agent.family else f"{agent.vendor}"
        try:
            answer = self.ask(params, agent.timeout, cancel)
        except EditorUnreachable as exc:
            raise AgentUnavailable(
                f"The editor's model ({model}) could not be asked: {exc}. To fix: keep the"
                " VS Code window open while the loop runs, or raise agent.timeout."
            ) from None
        if answer is None:
            # Cancelled (the loop stops): nothing to apply.
            return EditOutcome(error="agent cancelled", agent_s=time.monotonic() - started)
        if answer.problem == "failed":
            # Like an agent that exited non-zero (quota, network): tried again, then stopped.
            return EditOutcome(
                error=f"the editor's model ({model}) failed: {answer.message or 'no reason given'}",
                agent_s=time.monotonic() - started,
            )
        if answer.problem is not None:
            what = PROBLEMS.get(answer.problem, answer.problem)
            detail = f": {answer.message}" if answer.message else ""
            raise AgentUnavailable(
                f"The editor's model ({model}) cannot edit: {what}{detail}. To fix: "
                + _fix(answer.problem)
            )
        # A refused reply's log stays beside the next call's, as a failed agent call's does.
        log_path = free_log_path(root / AGENTS_DIR, ctx.number, ctx.attempt)
        log_path.write_text(
            f"model: {answer.model or model}\n\n{answer.text}", encoding="utf-8", errors="replace"
        )
        outcome = EditOutcome(
            agent_s=time.monotonic() - started,
            log=str(log_path.relative_to(root)),
            tokens=_tokens(answer.tokens_in, answer.tokens_out),
        )
        parsed = reply_edits.parse(answer.text)
        outcome.description = parsed.description
        plan = reply_edits.plan(root, parsed, editable, ctx.config.scope.off_limits, shown)
        if plan.problems:
            outcome.error = "the model's reply was not applied (" + "; ".join(plan.problems) + ")"
            outcome.output = answer.text[-_OUTPUT_TAIL:]
            return outcome
        if not plan.contents:
            outcome.error = (
                "the model's reply edits nothing (no SEARCH/REPLACE block and no whole file"
                " that changes an editable file)"
            )
            outcome.output = answer.text[-_OUTPUT_TAIL:]
            return outcome
        try:
            reply_edits.write(root, plan.contents)
        except OSError as exc:
            outcome.error = f"the model's edit could not be written: {exc}"
        return outcome

    def observe(self, experiment: Experiment) -> None:
        """Nothing to learn: each call is fresh and the prompt carries the history."""


def _fix(problem: str) -> str:
    if problem == "no_model":
        return (
            "install or sign in to a chat model provider (e.g. GitHub Copilot Chat), or pick"
            " another model in Start Loop (agent.vendor / agent.family in autoresearch.toml)."
        )
    if problem == "consent":
        return "start the loop again and allow Autoresearch to use the model when VS Code asks."
    if problem == "no_window":
        return "open the repository in VS Code and start the loop there."
    return "check the model provider (sign-in, quota, network), then start the loop again."


def editor_prompt(
    ctx: EditContext, root: Path, editable: list[str], shown: dict[str, str | None] | None = None
) -> str:
    """The coding agents' prompt, then the files' contents and how to reply with edits.
    `shown` gets what the model is shown of each file (None: absent), so a file changed while
    the model answers (a person's edit) is not overwritten by the reply."""
    shown = {} if shown is None else shown
    base = build_prompt(ctx)
    parts = [
        base.rstrip(),
        "## Reply format (this replaces the rules about writing files)",
        REPLY_RULES,
    ]
    parts.append("## The editable files now")
    budget = MAX_FILES_CHARS
    for rel in editable:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:
            shown[rel] = None
            parts.append(f"{rel} (does not exist yet: create it with a whole-file block)")
            continue
        except (OSError, UnicodeDecodeError):
            parts.append(f"{rel} (not readable as UTF-8 text: leave it alone)")
            continue
        if len(text) > min(MAX_FILE_CHARS, budget):
            parts.append(f"{rel} ({len(text)} characters: too long to show; leave it alone)")
            continue
        budget -= len(text)
        shown[rel] = text
        parts.append(f"{rel}\n{fence(text.rstrip(chr(10)))}")
    return "\n\n".join(parts) + "\n"


REPLY_RULES = """You cannot edit files or run commands: your reply is applied for you. Reply with:
1. A first line `DESCRIPTION: <one line describing the change>` (instead of the description file).
2. Your edits as SEARCH/REPLACE blocks, each after a line naming the file:

path/to/file.py
<<<<<<< SEARCH
exact lines copied from the file
=======
the lines that replace them
>>>>>>> REPLACE

The SEARCH text must match the file exactly (whitespace included). To rewrite a whole file,
give its path on a line, then the full new contents in a fenced block. Edit only the files
listed below; any other path makes the whole reply rejected."""


def _tokens(prompt: int | None, reply: int | None) -> int | None:
    """The call's tokens, prompt and reply together, as the coding agents' are counted."""
    known = [n for n in (prompt, reply) if n is not None]
    return sum(known) if known else None
