"""``canary watch NAME``: a rollout, live, in the terminal.

Two watches (list, then watch, through :class:`canary.kube.Reflector`) feed it: one on the
Canary, one on the events about it. On a terminal the screen is redrawn in place whenever
either changes (and every second, for the clocks): a bar over the steps (weights or
iterations), the current weight, each check of the last analysis against its bound, and
the latest events. Anywhere else (a pipe, a log file, ``TERM=dumb``) it prints plain lines:
one when the rollout moves, one per event.

If no rollout is under way when it starts, it waits for the next one. It exits when the
rollout ends: 0 when promoted, 1 when rolled back; ``--follow`` keeps it going.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from canary.console.describe import regarding
from canary.console.render import Style, bar, bound, clock, fit, number, since, table
from canary.console.view import (
    DONE,
    IDLE,
    JUDGE_HEADERS,
    CanaryView,
    EventView,
    events_in_order,
    evidence_of,
    failed_first,
    judge_rows,
    parse_moment,
)
from canary.errors import CanaryError
from canary.kube import KubeClient, NotFound, Reflector
from canary.kube import resources as r
from canary.kube.client import JSON

#: Seconds between redraws when nothing changes (the clocks move).
TICK = 1.0
#: Seconds to gather a burst of changes into one redraw.
SETTLE = 0.05


# -- the terminal screen (pure) --------------------------------------------------------


def frame(view: CanaryView, events: Sequence[EventView], now: datetime, *, width: int = 100,
          height: int = 30, style: Style | None = None, waiting: bool = False) -> list[str]:
    """The screen for one moment, at most ``height`` lines of at most ``width`` columns."""
    style = style or Style()
    top = [_title(view, now, style, width), _subtitle(view, now), ""]
    top += _progress(view, style)
    decision = view.decision()
    if view.phase != "Progressing" or decision.reason != "Progressing":
        top.append(f"{style(decision.reason, 'bold')}: {decision.message}")
    if waiting:
        top.append(style(f"No rollout under way: waiting for a new revision of "
                         f"{_target(view)}. Ctrl-C to leave.", "dim"))
    top.append("")
    top += _checks(view, now, style, width)
    judged = judge_rows(view)
    if judged:
        top.append(style("Judge, canary against primary:", "bold"))
        top += ["  " + line for line in table(JUDGE_HEADERS, judged, width - 2, style)]
    top.append("")
    room = max(0, height - len(top) - 1)
    bottom = _events(events, style, width, room)
    return [fit(line, width) for line in top + bottom][:height]


def _target(view: CanaryView) -> str:
    return view.canary.spec.target_ref.name if view.canary else view.name


def _title(view: CanaryView, now: datetime, style: Style, width: int) -> str:
    left = f"{style(f'{view.namespace}/{view.name}', 'bold')}  {style.phase(view.phase)}"
    right = style(clock(now), "dim")
    gap = max(2, width - len(f"{view.namespace}/{view.name}  {view.phase}") - 8)
    return left + " " * gap + right


def _subtitle(view: CanaryView, now: datetime) -> str:
    parts = [view.strategy]
    if view.revision:
        parts.append(f"revision {view.revision}")
    threshold = view.threshold
    parts.append(f"failed checks {view.failed_checks}" + (f"/{threshold}" if threshold else ""))
    started, interval = view.step_started, view.interval_seconds
    if view.phase == "Progressing" and started is not None and interval is not None:
        due = interval - (now - started).total_seconds()
        parts.append(f"next check in {due:.0f}s" if due >= 0.5 else "check due")
    return " · ".join(parts)


def _progress(view: CanaryView, style: Style) -> list[str]:
    progress = view.progress()
    color = "red" if view.phase == "Failed" else "green"
    if progress.kind == "iteration":
        return [f"iteration {progress.done}/{progress.total}  "
                f"{bar(progress.done, progress.total, 32, style, color)}"
                f"  weight {view.weight}%"]
    steps = progress.steps
    labels = []
    for index, step in enumerate(steps):
        text = str(step)
        if index < progress.done:
            labels.append(style(text, color))
        elif index == progress.done and view.phase == "Progressing":
            labels.append(style(f"({text})", "bold"))
        else:
            labels.append(style(text, "dim"))
    promoted = view.phase in ("Promoting", "Finalising", "Succeeded")
    labels.append(style("promote", color if promoted else "dim"))
    return [f"weight {view.weight:>3}%  {bar(progress.done, progress.total, 32, style, color)}"
            f"  steps {' > '.join(labels)}"]


def _checks(view: CanaryView, now: datetime, style: Style, width: int) -> list[str]:
    record = view.current_analysis()
    if record is None:
        return [style("No analysis of this revision yet.", "dim")]
    when = since(parse_moment(record.time), now)
    lines = [style(f"Checks at weight {record.weight}, {when} ago:", "bold")]
    rows = []
    for result in failed_first(record.results):
        passed = result.verdict == "Passed"
        mark = style("ok" if passed else "FAIL", "green" if passed else "red")
        rows.append([result.name, number(result.value), bound(result.min, result.max),
                     mark, result.message or ""])
    lines += ["  " + line for line in table(("CHECK", "VALUE", "BOUND", "", ""), rows,
                                            width - 2, style)[1:]]
    return lines


def _events(events: Sequence[EventView], style: Style, width: int, room: int) -> list[str]:
    if room <= 1:
        return []
    shown = list(events)[-(room - 1):]
    lines = [style(f"Events ({len(events)}):", "bold")]
    for event in shown:
        reason = style(f"{event.reason:<18}", "yellow" if event.type == "Warning" else "cyan")
        lines.append(f"  {clock(event.time)}  {reason} {event.note}")
    return lines


# -- plain lines (pure) ----------------------------------------------------------------


@dataclass
class PlainLog:
    """Turns successive observations into the lines to print: the rollout's state when it
    changes, each event once."""

    printed_events: set[str] = field(default_factory=set)
    last_state: tuple[object, ...] | None = None

    def update(self, view: CanaryView, events: Sequence[EventView], now: datetime,
               waiting: bool = False) -> list[str]:
        lines = []
        for event in events:
            if event.uid in self.printed_events:
                continue
            self.printed_events.add(event.uid)
            lines.append(f"{clock(event.time)} event {event.type} {event.reason}: {event.note}")
        record = view.current_analysis()
        progress = view.progress()
        state = (view.phase, view.weight, view.failed_checks, progress.done,
                 record.time if record else None, view.decision().reason, waiting)
        if state != self.last_state:
            self.last_state = state
            lines.append(f"{clock(now)} {self.state_line(view, waiting)}")
        return lines

    @staticmethod
    def state_line(view: CanaryView, waiting: bool = False) -> str:
        progress = view.progress()
        threshold = view.threshold
        where = (f"iteration {progress.done}/{progress.total} weight {view.weight}"
                 if progress.kind == "iteration" else
                 f"weight {view.weight} (step {progress.done}/{progress.total})")
        text = (f"{view.namespace}/{view.name} {view.phase} {where} failed checks "
                f"{view.failed_checks}" + (f"/{threshold}" if threshold else ""))
        record = view.current_analysis()
        if record is not None and record.results:
            text += " | " + "; ".join(evidence_of(r) for r in failed_first(record.results))
        if waiting:
            text += " | no rollout under way: waiting for a new revision"
        elif view.phase != "Progressing":
            decision = view.decision()
            text += f" | {decision.reason}: {decision.message}"
        return text


# -- the terminal ----------------------------------------------------------------------


class Screen:
    """Redraws a frame in place: cursor home, each line cleared to its end, the rest of
    the screen cleared. The cursor is hidden meanwhile and the last frame stays."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last: list[str] | None = None
        out.write("\x1b[?25l\x1b[2J")

    def size(self) -> tuple[int, int]:
        columns, lines = shutil.get_terminal_size((100, 30))
        return columns, lines

    def show(self, lines: list[str]) -> None:
        if lines == self.last:
            return
        self.last = lines
        self.out.write("\x1b[H" + "".join(f"{line}\x1b[K\n" for line in lines) + "\x1b[J")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\x1b[?25h")
        self.out.flush()


def interactive(out: TextIO) -> bool:
    return bool(hasattr(out, "isatty") and out.isatty() and os.environ.get("TERM") != "dumb")


async def run(name: str, namespace: str, kubeconfig: Path | None, out: TextIO, *,
              follow: bool = False) -> int:
    """Follow Canary ``namespace/name`` until its rollout ends (or forever with ``follow``).
    Returns 0 when the rollout was promoted, 1 when it was rolled back."""
    async with await KubeClient.connect(kubeconfig) as client:
        try:
            await client.get(r.CANARIES, name, namespace)
        except NotFound:
            raise CanaryError(f"Canary {namespace}/{name} not found") from None
        # Fail now, not in a retry loop, if the events cannot be read.
        await client.list(r.EVENTS, namespace, field_selector=regarding(name))
        return await _follow(client, name, namespace, out, follow)


async def _follow(client: KubeClient, name: str, namespace: str, out: TextIO,
                  follow: bool) -> int:
    changed = asyncio.Event()
    active = False

    def on_canary(kind: str, obj: JSON) -> None:
        nonlocal active
        if str((obj.get("status") or {}).get("phase") or "") not in IDLE and kind != "DELETED":
            active = True
        changed.set()

    canaries = Reflector(client, r.CANARIES, namespace, field_selector=f"metadata.name={name}",
                         on_event=on_canary)
    events = Reflector(client, r.EVENTS, namespace, field_selector=regarding(name),
                       on_event=lambda kind, obj: changed.set())
    tasks = [asyncio.create_task(canaries.run()), asyncio.create_task(events.run())]
    display = _Display(out)
    try:
        await _synced(canaries, events, f"Canary {namespace}/{name}")
        while True:
            obj = canaries.get(namespace, name)
            if obj is None:
                display.close()
                out.write(f"Canary {namespace}/{name} was deleted\n")
                return 1
            view = CanaryView(obj)
            history = events_in_order(events.items())
            now = datetime.now(UTC)
            ended = active and view.phase in DONE and not follow
            if view.phase in DONE and follow:
                active = False  # wait for the next rollout
            waiting = not active and view.phase in IDLE
            display.show(view, history, now, waiting and not ended)
            if ended:
                return 0 if view.phase == "Succeeded" else 1
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), TICK if display.tty else None)
            await asyncio.sleep(SETTLE)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        display.close()


async def _synced(canaries: Reflector, events: Reflector, what: str) -> None:
    """Wait until both watches have listed; a minute at most."""
    try:
        await asyncio.wait_for(asyncio.gather(canaries.synced.wait(),
                                              events.synced.wait()), timeout=60)
    except TimeoutError:
        raise CanaryError(f"could not list {what} and its events within 60s") from None


class _Display:
    """Where the rollout is shown: a screen redrawn in place on a terminal, plain lines
    anywhere else."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = interactive(out)
        self.style = Style.for_stream(out)
        self.screen = Screen(out) if self.tty else None
        self.log = PlainLog()

    def show(self, view: CanaryView, history: Sequence[EventView], now: datetime,
             waiting: bool) -> None:
        if self.screen is not None:
            columns, rows = self.screen.size()
            self.screen.show(frame(view, history, now, width=columns, height=rows - 1,
                                   style=self.style, waiting=waiting))
        else:
            for line in self.log.update(view, history, now, waiting):
                self.out.write(line + "\n")
            self.out.flush()

    def close(self) -> None:
        """Give the cursor back; once."""
        if self.screen is not None:
            self.screen.close()
            self.screen = None
