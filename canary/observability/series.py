"""Which labelled series belong to which Canary.

A Canary's gauges are rewritten as a whole on every status write, and a series the new
status no longer has (a metric removed from the analysis, an old revision in
``canary_info``, a verdict that changed) must disappear rather than linger with its last
value. Counters and histograms of a Canary are kept until the Canary is deleted. This
book remembers both, so that an update drops exactly what went away and ``forget`` drops
everything.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping

from prometheus_client import Gauge
from prometheus_client.metrics import MetricWrapperBase

#: A Canary: (namespace, name).
Key = tuple[str, str]
LabelValues = tuple[str, ...]
#: The gauge series a Canary has now, with their values.
GaugeValues = Mapping[Gauge, Mapping[LabelValues, float]]


class SeriesBook:
    """The series each Canary owns; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gauges: dict[Key, dict[Gauge, set[LabelValues]]] = {}
        self._kept: dict[Key, dict[MetricWrapperBase, set[LabelValues]]] = {}

    def __contains__(self, key: Key) -> bool:
        with self._lock:
            return key in self._gauges or key in self._kept

    def keys(self) -> list[Key]:
        with self._lock:
            return sorted(set(self._gauges) | set(self._kept))

    def set_gauges(self, key: Key, values: GaugeValues) -> None:
        """Make ``values`` the Canary's gauge series: set them, remove the others."""
        with self._lock:
            for gauge, series in values.items():
                for labels, value in series.items():
                    gauge.labels(*labels).set(value)
            old = self._gauges.get(key, {})
            for gauge, labelsets in old.items():
                for labels in labelsets - set(values.get(gauge, {})):
                    _remove(gauge, labels)
            self._gauges[key] = {gauge: set(series) for gauge, series in values.items()}

    def keep(self, key: Key, metric: MetricWrapperBase, labels: LabelValues) -> None:
        """Remember a counter or histogram series of the Canary, removed by :meth:`forget`."""
        with self._lock:
            self._kept.setdefault(key, {}).setdefault(metric, set()).add(labels)

    def forget(self, key: Key) -> None:
        """Remove every series of the Canary."""
        with self._lock:
            for owned in (self._gauges.pop(key, {}), self._kept.pop(key, {})):
                for metric, labelsets in owned.items():
                    for labels in labelsets:
                        _remove(metric, labels)


def _remove(metric: MetricWrapperBase, labels: LabelValues) -> None:
    # A series may already be gone: two Canaries of one target share Flagger's series,
    # and prometheus-client before 0.22 raises KeyError for a missing one.
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
