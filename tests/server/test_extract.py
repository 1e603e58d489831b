"""Metric extraction from run.log: last match wins, read from the end, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch import extract

PATTERN = r"^val_bpb:\s*(\S+)"


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "run.log"
    path.write_bytes(data)
    return path


def test_the_last_match_wins(tmp_path: Path) -> None:
    log = write(tmp_path, b"val_bpb: 1.5\nstep 2\nval_bpb: 1.25\ndone\n")
    assert extract.by_pattern(log, PATTERN) == 1.25


def test_matches_across_chunk_boundaries(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 16)
    log = write(tmp_path, b"x" * 40 + b"\nval_bpb: 0.987654\n" + b"y" * 50 + b"\n")
    assert extract.by_pattern(log, PATTERN) == 0.987654


def test_a_metric_far_from_the_end_is_found(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 64)
    log = write(tmp_path, b"val_bpb: 2.0\n" + b"noise line\n" * 500)
    assert extract.by_pattern(log, PATTERN) == 2.0


def test_never_printed_is_none(tmp_path: Path) -> None:
    assert extract.by_pattern(write(tmp_path, b"loss: 1\n"), PATTERN) is None
    assert extract.by_pattern(tmp_path / "absent.log", PATTERN) is None


@pytest.mark.parametrize("value", [b"nan", b"inf", b"-inf", b"NaN"])
def test_non_finite_metrics_are_refused(tmp_path: Path, value: bytes) -> None:
    with pytest.raises(extract.ExtractionError, match="not finite"):
        extract.by_pattern(write(tmp_path, b"val_bpb: " + value + b"\n"), PATTERN)


def test_non_numeric_metric_is_refused(tmp_path: Path) -> None:
    with pytest.raises(extract.ExtractionError, match="not a number"):
        extract.by_pattern(write(tmp_path, b"val_bpb: fast\n"), PATTERN)


def test_huge_single_line_and_binary_output(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(extract, "CHUNK", 1024)
    data = bytes(range(256)) * 100 + b"\n" + b"z" * 50_000 + b"\nval_bpb: 0.5\n"
    assert extract.by_pattern(write(tmp_path, data), PATTERN) == 0.5
    assert extract.by_pattern(write(tmp_path, b"\xff\xfe" * 40_000), PATTERN) is None


def test_seed_style_shell_extraction(tmp_path: Path) -> None:
    write(tmp_path, b"val_bpb: 0.997900\npeak_vram_mb: 45060.2\n")
    assert extract.by_command('grep "^val_bpb:" run.log', tmp_path) == 0.9979
    assert extract.by_command('grep "^nothing:" run.log', tmp_path) is None


def test_memory_units(tmp_path: Path) -> None:
    log = write(tmp_path, b"peak_vram_mb: 45060.2\n")
    assert extract.memory_gb(log, r"^peak_vram_mb:\s*(\S+)", "MB") == pytest.approx(45.0602)
