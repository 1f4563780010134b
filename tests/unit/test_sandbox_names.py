"""File names in /mnt/data: never paths, always distinct (no sandbox needed)."""

from __future__ import annotations

import pytest

from assistd.sandbox import safe_filename, stage_names


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.csv", "report.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\data.xlsx", "data.xlsx"),
        ("dir/", "file"),
        ("..", "file"),
        (".", "file"),
        ("", "file"),
        ("tab\tand\nnewline\x00.txt", "tabandnewline.txt"),
        (".hidden", ".hidden"),
        ("ünïcode 数据.csv", "ünïcode 数据.csv"),
    ],
)
def test_safe_filename(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_long_names_fit_and_keep_their_extension() -> None:
    name = safe_filename("é" * 300 + ".csv")

    assert len(name.encode()) <= 255
    assert name.endswith(".csv")


def test_stage_names_are_distinct() -> None:
    assert stage_names(["a.csv", "x/a.csv", "a.csv", "README", "README"]) == [
        "a.csv",
        "a (2).csv",
        "a (3).csv",
        "README",
        "README (2)",
    ]
