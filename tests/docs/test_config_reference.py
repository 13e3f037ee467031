"""docs/CONFIG.md is generated from the typed configs; this test fails when the two drift apart.

pytest tests/docs/test_config_reference.py
python -m emollm.config_docs > docs/CONFIG.md      # the fix when it fails
"""

from __future__ import annotations

import difflib
from pathlib import Path

from emollm.config_docs import SECTIONS, render

REPO = Path(__file__).resolve().parents[2]
FIX = "run `python -m emollm.config_docs > docs/CONFIG.md`"


def test_committed_config_reference_matches_the_typed_configs() -> None:
    committed = (REPO / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    generated = render()
    if committed != generated:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    "docs/CONFIG.md (committed)",
                    "python -m emollm.config_docs",
                )
            )[:60]
        )
        raise AssertionError(f"docs/CONFIG.md is out of date: {FIX}\n{diff}")


def test_reference_covers_every_section_and_encoder() -> None:
    from emollm.encoders import ENCODERS

    text = render()
    for title, _ref, _used in SECTIONS:
        assert f"## {title}" in text
    for name in ENCODERS.names():
        assert f"### `{name}`" in text, f"encoder {name!r} has no options table"
    # a field deep in the training recipe shows up with its dotted key
    assert "`stages.<i>`" in text and "| `micro_batch_size` |" in text
