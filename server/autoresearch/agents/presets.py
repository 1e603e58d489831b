"""Coding-agent CLIs as data: which argv runs each one non-interactively, and its placeholders.

A preset is an argv template (no shell involved); `custom` (or `agent.command`) is a shell
string. Placeholders are `{name}`; in a shell string every value is shell-quoted when
substituted. Each preset says which version and doc its flags were checked against.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

import msgspec

from ..config import Agent

CUSTOM = "custom"

# What each placeholder becomes; the names are the whole vocabulary (anything else is an error).
PLACEHOLDERS: dict[str, str] = {
    "prompt_file": "absolute path of .autoresearch/prompt.md",
    "prompt": "the prompt text itself",
    "root": "absolute path of the repository",
    "description_file": "absolute path where the agent writes its one-line description",
    "files": "the in-scope files (one argv item each, or space-separated and quoted in a shell)",
    "number": "the number the experiment will get",
}

# `{name}` not preceded by `$`, so `${HOME}` and awk's `{print $1}` stay shell text.
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TemplateError(ValueError):
    """A command template the daemon cannot fill in, worded with the fix."""


class Preset(msgspec.Struct, frozen=True):
    argv: tuple[str, ...]
    # One line for the wizard and the README.
    note: str
    # The version and documentation the flags were checked against.
    checked: str
    # How to install the binary, for the "not found" message.
    install: str
    # Extra environment for the agent process.
    env: dict[str, str] = msgspec.field(default_factory=dict)
    # What the program writes in the repository for itself (caches): ignored, never blamed.
    caches: tuple[str, ...] = ()
    # Words in its output that mean it cannot work here (no login, a rejected key): the call
    # ends at once and the loop stops with them instead of retrying until the timeout.
    unavailable: tuple[str, ...] = ()
    # How its output reports what a call cost (usage.parse_cost): "" when it does not.
    cost: str = ""
    # Its own quick status or login check, run before the baseline and watched for the
    # `unavailable` words (a failing exit says the same); skipped when one of `check_unless`
    # is set in the environment (a key the check does not know about).
    check: tuple[str, ...] = ()
    check_unless: tuple[str, ...] = ()
    # A pattern the check's output must match (it lists what it found), "" for none.
    check_ok: str = ""


# Said by many programs when the key is missing or rejected.
AUTH_FAILURES = (
    "401 Unauthorized",
    "Invalid API key",
    "invalid x-api-key",
    "Incorrect API key",
    "authentication_error",
    "API key not valid",
)


PRESETS: dict[str, Preset] = {
    "claude": Preset(
        # JSON output: the result line carries the call's cost (total_cost_usd, usage).
        argv=(
            "claude",
            "-p",
            "{prompt}",
            "--permission-mode",
            "acceptEdits",
            "--output-format",
            "json",
        ),
        note="Claude Code in print mode; file edits are accepted, shell commands are not.",
        checked="Claude Code 2.1.197, run on a scripted API (tests/server/test_real_agents.py)",
        install="npm install -g @anthropic-ai/claude-code",
        unavailable=('"loggedIn": false', "Not logged in", "Please run /login", *AUTH_FAILURES),
        cost="claude-json",
        check=("claude", "auth", "status"),
    ),
    "codex": Preset(
        # --json: its events carry each turn's token counts.
        argv=("codex", "exec", "--json", "--sandbox", "workspace-write", "{prompt}"),
        note="Codex CLI non-interactive mode; may write inside the repository only.",
        checked="Codex CLI 0.5x-0.14x (developers.openai.com/codex/noninteractive;"
        " --full-auto is deprecated there in favour of --sandbox workspace-write)",
        install="npm install -g @openai/codex",
        # Without network it would wait for it until agent.timeout.
        unavailable=("Not logged in", "waiting for network", *AUTH_FAILURES),
        cost="codex-jsonl",
        # `codex exec` also takes these keys, which `login status` does not report.
        check=("codex", "login", "status"),
        check_unless=("CODEX_API_KEY", "OPENAI_API_KEY"),
    ),
    "aider": Preset(
        argv=(
            "aider",
            "--message-file",
            "{prompt_file}",
            "--yes-always",
            # The daemon commits; aider must not, nor touch .gitignore.
            "--no-auto-commits",
            "--no-dirty-commits",
            "--no-gitignore",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-analytics",
            "--no-pretty",
            "--no-fancy-input",
            "--no-suggest-shell-commands",
            "--no-show-model-warnings",
            # .autoresearch/ is gitignored: without this aider refuses to write the description.
            "--add-gitignore-files",
            # Its history files would otherwise land in the repository as untracked files.
            "--chat-history-file",
            ".autoresearch/agents/aider.chat.history.md",
            "--input-history-file",
            ".autoresearch/agents/aider.input.history",
            "{files}",
            "{description_file}",
        ),
        note="aider with the in-scope files in the chat; its own git commits are off.",
        checked="aider 0.86.2, run against a scripted API (tests/server/test_real_agents.py)",
        install="python -m pip install aider-install && aider-install",
        caches=(".aider.tags.cache.v4/",),
        cost="aider-text",
        # Starts up (model, key) and exits; no --yes-always, so no login is ever accepted.
        check=(
            "aider",
            "--exit",
            "--no-check-update",
            "--no-show-release-notes",
            "--no-analytics",
            "--no-gitignore",
            "--no-pretty",
            "--no-fancy-input",
            "--no-show-model-warnings",
            "--chat-history-file",
            ".autoresearch/agents/aider.chat.history.md",
            "--input-history-file",
            ".autoresearch/agents/aider.input.history",
        ),
        # Without a key aider offers an OpenRouter login (a browser): stop before it.
        unavailable=("No LLM model was specified and no API keys", *AUTH_FAILURES),
    ),
    "gemini": Preset(
        # --skip-trust: headless gemini refuses a folder nobody trusted interactively (exit 55).
        # JSON output: its stats carry the call's token counts.
        argv=(
            "gemini",
            "--skip-trust",
            "--approval-mode",
            "auto_edit",
            "--output-format",
            "json",
            "-p",
            "{prompt}",
        ),
        note="Gemini CLI headless mode; edits are auto-approved, shell commands are not.",
        checked="Gemini CLI 0.40 (geminicli.com/docs: headless mode, CLI reference;"
        " --yolo is deprecated there in favour of --approval-mode)",
        install="npm install -g @google/gemini-cli",
        env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
        cost="gemini-json",
        unavailable=(
            "Please set an Auth method",
            "you must specify the GEMINI_API_KEY",
            "Invalid auth method selected",
            *AUTH_FAILURES,
        ),
    ),
    "opencode": Preset(
        # JSON events: each step's cost and tokens.
        argv=("opencode", "run", "--format", "json", "{prompt}"),
        note="OpenCode non-interactive run; permissions granted through OPENCODE_PERMISSION.",
        checked="OpenCode 1.x (opencode.ai/docs: cli#run, permissions). The run flag for"
        " auto-approval changed name across 1.x (--dangerously-skip-permissions, then --auto);"
        " the environment variable works in all of them",
        install="npm install -g opencode-ai",
        # Edits only: shell commands and web fetches are refused.
        env={"OPENCODE_PERMISSION": '{"edit": "allow", "bash": "deny", "webfetch": "deny"}'},
        unavailable=AUTH_FAILURES,
        cost="opencode-jsonl",
        # Without a provider it falls back to a free hosted model and, offline, waits forever.
        check=("opencode", "auth", "list"),
        check_ok=r"[1-9][0-9]* (credential|environment variable)",
    ),
}


class Values(msgspec.Struct, frozen=True):
    """What the placeholders stand for in one iteration."""

    prompt_file: str
    prompt: str
    root: str
    description_file: str
    files: tuple[str, ...]
    number: int


class Resolved(msgspec.Struct, frozen=True):
    """The command an Agent config stands for: an argv template or a shell string, and the
    preset it comes from (its environment, caches, unavailable words, cost format, check)."""

    name: str
    template: tuple[str, ...] | str
    # An empty preset for a custom command.
    preset: Preset

    @property
    def shell(self) -> bool:
        return isinstance(self.template, str)


# A custom command's: nothing known about the program.
_NO_PRESET = Preset(argv=(), note="", checked="", install="")


def resolve(agent: Agent) -> Resolved:
    """The template for `agent` (kind "command"). Raises TemplateError naming the fix."""
    preset_name = agent.preset or CUSTOM
    if preset_name != CUSTOM and preset_name not in PRESETS:
        raise TemplateError(
            f'agent.preset "{preset_name}" is not a known preset. Use one of'
            f" {', '.join([*PRESETS, CUSTOM])} (custom needs agent.command)."
        )
    preset = PRESETS.get(preset_name, _NO_PRESET)
    if agent.command is not None and agent.command.strip():
        # A command overrides the preset's argv but keeps the rest (a shell string runs no
        # status check: the command may not be the preset's program).
        check_placeholders(agent.command, "agent.command")
        return Resolved(preset_name, agent.command, preset)
    if preset_name == CUSTOM:
        raise TemplateError(
            'agent.preset is "custom" but agent.command is empty. Write the command that runs'
            ' your agent, e.g. command = "my-agent --prompt-file {prompt_file}".'
        )
    for item in preset.argv:
        check_placeholders(item, f"preset {preset_name}")
    return Resolved(preset_name, preset.argv, preset)


def check_placeholders(text: str, where: str) -> list[str]:
    """The placeholder names in `text`; an unknown one raises TemplateError listing the valid."""
    names = _PLACEHOLDER.findall(text)
    for name in names:
        if name not in PLACEHOLDERS:
            valid = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
            raise TemplateError(
                f"{where}: unknown placeholder {{{name}}}. Valid placeholders: {valid}."
            )
    return names


def render_argv(template: Sequence[str], values: Values) -> list[str]:
    """Fill an argv template. An item that is exactly `{files}` becomes one item per file."""
    argv: list[str] = []
    for item in template:
        if item == "{files}":
            argv.extend(values.files)
            continue
        argv.append(_PLACEHOLDER.sub(lambda m: _raw(m.group(1), values), item))
    return argv


def render_shell(template: str, values: Values) -> str:
    """Fill a shell string, each value shell-quoted so the text reaches the agent unchanged."""
    check_placeholders(template, "agent.command")
    return _PLACEHOLDER.sub(lambda m: _quoted(m.group(1), values), template)


def _raw(name: str, values: Values) -> str:
    if name not in PLACEHOLDERS:  # checked in resolve(); kept for direct callers
        check_placeholders("{" + name + "}", "template")
    if name == "files":
        return " ".join(values.files)
    return str(getattr(values, name))


def _quoted(name: str, values: Values) -> str:
    if name == "files":
        return " ".join(shlex.quote(f) for f in values.files)
    if name == "number":
        return str(values.number)
    return shlex.quote(_raw(name, values))
