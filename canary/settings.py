"""The controller's settings, grouped, with units and defaults. Each flag of
``canary run`` has an environment variable (``CANARY_`` + the flag in upper snake case)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from canary.kube.selectors import DNS1123_SUBDOMAIN
from canary.models.labels import DEFAULT_SELECTOR_LABELS


@dataclass(frozen=True)
class KubeSettings:
    #: kubeconfig path; None means $KUBECONFIG, ~/.kube/config, then in-cluster.
    kubeconfig: Path | None = None
    #: Watch only these namespaces (a Role in each is enough); None watches all.
    namespaces: tuple[str, ...] | None = None
    #: Handle only Canaries matching this label selector, so several controllers can
    #: split a large cluster between them; None handles every Canary.
    canary_selector: str | None = None
    #: The field manager of every server-side apply.
    field_manager: str = "canary"
    #: Connections open at most to the API server for requests (reads, writes, the
    #: Lease): a burst waits for a free one instead of opening hundreds. Watches are not
    #: counted: each holds its own connection for minutes, from a separate pool with no
    #: cap (their number is fixed: one per watched kind and namespace, a dozen kinds), so
    #: they can never take the connections the Lease renewals and status writes need.
    #: At most ``watches + max_connections`` connections are open.
    max_connections: int = 64

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("kube.max_connections must be at least 1")


@dataclass(frozen=True)
class AnalysisSettings:
    #: Prometheus URL for built-in metrics and templates without an address.
    metrics_server: str | None = None
    #: Shortest analysis interval honoured, in seconds (Flagger's floor is 10). Lower it
    #: only to compress time in tests and demos.
    min_interval_seconds: float = 10.0
    #: Readiness deadline when a Canary sets no progressDeadlineSeconds, in seconds.
    default_progress_deadline_seconds: float = 600.0
    #: Timeout of one Prometheus query, in seconds.
    query_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class RolloutSettings:
    """How many rollouts may run at once."""

    #: Rollouts under way at most (phases Progressing, Promoting, Finalising), across
    #: the Canaries this controller handles; new revisions beyond it wait in phase
    #: Queued, first come, first served. 0: no limit.
    max_concurrent: int = 0
    #: Canaries creating their primary at once (the first reconcile: its configs' copies,
    #: the primary, the status); the others wait their turn without sending a request.
    #: A thousand new Canaries at once (a controller installed into a busy cluster)
    #: would otherwise queue thousands of requests, and a Canary whose primary has just
    #: become ready would wait behind them to be Initialized. 0: no limit.
    max_concurrent_initializations: int = 16

    def __post_init__(self) -> None:
        if self.max_concurrent < 0 or self.max_concurrent_initializations < 0:
            raise ValueError("rollouts: a limit is 0 (none) or more")


@dataclass(frozen=True)
class WorkloadSettings:
    #: Label keys whose value is renamed (+"-primary") for the primary; the first one in
    #: the target's selector is used.
    selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    #: json or console.
    format: str = "json"


@dataclass(frozen=True)
class AlertSettings:
    #: Grafana dashboard URL linked from alerts (var-namespace and var-canary are set).
    dashboard_url: str | None = None
    #: The AlertProvider ``(namespace, name)`` that hears the alerts of every Canary
    #: without ``analysis.alerts`` of its own; None: such Canaries send no alerts.
    default_provider: tuple[str, str] | None = None
    #: The least severity sent to the default provider: info, warn or error.
    default_severity: Literal["info", "warn", "error"] = "info"


@dataclass(frozen=True)
class LeaderElectionSettings:
    """Several replicas may run; with election on, only the Lease holder works."""

    enabled: bool = False
    #: Namespace of the Lease; defaults to the pod's own namespace, else "default".
    namespace: str = "default"
    name: str = "canary-leader"
    #: This replica's identity in the Lease; defaults to hostname_pid.
    identity: str = ""
    #: Seconds followers wait after the holder's last renewal.
    lease_duration_seconds: float = 15.0
    #: Seconds the leader keeps retrying a renewal before it stops all work.
    renew_deadline_seconds: float = 10.0
    #: Seconds between attempts to take or renew.
    retry_period_seconds: float = 2.0


@dataclass(frozen=True)
class ServingSettings:
    """Where the controller tells about itself."""

    #: host:port of /metrics; "0" turns it off.
    metrics_bind_address: str = ":8080"
    #: host:port of /healthz and /readyz; "0" turns them off.
    health_probe_bind_address: str = ":8081"
    #: Seconds a SIGTERM waits for in-flight reconciles before cancelling them.
    shutdown_timeout_seconds: float = 10.0
    #: Also export Flagger's metric names and labels (flagger_canary_status, ...).
    flagger_metrics: bool = False


@dataclass(frozen=True)
class Settings:
    kube: KubeSettings = field(default_factory=KubeSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    rollouts: RolloutSettings = field(default_factory=RolloutSettings)
    workloads: WorkloadSettings = field(default_factory=WorkloadSettings)
    logging: LogSettings = field(default_factory=LogSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    #: The router of Canaries without spec.provider: istio, kubernetes or gatewayapi:v1.
    mesh_provider: str = "istio"


# -- validation of the values that name things in the cluster or outside it -------------

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def check_namespace(name: str) -> str:
    """``name`` if it is a valid namespace name (a DNS-1123 label), else ValueError."""
    if len(name) > 63 or not _DNS1123_LABEL.fullmatch(name):
        raise ValueError(f"{name!r} is not a namespace name (a DNS-1123 label: at most 63 "
                         "lowercase letters, digits and '-', starting and ending with a "
                         "letter or digit)")
    return name


def check_provider_ref(text: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` of an AlertProvider, else ValueError."""
    namespace, slash, name = text.partition("/")
    if not slash or not namespace or not name:
        raise ValueError(f"{text!r} is not NAMESPACE/NAME")
    return check_namespace(namespace), check_object_name(name)


def check_object_name(name: str) -> str:
    """``name`` if it is a valid object name (a DNS-1123 subdomain), else ValueError."""
    if len(name) > 253 or not DNS1123_SUBDOMAIN.fullmatch(name):
        raise ValueError(f"{name!r} is not an object name (a DNS-1123 subdomain: at most "
                         "253 lowercase letters, digits, '-' and '.')")
    return name


def shown_url(url: str) -> str:
    """``url`` fit for a message or a log line: its user information (``user:password@``)
    shown as ``***@``. On text that is not a valid URL too: everything between the scheme
    and the last ``@`` is hidden, so that a password holding ``/``, ``?`` or ``#`` (which
    ends the host part for a URL parser) is hidden whole."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + separator + rest


def check_http_url(url: str) -> str:
    """``url`` if it is an absolute http or https URL with a host, else ValueError (whose
    message never shows a password the URL holds)."""
    try:
        parts = urlsplit(url)
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname)
              and (parts.port is None or parts.port > 0))
    except ValueError:  # an unclosed '[' or a port out of range
        ok = False
    if not ok or any(c.isspace() for c in url):
        raise ValueError(f"{shown_url(url)!r} is not an http(s) URL such as "
                         "http://prometheus:9090")
    return url
