"""results.tsv: the seed's exact bytes out; other tools' files in."""

from __future__ import annotations

from pathlib import Path

import pytest
from tables import ELEVEN, baseline_keep_revert, eleven_columns

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


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("BASELINE", "keep"),
        ("Kept", "keep"),
        ("KEEP", "keep"),
        ("REVERT", "discard"),
        ("reverted", "discard"),
        ("Discard", "discard"),
        ("ERROR", "crash"),
        ("failed", "crash"),
        ("Crash", "crash"),
    ],
)
def test_other_tools_status_words_in_any_case(tmp_path: Path, word: str, status: str) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(results_tsv.HEADER + f"a1b2c3d\t0.9\t1.0\t{word}\tok\n")
    assert results_tsv.read(path)[0].status == status


def test_a_baseline_keep_revert_table_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(baseline_keep_revert())
    warnings: list[str] = []
    rows = results_tsv.read(path, "val_bpb", strict=False, warnings=warnings)
    assert len(rows) == 66 and warnings == []
    assert rows[0].status == "keep" and rows[0].description.startswith("baseline")
    failed = [r for r in rows if r.description.endswith("(crashed: CUDA OOM)")]
    assert failed and all(r.metric is None and r.status == "discard" for r in failed)
    assert min(r.metric for r in rows if r.metric is not None) > 0  # -999 is never a best


def test_rows_left_out_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(
        results_tsv.HEADER
        + "a1b2c3d\t0.9\t1.0\tkeep\tbaseline\n"
        + "b2c3d4e\t0.8\t1.0\tmaybe\tunsure\n"
        + "c3d4e5f\tfast\t1.0\tkeep\tno number\n"
        + "d4e5f6a\t0.7\t1.0\tdiscard\tfine\n"
    )
    warnings: list[str] = []
    rows = results_tsv.read(path, strict=False, warnings=warnings)
    assert [r.commit for r in rows] == ["a1b2c3d", "d4e5f6a"]
    assert warnings == [
        "results.tsv line 3 is left out: status 'maybe' is not keep, discard or crash (nor"
        " another tool's word for one: kept, baseline, revert, error, failed...)."
        " Fix or delete that line.",
        "results.tsv line 4 is left out: metric 'fast' is not a number. Fix or delete that line.",
    ]


def test_a_row_is_appended_in_the_tables_own_layout(tmp_path: Path) -> None:
    path = tmp_path / "results.tsv"
    path.write_text(eleven_columns("a1b2c3d", rows=3))
    before = path.read_text()
    results_tsv.append(path, Experiment(3, "f0e1d2c3b4", "crash", None, 0.0, "a\ttab"), "val_bpb")
    results_tsv.append(path, Experiment(4, "0e1d2c3b4a", "keep", 0.9871, 43.5, "wider"), "val_bpb")
    added = path.read_text()[len(before) :].splitlines()
    assert [dict(zip(ELEVEN, line.split("\t"), strict=True)) for line in added] == [
        {**dict.fromkeys(ELEVEN, ""), "commit": "f0e1d2c", "val_bpb": "NA", "memory_gb": "0.0",
         "status": "crash", "description": "a tab"},
        {**dict.fromkeys(ELEVEN, ""), "commit": "0e1d2c3", "val_bpb": "0.987100",
         "memory_gb": "43.5", "status": "keep", "description": "wider"},
    ]  # fmt: skip
    assert [r.status for r in results_tsv.read(path, "val_bpb")] == [
        "keep", "discard", "discard", "crash", "keep"
    ]  # fmt: skip
