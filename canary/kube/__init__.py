"""The only package that talks to the Kubernetes API."""

from canary.kube.client import JSON, KubeClient
from canary.kube.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    NotLeader,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from canary.kube.lease import LeaderElector, LeaseSettings
from canary.kube.resources import Resource
from canary.kube.watch import Reflector, WatchSettings

__all__ = [
    "JSON", "ApiError", "Conflict", "Forbidden", "Gone", "Invalid", "KubeClient", "KubeError",
    "LeaderElector", "LeaseSettings", "NotFound", "NotLeader", "Reflector", "Resource",
    "ServerError", "TooManyRequests", "TransportError", "Unauthorized", "WatchSettings",
]
