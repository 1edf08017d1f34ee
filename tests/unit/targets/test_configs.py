"""Configs a pod template refers to are part of its revision and copied for the primary."""

from __future__ import annotations

from typing import Any

from canary.targets import configs

TEMPLATE: dict[str, Any] = {"spec": {
    "volumes": [{"name": "cfg", "configMap": {"name": "app-config"}},
                {"name": "tls", "secret": {"secretName": "app-tls"}},
                {"name": "all", "projected": {"sources": [{"configMap": {"name": "extra"}}]}}],
    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
    "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "app-env"}}],
                    "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
                        "name": "app-token", "key": "token"}}}]}]}}

STORE: dict[tuple[str, str], dict[str, Any]] = {
    ("ConfigMap", "app-config"): {"metadata": {"name": "app-config", "namespace": "shop"},
                                  "data": {"color": "blue"}},
    ("Secret", "app-tls"): {"metadata": {"name": "app-tls", "namespace": "shop"},
                            "type": "kubernetes.io/tls", "data": {"tls.crt": "Y3J0"}},
}


def lookup(kind: str, name: str) -> dict[str, Any] | None:
    return STORE.get((kind, name))


def test_every_kind_of_reference_is_found() -> None:
    assert configs.referenced(TEMPLATE) == {
        ("ConfigMap", "app-config"), ("Secret", "app-tls"), ("ConfigMap", "extra"),
        ("Secret", "init-env"), ("ConfigMap", "app-env"), ("Secret", "app-token")}


def test_a_config_change_is_a_new_revision() -> None:
    before = configs.revision(TEMPLATE, lookup)
    changed = dict(STORE)
    changed[("ConfigMap", "app-config")] = {**STORE[("ConfigMap", "app-config")],
                                            "data": {"color": "green"}}
    assert configs.revision(TEMPLATE, lambda k, n: changed.get((k, n))) != before
    assert configs.revision(TEMPLATE, lookup) == before


def test_the_primary_refers_to_copies_of_existing_configs_only() -> None:
    renamed = configs.primary_template(TEMPLATE, lookup)
    assert renamed["spec"]["volumes"][0]["configMap"]["name"] == "app-config-primary"
    assert renamed["spec"]["volumes"][1]["secret"]["secretName"] == "app-tls-primary"
    assert renamed["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == "app-env"
    assert TEMPLATE["spec"]["volumes"][0]["configMap"]["name"] == "app-config"
    copies = {c["metadata"]["name"]: c for c in configs.primary_copies(TEMPLATE, lookup)}
    assert copies["app-config-primary"]["data"] == {"color": "blue"}
    assert copies["app-tls-primary"]["type"] == "kubernetes.io/tls"
    assert set(copies) == {"app-config-primary", "app-tls-primary"}
