"""A scripted language-model server on 127.0.0.1 for the real coding-agent programs.

It speaks the APIs the presets' programs call (Anthropic Messages, OpenAI Chat Completions and
Responses, Gemini generateContent), streamed the way each program asks, and plays one script:
halve LEARNING_RATE in train.py and write a one-line description into the description file.
Tool-calling programs get the calls as tools (read first where the program insists), aider gets
its "whole file" edit format. Every request is appended to `requests.jsonl` for debugging.

Run as a process: `python model_server.py ROOT PORT_FILE [LOG]`; it writes its port to
PORT_FILE once it listens and serves until killed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DESCRIPTION = ".autoresearch/description.txt"
_RATE = re.compile(r"^LEARNING_RATE = ([0-9.eE+-]+)(.*)$", re.M)
# A request that carries the loop's prompt (the others are a program's side calls: titles,
# summaries, quota probes), answered with plain text.
_PROMPT_MARK = "write ONE line describing the change"


class Script:
    """The edit every program is asked to make, computed from the file as it is now."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def train(self) -> Path:
        return self.root / "train.py"

    @property
    def description_file(self) -> str:
        return str(self.root / DESCRIPTION)

    def change(self) -> tuple[str, str, str]:
        """(old line, new line, description) halving the learning rate: whole lines."""
        text = self.train.read_text()
        match = _RATE.search(text)
        assert match, "train.py has no LEARNING_RATE line"
        new = f"{float(match.group(1)) / 2:.6g}"
        return match.group(0), f"LEARNING_RATE = {new}{match.group(2)}", f"halve LR to {new}"

    def new_text(self) -> tuple[str, str]:
        old_line, new_line, description = self.change()
        return self.train.read_text().replace(old_line, new_line, 1), description


