"""The seams between the kiosk's parts, as small Protocols: what the app and the machine need of each part.

The real parts (``hardware.*``, :class:`kiosk.store.Store`, :class:`kiosk.printing.PrintQueue`, the pygame
``Screen``) and the tests' stand-ins both fit them, so a stand-in is checked against the same contract as the
part it replaces (mypy in the tests; ``isinstance`` for the stand-ins, the Protocols being runtime-checkable).
Pure: only names for types are imported here.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from hardware.printer import PrinterStatus
    from kiosk.store_citizens import Citizen
    from kiosk.store_ratings import Rating
    from kiosk.store_visits import Visit
    from kiosk.tickets import TicketContent
    from kiosk.views import SyncBanner, View


@runtime_checkable
class Camera(Protocol):
    """``hardware.camera``'s cameras: RGB uint8 H x W x 3 frames, None when there is no new one."""

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Printer(Protocol):
    """``hardware.printer``'s printers: one 1-bit raster slip at a time; a fault raises ``PrinterError``."""

    @property
    def device_name(self) -> str: ...

    def print_image(self, image: Image.Image, *, name: str) -> None: ...

    def status(self) -> PrinterStatus: ...

    def close(self) -> None: ...


@runtime_checkable
class SlipPrinter(Protocol):
    """:class:`kiosk.printing.TicketPrinter`: renders and prints; a fault is ``False`` and ``fault``, never raised."""

    @property
    def fault(self) -> str | None: ...

    def print_ticket(self, content: TicketContent) -> bool: ...

    def print_slip(self, title: str, lines: Sequence[str], name: str, qr: str | None = None) -> bool: ...


@runtime_checkable
class PrintJobs(Protocol):
    """:class:`kiosk.printing.PrintQueue`: paper in the background; outcomes collected on the loop's thread."""

    @property
    def fault(self) -> str | None: ...

    def ticket(self, key: str, content: TicketContent) -> None: ...

    def slip(self, title: str, lines: Sequence[str], name: str, qr: str | None = None) -> None: ...

    def finished(self) -> list[tuple[str, bool]]: ...

    def close(self, timeout: float = ...) -> None: ...


@runtime_checkable
class TicketStore(Protocol):
    """:class:`kiosk.store.Store` as the app and the services use it (the loop's thread owns it)."""

    problems: list[str]

    def issue_ticket(self, category: str, prefix: str, *, citizen_id: str | None, now: datetime,
                     identified_by: str | None = None) -> Visit: ...

    def mark_printed(self, visit_id: str, ok: bool) -> None: ...

    def enrol(self, encodings: np.ndarray, *, now: datetime, consent_text: str,
              display_name: str | None = None) -> Citizen: ...

    def citizen(self, citizen_id: str) -> Citizen | None: ...

    def touch(self, citizen_id: str, now: datetime) -> None: ...

    def templates(self) -> tuple[list[str], np.ndarray]: ...

    def template_parts(self) -> tuple[list[str], list[np.ndarray]]: ...

    def visits(self, since: date | None = None) -> Iterator[Visit]: ...

    def rate(self, rating: str, *, citizen_id: str | None, now: datetime) -> Rating: ...

    def close(self) -> None: ...


@runtime_checkable
class Display(Protocol):
    """``kiosk.screen.Screen``: shows a view (and the USB banner over it), reports the keys pressed since the last poll."""

    def show(self, view: View, overlay: SyncBanner | None = None) -> None: ...

    def poll(self) -> list[str]: ...

    def close(self) -> None: ...


@runtime_checkable
class Closable(Protocol):
    """A part the kiosk closes on the way out (buttons, the recognition worker)."""

    def close(self) -> None: ...


@runtime_checkable
class StaffDesk(Protocol):
    """``hardware.staffcall.StaffCall``: the desk's light or buzzer, on from a call until staff reset it."""

    def call(self) -> None: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class StickSource(Protocol):
    """Where sticks come from (hardware.usb.UdevSticks, or FolderSticks in simulation): started once, closed."""

    def start(self) -> None: ...

    def close(self) -> None: ...
