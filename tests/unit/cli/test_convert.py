"""`canary convert` carries Flagger's manifests over field by field, says what it cannot
carry and where, and refuses malformed input with the line and the field.

The fixtures reproduce the manifests of Flagger's documentation (the Istio canary, A/B
testing and mirroring tutorials, the Kubernetes blue/green tutorial, the webhooks, metrics
and alerting pages).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from canary.console.cli import LOSSY, run_convert
from canary.convert import Note, Result, convert_text
from canary.errors import ConfigError
from canary.metrics.queries import QueryContext, render
from canary.models.canary import Canary
from canary.models.templates import AlertProvider, MetricTemplate

FIXTURES = Path(__file__).parent / "fixtures" / "flagger"
MODELS: dict[str, type[BaseModel]] = {
    "Canary": Canary, "MetricTemplate": MetricTemplate, "AlertProvider": AlertProvider}


def convert_file(name: str) -> Result:
    path = FIXTURES / name
    return convert_text(path.read_text(), name)


def documents(result: Result) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(result.text()) if d is not None]


def flagger_documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((FIXTURES / name).read_text()) if d is not None]


#: What the notes about Flagger's load tester and Prometheus say (tested in TestCompanions).
COMPANIONS = ("Flagger's load tester", "runs hey commands only", "the Prometheus Flagger")


def about_companions(note: Note) -> bool:
    return any(text in note.message for text in COMPANIONS)


def own_notes(result: Result) -> list[Note]:
    """The notes about the objects themselves, not about Flagger's load tester or
    Prometheus (which the documentation's examples all use)."""
    return [n for n in result.notes if not about_companions(n)]


def notes(result: Result) -> dict[str, str]:
    """{field path: message} of the notes."""
    return {n.path: n.message for n in own_notes(result)}


class TestFlaggerDocumentation:
    @pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.yaml")))
    def test_every_example_converts_into_objects_our_models_accept(self, name: str) -> None:
        result = convert_file(name)
        assert result.errors == []
        assert result.converted >= 1
        for doc in documents(result):
            assert not doc["apiVersion"].startswith("flagger.app")
            if doc["apiVersion"] == "canary.dev/v1beta1":
                MODELS[doc["kind"]].model_validate(doc, strict=False)

    @pytest.mark.parametrize("name", ["istio-ab-testing.yaml", "istio-mirroring.yaml"])
    def test_a_canary_of_supported_fields_changes_only_its_api_version(self, name: str) -> None:
        result = convert_file(name)
        assert own_notes(result) == []
        assert {n.path for n in result.notes} <= {
            f"spec.analysis.webhooks[{i}].{f}" for i in range(2)
            for f in ("url", "metadata.cmd", "metadata.type")}
        (before,) = flagger_documents(name)
        (after,) = documents(result)
        assert after["apiVersion"] == "canary.dev/v1beta1"
        assert after["spec"] == before["spec"]
        assert after["metadata"] == before["metadata"]

    def test_the_istio_tutorial_keeps_every_routing_field_and_moves_the_hpa_to_v2(self) -> None:
        result = convert_file("istio-canary.yaml")
        (canary,) = documents(result)
        service = canary["spec"]["service"]
        assert service["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
        assert service["hosts"] == ["app.example.com"]
        assert service["trafficPolicy"] == {"tls": {"mode": "DISABLE"}}
        assert service["retries"] == {"attempts": 3, "perTryTimeout": "1s",
                                      "retryOn": "gateway-error,connect-failure,refused-stream"}
        assert canary["spec"]["autoscalerRef"]["apiVersion"] == "autoscaling/v2"
        assert [h["name"] for h in canary["spec"]["analysis"]["webhooks"]] == [
            "acceptance-test", "load-test"]
        (note,) = own_notes(result)
        assert (note.line, note.path, note.lost) == (15, "spec.autoscalerRef.apiVersion", False)
        assert "autoscaling/v2beta2 changed to autoscaling/v2" in note.message

    def test_blue_green_without_a_mesh_keeps_the_provider_and_reports_port_discovery(
            self) -> None:
        """The kubernetes provider is carried over as it is (canary routes blue/green with
        Services alone, not with Istio behind the user's back), without a note."""
        result = convert_file("kubernetes-blue-green.yaml")
        said = {(n.line, n.path, n.lost) for n in own_notes(result)}
        assert said == {(21, "spec.service.portDiscovery", True)}
        assert all(n.document == "Canary test/podinfo" for n in own_notes(result))
        canary, template = documents(result)
        assert canary["spec"]["provider"] == "kubernetes"
        assert "portDiscovery" not in canary["spec"]["service"]
        assert canary["spec"]["analysis"]["iterations"] == 10
        assert canary["spec"]["analysis"]["metrics"][2]["templateRef"] == {
            "name": "not-found-percentage"}
        assert template["kind"] == "MetricTemplate"
        assert template["spec"]["query"].startswith("100 - sum(\n")

    def test_every_webhook_type_is_carried_and_mute_alert_is_flagged(self) -> None:
        result = convert_file("webhooks.yaml")
        (canary,) = documents(result)
        (before,) = flagger_documents("webhooks.yaml")
        assert canary["spec"]["analysis"]["webhooks"] == before["spec"]["analysis"]["webhooks"]
        assert [h["type"] for h in canary["spec"]["analysis"]["webhooks"]] == [
            "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
            "confirm-promotion", "post-rollout", "rollback", "event"]
        (note,) = own_notes(result)
        assert note.path == "spec.analysis.webhooks[7].muteAlert" and note.line == 53
        assert "does not act on it" in note.message

    def test_metric_templates_of_prometheus_are_kept_and_others_left_out(self) -> None:
        result = convert_file("metric-templates.yaml")
        docs = documents(result)
        assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
            ("MetricTemplate", "not-found-percentage"),
            ("MetricTemplate", "grpc-error-rate-percentage"),
            ("MetricTemplate", "my-metric"), ("Canary", "podinfo")]
        (note,) = own_notes(result)
        assert note.document == "MetricTemplate istio-system/datadog-not-found-percentage"
        assert note.path == "spec.provider.type" and "left out" in note.message
        assert note.line == 94
        assert docs[2]["spec"]["provider"]["secretRef"] == {"name": "prom-auth"}
        metric = docs[3]["spec"]["analysis"]["metrics"][2]
        assert metric == {"name": "my metric",
                          "templateRef": {"name": "my-metric", "namespace": "flagger"},
                          "thresholdRange": {"min": 10, "max": 1000}, "interval": "1m",
                          "templateVariables": {"direction": "inbound"}}

    def test_alert_providers_get_their_address_from_a_secret(self) -> None:
        result = convert_file("alert-providers.yaml")
        docs = documents(result)
        assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
            ("AlertProvider", "on-call"), ("Secret", "on-call-url"),
            ("Secret", "qa-discord-address"), ("AlertProvider", "qa-discord"),
            ("AlertProvider", "dev-msteams"), ("AlertProvider", "dev-gchat"),
            ("Canary", "podinfo")]
        on_call, _, secret, discord, teams, gchat, canary = docs
        assert "address" not in on_call["spec"]
        assert on_call["spec"]["secretRef"] == {"name": "on-call-url"}
        assert secret["stringData"] == {
            "address": "https://discord.com/api/webhooks/YOUR/DISCORD/WEBHOOK"}
        assert secret["metadata"]["namespace"] == "test"
        assert discord["spec"] == {"type": "discord",
                                   "secretRef": {"name": "qa-discord-address"}}
        assert teams["spec"]["proxy"] == "http://my-http-proxy.com"
        assert gchat["spec"]["type"] == "googlechat"
        assert [a["severity"] for a in canary["spec"]["analysis"]["alerts"]] == [
            "error", "warn", "info"]
        assert {n.path for n in result.notes} == {"spec.address", "spec.type"}
        assert not any(n.lost for n in result.notes)

    def test_other_documents_pass_through_as_written(self) -> None:
        source = (FIXTURES / "app.yaml").read_text()
        result = convert_text(source, "app.yaml")
        assert result.notes == [] and result.converted == 1
        deployment, hpa, canary = result.documents
        assert deployment == source.split("---\n")[0]  # comments and all
        assert "# the primary copies this" in deployment
        assert hpa == source.split("---\n")[1]
        assert yaml.safe_load(canary)["apiVersion"] == "canary.dev/v1beta1"


