"""The scale benchmark's output: Markdown tables, results.json, and a plot over N."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.running import pyplot

#: A plot's title and how to read its value from a controller's results.
Panel = tuple[str, Callable[[dict[str, Any]], Any]]


async def sample_load(loads: list[list[float]]) -> None:
    """The load average every 30 s: how busy the shared machine was during the run."""
    while True:
        loads.append([round(v, 2) for v in os.getloadavg()])
        await asyncio.sleep(30)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _detection(d: dict[str, Any] | None) -> str:
    if not d or not d["changes"]:
        return "not measured"
    missed = f", {d['missed']} missed" if d["missed"] else ""
    return (f"p50 {_seconds(d['p50'])}, p99 {_seconds(d['p99'])} "
            f"({d['changes']} changes{missed})")


def summary_line(result: dict[str, Any]) -> str:
    return (f"idle RSS {result.get('rss_median_mib')} MiB, "
            f"{result.get('cpu_seconds_per_minute')} CPU s/min, "
            f"{result.get('api_requests_per_minute')} API req/min; detection "
            f"{_detection(result.get('detection_one_at_a_time'))}")


def _top(by: dict[str, float], count: int = 4) -> str:
    if not by:
        return "none"
    return ", ".join(f"{k} {v:.3g}" for k, v in list(by.items())[:count])


def _during(c: dict[str, Any], cell: Callable[[dict[str, Any]], str]) -> str:
    w = c.get("during_rollouts")
    return f"{w['rollouts']} rollouts: {cell(w)}" if w else "not measured"


def _ended(w: dict[str, Any]) -> str:
    outcomes = w.get("outcomes") or {}
    return ", ".join(f"{count} {phase}" for phase, count in sorted(outcomes.items()))


def _lateness(w: dict[str, Any]) -> str:
    if not w.get("steps"):
        return "no steps"
    return (f"p50 {_seconds(w['step_lateness_p50'])}, p99 {_seconds(w['step_lateness_p99'])} "
            f"({w['steps']} steps)")


ROWS: list[tuple[str, Any]] = [
    ("process ready after", lambda c: _seconds(c["ready_seconds"])),
    ("all N Canaries Initialized after (from the process start)",
     lambda c: _seconds(c["initialized_seconds"]) if c["initialized_seconds"] is not None
     else f"not within {_seconds(c['startup_seconds'])}: {c['initialized_count']:,} were"),
    ("CPU seconds until then", lambda c: f"{c['startup_cpu_seconds']:g}"),
    ("API requests until then", lambda c: f"{c['startup_api_requests']:,}"),
    ("writes still made after all were Initialized, for",
     lambda c: _seconds(c.get("writes_after_initialized_seconds"))),
    ("idle RSS, median (MiB)", lambda c: f"{c.get('rss_median_mib', '-')}"),
    ("peak RSS over the whole run (MiB)", lambda c: f"{c.get('peak_rss_mib', '-')}"),
    ("idle CPU seconds per minute", lambda c: f"{c.get('cpu_seconds_per_minute', '-')}"),
    ("idle API requests per minute (audit log)", lambda c: f"{c['api_requests_per_minute']:g}"),
    ("... the most frequent (verb resource per minute)",
     lambda c: _top(c["api_requests_per_minute_by_verb_resource"])),
    ("idle Prometheus queries per minute", lambda c: f"{c['prometheus_queries_per_minute']:g}"),
    ("detection, one change at a time", lambda c: _detection(c.get("detection_one_at_a_time"))),
    ("detection, changes at once", lambda c: _detection(c.get("detection_at_once"))),
    ("the changes' rollouts, with traffic: how they ended",
     lambda c: _during(c, lambda w: f"{_ended(w)} ({w.get('traffic_rps', 0):g} req/s each)")),
    ("... from the change to the end, p50 / p99",
     lambda c: _during(c, lambda w: f"{_seconds(w.get('change_to_end_p50'))} / "
                                    f"{_seconds(w.get('change_to_end_p99'))}")),
    ("... how late each step ran against the interval",
     lambda c: _during(c, _lateness)),
    ("... meanwhile: RSS median (MiB), CPU s/min",
     lambda c: _during(c, lambda w: f"{w.get('rss_median_mib')}, "
                                    f"{w.get('cpu_seconds_per_minute')}")),
    ("... API requests per minute (the most frequent)",
     lambda c: _during(c, lambda w: f"{w['api_requests_per_minute']:g} "
                                    f"({_top(w['api_requests_per_minute_by_verb_resource'], 3)})")),
    ("... Prometheus queries per minute",
     lambda c: _during(c, lambda w: f"{w['prometheus_queries_per_minute']:g}")),
    ("API requests during the detection changes",
     lambda c: f"{c.get('detection_api_requests', '-'):,}"),
    ("Prometheus queries during the detection changes",
     lambda c: f"{c.get('detection_prometheus_queries', '-'):,}"),
]


def _cell(cell: Callable[[dict[str, Any]], str], result: dict[str, Any]) -> str:
    """A measure of one controller; "-" where it was not measured (a controller that did
    not initialize every Canary is measured no further, a run stopped part way)."""
    try:
        return cell(result)
    except (KeyError, TypeError, ValueError):
        return "-"


def markdown(data: dict[str, Any]) -> str:
    """For each N: what the API server held, then both controllers side by side."""
    parts = []
    for run in data["runs"]:
        sizes, names = run["sizes"], list(run["controllers"])
        parts.append(f"N = {run['canaries']:,} Canaries over {sizes['namespaces']} namespaces; "
                     f"background {sizes['deployments']:,} Deployments, "
                     f"{sizes['configmaps']:,} ConfigMaps, {sizes['secrets']:,} Secrets; "
                     f"analysis interval {data['interval']}; created in "
                     f"{run['setup']['seconds']} s ({run['setup']['objects_per_second']} "
                     f"objects/s), pods ready {run['setup']['pods_ready_seconds']} s later.\n")
        parts.append("| kind | objects before the controllers | after both |\n|---|---|---|")
        parts += [f"| {kind} | {count:,} | {run['objects_after'].get(kind, 0):,} |"
                  for kind, count in run["objects"].items()]
        parts.append("")
        header = " | ".join(f"{n} ({'Flagger ' + data['flagger'] if n == 'flagger' else n})"
                            for n in names)
        parts.append(f"| measure | {header} |\n|---|{'---|' * len(names)}")
        for label, cell in ROWS:
            cells = " | ".join(_cell(cell, run["controllers"][n]) for n in names)
            parts.append(f"| {label} | {cells} |")
        parts.append("")
    return "\n".join(parts)


def plot(data: dict[str, Any], path: Path) -> bool:
    """Each measure against N, one line per controller (only for several N)."""
    runs = data["runs"]
    if len(runs) < 2:
        return False
    plt = pyplot()
    if plt is None:
        return False
    panels: list[Panel] = [
        ("all Initialized after (s)", lambda c: c["initialized_seconds"]),
        ("idle RSS, median (MiB)", lambda c: c.get("rss_median_mib")),
        ("idle CPU s per minute", lambda c: c.get("cpu_seconds_per_minute")),
        ("idle API requests per minute", lambda c: c["api_requests_per_minute"]),
        ("detection p50, one at a time (s)", lambda c: c["detection_one_at_a_time"]["p50"]),
        ("detection p99, at once (s)", lambda c: c["detection_at_once"]["p99"]),
        ("step lateness p99, rollouts at once (s)",
         lambda c: (c.get("during_rollouts") or {}).get("step_lateness_p99")),
        ("RSS during the rollouts, median (MiB)",
         lambda c: (c.get("during_rollouts") or {}).get("rss_median_mib")),
        ("CPU s per minute during the rollouts",
         lambda c: (c.get("during_rollouts") or {}).get("cpu_seconds_per_minute"))]
    figure, axes = plt.subplots(3, 3, figsize=(13, 10))
    xs = [run["canaries"] for run in runs]
    names = list(dict.fromkeys(name for run in runs for name in run["controllers"]))
    _mark_unfinished(axes.flat[0], runs, names)  # before the panel's limits are set
    for ax, (title, value) in zip(axes.flat, panels, strict=True):
        for name in names:
            ys = [point(value, run["controllers"].get(name)) for run in runs]
            ax.plot(xs, ys, marker="o", label=name)
        ax.set_title(title, fontsize=10)
        if title.startswith(("detection", "step")):  # milliseconds and a minute on one axis
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("Canaries (N)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend()
    figure.suptitle(f"canary and Flagger {data['flagger']} by number of Canaries "
                    f"({data['date']})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def point(value: Callable[[dict[str, Any]], Any], result: dict[str, Any] | None
          ) -> float:
    """A point of the plot; NaN (a gap in the line) where it was not measured."""
    try:
        found = value(result) if result is not None else None
    except (KeyError, TypeError):
        found = None
    return float("nan") if found is None else float(found)


def _mark_unfinished(ax: Any, runs: list[dict[str, Any]], names: list[str]) -> None:
    """A cross where a controller had not initialized every Canary when its start-up
    was cut short, labelled with how many it had: it was measured no further."""
    for name in names:
        for run in runs:
            result = run["controllers"].get(name)
            if result is None or result.get("initialized_seconds") is not None:
                continue
            x, y = run["canaries"], result["startup_seconds"]
            ax.plot([x], [y], marker="x", color="black", markersize=9)
            ax.annotate(f"{name}: {result['initialized_count']:,} of {x:,}\nafter {y:.0f} s",
                        (x, y), textcoords="offset points", xytext=(-10, -24),
                        ha="right", fontsize=8)


def write(data: dict[str, Any], out: Path, json_too: bool = True,
          plot_too: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if json_too:
        (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {out / 'results.json'}")
    if plot_too and plot(data, out / "results.png"):
        print(f"wrote {out / 'results.png'}")
