"""A Secret reference holds a name some Secret could have (a DNS subdomain of at most 253
characters): anything else is refused at apply, naming the field, rather than looked up
in vain each time an alert is sent or a query runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from canary.models import crds
from canary.models.canary import CanaryWebhook
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


#: Each model with a Secret reference, the field as a manifest spells it, and where the
#: reference sits in its CRD's spec (the properties and list items on the way).
REFERENCES: list[tuple[Callable[[str], BaseModel], str, str, tuple[str, ...]]] = [
    (provider, "spec.secretRef.name", "canary.dev_alertproviders.yaml", ("secretRef",)),
    (template, "spec.provider.secretRef.name", "canary.dev_metrictemplates.yaml",
     ("provider", "secretRef")),
    (webhook, "secretRef.name", "canary.dev_canaries.yaml",
     ("analysis", "webhooks", "secretRef")),
]
IDS = ["alertprovider", "metrictemplate", "webhook"]


def name_schema(file: str, path: tuple[str, ...]) -> dict[str, Any]:
    """The CRD's schema of the reference's ``name``."""
    node = crds.definitions()[file]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    node = node["properties"]["spec"]
    for part in path:
        node = node["properties"][part]
        node = node.get("items", node)
    return node["properties"]["name"]  # type: ignore[no-any-return]


def admitted(schema: dict[str, Any], value: str) -> bool:
    """Whether the API server admits ``value``: it counts characters, and reads the
    pattern with RE2, which agrees with Python on a pattern of plain classes."""
    return schema["minLength"] <= len(value) <= schema["maxLength"] and \
        re.fullmatch(schema["pattern"], value) is not None


class TestModels:
    @pytest.mark.parametrize("name", ACCEPTED)
    @pytest.mark.parametrize(("read", "field", "file", "path"), REFERENCES, ids=IDS)
    def test_secret_names_are_accepted(self, read: Callable[[str], BaseModel], field: str,
                                       file: str, path: tuple[str, ...], name: str) -> None:
        read(name)

    @pytest.mark.parametrize("name", REFUSED)
    @pytest.mark.parametrize(("read", "field", "file", "path"), REFERENCES, ids=IDS)
    def test_names_no_secret_could_have_are_refused_naming_the_field(
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
