"""The counter page (``kiosk-office counter``): one input a handheld scanner types a ticket's code into.

Bottle (one WSGI module) served by the standard library's wsgiref on 127.0.0.1: the page is for the browser on
the counter's own computer, never the network. Plain HTML forms, no JavaScript: the scanner types the code and
Enter, the page answers with the ticket (and, for a linked visit, the citizen and their earlier visits), and the
input has the focus again for the next ticket. "Called" and "Served" are buttons of the same form (Tab, Enter).
Vietnamese first, English second, large type. Each form carries a random token made at start: another web page
open in the same browser cannot press the buttons.
"""
from __future__ import annotations

import html
import logging
import secrets
import urllib.parse
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import bottle

from kiosk.bundle import OfficeKeys
from kiosk.office.counter import Counter, Desk, Earlier
from kiosk.office.db import Database
from kiosk.ticketcode import TicketCodeError

log = logging.getLogger("kiosk.office.counter")

#: What the officer reads when a code is refused (the English line is the error's own message).
REFUSALS = {
    "not-a-code": "Không phải mã vé của kiosk.",
    "plain": "Vé in khi kiosk chưa có khoá của văn phòng: vé chỉ có mã lượt, không có thông tin niêm phong.",
    "input-method": "Bộ gõ tiếng Việt (Unikey, Telex, VNI) đã làm sai mã: hãy tắt bộ gõ rồi quét lại.",
    "other-office": "Vé này được niêm phong cho văn phòng khác: văn phòng này không đọc được.",
    "damaged": "Mã vé đã bị sửa hoặc bị hỏng: không mở được.",
    "unknown-kiosk": "Vé của một kiosk chưa đăng ký ở văn phòng này.",
    "signature": "Chữ ký sai: vé không phải do kiosk ghi trên vé làm ra.",
    "served": "Vé này đã được phục vụ rồi.",
}
FIELD_LABELS = (("card_number", "Số CCCD", "Card number"), ("birth_date", "Ngày sinh", "Birth date"),
                ("sex", "Giới tính", "Sex"), ("address", "Nơi thường trú", "Address"))    # the name: a heading

