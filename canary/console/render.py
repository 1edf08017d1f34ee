"""Text primitives for the console commands (pure): styles, tables, bars, ages, numbers.

Only the standard library: ANSI SGR sequences for colour, nothing for layout but string
widths. Colour is a :class:`Style` passed in, so the same code renders for a terminal, a
pipe (no colour) and the tests.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
          "magenta": "35", "cyan": "36"}


@dataclass(frozen=True)
class Style:
    """ANSI styling, or none (``Style(False)``): pipes, ``NO_COLOR`` and tests."""

    color: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO) -> Style:
        """Colour when ``stream`` is a terminal and ``NO_COLOR`` is unset (no-color.org)."""
        interactive = hasattr(stream, "isatty") and stream.isatty()
        return cls(bool(interactive and not os.environ.get("NO_COLOR")
                        and os.environ.get("TERM") != "dumb"))

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles or not text:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def phase(self, phase: str) -> str:
        return self(phase, *PHASE_STYLES.get(phase, ()))


#: How each phase is shown: done well, done badly, moving, waiting.
PHASE_STYLES: dict[str, tuple[str, ...]] = {
    "Succeeded": ("green",), "Failed": ("red", "bold"), "Progressing": ("yellow", "bold"),
    "Promoting": ("cyan", "bold"), "Finalising": ("cyan",), "Waiting": ("magenta",),
    "Queued": ("magenta",), "Initializing": ("dim",), "Initialized": ("dim",),
    "Terminating": ("dim",), "Terminated": ("dim",),
}


def visible_len(text: str) -> int:
    """The printed width of ``text`` (ANSI sequences take none)."""
    return len(_ANSI.sub("", text))


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` printed characters, ending in ``…`` when cut."""
    if width <= 0:
        return ""
    if visible_len(text) <= width:
        return text
    out: list[str] = []
    shown = 0
    styled = False
    for piece in re.split(f"({_ANSI.pattern})", text):
        if _ANSI.fullmatch(piece or "-"):
            out.append(piece)
            styled = True
            continue
        room = width - 1 - shown
        if room <= 0:
            break
        out.append(piece[:room])
        shown += len(piece[:room])
    out.append("…")
    if styled:
        out.append("\x1b[0m")
    return "".join(out)


def pad(text: str, width: int) -> str:
    return text + " " * max(0, width - visible_len(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None,
          style: Style | None = None) -> list[str]:
    """Left-aligned columns, two spaces apart, headers in bold; the last column is cut so
    that each line fits ``width`` (when given)."""
    style = style or Style()
    widths = [visible_len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], visible_len(cell))
    lines = []
    for index, row in enumerate([list(headers), *[list(r) for r in rows]]):
        cells = [pad(cell, widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        line = "  ".join(cells).rstrip()
        if width is not None:
            line = fit(line, width)
        lines.append(style(line, "bold") if index == 0 else line)
    return lines


def age(seconds: float) -> str:
    """A duration as ``kubectl get`` shows ages: 45s, 3m12s, 47m, 5h10m, 3d."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return _two_units(seconds, 60, "m", "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(minutes, 60, "h", "m")
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _two_units(amount: int, per: int, unit: str, small_unit: str) -> str:
    """``amount`` small units as whole units and the rest (3m12s), the rest left out
    when there is none (3m)."""
    whole, rest = divmod(amount, per)
    return f"{whole}{unit}{rest}{small_unit}" if rest else f"{whole}{unit}"


def since(moment: datetime | None, now: datetime) -> str:
    return age((now - moment).total_seconds()) if moment is not None else "-"


def clock(moment: datetime | None) -> str:
    """Local wall-clock time, HH:MM:SS."""
    return moment.astimezone().strftime("%H:%M:%S") if moment is not None else "--:--:--"


def number(value: float | None) -> str:
    """A measured value, short: 99.93, 132.4, 1,234, 0.0042."""
    if value is None:
        return "-"
    if value != value:  # NaN
        return "NaN"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        text = f"{value:.1f}"
    elif magnitude >= 1 or magnitude == 0:
        text = f"{value:.2f}"
    else:
        text = f"{value:.2g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def bound(low: float | None, high: float | None) -> str:
    """A metric's bounds: ``>= 99``, ``<= 500``, ``10..1000``, or ``-``."""
    if low is not None and high is not None:
        return f"{number(low)}..{number(high)}"
    if low is not None:
        return f">= {number(low)}"
    if high is not None:
        return f"<= {number(high)}"
    return "-"


def bar(done: float, total: float, width: int, style: Style | None = None,
        color: str = "green") -> str:
    """A progress bar of ``width`` cells: ``[#######.......]`` (full blocks in colour)."""
    style = style or Style()
    inner = max(1, width - 2)
    filled = 0 if total <= 0 else round(inner * max(0.0, min(1.0, done / total)))
    full, empty = ("█", "░") if style.color else ("#", ".")
    return "[" + style(full * filled, color) + style(empty * (inner - filled), "dim") + "]"
