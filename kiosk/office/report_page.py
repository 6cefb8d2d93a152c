"""The office report as files: PNG charts (matplotlib, Agg: no display needed), CSV files, one HTML page."""
from __future__ import annotations

import csv
import html
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402  (after the back-end is chosen)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kiosk.office.db import Database  # noqa: E402
from kiosk.office.report import ReportData, collect  # noqa: E402
from kiosk.office.waits import ALL_HOURS  # noqa: E402


def write_report(db: Database, out: Path, *, since: date | None = None, until: date | None = None
                 ) -> tuple[Path, list[str]]:
    """Collect and write everything into ``out``; the HTML page's path and the report's notes."""
    data = collect(db, since=since, until=until)
    out.mkdir(parents=True, exist_ok=True)
    _csvs(data, out)
    charts = _charts(data, out)
    page = out / "index.html"
    page.write_text(_html(data, charts), encoding="utf-8")
    return page, data.notes


# -------------------------------------------------------------------------------------------------------- CSV
def _write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _csvs(d: ReportData, out: Path) -> None:
    _write_csv(out / "tickets_per_day.csv", ["service_day", "category", "tickets"], d.per_day)
    _write_csv(out / "tickets_per_hour.csv", ["hour", "category", "tickets"], d.per_hour)
    _write_csv(out / "tickets_per_kiosk.csv", ["kiosk", "tickets"], d.per_kiosk)
    _write_csv(out / "printer_per_day.csv", ["service_day", "tickets", "printer_failed", "printer_unknown"],
               d.printer)
    _write_csv(out / "service_times.csv", ["service", "hour", "waits", "wait_median_min", "wait_p90_min",
                                           "services", "service_median_min", "service_p90_min"],
               [(t.category, _hour(t.hour), t.waits, _min(t.wait_median), _min(t.wait_p90), t.services,
                 _min(t.service_median), _min(t.service_p90)) for t in d.times])
    _write_csv(out / "export_delay.csv", ["kiosk", "bundles", "mean_hours", "max_hours", "last_bundle_made"],
               [(e.kiosk, e.bundles, f"{e.mean_hours:.2f}", f"{e.max_hours:.2f}", e.last_bundle) for e in d.delays])
    _write_csv(out / "ratings_per_service.csv", ["service", "good", "ok", "bad", "total"], d.ratings_by_service)
    ident = "; ".join(f"{k}={v}" for k, v in sorted(d.identified_by.items())) or "not exported by the kiosks"
    _write_csv(out / "summary.csv", ["figure", "value"], [
        ("tickets", d.total), ("visits linked to a citizen", d.linked), ("citizens", d.citizens),
        ("returning citizens (2+ visits)", d.returning),
        ("returning share", "" if d.returning_share is None else f"{d.returning_share:.4f}"),
        ("identified by", ident), ("printer failures", d.printer_failed)])


# ----------------------------------------------------------------------------------------------------- charts
def _save(fig: Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _days(days: list[str]) -> list[float]:
    """ISO days as matplotlib's date numbers (the axis is then shown as dates: ``xaxis_date``)."""
    return [float(mdates.date2num(date.fromisoformat(day))) for day in days]


def _charts(d: ReportData, out: Path) -> dict[str, str]:
    charts: dict[str, str] = {}
    if not d.total:
        return charts
    cats = d.categories
    days = sorted({day for day, _, _ in d.per_day})
    by = defaultdict(int, {(day, c): n for day, c, n in d.per_day})
    fig, ax = plt.subplots(figsize=(10, 4))
    x = _days(days)
    bottom = [0] * len(days)
    for c in cats:
        ys = [by[(day, c)] for day in days]
        ax.bar(x, ys, bottom=bottom, label=c, width=0.9)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax.xaxis_date()
    ax.set_ylim(0, max(bottom) * 1.25)            # room for the legend above the bars
    ax.set_title("Tickets per service day, by service")
    ax.set_ylabel("tickets")
    ax.legend(fontsize=8, ncol=min(len(cats), 5))
    fig.autofmt_xdate()
    charts["per_day"] = _save(fig, out / "tickets_per_day.png")

    hours = list(range(24))
    byh = defaultdict(int, {(h, c): n for h, c, n in d.per_hour})
    fig, ax = plt.subplots(figsize=(10, 4))
    bottom = [0] * 24
    for c in cats:
        ys = [byh[(h, c)] for h in hours]
        ax.bar(hours, ys, bottom=bottom, label=c)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax.set_ylim(0, max(bottom) * 1.25)
    ax.set_xticks(hours)
    ax.set_title("Tickets per hour of the day, by service")
    ax.set_xlabel("hour")
    ax.legend(fontsize=8, ncol=min(len(cats), 5))
    charts["per_hour"] = _save(fig, out / "tickets_per_hour.png")

    fig, ax = plt.subplots(figsize=(10, 3))
    px = _days([p[0] for p in d.printer])
    ax.bar(px, [p[2] for p in d.printer], color="#c0392b", label="printer failed")
    ax.xaxis_date()
    ax.bar(px, [p[3] for p in d.printer],
           bottom=[p[2] for p in d.printer], color="#bbbbbb", label="no printer answer")
    ax.set_title("Printer faults per service day")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    charts["printer"] = _save(fig, out / "printer_per_day.png")

    if d.delays:
        fig, ax = plt.subplots(figsize=(8, 3))
        names = [e.kiosk for e in d.delays]
        ax.bar(names, [e.max_hours / 24 for e in d.delays], color="#f5b041", label="longest")
        ax.bar(names, [e.mean_hours / 24 for e in d.delays], color="#2e86c1", label="mean")
        ax.set_title("Export delay per kiosk (days from bundle made to ingested)")
        ax.set_ylabel("days")
        ax.legend(fontsize=8)
        charts["delay"] = _save(fig, out / "export_delay.png")
    return charts


# ------------------------------------------------------------------------------------------------------- HTML
def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f} %"