STYLE = """
body { font-family: "DejaVu Sans", "Noto Sans", sans-serif; font-size: 26px; margin: 24px 40px; color: #111; }
h1 { font-size: 30px; margin: 0 0 12px; }
.en { color: #555; font-size: 0.8em; }
input[name=code] { font-size: 30px; width: 100%; padding: 10px; box-sizing: border-box; border: 3px solid #235;
                   font-family: monospace; }
.ticket { font-size: 96px; font-weight: bold; margin: 8px 0 0; line-height: 1; }
.service { font-size: 36px; font-weight: bold; }
.citizen { font-size: 44px; font-weight: bold; margin-top: 16px; }
.refused { background: #fde2e1; border: 4px solid #b00; padding: 16px 20px; margin-top: 20px; font-size: 32px; }
.nobody { color: #444; margin-top: 14px; }
table { border-collapse: collapse; margin-top: 8px; }
td, th { border-bottom: 1px solid #bbb; padding: 4px 18px 4px 0; text-align: left; font-size: 24px; }
button { font-size: 30px; padding: 12px 28px; margin: 18px 18px 0 0; border: 3px solid #235; background: #eef; }
button:focus { outline: 5px solid #f80; }
.done { color: #070; font-weight: bold; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _time(iso: str | None) -> str:
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(iso).strftime("%H:%M %d/%m/%Y")
    except ValueError:
        return _e(iso)


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%d/%m/%Y")
    except ValueError:
        return iso


def _scan_form(token: str) -> str:
    return (f'<form method="post" action="/scan"><input type="hidden" name="token" value="{_e(token)}">'
            f'<label for="code">Quét vé <span class="en">/ Scan the ticket</span></label>'
            f'<input id="code" name="code" autofocus autocomplete="off" spellcheck="false" '
            f'autocapitalize="off" lang="en"></form>')


def page(token: str, body: str = "") -> str:
    """A whole page: the scan input on top (focused), then what the last scan said."""
    return (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Quầy / Counter</title>'
            f'<style>{STYLE}</style></head><body><h1>Quầy tiếp nhận <span class="en">/ Counter</span></h1>'
            f'{_scan_form(token)}{body}</body></html>')


def refused(error: TicketCodeError) -> str:
    vi = REFUSALS.get(error.reason, "Không dùng được mã này.")
    return (f'<div class="refused" id="refused" data-reason="{_e(error.reason)}"><b>Từ chối / Refused.</b> '
            f'{_e(vi)}<br><span class="en">{_e(str(error))}</span></div>')


def desk_html(desk: Desk, code: str, token: str, now: datetime) -> str:
    """The ticket, the citizen (linked visit), the buttons and the earlier visits."""
    f = desk.facts
    waited = int((now - f.issued_at).total_seconds() // 60)
    parts = [f'<div id="desk"><div class="ticket" id="ticket">{_e(f.ticket)}</div>',
             f'<div class="service">{_e(f.service_name)} <span class="en">({_e(f.service)})</span></div>',
             f'<div>Lấy vé lúc <span class="en">/ issued</span> {_time(f.issued_at.isoformat())} · '
             f'{_e(f.kiosk_id)} · chờ <span class="en">/ waiting</span> {max(waited, 0)} phút '
             f'<span class="en">min</span></div>']
    if f.citizen_id is None:
        parts.append('<div class="nobody" id="nobody">Vé không gắn với công dân nào '
                     '<span class="en">/ no citizen linked to this ticket</span></div>')
    else:
        parts.append(_citizen(desk))
    parts.append(_buttons(desk, code, token))
    if f.citizen_id is not None:
        parts.append(_history(desk.history))
    return "".join(parts) + "</div>"


def _citizen(desk: Desk) -> str:
    rows = []
    for key, vi, en in FIELD_LABELS:
        value = desk.facts.fields.get(key)
        if value:
            shown = _date(value) if key == "birth_date" else value
            rows.append(f'<tr><th>{vi} <span class="en">/ {en}</span></th><td id="f-{key}">{_e(shown)}</td></tr>')
    name = desk.facts.fields.get("name") or "—"
    return (f'<div class="citizen" id="citizen">{_e(name)}</div><table>{"".join(rows)}<tr><th>Mã công dân '
            f'<span class="en">/ citizen id</span></th><td>{_e(desk.facts.citizen_id)}</td></tr></table>')


def _buttons(desk: Desk, code: str, token: str) -> str:
    stamps = (f'<div>Gọi lúc <span class="en">/ called</span> <span id="called-at" class="done">'
              f'{_time(desk.called_at)}</span> · Phục vụ xong lúc <span class="en">/ served</span> '
              f'<span id="served-at" class="done">{_time(desk.served_at)}</span></div>')
    return (f'<form method="post" action="/mark"><input type="hidden" name="token" value="{_e(token)}">'
            f'<input type="hidden" name="code" value="{_e(code)}">'
            f'<button name="action" value="called" id="called" accesskey="g">Đã gọi <span class="en">/ Called'
            f'</span></button><button name="action" value="served" id="served" accesskey="x">Đã phục vụ '
            f'<span class="en">/ Served</span></button></form>{stamps}')


def _history(rows: list[Earlier]) -> str:
    if not rows:
        return '<p id="history">Lần đầu đến <span class="en">/ first visit</span></p>'
    body = "".join(f'<tr><td>{_time(r.issued_at)}</td><td>{_e(r.ticket)}</td><td>{_e(r.service)}</td>'
                   f'<td>{_e(r.kiosk_id)}</td><td>{_time(r.served_at)}</td></tr>' for r in rows)
    return (f'<h2>Các lần đến trước <span class="en">/ earlier visits</span></h2><table id="history"><tr>'
            f'<th>Lúc <span class="en">/ when</span></th><th>Vé</th><th>Dịch vụ <span class="en">/ service</span>'
            f'</th><th>Kiosk</th><th>Phục vụ <span class="en">/ served</span></th></tr>{body}</table>')


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def make_app(counter: Counter, *, token: str | None = None, now: Callable[[], datetime] = datetime.now,
             hosts: frozenset[str] | None = LOOPBACK) -> bottle.Bottle:
    """The WSGI application over one :class:`Counter` (its database connection used by one thread only).
    ``hosts``: the names the browser may have used (a page served on loopback answers no other name, so a web
    site that rebinds its own name to 127.0.0.1 gets nothing); None: any."""
    token = token or secrets.token_urlsafe(16)
    app = bottle.Bottle()

    def form(name: str) -> str:
        return str(bottle.request.forms.getunicode(name, default="") or "")

    @app.hook("before_request")
    def local_only() -> None:
        name = urllib.parse.urlsplit("//" + (bottle.request.get_header("Host") or "")).hostname
        if hosts is not None and name not in hosts:
            raise bottle.HTTPError(403, "this page answers on this computer only (127.0.0.1)")
        bottle.response.set_header("Cache-Control", "no-store")    # a citizen's page never stays in a cache

    def checked() -> None:
        if not secrets.compare_digest(form("token"), token):
            bottle.abort(403, "Trang đã cũ: tải lại / stale page: reload it")

    def answer(action: Callable[[str], Desk], code: str) -> str:
        try:
            desk = action(code)
        except TicketCodeError as exc:
            log.info("ticket code refused: %s", exc)
            return page(token, refused(exc))
        return page(token, desk_html(desk, code.strip(), token, now()))

    @app.get("/")
    def index() -> str:
        return page(token)

    @app.post("/scan")
    def scan() -> str:
        checked()
        return answer(counter.scan, form("code"))

    @app.post("/mark")
    def mark() -> str:
        checked()
        action = form("action")
        if action not in ("called", "served"):
            bottle.abort(400, "unknown action")
        return answer(lambda code: counter.mark(code, action), form("code"))

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)


class CounterServer(ThreadingMixIn, WSGIServer):
    """The page on ``(host, port)`` (port 0: any free one); ``serve_forever`` runs it, ``server_close`` ends it.

    HTTP runs on a thread per connection, so a connection the browser opens ahead and leaves idle never holds up
    the officer's next scan; the application and its one database connection run on one worker thread of their
    own (SQLite's connection belongs to the thread that opened it), one request at a time.
    """
    daemon_threads = True

    def __init__(self, address: tuple[str, int], db_url: str, office: OfficeKeys, *, token: str | None = None,
                 now: Callable[[], datetime] = datetime.now) -> None:
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="counter-db")
        self.db: Database | None = None
        super().__init__(address, _QuietHandler)          # binds first: a busy port opens no database
        try:
            self.db = self.worker.submit(Database.open, db_url).result()
        except BaseException:
            self.server_close()
            raise
        app = make_app(Counter(self.db, office, now=now), token=token, now=now,
                       hosts=LOOPBACK if address[0] in LOOPBACK else None)
        self.set_app(lambda environ, start: self.worker.submit(lambda: list(app(environ, start))).result())

    def server_close(self) -> None:
        super().server_close()
        if self.db is not None:
            self.worker.submit(self.db.close).result()
        self.worker.shutdown()
