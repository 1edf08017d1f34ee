"""Which labelled series belong to which Canary.

A Canary's gauges are rewritten as a whole on every status write, and a series the new
status no longer has (a metric removed from the analysis, an old revision in
``canary_info``, a verdict that changed) must disappear rather than linger with its last
value. The book keeps each Canary's gauge values and is the collector that exposes them
(:class:`StatusGauge`): a scrape reads them as they are, and a Canary costs a map of
label values to numbers, not a prometheus-client child object (a lock, a value, a
labelled metric) per series, a dozen of them per Canary for the phase's state set alone.

Counters and histograms of a Canary are prometheus-client metrics, kept until the Canary
is deleted; the book remembers their series so that ``forget`` drops everything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

#: A Canary: (namespace, name).
Key = tuple[str, str]
LabelValues = tuple[str, ...]


@dataclass(frozen=True, eq=False)
class StatusGauge:
    """A gauge family whose series each Canary's status sets (see :class:`SeriesBook`)."""

    name: str
    documentation: str
    labels: tuple[str, ...]


#: The gauge series a Canary has now, with their values.
GaugeValues = Mapping[StatusGauge, Mapping[LabelValues, float]]


class SeriesBook(Collector):
    """The series each Canary owns, and the collector of its gauges; thread-safe.

    Two Canaries may set the same series (Flagger's are labelled by target): the value
    written last is exposed, as when both set one prometheus-client gauge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: list[StatusGauge] = []
        #: In the order of the last write: merged in that order, the last write wins.
        self._gauges: dict[Key, dict[StatusGauge, dict[LabelValues, float]]] = {}
        self._kept: dict[Key, dict[MetricWrapperBase, set[LabelValues]]] = {}

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...]) -> StatusGauge:
        """A new family, exposed by this book (register the book once all are made)."""
        family = StatusGauge(name, documentation, labels)
        with self._lock:
            self._families.append(family)
        return family

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._gauges or key in self._kept

    def keys(self) -> list[Key]:
        with self._lock:
            return sorted(set(self._gauges) | set(self._kept))

    def set_gauges(self, key: Key, values: GaugeValues) -> None:
        """Make ``values`` the Canary's gauge series; the others it had disappear."""
        owned = {family: dict(series) for family, series in values.items() if series}
        with self._lock:
            self._gauges.pop(key, None)
            self._gauges[key] = owned

    def keep(self, key: Key, metric: MetricWrapperBase, labels: LabelValues) -> None:
        """Remember a counter or histogram series of the Canary, removed by :meth:`forget`."""
        with self._lock:
            self._kept.setdefault(key, {}).setdefault(metric, set()).add(labels)

    def forget(self, key: Key) -> None:
        """Remove every series of the Canary."""
        with self._lock:
            self._gauges.pop(key, None)
            kept = self._kept.pop(key, {})
        for metric, labelsets in kept.items():
            for labels in labelsets:
                _remove(metric, labels)

    def describe(self) -> Iterator[Metric]:
        """The families' names, so the registry refuses a clash at registration."""
        with self._lock:
            families = list(self._families)
        for family in families:
            yield GaugeMetricFamily(family.name, family.documentation, labels=family.labels)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = list(self._families)
            merged: dict[StatusGauge, dict[LabelValues, float]] = {f: {} for f in families}
            for owned in self._gauges.values():
                for family, series in owned.items():
                    merged[family].update(series)
        for family in families:
            exposed = GaugeMetricFamily(family.name, family.documentation,
                                        labels=family.labels)
            for labels, value in merged[family].items():
                exposed.add_metric(labels, value)
            yield exposed


def _remove(metric: MetricWrapperBase, labels: LabelValues) -> None:
    # A series may already be gone: two Canaries of one target share Flagger's series,
    # and prometheus-client before 0.22 raises KeyError for a missing one.
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