def _hour(hour: int) -> str:
    return "all" if hour == ALL_HOURS else f"{hour:02d}"


def _min(minutes: float | None) -> str:
    return "" if minutes is None else f"{minutes:.1f}"


BOLD = ' style="font-weight: bold"'


def _times_table(d: ReportData) -> str:
    """Waiting and service times per service and hour (the counter page's stamps), "all hours" in bold."""
    e = html.escape
    if not d.times:
        return "<p><em>No ticket was scanned at a counter page (kiosk-office counter) in this period.</em></p>"
    rows = "".join(
        f"<tr{BOLD if t.hour == ALL_HOURS else ''}><td>{e(t.service_name)} "
        f"({e(t.category)})</td><td>{_hour(t.hour)}</td><td>{t.waits}</td><td>{_min(t.wait_median) or '–'}</td>"
        f"<td>{_min(t.wait_p90) or '–'}</td><td>{t.services}</td><td>{_min(t.service_median) or '–'}</td>"
        f"<td>{_min(t.service_p90) or '–'}</td></tr>" for t in d.times)
    return ("<table><tr><th>service</th><th>hour issued</th><th>called</th><th>wait median (min)</th>"
            "<th>wait p90</th><th>served</th><th>service median (min)</th><th>service p90</th></tr>"
            f"{rows}</table>")


def _html(d: ReportData, charts: dict[str, str]) -> str:
    e = html.escape
    days = sorted({day for day, _, _ in d.per_day})
    period = f"{d.since or (days[0] if days else '…')} – {d.until or (days[-1] if days else '…')}"
    ident = (", ".join(f"{e(k)}: {v:,} ({_pct(v / d.total)})" for k, v in sorted(d.identified_by.items()))
             if d.identified_by else "<em>not exported by the kiosks</em>")
    rows = [("Tickets", f"{d.total:,}"), ("Visits linked to a citizen (card or face)",
                                           f"{d.linked:,} ({_pct(d.linked_share)})"),
            ("Citizens", f"{d.citizens:,}"),
            ("Returning citizens (2 visits or more)", f"{d.returning:,} ({_pct(d.returning_share)})"),
            ("Identified by", ident), ("Printer failures", f"{d.printer_failed:,}")]
    summary = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    kiosks = "".join(f"<tr><td>{e(k)}</td><td>{n:,}</td></tr>" for k, n in d.per_kiosk)
    delays = "".join(f"<tr><td>{e(x.kiosk)}</td><td>{x.bundles}</td><td>{x.mean_hours / 24:.1f}</td>"
                     f"<td>{x.max_hours / 24:.1f}</td><td>{e(x.last_bundle or '')}</td></tr>" for x in d.delays)
    ratings = "".join(f"<tr><td>{e(c)}</td>" + "".join(f"<td>{n:,}</td>" for n in counts) + "</tr>"
                      for c, *counts in d.ratings_by_service) or '<tr><td colspan="5">no rating</td></tr>'
    notes = "".join(f"<li>{e(n)}</li>" for n in d.notes)
    titles = {"per_day": "Tickets per day", "per_hour": "Tickets per hour of the day",
              "printer": "Printer faults", "delay": "Export delay per kiosk"}
    imgs = "".join(f'<figure><img src="{e(f)}" alt="{e(titles[k])}"><figcaption>{e(titles[k])}</figcaption>'
                   f"</figure>" for k, f in charts.items())
    csvs = ", ".join(f'<a href="{n}">{n}</a>' for n in (
        "summary.csv", "tickets_per_day.csv", "tickets_per_hour.csv", "tickets_per_kiosk.csv",
        "printer_per_day.csv", "export_delay.csv", "ratings_per_service.csv", "service_times.csv"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Office report {e(period)}</title>
<style>
body {{ font-family: DejaVu Sans, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: .3em .8em; text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
.notes {{ background: #fff8e1; border-left: 4px solid #f5b041; padding: .5em 1em; }}
</style></head><body>
<h1>Office report</h1>
<p>Service days {e(period)}.</p>
{f'<div class="notes"><strong>Notes</strong><ul>{notes}</ul></div>' if notes else ''}
<h2>Summary</h2><table>{summary}</table>
<h2>Tickets per kiosk</h2><table><tr><th>kiosk</th><th>tickets</th></tr>{kiosks}</table>
<h2>Satisfaction by service</h2>
<table><tr><th>service</th><th>satisfied</th><th>neutral</th><th>not satisfied</th><th>total</th></tr>{ratings}</table>
{imgs}
<h2>Waiting and service times</h2>
<p>Wait: ticket issued to called; service: called to served (the counter page's buttons).</p>
{_times_table(d)}
<h2>Export delay</h2>
<table><tr><th>kiosk</th><th>bundles</th><th>mean (days)</th><th>longest (days)</th><th>last bundle made</th></tr>
{delays}</table>
<p>Data: {csvs}</p>
</body></html>
"""
