"""Crash triage from exit status and log tail: retry, crash, or stop for the environment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from autoresearch.triage import Triage, classify_failure, local_modules, log_tail


def traceback(error: str, frames: tuple[str, ...] = ("/repo/train.py",)) -> str:
    lines = ["step 10 loss 3.2", "Traceback (most recent call last):"]
    for f in frames:
        lines += [f'  File "{f}", line 12, in <module>', "    x = thing()"]
    return "\n".join([*lines, error, ""])


def classify(tail: str, exit_code: int | None = 1, **kw: object) -> Triage:
    result = classify_failure(exit_code, False, tail, metric_found=False, **kw)  # type: ignore[arg-type]
    assert result is not None
    return result


def test_success_is_not_a_failure() -> None:
    assert classify_failure(0, False, "val_loss: 1.0\n", metric_found=True) is None


def test_timeout_wins_over_everything() -> None:
    result = classify_failure(-9, True, "CUDA out of memory", metric_found=False)
    assert result == Triage("timeout", reason="timed out")


@pytest.mark.parametrize(
    "tail",
    [
        traceback("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
        traceback("RuntimeError: CUDA error: out of memory"),
        traceback("MemoryError"),
        "terminate called after throwing an instance of 'std::bad_alloc'",
        "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory",
    ],
)
def test_out_of_memory_is_told_apart(tail: str) -> None:
    result = classify(tail)
    assert result.kind == "oom"
    assert not result.trivial and not result.environment
    assert result.reason.startswith("out of memory")


def test_killed_with_137_and_a_kill_message_is_out_of_memory() -> None:
    assert classify("epoch 3\nKilled\n", exit_code=137).kind == "oom"
    # SIGKILL without any sign of memory is just a kill.
    plain = classify("epoch 3\n", exit_code=-9)
    assert plain.kind == "exit" and "SIGKILL" in plain.reason


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("SyntaxError: invalid syntax", "SyntaxError: invalid syntax"),
        ("IndentationError: unexpected indent", "IndentationError: unexpected indent"),
        ("NameError: name 'lr' is not defined", "NameError: name 'lr' is not defined"),
        ("TypeError: forward() got an unexpected keyword argument 'x'", "TypeError: forward()"),
        ("AttributeError: 'Model' object has no attribute 'head'", "AttributeError: 'Model'"),
        ("ImportError: cannot import name 'Foo' from 'model'", "ImportError: cannot import"),
        ("UnboundLocalError: cannot access local variable 'x'", "UnboundLocalError"),
    ],
)
def test_trivial_code_errors_go_back_to_the_agent(error: str, expected: str) -> None:
    result = classify(traceback(error))
    assert result.kind == "exit"
    assert result.trivial and not result.environment
    assert result.reason.startswith(expected)


def test_error_raised_entirely_inside_a_library_is_not_trivial() -> None:
    frames = ("/usr/lib/python3.11/site-packages/torch/nn/module.py",)
    result = classify(traceback("TypeError: unsupported operand", frames))
    assert result.kind == "exit" and not result.trivial
    assert "TypeError: unsupported operand" in result.reason


def test_compiler_errors_are_trivial() -> None:
    assert classify("kernel.cu:41:7: error: expected ';' after expression\n").trivial
    assert classify("error[E0425]: cannot find value `lr` in this scope\n").trivial


def test_missing_repo_module_is_trivial_missing_package_stops_the_loop() -> None:
    tail = traceback("ModuleNotFoundError: No module named 'model.layers'")
    local = classify(tail, local_modules={"model", "train"})
    assert local.trivial and not local.environment
    third_party = classify(traceback("ModuleNotFoundError: No module named 'einops'"))
    assert third_party.kind == "environment" and third_party.environment
    assert "einops" in third_party.reason and "pip install" in third_party.reason


def test_package_the_agent_just_introduced_is_its_mistake() -> None:
    diff = "--- a/train.py\n+++ b/train.py\n@@\n+import einops\n"
    result = classify(traceback("ModuleNotFoundError: No module named 'einops'"), diff=diff)
    assert result.trivial and not result.environment


@pytest.mark.parametrize(
    "tail",
    [
        "bash: uv: command not found\n",
        "/bin/sh: 1: torchrun: not found\n",
        "bash: line 1: torchrun: command not found\n",
        "zsh: command not found: torchrun\n",
    ],
)
def test_command_not_found_is_an_environment_failure(tail: str) -> None:
    result = classify(tail, exit_code=127)
    assert result.kind == "environment" and result.environment and not result.trivial
    assert "command not found" in result.reason and "run.command" in result.reason


def test_exit_127_alone_is_an_environment_failure() -> None:
    assert classify("", exit_code=127).environment


def test_ordinary_not_found_log_line_is_not_taken_for_a_shell_error() -> None:
    result = classify("checkpoint: not found\nRuntimeError: boom\n", exit_code=1)
    assert not result.environment
    assert result.reason == "exit 1: RuntimeError: boom"


def test_permission_denied_is_an_environment_failure() -> None:
    result = classify("bash: ./run.sh: Permission denied\n", exit_code=126)
    assert result.environment and "./run.sh" in result.reason and "chmod +x" in result.reason


def test_missing_script_or_data_is_an_environment_failure() -> None:
    script = classify(
        "python: can't open file '/repo/trian.py': [Errno 2] No such file or directory", 2
    )
    assert script.environment and "/repo/trian.py" in script.reason
    data = classify(
        traceback("FileNotFoundError: [Errno 2] No such file or directory: 'data/train.bin'")
    )
    assert data.environment and "data/train.bin" in data.reason


def test_missing_file_the_agent_introduced_is_not_the_environment() -> None:
    tail = traceback("FileNotFoundError: [Errno 2] No such file or directory: 'data/vocab2.json'")
    result = classify(tail, diff="+++ b/train.py\n+VOCAB = 'data/vocab2.json'\n")
    assert not result.environment and result.kind == "exit"


def test_exit_zero_without_metric_is_missing_metric() -> None:
    plain = classify("training done\n", exit_code=0)
    assert plain.kind == "missing_metric" and not plain.trivial
    assert plain.reason == "no metric in the output"
    # A script that swallowed a NameError and exited 0: still worth one fix by the agent.
    swallowed = classify(traceback("NameError: name 'acc' is not defined"), exit_code=0)
    assert swallowed.kind == "missing_metric" and swallowed.trivial


def test_other_failures_are_plain_crashes_with_a_reason() -> None:
    result = classify(traceback("RuntimeError: mat1 and mat2 shapes cannot be multiplied"))
    assert result == Triage(
        "exit", reason="exit 1: RuntimeError: mat1 and mat2 shapes cannot be multiplied"
    )
    segv = classify("Segmentation fault (core dumped)\n", exit_code=139)
    assert segv.kind == "exit" and "SIGSEGV" in segv.reason
    assert classify("", exit_code=None).reason == "no exit status"


def test_log_tail_reads_only_the_end_of_a_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    with open(path, "wb") as f:
        for i in range(200_000):
            f.write(f"step {i} loss {i * 0.001:.3f}\n".encode())
        f.write(b"NameError: name 'x' is not defined\n")
    started = time.monotonic()
    tail = log_tail(path, 100)
    assert time.monotonic() - started < 0.1
    assert tail.endswith("NameError: name 'x' is not defined\n")
    assert len(tail.encode()) <= 100
    assert tail.startswith("step ")  # the cut-off partial line is dropped


def test_log_tail_of_small_or_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_bytes(b"only line, no newline")
    assert log_tail(path, 100) == "only line, no newline"
    path.write_bytes(b"x" * 500)  # a single long line: keep what there is
    assert log_tail(path, 100) == "x" * 100
    path.write_bytes("é".encode() * 100)
    assert log_tail(path, 51).endswith("é")  # a split character does not raise
    assert log_tail(tmp_path / "missing.log") == ""


def test_local_modules_lists_repo_code(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "model").mkdir()
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / ".venv").mkdir()
    (tmp_path / "__pycache__").mkdir()
    assert local_modules(tmp_path) == {"train", "model", "src", "pkg"}
