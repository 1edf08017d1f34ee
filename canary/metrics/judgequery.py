"""The judge's query: the cumulative counters of the canary and the primary (pure).

Raw cumulative values, which the judge differences itself (``rate()`` and ``increase()``
extrapolate and are not whole numbers). :func:`judge_query` reads all of a metric's
counters in one query, so that they come from the same scrapes (Prometheus never shows
one query part of a scrape); each of its series carries a :data:`JUDGE_PART` label saying
what it counts, and a ``destination_workload`` label naming the Deployment it counts for,
whatever the data plane (:mod:`canary.metrics.builtins`):

- Istio labels its series with the workload (``destination_workload``) itself;
- Envoy Gateway labels them with the cluster (``envoy_cluster_name``): each cluster of the
  canary's backendRef is given the canary's workload name, each of the primary's the
  primary's, with ``label_replace``, before anything is summed or compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from canary.errors import ConfigError
from canary.metrics.builtins import ENVOY_GATEWAY, ISTIO
from canary.metrics.grpc import GRPC_SERVER_ERRORS

JUDGE_PART = "canary_judge"
#: The counters summed per workload, by metric type: what each part counts and its
#: expression, where ``{series}`` stands for the metric's series of both workloads and
#: ``{errors}`` for those of 5xx responses.
JUDGE_PARTS = {
    "errorRate": {
        "requests": "sum by (destination_workload) ({series})",
        "errors": "sum by (destination_workload) ({errors})",
    },
    "latency": {
        "buckets": "sum by (destination_workload, le) ({series})",
    },
}
#: How far before the previous reading a series absent from it is looked for: found
#: there, it came back (after a failed scrape, say) holding counts that reading missed.
REAPPEARED_WINDOW = "1h"

_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Counted:
    """What a judged metric reads on one data plane: the ``metric``, the matchers of its
    failed requests (``errors``: each a series set, a request in several counted once) and
    of the series counting each request once (``total``)."""

    metric: str
    errors: tuple[str, ...] = ()
    total: str = ""

    def error_series(self, series: Series) -> str:
        """The failed requests' series: the union of the ``errors`` sets (``or`` keeps a
        series found in two once)."""
        return " or ".join(series.raw(self.metric, matcher) for matcher in self.errors)


#: By data plane and judged metric type. Envoy's response classes are counted only for
#: answered requests (upstream or Envoy's own 503s and 504s), like Istio's
#: ``istio_requests_total``; ``upstream_rq_total`` also counts requests still in flight,
#: which would let a reading show more requests than answers.
COUNTED = {
    ISTIO: {"errorRate": Counted("istio_requests_total", errors=(
                'response_code=~"5.*"', f'grpc_response_status=~"{GRPC_SERVER_ERRORS}"')),
            "latency": Counted("istio_request_duration_milliseconds_bucket",
                               total='le="+Inf"')},
    ENVOY_GATEWAY: {"errorRate": Counted("envoy_cluster_upstream_rq_xx",
                                         errors=('envoy_response_code_class="5"',)),
                    "latency": Counted("envoy_cluster_upstream_rq_time_bucket",
                                       total='le="+Inf"')},
}


@dataclass(frozen=True)
class Series:
    """The series of both workloads on one data plane: their label ``selector``, and the
    ``relabel`` giving a series without ``destination_workload`` its workload: (workload,
    regular expression of its ``envoy_cluster_name``)."""

    selector: str
    relabel: tuple[tuple[str, str], ...] = ()

    def raw(self, metric: str, extra: str = "") -> str:
        return f"{metric}{{{self.selector}{',' + extra if extra else ''}}}"

    def labelled(self, expression: str) -> str:
        """``expression`` (of raw series) with every series naming its workload."""
        for workload, clusters in self.relabel:
            expression = (f'label_replace({expression}, "destination_workload", '
                          f'"{workload}", "envoy_cluster_name", "{clusters}")')
        return expression


def _alternatives(names: Sequence[str]) -> str:
    """A regular expression matching exactly ``names`` (Kubernetes names, checked)."""
    for value in names:
        if not _DNS_NAME.fullmatch(value):
            raise ConfigError(f"{value!r} is not a valid Kubernetes name")
    # Names may hold dots, which a regular expression must match literally.
    return "|".join(w.replace(".", "\\\\.") for w in names)


def _istio(namespace: str, workloads: Sequence[str], exclude_sources: Sequence[str]
           ) -> Series:
    selector = (f'reporter="destination",destination_workload_namespace="{namespace}",'
                f'destination_workload=~"{_alternatives(workloads)}"')
    if exclude_sources:
        selector += f',source_workload!~"{_alternatives(exclude_sources)}"'
    return Series(selector)


def _envoy_gateway(namespace: str, workloads: Sequence[str], service: str | None,
                   exclude_sources: Sequence[str]) -> Series:
    """The clusters of canary's ``<service>`` route: backend 1 is the canary (the first
    of ``workloads``), backend 0 the primary."""
    if exclude_sources:
        raise ConfigError("spec.analysis.judge.excludeSources: Envoy Gateway's cluster stats "
                          "do not say which workload sent a request; remove it")
    if service is None:
        raise ConfigError("the judge on Envoy Gateway needs the Canary's Service name")
    _alternatives(workloads)
    rule = f"(httproute|grpcroute)/{namespace}/{_alternatives([service])}/rule/[0-9]+/backend/"
    canary, primary = workloads
    return Series(f'envoy_cluster_name=~"{rule}(0|1)"',
                  relabel=((canary, f"{rule}1"), (primary, f"{rule}0")))


def _lost(series: Series, metric: str, since: str) -> str:
    """The ``lost`` part: per workload, the series that make the difference with the
    previous reading (``since`` ago) unsound: vanished since, lower now than then, reset in
    between, or present now but absent then although Prometheus had them before."""
    raw = series.raw(metric)
    now, then = series.labelled(raw), series.labelled(f"{raw} offset {since}")
    resets = series.labelled(f"resets({raw}[{since}])")
    before = series.labelled(f"last_over_time({raw}[{REAPPEARED_WINDOW}] offset {since})")
    return ("count by (destination_workload) ("
            f"({then} unless {now}) or ({now} < {then}) or ({resets} > 0) "
            f"or ({now} and ({before} unless {then})))")


def _previous(series: Series, counted: Counted, since: str) -> str:
    """The ``previous`` part: per workload, the requests Prometheus shows now at the
    previous reading's instant. Fewer than that reading counted means a series it counted
    has since been marked stale there (a failed scrape, known only after the reading):
    the series set shrank."""
    total = series.labelled(f"{series.raw(counted.metric, counted.total)} offset {since}")
    return f"sum by (destination_workload) ({total})"


def judge_query(metric_type: str, namespace: str, workloads: Sequence[str],
                since: float | None = None, exclude_sources: Sequence[str] = (),
                plane: str = ISTIO, service: str | None = None) -> str:
    """The PromQL reading a judged metric's counters for ``workloads`` (the canary's and
    the primary's Deployment names, in that order) on the data ``plane``, without the
    requests of ``exclude_sources``; ``service`` names canary's route (Envoy Gateway).

    With ``since`` (seconds since the previous reading), the ``lost`` part counts, per
    workload, the series that make the difference with that reading unsound, and the
    ``previous`` part sums the requests Prometheus now shows at that reading's instant."""
    if metric_type not in JUDGE_PARTS:
        raise ConfigError(f"no counters for judged metrics of type {metric_type!r}")
    if plane not in COUNTED:
        raise ConfigError(f"no judged metrics on {plane!r}")
    if not _DNS_NAME.fullmatch(namespace):
        raise ConfigError(f"{namespace!r} is not a valid Kubernetes name")
    series = (_istio(namespace, workloads, exclude_sources) if plane == ISTIO
              else _envoy_gateway(namespace, workloads, service, exclude_sources))
    counted = COUNTED[plane][metric_type]
    parts = {what: expression.format(
                 series=series.labelled(series.raw(counted.metric)),
                 errors=series.labelled(counted.error_series(series)))
             for what, expression in JUDGE_PARTS[metric_type].items()}
    if since is not None:
        offset = f"{max(1, round(since * 1000))}ms"
        parts["lost"] = _lost(series, counted.metric, offset)
        parts["previous"] = _previous(series, counted, offset)
    return " or ".join(f'label_replace({expression}, "{JUDGE_PART}", "{what}", "", "")'
                       for what, expression in parts.items())