def canary_manifest(**spec: Any) -> str:
    base: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "service": {"port": 80},
        "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10},
    }
    base.update(spec)
    return yaml.safe_dump({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                           "metadata": {"name": "web", "namespace": "shop"}, "spec": base},
                          sort_keys=False)


class TestWhatCannotBeCarried:
    def test_the_deprecated_canary_analysis_becomes_analysis(self) -> None:
        text = canary_manifest(analysis=None).replace(
            "analysis: null", "canaryAnalysis:\n    interval: 1m\n    threshold: 2\n"
            "    iterations: 5\n    bogus: 1")
        result = convert_text(text)
        (canary,) = documents(result)
        assert canary["spec"]["analysis"] == {"interval": "1m", "threshold": 2, "iterations": 5}
        assert "canaryAnalysis" not in canary["spec"]
        said = notes(result)
        assert "moved to spec.analysis" in said["spec.canaryAnalysis"]
        # Paths and lines are those of the input.
        assert said["spec.canaryAnalysis.bogus"] == "not carried over: canary has no such field"
        bogus = next(n for n in result.notes if n.path.endswith("bogus"))
        assert bogus.line is not None
        assert text.splitlines()[bogus.line - 1].strip() == "bogus: 1"

    @pytest.mark.parametrize(("field", "value", "why"), [
        ("ingressRef", {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                        "name": "web"}, "no NGINX ingress"),
        ("upstreamRef", {"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "name": "web"},
         "no Gloo upstreams"),
        ("routeRef", {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
                      "name": "web"}, "no APISIX routes"),
        ("metricsServer", "http://prometheus:9090", "--metrics-server"),
        ("provider", "linkerd", "linkerd is not supported"),
    ])
    def test_fields_of_other_meshes_and_ingresses_are_left_out_with_a_reason(
            self, field: str, value: Any, why: str) -> None:
        result = convert_text(canary_manifest(**{field: value}))
        assert result.errors == []
        (canary,) = documents(result)
        assert field not in canary["spec"]
        (note,) = result.notes
        assert note.path == f"spec.{field}" and why in note.message and note.lost

    @pytest.mark.parametrize(("provider", "said"), [
        ("istio", False), ("gatewayapi:v1", False), ("kubernetes", False)])
    def test_a_provider_canary_accepts_is_carried_over(self, provider: str, said: bool
                                                      ) -> None:
        """Kept so the Canary is routed as on Flagger, or refused on the Canary by a
        controller that does not route with it yet (said, but nothing is lost)."""
        result = convert_text(canary_manifest(provider=provider))
        (canary,) = documents(result)
        assert canary["spec"]["provider"] == provider
        assert [(n.path, n.lost) for n in result.notes] == (
            [("spec.provider", False)] if said else [])

    def test_an_older_gateway_api_version_is_left_out(self) -> None:
        result = convert_text(canary_manifest(provider="gatewayapi:v1beta1"))
        (canary,) = documents(result)
        assert "provider" not in canary["spec"]
        (note,) = result.notes
        assert note.lost and "gatewayapi:v1beta1 is not supported" in note.message

    def test_service_fields_of_other_providers_are_left_out(self) -> None:
        result = convert_text(canary_manifest(service={
            "port": 80, "gatewayRefs": [{"name": "gw"}], "meshName": "global",
            "apex": {"labels": {"a": "b"}}, "delegation": True, "portDiscovery": False,
            "headers": {"request": {"add": {"x-canary": "yes"}}},
            "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}]},
            "match": [{"uri": {"prefix": "/api"}}], "timeout": "5s"}))
        (canary,) = documents(result)
        assert set(canary["spec"]["service"]) == {"port", "headers", "corsPolicy", "match",
                                                  "timeout", "gatewayRefs"}
        # portDiscovery: false is Flagger's zero value: nothing is lost, nothing said.
        assert set(notes(result)) == {"spec.service.meshName", "spec.service.apex",
                                      "spec.service.delegation"}

    def test_mirroring_with_another_mesh_stays_plain_blue_green(self) -> None:
        result = convert_text(canary_manifest(provider="nginx", analysis={
            "interval": "1m", "threshold": 2, "iterations": 10, "mirror": True,
            "mirrorWeight": 50}))
        (canary,) = documents(result)
        assert canary["spec"]["analysis"] == {"interval": "1m", "threshold": 2, "iterations": 10}
        assert "plain blue/green" in notes(result)["spec.analysis.mirror"]

    def test_mirroring_on_istio_is_kept(self) -> None:
        result = convert_text(canary_manifest(provider="istio", analysis={
            "interval": "1m", "threshold": 2, "iterations": 10, "mirror": True}))
        assert result.notes == []
        assert documents(result)[0]["spec"]["analysis"]["mirror"] is True

    def test_an_inline_query_drops_its_metric_but_a_built_in_keeps_its_own(self) -> None:
        result = convert_text(canary_manifest(analysis={
            "interval": "1m", "threshold": 2, "stepWeight": 10, "metrics": [
                {"name": "404s percentage", "threshold": 5, "query": "sum(rate(x[1m]))"},
                {"name": "request-success-rate", "threshold": 99, "query": "up"},
                {"name": "request-duration", "thresholdRange": {"max": 500},
                 "interval": "30s"}]}))
        (canary,) = documents(result)
        assert canary["spec"]["analysis"]["metrics"] == [
            {"name": "request-success-rate", "threshold": 99, "interval": "1m"},
            {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"}]
        said = notes(result)
        assert "put it in a MetricTemplate" in said["spec.analysis.metrics[0]"]
        assert "inline queries" in said["spec.analysis.metrics[1].query"]

    def test_a_metric_without_interval_keeps_flaggers_one_minute_window(self) -> None:
        result = convert_text(canary_manifest(analysis={
            "interval": "15s", "threshold": 2, "stepWeight": 10, "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                {"name": "errors", "thresholdRange": {"max": 1},
                 "templateRef": {"name": "errors"}},
                {"name": "request-duration", "thresholdRange": {"max": 500},
                 "interval": "30s"}]}))
        (canary,) = documents(result)
        assert [m.get("interval") for m in canary["spec"]["analysis"]["metrics"]] == [
            "1m", "1m", "30s"]
        said = {n.path: n for n in result.notes}
        assert set(said) == {"spec.analysis.metrics[0].interval",
                             "spec.analysis.metrics[1].interval"}
        note = said["spec.analysis.metrics[0].interval"]
        assert not note.lost and note.message.startswith("set to 1m, Flagger's default")
        assert note.line is not None

    def test_the_interval_of_a_moved_canary_analysis_is_said_where_it_was_written(
            self) -> None:
        manifest = yaml.safe_load(canary_manifest())
        manifest["spec"]["canaryAnalysis"] = manifest["spec"].pop("analysis")
        manifest["spec"]["canaryAnalysis"]["metrics"] = [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}}]
        result = convert_text(yaml.safe_dump(manifest))
        assert "spec.canaryAnalysis.metrics[0].interval" in notes(result)
        assert documents(result)[0]["spec"]["analysis"]["metrics"][0]["interval"] == "1m"

    def test_a_canary_of_a_daemon_set_is_left_out(self) -> None:
        result = convert_text(canary_manifest(targetRef={
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent"}))
        assert result.errors == [] and documents(result) == []
        (note,) = result.notes
        assert "Deployments only, not DaemonSet" in note.message

    def test_a_keda_autoscaler_is_left_out_and_the_canary_kept(self) -> None:
        result = convert_text(canary_manifest(autoscalerRef={
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web",
            "primaryScalerQueries": {"q": "sum(x)"}}))
        (canary,) = documents(result)
        assert "autoscalerRef" not in canary["spec"]
        assert list(notes(result)) == ["spec.autoscalerRef"]

    def test_the_kind_of_a_template_or_provider_reference_goes_without_saying(self) -> None:
        result = convert_text(canary_manifest(analysis={
            "interval": "1m", "threshold": 2, "stepWeight": 10,
            "metrics": [{"name": "errors", "thresholdRange": {"max": 1}, "interval": "1m",
                         "templateRef": {"apiVersion": "flagger.app/v1beta1",
                                         "kind": "MetricTemplate", "name": "errors"}}],
            "alerts": [{"name": "chat", "providerRef": {"kind": "AlertProvider",
                                                       "name": "slack"}}]}))
        (canary,) = documents(result)
        assert canary["spec"]["analysis"]["metrics"][0]["templateRef"] == {"name": "errors"}
        assert canary["spec"]["analysis"]["alerts"][0]["providerRef"] == {"name": "slack"}
        assert result.notes == []

    def test_server_fields_and_status_are_dropped_without_notes(self) -> None:
        manifest = yaml.safe_load(canary_manifest())
        manifest["metadata"].update(
            uid="1234", resourceVersion="99", generation=3,
            creationTimestamp="2024-01-01T00:00:00Z", labels={"team": "shop"},
            annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}", "a": "b"})
        manifest["status"] = {"phase": "Succeeded", "canaryWeight": 0}
        result = convert_text(yaml.safe_dump(manifest))
        (canary,) = documents(result)
        assert canary["metadata"] == {"name": "web", "namespace": "shop",
                                      "labels": {"team": "shop"}, "annotations": {"a": "b"}}
        assert "status" not in canary and result.notes == []

    def test_a_list_from_kubectl_get_is_converted_item_by_item(self) -> None:
        item = yaml.safe_load(canary_manifest(provider="linkerd"))
        listing = {"apiVersion": "v1", "kind": "List", "metadata": {},
                   "items": [item, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "c"}}]}
        text = yaml.safe_dump(listing, sort_keys=False)
        result = convert_text(text)
        (converted,) = documents(result)
        assert [i["apiVersion"] for i in converted["items"]] == ["canary.dev/v1beta1", "v1"]
        (note,) = result.notes
        assert note.path == "spec.provider"
        assert note.line is not None
        assert text.splitlines()[note.line - 1].strip() == "provider: linkerd"


#: A MetricTemplate putting each variable at another position: a string, a regex matcher's
#: string, a range and a threshold.
QUERY = ('sum(rate(requests{direction="{{ variables.direction }}",'
         'code=~"{{ variables.codes }}"}[{{ variables.window }}])) > {{ variables.max }}')
GOOD = {"direction": "inbound", "codes": "5..|4..", "window": "5m", "max": "10"}


def template_manifest(query: str = QUERY, name: str = "errors",
                      namespace: str | None = "shop") -> str:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return yaml.safe_dump({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                           "metadata": metadata,
                           "spec": {"provider": {"type": "prometheus"}, "query": query}},
                          sort_keys=False)


def canary_using(variables: dict[str, str] | None, ref: dict[str, str] | None = None,
                 analysis: str = "analysis") -> str:
    """A Canary whose one metric names the MetricTemplate ``ref`` (errors, by default)."""
    metric: dict[str, Any] = {"name": "errors", "interval": "1m",
                              "thresholdRange": {"max": 1},
                              "templateRef": ref or {"name": "errors"}}
    if variables is not None:
        metric["templateVariables"] = variables
    text = canary_manifest(analysis={"interval": "1m", "threshold": 2, "stepWeight": 10,
                                     "metrics": [metric]})
    return text.replace("  analysis:", f"  {analysis}:")


class TestTemplateVariables:
    """A Canary's templateVariables are checked as the controller checks them, by where
    the query of their MetricTemplate puts each value, when the input holds both; without
    the template, nothing beyond the schema."""

    @pytest.mark.parametrize(("variable", "value", "reason"), [
        ("codes", "nomatch|.*", "holds '*'"),
        ("codes", "(x)", "in a regular expression a variable is a literal"),
        ("window", "5m]) or vector(1", "may be only a duration"),
        ("max", "1 or vector(1)", "may be only a number"),
    ])
    def test_a_value_its_template_refuses_is_an_error_where_it_is_written(
            self, variable: str, value: str, reason: str) -> None:
        canary = canary_using(GOOD | {variable: value})
        text = template_manifest() + "---\n" + canary
        result = convert_text(text, "app.yaml")
        (error,) = result.errors
        assert error.source == "app.yaml" and error.document == "Canary shop/web"
        assert error.path == f"spec.analysis.metrics[0].templateVariables.{variable}"
        assert error.line is not None
        assert text.splitlines()[error.line - 1].strip().startswith(f"{variable}:")
        assert error.message.startswith(f"MetricTemplate shop/errors: {value!r} is in ")
        assert reason in error.message

    @pytest.mark.parametrize("value", ['5.."} or vector(1', "a b", "(x)", "{a}", "*"])
    def test_a_string_takes_any_value(self, value: str) -> None:
        """What the old character list refused is escaped in a string, as the
        controller does."""
        text = template_manifest() + "---\n" + canary_using(GOOD | {"direction": value})
        result = convert_text(text)
        assert result.errors == [] and len(documents(result)) == 2

    def test_the_same_value_is_judged_by_each_template(self) -> None:
        text = (template_manifest('requests{code="{{ variables.codes }}"}', name="plain")
                + "---\n" + canary_using({"codes": "(x)"}, {"name": "plain"})
                + "---\n" + canary_using(GOOD | {"codes": "(x)"}).replace(
                    "name: web\n", "name: api\n", 1))
        (error,) = convert_text(template_manifest() + "---\n" + text).errors
        assert error.document == "Canary shop/api"

    @pytest.mark.parametrize("template", [
        "", template_manifest(name="other"), template_manifest(namespace="elsewhere"),
        template_manifest(namespace=None),
        template_manifest('requests{code={{ variables.codes }}}')])
    def test_nothing_is_checked_without_the_template_it_names(self, template: str) -> None:
        """Absent, of another name or namespace, or refused whatever the values (a
        template problem, not the Canary's)."""
        text = (template + "---\n" if template else "") + canary_using(
            GOOD | {"codes": "(x)", "max": "1 or vector(1)"})
        assert convert_text(text).errors == []

    def test_a_template_named_in_another_namespace_is_found_there(self) -> None:
        text = (template_manifest(namespace="metrics") + "---\n"
                + canary_using(GOOD | {"codes": ".*"},
                               {"name": "errors", "namespace": "metrics"}))
        (error,) = convert_text(text).errors
        assert error.message.startswith("MetricTemplate metrics/errors: ")

    def test_objects_without_a_namespace_are_checked_together(self) -> None:
        canary = canary_using(GOOD | {"max": "ten"}).replace("  namespace: shop\n", "")
        (error,) = convert_text(template_manifest(namespace=None) + "---\n" + canary).errors
        assert (error.document, error.path) == (
            "Canary web", "spec.analysis.metrics[0].templateVariables.max")
        assert error.message.startswith("MetricTemplate errors: ")

    @pytest.mark.parametrize(("variables", "lacking"), [
        (None, ["'codes'", "'direction'", "'max'", "'window'"]),
        ({"direction": "inbound", "max": "1"}, ["'codes'", "'window'"])])
    def test_a_variable_the_query_uses_and_the_canary_lacks_is_an_error(
            self, variables: dict[str, str] | None, lacking: list[str]) -> None:
        text = template_manifest() + "---\n" + canary_using(variables)
        errors = convert_text(text).errors
        assert {e.path for e in errors} == {"spec.analysis.metrics[0].templateVariables"}
        assert sorted(e.message.split("has no ")[1] for e in errors) == lacking
        assert all(e.line is not None for e in errors)

    def test_the_field_is_named_as_written_under_canary_analysis(self) -> None:
        text = template_manifest() + "---\n" + canary_using(GOOD | {"codes": "a|"},
                                                           analysis="canaryAnalysis")
        (error,) = convert_text(text).errors
        assert error.path == "spec.canaryAnalysis.metrics[0].templateVariables.codes"
        assert error.line is not None
        assert text.splitlines()[error.line - 1].strip() == "codes: a|"

    @given(st.dictionaries(st.sampled_from(sorted(GOOD)),
                           st.text(st.characters(blacklist_categories=("Cc", "Cs")),
                                   max_size=12)))
    def test_convert_refuses_exactly_what_the_controller_refuses(
            self, changed: dict[str, str]) -> None:
        values = GOOD | changed
        text = template_manifest() + "---\n" + canary_using(values)
        refused: set[str] = set()
        for name in GOOD:
            try:
                render(QUERY, QueryContext("web", "shop", "web", "web", "1m",
                                           GOOD | {name: values[name]}))
            except ConfigError:
                refused.add(name)
        errors = convert_text(text).errors
        assert {e.path.rsplit(".", 1)[1] for e in errors} == refused


class TestMalformedInput:
    @pytest.mark.parametrize(("text", "line", "where", "message"), [
        ("a: [1, 2\n", 2, "YAML", "cannot parse"),
        ("- a\n- b\n", 1, "document", "not a mapping but a list"),
        ("apiVersion: v1\nmetadata: {name: x}\n", 1, "document", "apiVersion and kind"),
        ("apiVersion: flagger.app/v1alpha3\nkind: Canary\nmetadata: {name: x}\nspec: {}\n",
         1, "apiVersion", "only flagger.app/v1beta1"),
        ("apiVersion: flagger.app/v1beta1\nkind: Gate\nmetadata: {name: x}\n", 2, "kind",
         "not a Flagger kind"),
        ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {namespace: x}\nspec: {}\n",
         3, "metadata.name", "required"),
        ("apiVersion: flagger.app/v1beta1\nkind: MetricTemplate\nmetadata: {name: m}\n"
         "spec:\n  query: a\n  query: b\n", 6, "spec.query", "duplicate key"),
    ], ids=["bad-yaml", "a-list", "no-kind", "old-version", "unknown-kind", "no-name",
            "duplicate-key"])
    def test_is_refused_with_the_line(self, text: str, line: int, where: str,
                                      message: str) -> None:
        result = convert_text(text, "in.yaml")
        assert result.errors, result
        error = result.errors[0]
        assert (error.line, error.path or error.document) == (line, where)
        assert message in error.message
        assert str(error).startswith(f"in.yaml:{line}: ")

    @pytest.mark.parametrize(("field", "value", "path", "message", "on_line"), [
        ("analysis", {"interval": "1min", "threshold": 2, "stepWeight": 10},
         "spec.analysis.interval", 'expected a duration such as 30s, 1m or 1m30s, got "1min"',
         "interval: 1min"),
        ("analysis", {"interval": "1m", "threshold": 2, "stepWeight": "ten"},
         "spec.analysis.stepWeight", 'expected an integer, got "ten"', "stepWeight: ten"),
        ("service", {"port": "9898"}, "spec.service.port", 'expected an integer, got "9898"',
         "port: '9898'"),
        ("service", {"port": 80, "targetPort": 1.5}, "spec.service.targetPort",
         "expected an integer or a string, got 1.5", "targetPort: 1.5"),
        ("service", {"port": 80, "gateways": "public"}, "spec.service.gateways",
         'expected a list, got "public"', "gateways: public"),
        ("analysis", {"interval": "1m", "threshold": 2, "stepWeight": 10, "webhooks": [
            {"name": "load", "url": "http://tester/", "metadata": {"clone": 100}}]},
         "spec.analysis.webhooks[0].metadata.clone", "expected a string, got 100",
         "clone: 100"),
        ("targetRef", {"kind": "Deployment"}, "spec.targetRef.name", "required", "targetRef:"),
    ], ids=["duration", "step-weight", "port", "target-port", "gateways", "metadata",
            "target-name"])
    def test_a_field_of_the_wrong_type_is_refused_naming_it(
            self, field: str, value: Any, path: str, message: str, on_line: str) -> None:
        text = canary_manifest(**{field: value})
        result = convert_text(text, "in.yaml")
        (error,) = result.errors
        assert (error.path, error.message) == (path, message)
        assert error.line is not None
        assert text.splitlines()[error.line - 1].strip() == on_line

    def test_an_error_in_a_moved_section_names_the_field_as_written(self) -> None:
        text = ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\nspec:\n"
                "  targetRef: {kind: Deployment, name: web}\n  service: {port: 80}\n"
                "  canaryAnalysis:\n    interval: 1m\n    threshold: x\n    iterations: 2\n")
        (error,) = convert_text(text).errors
        assert (error.line, error.path) == (9, "spec.canaryAnalysis.threshold")

    def test_lines_count_across_documents(self) -> None:
        text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
                + canary_manifest(service={"port": "http"}))
        (error,) = convert_text(text).errors
        assert error.line is not None
        assert text.splitlines()[error.line - 1].strip() == "port: http"


