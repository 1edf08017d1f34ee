"""`canary convert` on a whole application as a GitOps repository holds it: every kind it
can convert is converted (Flagger's objects, autoscalers of removed versions), the rest is
kept as written, comments stay at their fields, and what will not work as it did under
Flagger (its load tester, its Prometheus) is said with the line and what to change.

``gitops-istio-backend.yaml`` is laid out as the Flux + Flagger + Istio workshop's backend
(Deployment, HPA, Canary with a bash hook and a load test, Istio MetricTemplate);
``gitops-istio-frontend.yaml`` as its frontend (A/B testing behind the ingress gateway,
with the workshop's two Istio MetricTemplates in istio-system).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from canary.console.cli import LOSSY, run_convert
from canary.convert import Result, autoscaling, companions, convert_text

FIXTURES = Path(__file__).parent / "fixtures" / "flagger"
BACKEND = "gitops-istio-backend.yaml"
FRONTEND = "gitops-istio-frontend.yaml"
ALLOW = "`canary loadtester --allow-commands`, chart value loadtester.allowCommands"


def convert_file(name: str) -> tuple[str, Result]:
    text = (FIXTURES / name).read_text()
    return text, convert_text(text, name)


def written_on(text: str, line: int | None) -> str:
    assert line is not None
    return text.splitlines()[line - 1].strip()


def full_line_comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


class TestAWholeApplication:
    def test_every_kind_is_converted_or_kept_in_order(self) -> None:
        text, result = convert_file(BACKEND)
        assert result.errors == [] and result.converted == 2
        docs = [yaml.safe_load(d) for d in result.documents]
        assert [(d["apiVersion"], d["kind"]) for d in docs] == [
            ("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("canary.dev/v1beta1", "Canary"), ("canary.dev/v1beta1", "MetricTemplate")]
        # The Deployment is not touched at all: its text is the input's.
        assert result.documents[0] == text.split("---\n")[0]

    def test_each_note_is_on_the_line_of_its_field(self) -> None:
        text, result = convert_file(BACKEND)
        assert [(written_on(text, n.line), n.path) for n in result.notes] == [
            ("apiVersion: autoscaling/v2beta2", "apiVersion"),
            ("apiVersion: autoscaling/v2beta2", "spec.autoscalerRef.apiVersion"),
            ("url: http://flagger-loadtester.prod/", "spec.analysis.webhooks[0].url"),
            ("type: bash", "spec.analysis.webhooks[0].metadata.type"),
            ("url: http://flagger-loadtester.prod/", "spec.analysis.webhooks[1].url"),
            ("address: http://flagger-prometheus.istio-system:9090",
             "spec.provider.address"),
        ]
        assert all(n.source == BACKEND for n in result.notes)

    def test_the_notes_say_what_to_change(self) -> None:
        _, result = convert_file(BACKEND)
        said = {(n.document, n.path): n.message for n in result.notes}
        hpa = said[("HorizontalPodAutoscaler prod/backend", "apiVersion")]
        assert hpa.startswith("autoscaling/v2beta2 changed to autoscaling/v2: Kubernetes 1.26 "
                              "removed autoscaling/v2beta2")
        url = said[("Canary prod/backend", "spec.analysis.webhooks[0].url")]
        assert "Flagger's load tester (flagger-loadtester)" in url
        assert "change it to canary's load tester, e.g. http://canary-loadtester.prod/" in url
        bash = said[("Canary prod/backend", "spec.analysis.webhooks[0].metadata.type")]
        assert bash.startswith("a bash command (`curl -sd 'test' ...`)") and ALLOW in bash
        prometheus = said[("MetricTemplate prod/error-rate", "spec.provider.address")]
        assert "point it to your Prometheus" in prometheus

    def test_a_hey_load_test_needs_no_command_note(self) -> None:
        _, result = convert_file(BACKEND)
        assert not [n for n in result.notes if n.path.startswith(
            "spec.analysis.webhooks[1].metadata")]

    def test_the_autoscaler_becomes_v2_with_the_same_fields(self) -> None:
        text, result = convert_file(BACKEND)
        before = list(yaml.safe_load_all(text))[1]
        after = yaml.safe_load(result.documents[1])
        assert after == {**before, "apiVersion": "autoscaling/v2"}

    def test_comments_stay_at_their_fields(self) -> None:
        text, result = convert_file(BACKEND)
        out = result.text()
        # Every comment is kept; the one inside the query is the query's.
        assert full_line_comments(out) == full_line_comments(text)
        assert "maxWeight: 50  # percentage (0-100)" in out
        assert "maxUnavailable: 0  # keep every replica serving" in out
        lines = out.splitlines()
        for comment, field in [("# deployment reference", "targetRef:"),
                               ("# to make progress before it is rollback (default 600s)",
                                "progressDeadlineSeconds: 120"),
                               ("# container port", "port: 9898"),
                               ("# scale up only when close to the limit",
                                "averageUtilization: 99"),
                               ("# installed by Flagger's chart (prometheus.install=true)",
                                "address: http://flagger-prometheus.istio-system:9090")]:
            at = [line.strip() for line in lines].index(comment)
            assert lines[at + 1].strip() == field
            assert lines[at].index("#") == lines[at + 1].index(field[0])  # its indentation
        template = yaml.safe_load(result.documents[3])
        assert template["spec"]["query"].startswith("# the share of requests that did not")

    def test_strict_fails_with_one_line_per_note(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        code = run_convert([str(FIXTURES / BACKEND)], True, out, err, io.StringIO())
        assert code == LOSSY and out.getvalue()
        *noted, summary = err.getvalue().splitlines()
        assert len(noted) == 6 and all(line.startswith("note: ") for line in noted)
        assert summary == "canary convert: 6 notes (--strict)"


class TestTheWorkshopFrontend:
    def test_the_ab_test_is_carried_as_written(self) -> None:
        text, result = convert_file(FRONTEND)
        assert result.errors == [] and result.converted == 3
        before = list(yaml.safe_load_all(text))[2]["spec"]
        after = yaml.safe_load(result.documents[2])["spec"]
        for key in ("service", "autoscalerRef"):
            assert after[key] == before[key]
        assert after["analysis"] == before["analysis"]

    def test_only_the_load_tester_and_flaggers_prometheus_are_noted(self) -> None:
        text, result = convert_file(FRONTEND)
        assert [(written_on(text, n.line), n.document, n.path) for n in result.notes] == [
            ("url: http://flagger-loadtester.prod/", "Canary prod/frontend",
             "spec.analysis.webhooks[0].url"),
            ("type: bash", "Canary prod/frontend", "spec.analysis.webhooks[0].metadata.type"),
            ("url: http://flagger-loadtester.prod/", "Canary prod/frontend",
             "spec.analysis.webhooks[1].url"),
            ("address: http://flagger-prometheus.istio-system:9090",
             "MetricTemplate istio-system/error-rate", "spec.provider.address"),
            ("address: http://flagger-prometheus.istio-system:9090",
             "MetricTemplate istio-system/latency", "spec.provider.address"),
        ]


class TestAutoscalers:
    def test_v2beta1_targets_are_rewritten_as_v2_nests_them(self) -> None:
        text, result = convert_file("hpa-v2beta1.yaml")
        hpa = yaml.safe_load(result.documents[0])
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert [m[m["type"][0].lower() + m["type"][1:]] for m in hpa["spec"]["metrics"]] == [
            {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}},
            {"metric": {"name": "http_requests",
                        "selector": {"matchLabels": {"verb": "GET"}}},
             "target": {"type": "AverageValue", "averageValue": "10"}},
            {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                 "name": "podinfo"},
             "metric": {"name": "requests_per_second"},
             "target": {"type": "Value", "value": "100"}},
            {"metric": {"name": "queue_messages_ready",
                        "selector": {"matchLabels": {"queue": "worker_tasks"}}},
             "target": {"type": "AverageValue", "averageValue": "30"}},
        ]
        assert "averageUtilization: 80  # percent of the request" in result.documents[0]
        said = [(written_on(text, n.line), n.path, n.lost) for n in result.notes[:3]]
        assert said == [("apiVersion: autoscaling/v2beta1", "apiVersion", False),
                        ("- type: Resource", "spec.metrics[0]", False),
                        ("- type: Resource", "spec.metrics[1]", False)]
        assert result.notes[1].message == ("rewritten in v2's form: resource."
                                           "targetAverageUtilization -> resource.target."
                                           "averageUtilization")

    def test_the_status_of_an_old_autoscaler_is_left_out(self) -> None:
        text = ("apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\n"
                "metadata: {name: web}\nspec: {maxReplicas: 2}\n"
                "status: {currentReplicas: 1, desiredReplicas: 1}\n")
        (doc,) = convert_text(text).documents
        assert yaml.safe_load(doc) == {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"}, "spec": {"maxReplicas": 2}}

    def test_an_old_autoscaler_in_a_list_is_converted_with_its_line(self) -> None:
        text = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
                "  metadata: {name: c}\n- apiVersion: autoscaling/v2beta2\n"
                "  kind: HorizontalPodAutoscaler\n  metadata: {name: web}\n"
                "  spec: {maxReplicas: 2}\n")
        result = convert_text(text)
        (listing,) = [yaml.safe_load(d) for d in result.documents]
        assert [i["apiVersion"] for i in listing["items"]] == ["v1", "autoscaling/v2"]
        (note,) = result.notes
        assert (note.line, note.path) == (7, "apiVersion")

    @given(st.lists(st.sampled_from(sorted(autoscaling.TARGETS)).flatmap(
        lambda field: st.tuples(st.just(field), st.sampled_from(["Object", "External",
                                                                 "Pods", "Resource"]),
                                st.integers(1, 10_000))), min_size=1, max_size=5))
    def test_every_moved_value_is_where_its_origin_says(
            self, metrics: list[tuple[str, str, int]]) -> None:
        """Whatever v2beta1 field a target was written in, its value is found in the v2
        output at the path the comments and notes use for it."""
        spec: dict[str, Any] = {"maxReplicas": 3, "metrics": [
            {"type": kind, kind[0].lower() + kind[1:]: {"metricName": "m", field: value}}
            for field, kind, value in metrics]}
        data = {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web"}, "spec": spec}
        out, notes, origin = autoscaling.to_v2(data)
        for new, old in origin.items():
            assert _at(out, new) == _at(data, old)
        assert all("metricName" not in str(m) for m in out["spec"]["metrics"]
                   if m["type"] != "Resource")
        assert len(notes) == 1 + len(metrics)


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


class TestComments:
    CANARY = ("# the shop's web front\n"
              "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: web\n"
              "spec:\n  # Istio only\n  provider: linkerd  # the old mesh\n"
              "  targetRef: {kind: Deployment, name: web}  # what is delivered\n"
              "  service:\n    port: 80\n"
              "  canaryAnalysis:\n    # every minute\n    interval: 1m\n    threshold: 2\n"
              "    iterations: 5\n    webhooks:\n      - name: smoke\n"
              "        url: 'http://tester.shop/#top'  # with a fragment\n"
              "        metadata:\n          cmd: |\n            hey -z 1m http://web/\n"
              "            # part of the command\n"
              "# the end\n")

    def test_they_follow_their_fields_and_go_with_the_ones_left_out(self) -> None:
        result = convert_text(self.CANARY)
        out = result.text()
        assert full_line_comments(out) == ["# the shop's web front", "# every minute",
                                           "# part of the command", "# the end"]
        assert "Istio only" not in out and "the old mesh" not in out  # provider: left out
        assert "    # every minute\n    interval: 1m\n" in out  # moved to spec.analysis
        assert "# what is delivered" in out.split("targetRef:")[1].splitlines()[0]
        assert "url: http://tester.shop/#top  # with a fragment" in out
        doc = yaml.safe_load(out)
        assert doc["spec"]["analysis"]["webhooks"][0]["metadata"]["cmd"] == (
            "hey -z 1m http://web/\n# part of the command\n")
        assert out.startswith("# the shop's web front\napiVersion: canary.dev/v1beta1\n")

    def test_a_field_keeps_a_comment_before_and_one_after_it(self) -> None:
        text = ("apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: web}\n"
                "spec:\n  targetRef: {kind: Deployment, name: web}\n  service:\n"
                "    port: 80\n    gateways:\n    # the public one\n    - public  # first\n"
                "    hosts: [a.example.com,\n      b.example.com]  # both\n"
                "  analysis: {interval: 1m, threshold: 2, iterations: 3}\n")
        out = convert_text(text).text()
        assert "      # the public one\n      - public  # first\n" in out
        assert "    hosts:  # both\n" in out

    @given(st.lists(st.text(st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]),
                            max_size=20), min_size=9, max_size=9))
    def test_any_comment_text_is_kept_and_changes_no_value(self, texts: list[str]) -> None:
        lines = yaml.safe_dump({"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                                "metadata": {"name": "errors", "namespace": "shop"},
                                "spec": {"provider": {"type": "prometheus"},
                                         "query": "sum(up)"}}, sort_keys=False).splitlines()
        commented = [f"{line}  # {texts[i]}" for i, line in enumerate(lines)]
        before_each = [f"{line[:len(line) - len(line.lstrip())]}# {texts[i]}\n{line}"
                       for i, line in enumerate(lines)]
        for text in ("\n".join(commented) + "\n", "\n".join(before_each) + "\n"):
            out = convert_text(text).text()
            assert yaml.safe_load(out) == {**yaml.safe_load(text),
                                           "apiVersion": "canary.dev/v1beta1"}
            # Each where it was written, trailing blanks aside.
            assert out.splitlines() == [line.rstrip() for line in text.replace(
                "flagger.app", "canary.dev").splitlines()]


class TestFlaggerCompanions:
    def test_a_load_tester_url_is_rewritten_to_canarys_service(self) -> None:
        assert companions.loadtester_url("http://flagger-loadtester.test/gate/check") == \
            "http://canary-loadtester.test/gate/check"
        assert companions.loadtester_url("http://flagger-loadtester/") == \
            "http://canary-loadtester/"
        assert companions.loadtester_url("http://my-flagger-loadtester.test/") is None
        assert companions.loadtester_url("http://canary-loadtester.test/") is None

    def test_commands_other_than_hey_need_commands_allowed(self) -> None:
        def paths(**metadata: str) -> list[tuple[str | int, ...]]:
            return [p for p, _ in companions.hook_notes({"url": "http://t/",
                                                         "metadata": metadata})]
        assert paths(cmd="hey -z 1m http://web/") == []
        assert paths(type="cmd", cmd="hey -z 1m http://web/") == []
        assert paths(cmd="ghz --insecure web:9090") == [("metadata", "cmd")]
        assert paths(type="bash", cmd="curl http://web/") == [("metadata", "type")]
        assert paths(type="helmv3", cmd="test web -n shop") == [("metadata", "type")]
        assert paths(type="bash") == []  # nothing to run

    def test_only_flaggers_prometheus_is_noted(self) -> None:
        assert companions.prometheus_note("http://flagger-prometheus.flagger:9090")
        assert companions.prometheus_note("http://prometheus.istio-system:9090") is None
        assert companions.prometheus_note(None) is None
