"""``ascii_probe`` agrees with the regex engine's own case-insensitive rule, for every code point."""

from __future__ import annotations

import re

from serving.casefold import ascii_probe


def test_the_ascii_probe_maps_every_character_that_matches_an_ascii_one_to_it():
    # Every code point, against every ASCII character, by the regex engine's own case-insensitive rule.
    every = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF)
    for code in range(128):
        for match in re.finditer(re.escape(chr(code)), every, re.IGNORECASE):
            assert ascii_probe(match.group().lower()) == chr(code).lower(), hex(ord(match.group()))
    assert ascii_probe("HİN ſtolen Kılıç".lower()) == "hin stolen kiliç"
