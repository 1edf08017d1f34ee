"""Small builders for the objects the e2e tests create."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
#: Never pulled: kwok runs no containers. It only has to look like a real image.
IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"


def deployment(name: str, namespace: str, *, replicas: int = 1, app: str | None = None,
               annotations: dict[str, str] | None = None) -> JSON:
    app = app or name
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}, "annotations": annotations or {}},
                "spec": {"containers": [{"name": "app", "image": IMAGE,
                                         "ports": [{"containerPort": 9898}]}]},
            },
        },
    }


def autoscaler(name: str, namespace: str, *, min_replicas: int = 2,
               max_replicas: int = 4) -> JSON:
    """A CPU HorizontalPodAutoscaler of the Deployment ``name``, named after it."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": name},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization",
                                                   "averageUtilization": 80}}}]}}


def service(name: str, namespace: str, app: str | None = None) -> JSON:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": app or name},
                 "ports": [{"name": "http", "port": 80, "targetPort": 9898}]},
    }


def virtual_service(name: str, namespace: str, routes: list[tuple[str, Any]]) -> JSON:
    """A VirtualService for host ``name`` splitting traffic over ``(host, weight)`` pairs."""
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": [name], "http": [{"route": [
            {"destination": {"host": host}, "weight": weight} for host, weight in routes]}]},
    }


def canary(name: str, namespace: str, *, target: str | None = None, port: int = 80,
           analysis: dict[str, Any] | None = None, **spec: Any) -> JSON:
    """A weighted Canary (10% steps to 50%, 1s interval) unless ``analysis`` says otherwise."""
    return {
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
            "service": {"port": port, "targetPort": 9898},
            "analysis": analysis if analysis is not None else {
                "interval": "1s", "threshold": 3, "maxWeight": 50, "stepWeight": 10},
            **spec,
        },
    }