def _text_of(value: Any) -> str:
    """Every string inside a JSON value, joined: enough to look for the loop's prompt."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(_text_of(v) for v in value.values())
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script: Script
    log_path: Path
    lock = threading.Lock()

    def log_message(self, *_: object) -> None:  # quiet: requests go to requests.jsonl
        pass

    # ---- plumbing ------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(size) if size else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._chunked()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps({"path": self.path, "body": body}) + "\n")
        return body if isinstance(body, dict) else {}

    def _chunked(self) -> bytes:
        data = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if not size:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def _json(self, value: Any, status: int = 200) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse(self, events: list[tuple[str | None, Any]]) -> None:
        out = b""
        for name, data in events:
            if name:
                out += f"event: {name}\n".encode()
            payload = data if isinstance(data, str) else json.dumps(data)
            out += f"data: {payload}\n\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:  # model lists and health probes
        path = self.path.split("?")[0]
        with self.lock, open(self.log_path, "a") as f:
            f.write(json.dumps({"get": self.path}) + "\n")
        if self.headers.get("Upgrade", "").lower() == "websocket" or "client_version" in self.path:
            # Codex: no WebSocket transport here (it falls back to HTTPS), and no model
            # catalog (it uses the one it ships).
            self._json({"error": {"message": "not here"}}, 404)
        elif path.endswith("/models"):
            self._json({"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._json({})

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        path = self.path.split("?")[0]
        if path.endswith("/messages/count_tokens"):
            self._json({"input_tokens": 100})
        elif path.endswith("/messages"):
            self._anthropic(body)
        elif path.endswith("/chat/completions"):
            self._chat(body)
        elif path.endswith("/responses"):
            self._responses(body)
        elif ":streamGenerateContent" in path or ":generateContent" in path:
            self._gemini(body, stream=":streamGenerateContent" in path)
        elif ":countTokens" in path:
            self._json({"totalTokens": 100})
        else:
            self._json({"error": {"message": f"not scripted: {path}"}}, 404)

    # ---- Anthropic Messages (Claude Code) ---------------------------------------------------

    def _anthropic(self, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        tools = {t.get("name") for t in body.get("tools") or []}
        results = sum(
            1
            for m in messages
            if m.get("role") == "user"
            and isinstance(m.get("content"), list)
            and any(b.get("type") == "tool_result" for b in m["content"])
        )
        blocks = [_tool(name, args) for name, args in self._calls(tools, messages, results)]
        blocks = blocks or [{"type": "text", "text": "Done."}]
        stop = "tool_use" if blocks[0]["type"] == "tool_use" else "end_turn"
        usage = {"input_tokens": 1000, "output_tokens": 50}
        message = {
            "id": f"msg_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "scripted"),
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            self._json(message)
            return
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for i, block in enumerate(blocks):
            if block["type"] == "tool_use":
                first = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            else:
                first = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            events += [
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": first},
                ),
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                ),
                ("content_block_stop", {"type": "content_block_stop", "index": i}),
            ]
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 50},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._sse(events)

    # ---- OpenAI Chat Completions (aider, OpenCode) ------------------------------------------

    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages") or []
        tools = {(t.get("function") or {}).get("name") for t in body.get("tools") or []} - {None}
        prompt = _PROMPT_MARK in _text_of(messages)
        calls: list[dict[str, Any]] = []
        text = "Done."
        if prompt and tools:
            calls = self._chat_calls(tools, messages)
        elif prompt and not _answered(messages):
            diff = "SEARCH/REPLACE" in _text_of(messages[:1])
            text = self._search_replace() if diff else self._whole_format()
        model = body.get("model", "scripted")
        usage = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}
        ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else text}
            if calls:
                message["tool_calls"] = calls
            self._json(
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )
            return

        def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
            }

        events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}))]
        if calls:
            for i, call in enumerate(calls):
                events.append((None, chunk({"tool_calls": [{**call, "index": i}]})))
        else:
            events.append((None, chunk({"content": text})))
        events.append((None, chunk({}, finish)))
        last = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        events += [(None, last), (None, "[DONE]")]
        self._sse(events)

    def _calls(
        self, tools: set[str], messages: list[dict[str, Any]], results: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """The tool calls of the script's step `results`: read train.py, then edit it and
        write the description; nothing once done. Claude Code names its tools Read/Edit/Write
        with snake_case arguments, OpenCode read/edit/write with camelCase ones."""
        if _PROMPT_MARK not in _text_of(messages):
            return []
        if {"Read", "Edit", "Write"} <= tools:
            read, edit, write = "Read", "Edit", "Write"
            path, old_key, new_key = "file_path", "old_string", "new_string"
        elif {"read", "edit", "write"} <= tools:
            read, edit, write = "read", "edit", "write"
            path, old_key, new_key = "filePath", "oldString", "newString"
        else:
            return []
        train = str(self.script.train)
        if results == 0:
            return [(read, {path: train})]
        if results == 1:
            old, new, description = self.script.change()
            return [
                (edit, {path: train, old_key: old, new_key: new}),
                (write, {path: self.script.description_file, "content": description + "\n"}),
            ]
        return []

    def _chat_calls(self, tools: set[str], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = sum(1 for m in messages if m.get("role") == "tool")
        return [
            {
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for name, args in self._calls(tools, messages, results)
        ]

    def _whole_format(self) -> str:
        """aider's "whole" edit format: each file's path, then its full new text fenced."""
        text, description = self.script.new_text()
        return (
            f"Halving the learning rate.\n\ntrain.py\n```python\n{text}```\n\n"
            f"{DESCRIPTION}\n```\n{description}\n```\n"
        )

    def _search_replace(self) -> str:
        """aider's "diff" edit format (what it asks of the models it knows, gpt-4o, ...)."""
        old, new, description = self.script.change()
        return (
            f"Halving the learning rate.\n\ntrain.py\n```python\n<<<<<<< SEARCH\n{old}\n"
            f"=======\n{new}\n>>>>>>> REPLACE\n```\n\n{DESCRIPTION}\n```\n<<<<<<< SEARCH\n"
            f"=======\n{description}\n>>>>>>> REPLACE\n```\n"
        )

    # ---- OpenAI Responses (Codex) -----------------------------------------------------------

    def _responses(self, body: dict[str, Any]) -> None:
        items = body.get("input") or []
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        tools = _response_tools(body.get("tools") or [])
        for item in items:  # newer codex sends its tools as an input item
            if item.get("type") == "additional_tools":
                tools.update(_response_tools(item.get("tools") or []))
        done = any(
            i.get("type") in ("function_call_output", "custom_tool_call_output") for i in items
        )
        ident = f"resp_{uuid.uuid4().hex[:12]}"
        output: list[dict[str, Any]] = []
        scripted = _PROMPT_MARK in _text_of(items) and not done
        if scripted and "apply_patch" not in tools and "exec_command" in tools:
            # Codex takes `apply_patch <<EOF` given to its shell tool as a patch of its own.
            patch = self._patch()
            call = f"call_{uuid.uuid4().hex[:12]}"
            command = f"apply_patch <<'EOF'\n{patch}EOF\n"
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{call}",
                    "call_id": call,
                    "name": "exec_command",
                    "arguments": json.dumps({"cmd": command}),
                    "status": "completed",
                }
            )
        elif scripted and "apply_patch" in tools:
            patch = self._patch()
            call = f"call_{uuid.uuid4().hex[:12]}"
            if tools["apply_patch"] == "custom":
                output.append(
                    {
                        "type": "custom_tool_call",
                        "id": f"ctc_{call}",
                        "call_id": call,
                        "name": "apply_patch",
                        "input": patch,
                        "status": "completed",
                    }
                )
            else:
                output.append(
                    {
                        "type": "function_call",
                        "id": f"fc_{call}",
                        "call_id": call,
                        "name": "apply_patch",
                        "arguments": json.dumps({"input": patch}),
                        "status": "completed",
                    }
                )
        else:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{ident}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
                }
            )
        usage = {
            "input_tokens": 1000,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 50,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 1050,
        }
        response = {
            "id": ident,
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": body.get("model", "scripted"),
            "output": output,
            "usage": usage,
        }
        if not body.get("stream"):
            self._json(response)
            return
        events: list[tuple[str | None, Any]] = [
            (
                "response.created",
                {
                    "type": "response.created",
                    "response": {**response, "status": "in_progress", "output": []},
                },
            ),
        ]
        for index, item in enumerate(output):
            events.append(
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": index, "item": item},
                )
            )
        events.append(("response.completed", {"type": "response.completed", "response": response}))
        self._sse(events)

    def _patch(self) -> str:
        """Codex's apply_patch: the edit of train.py and the new description file."""
        old, new, description = self.script.change()
        return (
            "*** Begin Patch\n*** Update File: train.py\n@@\n"
            f"-{old}\n+{new}\n*** Add File: {DESCRIPTION}\n+{description}\n*** End Patch\n"
        )

    # ---- Gemini generateContent (Gemini CLI) ------------------------------------------------

    def _gemini(self, body: dict[str, Any], stream: bool) -> None:
        contents = body.get("contents") or []
        tools = {
            f.get("name")
            for t in body.get("tools") or []
            for f in t.get("functionDeclarations") or []
        }
        results = sum(
            1 for c in contents if any("functionResponse" in part for part in c.get("parts") or [])
        )
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": name, "args": args}}
            for name, args in self._gemini_calls(tools, contents, results)
        ] or [{"text": "Done."}]
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema:  # a side call (its router, its next-speaker check) wants JSON
            parts = [{"text": json.dumps(_fill(schema))}]
        response = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": 1000,
                "candidatesTokenCount": 50,
                "totalTokenCount": 1050,
            },
            "modelVersion": "scripted",
        }
        if stream:
            self._sse([(None, response)])
        else:
            self._json(response)

    def _gemini_calls(
        self, tools: set[str], contents: list[dict[str, Any]], results: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """Gemini CLI's tools: read_file, then replace in train.py and write_file."""
        if _PROMPT_MARK not in _text_of(contents) or not {"replace", "write_file"} <= tools:
            return []
        train = str(self.script.train)
        if results == 0:
            return [("read_file", {"file_path": train})]
        if results == 1:
            old, new, description = self.script.change()
            return [
                (
                    "replace",
                    {
                        "file_path": train,
                        "old_string": old,
                        "new_string": new,
                        "instruction": "halve the learning rate",
                    },
                ),
                (
                    "write_file",
                    {"file_path": self.script.description_file, "content": description + "\n"},
                ),
            ]
        return []


def _response_tools(tools: list[dict[str, Any]]) -> dict[str, str]:
    """Tool name -> type of a Responses request, namespaces opened."""
    found: dict[str, str] = {}
    for tool in tools:
        if tool.get("type") == "namespace":
            found.update(_response_tools(tool.get("tools") or []))
        elif tool.get("name"):
            found[tool["name"]] = tool.get("type", "")
    return found


def _fill(schema: dict[str, Any]) -> Any:
    """A value that fits a JSON schema: the first enum value, a small number, "ok"."""
    kind = str(schema.get("type", "object")).lower()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        return {k: _fill(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 30
    if kind == "boolean":
        return False
    return "ok"


def _answered(messages: list[dict[str, Any]]) -> bool:
    """An assistant message follows the prompt: a reflection or a follow-up, not the task."""
    marks = [i for i, m in enumerate(messages) if _PROMPT_MARK in _text_of(m.get("content"))]
    return bool(marks) and any(m.get("role") == "assistant" for m in messages[marks[-1] :])


def _tool(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}", "name": name, "input": args}


def main() -> None:
    root, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    log = Path(sys.argv[3]) if len(sys.argv) > 3 else port_file.with_name("requests.jsonl")
    Handler.script = Script(root)
    Handler.log_path = log
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
