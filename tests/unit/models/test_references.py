"""A reference holds a name some object could have (a DNS subdomain of at most 253
characters; a namespace, a DNS label of at most 63): anything else is refused at apply,
naming the field, rather than looked up in vain each time an alert is sent or a query
runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from canary.models import crds
from canary.models.canary import Canary, CanaryWebhook
from canary.models.problems import describe
from canary.models.templates import AlertProvider, MetricTemplate

ACCEPTED = ["slack-url", "a", "0", "hooks.example-1", "a" * 253]
REFUSED = ["é" * 514, "a" * 254, "Slack_URL", "-url", "url-", "a b", "url\n", ""]


def provider(secret: str) -> AlertProvider:
    return AlertProvider.model_validate({
        "metadata": {"name": "slack"},
        "spec": {"type": "slack", "secretRef": {"name": secret}}})


def template(secret: str) -> MetricTemplate:
    return MetricTemplate.model_validate({
        "metadata": {"name": "errors"},
        "spec": {"provider": {"type": "prometheus", "secretRef": {"name": secret}},
                 "query": "up"}})


def webhook(secret: str) -> CanaryWebhook:
    return CanaryWebhook.model_validate({
        "name": "gate", "url": "http://gate.example", "secretRef": {"name": secret}})


def canary_with(**spec: Any) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10}} | spec})


def target(name: str) -> Canary:
    return canary_with(targetRef={"kind": "Deployment", "name": name})


def autoscaler(name: str) -> Canary:
    return canary_with(autoscalerRef={"kind": "HorizontalPodAutoscaler", "name": name})


def analysis(**fields: Any) -> Canary:
    return canary_with(analysis={"interval": "1m", "threshold": 1, "stepWeight": 10,
                                 **fields})


def metric_template(ref: dict[str, str]) -> Canary:
    return analysis(metrics=[{"name": "errors", "templateRef": ref,
                              "thresholdRange": {"max": 1}}])


def alert_provider(ref: dict[str, str]) -> Canary:
    return analysis(alerts=[{"name": "team", "severity": "info", "providerRef": ref}])


#: Each model with a reference, the field as a manifest spells it, and where the
#: reference sits in its CRD's spec (the properties and list items on the way).
REFERENCES: list[tuple[Callable[[str], BaseModel], str, str, tuple[str, ...]]] = [
    (provider, "spec.secretRef.name", "canary.dev_alertproviders.yaml", ("secretRef",)),
    (template, "spec.provider.secretRef.name", "canary.dev_metrictemplates.yaml",
     ("provider", "secretRef")),
    (webhook, "secretRef.name", "canary.dev_canaries.yaml",
     ("analysis", "webhooks", "secretRef")),
]
IDS = ["alertprovider", "metrictemplate", "webhook"]
CANARIES = "canary.dev_canaries.yaml"
REFERENCES += [
    (target, "spec.targetRef.name", CANARIES, ("targetRef",)),
    (autoscaler, "spec.autoscalerRef.name", CANARIES, ("autoscalerRef",)),
    (lambda name: metric_template({"name": name}),
     "spec.analysis.metrics[0].templateRef.name", CANARIES,
     ("analysis", "metrics", "templateRef")),
    (lambda name: alert_provider({"name": name}),
     "spec.analysis.alerts[0].providerRef.name", CANARIES,
     ("analysis", "alerts", "providerRef")),
]
IDS += ["target", "autoscaler", "templateref", "providerref"]
NAMESPACES: list[tuple[Callable[[str], BaseModel], str, tuple[str, ...]]] = [
    (lambda ns: metric_template({"name": "errors", "namespace": ns}),
     "spec.analysis.metrics[0].templateRef.namespace", ("analysis", "metrics", "templateRef")),
    (lambda ns: alert_provider({"name": "slack", "namespace": ns}),
     "spec.analysis.alerts[0].providerRef.namespace", ("analysis", "alerts", "providerRef")),
]
NAMESPACES_ACCEPTED = ["shop", "a", "0", "team-1", "a" * 63]
NAMESPACES_REFUSED = ["a" * 64, "shop.eu", "Shop", "-shop", "shop-", "é", ""]


def name_schema(file: str, path: tuple[str, ...], key: str = "name") -> dict[str, Any]:
    """The CRD's schema of the reference's ``key``."""
    node = crds.definitions()[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    node = node["properties"]["spec"]
    for part in path:
        node = node["properties"][part]
        node = node.get("items", node)
    return node["properties"][key]  # type: ignore[no-any-return]


def admitted(schema: dict[str, Any], value: str) -> bool:
    """Whether the API server admits ``value``: it counts characters, and reads the
    pattern with RE2, which agrees with Python on a pattern of plain classes."""
    return schema["minLength"] <= len(value) <= schema["maxLength"] and \
        re.fullmatch(schema["pattern"], value) is not None


class TestModels:
    @pytest.mark.parametrize("name", ACCEPTED)
    @pytest.mark.parametrize(("read", "field", "file", "path"), REFERENCES, ids=IDS)
    def test_object_names_are_accepted(self, read: Callable[[str], BaseModel], field: str,
                                       file: str, path: tuple[str, ...], name: str) -> None:
        read(name)

    @pytest.mark.parametrize("name", REFUSED)
    @pytest.mark.parametrize(("read", "field", "file", "path"), REFERENCES, ids=IDS)
    def test_names_no_object_could_have_are_refused_naming_the_field(
            self, read: Callable[[str], BaseModel], field: str, file: str,
            path: tuple[str, ...], name: str) -> None:
        with pytest.raises(ValidationError) as caught:
            read(name)
        assert describe(caught.value).startswith(f"{field}: ")


class TestCrds:
    @pytest.mark.parametrize(("read", "field", "file", "path"), REFERENCES, ids=IDS)
    def test_the_api_server_refuses_what_the_model_refuses(
            self, read: Callable[[str], BaseModel], field: str, file: str,
            path: tuple[str, ...]) -> None:
        schema = name_schema(file, path)
        assert [name for name in ACCEPTED + REFUSED if admitted(schema, name)] == ACCEPTED


class TestNamespaces:
    @pytest.mark.parametrize(("read", "field", "path"), NAMESPACES, ids=["template", "provider"])
    def test_a_namespace_is_a_dns_label_in_the_model_and_the_crd(
            self, read: Callable[[str], BaseModel], field: str, path: tuple[str, ...]) -> None:
        for namespace in NAMESPACES_ACCEPTED:
            read(namespace)
        for namespace in NAMESPACES_REFUSED:
            with pytest.raises(ValidationError) as caught:
                read(namespace)
            assert describe(caught.value).startswith(f"{field}: ")
        schema = name_schema(CANARIES, path, "namespace")
        assert [ns for ns in NAMESPACES_ACCEPTED + NAMESPACES_REFUSED
                if admitted(schema, ns)] == NAMESPACES_ACCEPTED
