"""Help a newcomer understands: a group whose bare command does something says what."""

from __future__ import annotations


def test_swap_help_says_what_a_plain_swap_does(cli) -> None:
    result = cli("swap", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "`golive swap` starts the idle colour from the image, waits for its health, points Apache at it" in text
    assert "`golive swap finalize` removes the old colour after the bake time" in text
