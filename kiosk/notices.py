"""Staff notices: what the screen's bottom band tells staff, Vietnamese first and English below.

A notice travels as one string, its Vietnamese and English parts on two lines (``staff(vi, en)``), so every place
that makes one (the printer, the disk, the store, the devices at start) stays a plain ``str`` and a notice made
the old way (one line) still shows, on the Vietnamese line.
"""
from __future__ import annotations

from collections.abc import Iterable


def staff(vi: str, en: str) -> str:
    """One notice: ``vi`` for the office's staff, ``en`` (with the technical detail) for the technician."""
    return f"{vi}\n{en}"


def split(text: str) -> tuple[str, str]:
    """A notice's Vietnamese and English parts ("" when it has no English)."""
    vi, _, en = text.partition("\n")
    return vi, en.replace("\n", " ")


def join(texts: Iterable[str | None]) -> str | None:
    """Several notices as one: the Vietnamese parts together, then the English parts; None when there are none."""
    parts = [split(text) for text in texts if text]
    if not parts:
        return None
    vi, en = " · ".join(vi for vi, _ in parts), " · ".join(en for _, en in parts if en)
    return staff(vi, en) if en else vi


def data_notice(problem: str) -> str:
    """A data file the store found damaged and set aside (``problem`` names it)."""
    return staff("Có tệp dữ liệu bị hỏng, đã để riêng; vui lòng báo kỹ thuật viên", f"Data: {problem}")
