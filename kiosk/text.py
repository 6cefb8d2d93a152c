"""Text layout shared by the paper and the screen: one word-wrap rule, whatever measures the pixels."""
from __future__ import annotations

from typing import Callable


def wrap(text: str, width_of: Callable[[str], float], max_width: float) -> list[str]:
    """Greedy word wrap by measured width (``width_of``: Pillow's ``font.getlength``, pygame's
    ``font.size(s)[0]``); a word wider than ``max_width`` is broken between letters. Never an empty list."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if width_of(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:
            if current and width_of(current + char) > max_width:
                lines.append(current)
                current = ""
            current += char
    lines.append(current)
    return lines
