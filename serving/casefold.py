"""Text as case-insensitive matching sees it, for cheap exact screens before a regular expression runs.

Keyword signals (``serving.policy.compiled``) and synonym terms (``serving.kb``) are ASCII
patterns matched with ``re.IGNORECASE``; a screen over ``ascii_probe`` text can rule a
match out without running them, on any text.
"""

from __future__ import annotations


def ascii_probe(lowered: str) -> str:
    """Lower-cased text in which every character that case-insensitive matching equates with an ASCII
    character is that character: ``str.lower`` does it but for the dotless i and the long s, and it
    leaves a combining dot after the "i" of "İ" (tests check this for every code point). So a string
    of the lowered patterns' required ASCII occurs in it wherever the case-insensitive pattern matches."""
    return lowered.replace("\u0131", "i").replace("\u017f", "s").replace("\u0307", "")
