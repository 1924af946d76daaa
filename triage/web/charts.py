"""Server-side SVG charts for the dashboard: no JavaScript, no CDN. Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
COLORS = ("#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2")


def hbars(title: str, rows: Sequence[tuple[str, float]], *, unit: str = "", width: int = 460,
          color: str = COLORS[0]) -> Markup:
    """Horizontal bars, one per (label, value), largest scale = largest value."""
    bar_h, gap, label_w = 20, 8, 150
    height = 30 + max(1, len(rows)) * (bar_h + gap)
    top = max((v for _, v in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" {_FONT}><title>{escape(title)}</title>',
             f'<text x="0" y="16" font-weight="600">{escape(title)}</text>']
    if not rows:
        parts.append('<text x="0" y="44" fill="#6b7280">Nothing in this period</text>')
    for i, (label, value) in enumerate(rows):
        y = 28 + i * (bar_h + gap)
        w = (width - label_w - 60) * (value / top)
        parts.append(f'<text x="0" y="{y + 14}">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}" rx="3"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 14}">{escape(_num(value))}{escape(unit)}</text>')
    parts.append("</svg>")
    return _done(parts)


def vbars(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *,
          width: int = 460, height: int = 220) -> Markup:
    """Grouped vertical bars: for each label, one bar per series (e.g. per queue)."""
    left, bottom, top_pad = 30, 40, 40
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    top = max((v for _, vs in series for v in vs), default=0) or 1
    group_w = plot_w / max(1, len(labels))
    bar_w = max(2.0, (group_w - 8) / max(1, len(series)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" {_FONT}><title>{escape(title)}</title>',
             f'<text x="0" y="16" font-weight="600">{escape(title)}</text>',
             f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{width - 10}" y2="{top_pad + plot_h}" stroke="#9ca3af"/>']
    for si, (name, _) in enumerate(series):
        parts.append(f'<rect x="{left + si * 110}" y="22" width="10" height="10" fill="{COLORS[si % len(COLORS)]}"/>'
                     f'<text x="{left + si * 110 + 14}" y="31">{escape(name)}</text>')
    for gi, label in enumerate(labels):
        gx = left + gi * group_w
        parts.append(f'<text x="{gx + group_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                     f'{escape(label)}</text>')
        for si, (_, values) in enumerate(series):
            v = values[gi] if gi < len(values) else 0
            h = plot_h * v / top
            x = gx + 4 + si * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top_pad + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                         f'height="{h:.1f}" fill="{COLORS[si % len(COLORS)]}"><title>{escape(label)}: {v}</title>'
                         "</rect>")
            if v:
                parts.append(f'<text x="{x + (bar_w - 1) / 2:.1f}" y="{top_pad + plot_h - h - 3:.1f}" '
                             f'text-anchor="middle" font-size="10">{v}</text>')
    if not series:
        parts.append(f'<text x="{left}" y="{top_pad + 20}" fill="#6b7280">Nothing allocated in this period</text>')
    parts.append("</svg>")
    return _done(parts)


def trend(title: str, points: Sequence[tuple[str, float | None]], *, width: int = 460, height: int = 220,
          target: float | None = None) -> Markup:
    """A line of fractions (0..1) per label; gaps where a week had nothing allocated."""
    left, bottom, top_pad = 40, 40, 44
    plot_w, plot_h = width - left - 20, height - bottom - top_pad
    n = max(1, len(points) - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" {_FONT}><title>{escape(title)}</title>',
             f'<text x="0" y="16" font-weight="600">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{frac * 100:.0f}%</text>')
    if target is not None:
        y = top_pad + plot_h * (1 - target)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" stroke="#dc2626" '
                     'stroke-dasharray="4 3"/>')
    coords = []
    for i, (label, value) in enumerate(points):
        x = left + plot_w * i / n
        if i % max(1, len(points) // 8) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(label)}</text>')
        if value is None:
            coords.append(None)
            continue
        y = top_pad + plot_h * (1 - value)
        coords.append((x, y))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{COLORS[0]}"><title>{escape(label)}: '
                     f'{value * 100:.0f}%</title></circle>'
                     f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-size="10">{value * 100:.0f}%</text>')
    run: list[tuple[float, float]] = []
    for c in [*coords, None]:
        if c is None:
            if len(run) > 1:
                d = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[0]}" stroke-width="2"/>')
            run = []
        else:
            run.append(c)
    parts.append("</svg>")
    return _done(parts)


def _done(parts: list[str]) -> Markup:
    # Safe: every piece of text in `parts` went through escape(); the rest is numbers and literals.
    return Markup("".join(parts))  # noqa: S704


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
