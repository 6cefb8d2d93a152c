"""systemd's notify protocol (sd_notify) without a dependency: one datagram per message.

READY=1 once the loop runs, so ``systemctl start`` returns only when tickets can be issued;
WATCHDOG=1 from the loop itself, so a loop that hangs (a printer write that never returns) is
restarted by systemd; STATUS= so ``systemctl status kiosk`` tells the technician what the kiosk is
doing. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import Callable, Mapping

log = logging.getLogger("kiosk.notify")


class SystemdNotifier:
    def __init__(self, clock: Callable[[], float], environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):               # abstract namespace socket
            address = "\0" + address[1:]
        self._address = address or None
        self._clock = clock
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and (not pid or pid == str(os.getpid()))
        # Ping at twice the rate systemd asks for, as sd_watchdog_enabled(3) advises.
        self._interval = int(usec) / 2e6 if watchdog else None
        self._next_ping = 0.0
        self._status = ""
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self._status = status
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self._send(f"STATUS={text}")

    def heartbeat(self) -> None:
        """Called every loop turn; sends WATCHDOG=1 when due."""
        if self._interval is None:
            return
        now = self._clock()
        if now >= self._next_ping:
            self._next_ping = now + self._interval
            self._send("WATCHDOG=1")

    def next_due(self) -> float | None:
        """When the next WATCHDOG=1 is due (the loop wakes for it), or None with no watchdog."""
        return None if self._interval is None else self._next_ping

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.sendto(message.encode(), self._address)
        except OSError as exc:  # systemd gone or socket unusable: never a reason to stop issuing tickets
            log.warning("cannot notify systemd at %s: %s", self._address, exc)
