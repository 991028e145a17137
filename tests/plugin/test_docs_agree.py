"""The header, the README's plugin section and the Python descriptions say the same thing
where an integrator reads one of them only: what pre-exposure does to the outputs, what
STSS_RESULT_INTERNAL means, and what a frame-index gap does. (The behaviour itself is
tested in test_bad_input.py: pre-exposure carried by the outputs, gaps refused, no
malformed input answered with INTERNAL in the campaign.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = (ROOT / "plugin" / "include" / "stss_plugin.h").read_text()
DESCRIPTIONS = (ROOT / "plugin" / "descriptions.py").read_text()
ERRORS = (ROOT / "plugin" / "errors.py").read_text()
README = (ROOT / "README.md").read_text()
PLUGIN_SECTION = README[README.index("## The plugin API"):README.index("## Layout")]


def _line(text: str, pattern: str) -> str:
    """The line matching ``pattern`` with its comment: in C up to the comment's ``*/``, in
    Python with the comment-only lines that follow it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            out = [line]
            for nxt in lines[i + 1:]:
                if "/*" in line and "*/" not in " ".join(out):
                    out.append(nxt)
                elif "/*" not in line and nxt.strip().startswith("#"):
                    out.append(nxt)
                else:
                    break
            return " ".join(" ".join(out).split())
    raise AssertionError(f"no line matches {pattern!r}")


def test_pre_exposure_outputs_carry_it_everywhere():
    header = _line(HEADER, r"double pre_exposure;")
    python = _line(DESCRIPTIONS, r"pre_exposure: float")
    for text in (header, python, " ".join(PLUGIN_SECTION.split())):
        assert "outputs carry it" in text and "history is kept without it" in text, text
    assert "divided back" not in HEADER


def test_internal_is_never_the_answer_to_malformed_input():
    header = _line(HEADER, r"STSS_RESULT_INTERNAL = 5")
    python = _line(ERRORS, r"INTERNAL = 5")
    for text in (header, python, " ".join(PLUGIN_SECTION.split())):
        assert "never the answer to malformed input" in text, text


def test_a_frame_index_gap_is_refused_unless_reset():
    header = _line(HEADER, r"int64_t frame_index;")
    python = _line(DESCRIPTIONS, r"frame_index: int")
    section = " ".join(PLUGIN_SECTION.split())
    assert "(a gap) is refused" in header and "unless reset = 1" in header, header
    assert "(a gap) is refused unless reset=True" in python, python
    assert "any other step (a gap, or going back) is refused unless the frame sets `reset=True`" in section, section
    for text in (HEADER, DESCRIPTIONS, README):
        assert "gap is a reset" not in text
