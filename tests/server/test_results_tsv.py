"""results.tsv: the seed's exact bytes out; other tools' files in."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch import results_tsv
from autoresearch.experiment import Experiment

# A real file from another tool (copied from shared/samples).
SAMPLES = Path(__file__).parent / "data"


def test_rows_are_the_seeds_five_columns(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    results_tsv.ensure_header(path)
    results_tsv.append(path, Experiment(0, "a1b2c3d4e5", "keep", 0.9979, 44.0, "baseline"))
    results_tsv.append(path, Experiment(1, "b2c3d4e5f6", "crash", None, 0.0, "tab\there\nnewline"))
    assert path.read_text() == (
        "commit\tmetric\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
        "b2c3d4e\tNA\t0.0\tcrash\ttab here newline\n"
    )


def test_reads_karpathys_format_with_zero_crash_metrics(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(
        "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
        "a1b2c3d\t0.997900\t44.0\tkeep\tbaseline\n"
        "c3d4e5f\t0.000000\t0.0\tcrash\tdouble the width (OOM)\n"
    )
    rows = results_tsv.read(path, "val_bpb")
    assert rows[0].metric == 0.9979 and rows[1].metric is None and rows[1].status == "crash"


def test_reads_files_with_extra_columns() -> None:
    rows = results_tsv.read(SAMPLES / "extra-columns.tsv")
    assert len(rows) >= 19
    assert rows[0].metric == 1.374486 and rows[0].memory_gb == 10.0
    assert rows[0].extra == {"artifact_mb": "11.96"}
    assert "—" in rows[2].description


def test_a_broken_row_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(results_tsv.HEADER + "a1b2c3d\t0.9\t1.0\tkeep\tok\nbroken row\n")
    with pytest.raises(results_tsv.ResultsError, match="line 3: expected 5.*Fix or delete"):
        results_tsv.read(path)
    assert len(results_tsv.read(path, strict=False)) == 1


def test_an_unknown_status_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(results_tsv.HEADER + "a1b2c3d\t0.9\t1.0\tmaybe\tok\n")
    with pytest.raises(results_tsv.ResultsError, match="not keep, discard or crash"):
        results_tsv.read(path)


def test_a_half_written_last_line_is_not_a_row(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(results_tsv.HEADER + "a1b2c3d\t0.9\t1.0\tkeep\tok\nb2c3d4e\t0.8")
    assert len(results_tsv.read(path)) == 1