class TestCommand:
    def run(self, *files: str, stdin: str = "", strict: bool = False) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run_convert(list(files), strict, out, err, io.StringIO(stdin))
        return code, out.getvalue(), err.getvalue()

    def test_writes_yaml_to_stdout_and_notes_to_stderr(self) -> None:
        code, out, err = self.run(str(FIXTURES / "kubernetes-blue-green.yaml"))
        assert code == 0
        assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Canary", "MetricTemplate"]
        lines = err.splitlines()
        # One about the Canary, four about Flagger's load tester and Prometheus.
        assert len(lines) == 5 and all(line.startswith("note: ") for line in lines)
        assert lines[0].startswith(f"note: {FIXTURES / 'kubernetes-blue-green.yaml'}:21: "
                                   "Canary test/podinfo: spec.service.portDiscovery: ")

    def test_an_added_interval_is_a_note_on_stderr(self) -> None:
        code, out, err = self.run("-", stdin=canary_manifest(analysis={
            "interval": "30s", "threshold": 2, "stepWeight": 10, "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}}]}))
        assert code == 0
        assert yaml.safe_load(out)["spec"]["analysis"]["metrics"][0]["interval"] == "1m"
        assert err.startswith("note: <stdin>:")
        assert "spec.analysis.metrics[0].interval: set to 1m, Flagger's default" in err

    def test_reads_stdin_without_files_or_with_a_dash(self) -> None:
        text = canary_manifest()
        for files in ((), ("-",)):
            code, out, err = self.run(*files, stdin=text)
            assert (code, err) == (0, "")
            assert yaml.safe_load(out)["kind"] == "Canary"

    def test_variables_are_checked_against_a_template_of_another_file(self) -> None:
        canary = canary_using({"other": "x"}, {"name": "my-metric", "namespace": "flagger"})
        assert self.run("-", stdin=canary)[0] == 0  # without the template: not checked
        code, out, err = self.run(str(FIXTURES / "metric-templates.yaml"), "-", stdin=canary)
        assert code == 1 and out == ""
        line = canary.splitlines().index("      templateVariables:") + 1
        assert f"error: <stdin>:{line}: Canary shop/web: spec.analysis.metrics[0]" \
            ".templateVariables: MetricTemplate flagger/my-metric: the query uses " \
            "{{ variables.direction }} but templateVariables has no 'direction'\n" in err

    def test_malformed_input_writes_nothing_and_exits_1(self) -> None:
        good = (FIXTURES / "istio-ab-testing.yaml").read_text()
        code, out, err = self.run("-", stdin=good + "---\n- not an object\n")
        assert code == 1 and out == ""
        assert "error: <stdin>:" in err and "nothing written" in err

    def test_strict_passes_only_when_there_is_nothing_to_say(self) -> None:
        assert self.run("-", stdin=canary_manifest(), strict=True) == (
            0, canary_manifest().replace("flagger.app", "canary.dev"), "")

    @pytest.mark.parametrize("name", ["alert-providers.yaml", "webhooks.yaml",
                                      "istio-ab-testing.yaml"])
    def test_strict_fails_when_any_note_is_written_one_line_each(self, name: str) -> None:
        """A translation (gchat to googlechat), a field left out, a hook calling Flagger's
        load tester: each is something to look at before applying."""
        code, out, err = self.run(str(FIXTURES / name), strict=True)
        assert code == LOSSY and out  # the output is still written
        *noted, summary = err.splitlines()
        assert noted and all(line.startswith(f"note: {FIXTURES / name}:") for line in noted)
        assert summary == f"canary convert: {len(noted)} note{'s' * (len(noted) > 1)} " \
            "(--strict)"
