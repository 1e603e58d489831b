"""autoresearch.toml: every bad config gets an error that names the problem and the fix."""

from __future__ import annotations

import pytest

from autoresearch import config as cfg

GOOD = """
[metric]
name = "val_bpb"
direction = "lower"
pattern = '^val_bpb:\\s*(\\S+)'
[run]
command = "python3 train.py"
[scope]
files = ["train.py"]
"""


def test_a_good_config_round_trips() -> None:
    config = cfg.parse(GOOD)
    assert config.run.timeout == 600 and config.agent.kind == "sweep"
    assert cfg.parse(cfg.dumps(config)) == config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('direction = "lower"', 'direction = "lower'), "not valid TOML.*line 4"),
        (GOOD.replace('direction = "lower"', ""), "missing required setting `metric.direction`"),
        (GOOD.replace('direction = "lower"', 'direction = "down"'), "direction"),
        (GOOD.replace("[run]", "[run]\ntimout = 5"), "unknown setting `run.timout`"),
        (GOOD.replace("[run]", "[run]\ntimeout = 0"), "run.timeout is 0; it must be a positive"),
        (GOOD.replace("[run]", "[run]\ntimeout = -3"), "run.timeout is -3"),
        (GOOD.replace("(\\S+)", "\\S+"), "has 0 groups; it needs exactly one"),
        (GOOD.replace("(\\S+)", "((\\S+)"), "does not compile"),
        (GOOD.replace('files = ["train.py"]', "files = []"), "scope.files is empty"),
        (GOOD + 'off_limits = ["train.py"]\n', "both in scope.files and in scope.off_limits"),
        (GOOD + '[agent]\nkind = "command"\n', "neither agent.preset nor agent.command"),
        (GOOD.replace('command = "python3 train.py"', 'command = "  "'), "run.command is empty"),
        (GOOD.replace("[metric]", '[metric]\nextract = "grep x run.log"'), "Keep one of them"),
        (GOOD + "[decision]\nnoise_repeats = -1\n", "must not be negative"),
    ],
)
def test_bad_configs_name_the_fix(text: str, expected: str) -> None:
    with pytest.raises(cfg.ConfigError, match=expected):
        cfg.parse(text)


def test_missing_file_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(cfg.ConfigError, match="autoresearch init"):
        cfg.load(tmp_path)
