"""Question detection at ingest, and the migration's copy of the question marks."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tgstats.features import QUESTION_MARKS, extract, is_question

MIGRATION = Path(__file__).resolve().parents[2] / "alembic/versions/0012_question_replies.py"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where?", True),
        ("где?\n", True),
        ("なに？", True),
        ("لماذا؟", True),
        ("Τι\u037e", True),  # Greek question mark
        ("Τι;", False),  # a semicolon is not one, even in Greek
        ("հարց՞", True),  # Armenian
        ("what‽", True),
        ("hm ❓\ufe0f ", True),
        ("what?!", False),
        ("¿qué", False),
        ("a ? b", False),
        ("", False),
        (None, False),
        ("   ", False),
    ],
)
def test_is_question(text, expected):
    assert is_question(text) is expected
    assert extract(text).is_question is expected


def test_the_migration_backfills_with_the_same_marks():
    spec = importlib.util.spec_from_file_location("m0010", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    marks = re.match(r"^\[(.*?)\]", module.QUESTION_PATTERN)
    assert marks is not None
    assert set(marks.group(1)) == set(QUESTION_MARKS)
