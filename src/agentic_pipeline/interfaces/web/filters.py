"""Jinja2 filters: ages, times, numbers and the small inline SVG chart (all output escaped by the templates)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup, escape


def age(seconds: float | None) -> str:
    """``seconds`` as a short age: 45 s, 12 min, 3.5 h, 2.1 d."""
    if seconds is None:
        return "-"
    s = max(0.0, float(seconds))
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def when(value: Any) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC`` (ISO strings accepted)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.0f}%"


def bar_chart(series: list[dict[str, Any]], width: int = 480, height: int = 120) -> Markup:
    """A small SVG: per hour, completed (up) and failed (down) bars; every text is escaped."""
    n = max(1, len(series))
    top = max([1] + [p["completed"] for p in series])
    bottom = max([1] + [p["failed"] for p in series])
    mid = height * top / (top + bottom) if top + bottom else height / 2
    w = width / n
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height + 14}" width="{width}" height="{height + 14}" '
             'role="img" aria-label="completed and failed per hour over 24 hours">']
    for i, p in enumerate(series):
        x = i * w + 1
        up = (mid - 2) * p["completed"] / top
        down = (height - mid - 2) * p["failed"] / bottom
        label = escape(f"{p['hour']}: {p['completed']} completed, {p['failed']} failed")
        parts.append(f'<g><title>{label}</title>'
                     f'<rect class="ok" x="{x:.1f}" y="{mid - up:.1f}" width="{w - 2:.1f}" height="{up:.1f}"/>'
                     f'<rect class="bad" x="{x:.1f}" y="{mid:.1f}" width="{w - 2:.1f}" height="{down:.1f}"/></g>')
    parts.append(f'<line class="axis" x1="0" x2="{width}" y1="{mid:.1f}" y2="{mid:.1f}"/>')
    parts.append(f'<text x="0" y="{height + 12}">-24 h</text><text x="{width}" y="{height + 12}" '
                 'text-anchor="end">now</text></svg>')
    return Markup("".join(parts))


FILTERS = {"age": age, "when": when, "number": number, "pct": pct, "bar_chart": bar_chart}
