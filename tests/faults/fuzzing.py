"""Hostile Canary, MetricTemplate and AlertProvider manifests, made by mutating valid ones
(pure: no cluster). Each mutation remembers the field it touched, so that whoever refuses
or reports the object can be checked for naming that field."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

JSON = dict[str, Any]
Path = tuple[str | int, ...]
API_VERSION = "canary.dev/v1beta1"
#: The MetricTemplate and AlertProvider every namespace has, named by the base Canary.
GOOD_TEMPLATE, GOOD_PROVIDER = "good-template", "good-provider"
GOOD_QUERY = "sum(vector({{ variables.value }}))"

_METRICS: Path = ("spec", "analysis", "metrics")
_HOOK: Path = ("spec", "analysis", "webhooks", 0)
_ALERT: Path = ("spec", "analysis", "alerts", 0)
CANARY_PATHS: tuple[Path, ...] = (
    ("metadata", "name"), ("metadata", "labels"), ("metadata", "annotations"),
    ("spec",), ("spec", "targetRef"), ("spec", "targetRef", "name"),
    ("spec", "targetRef", "kind"), ("spec", "targetRef", "apiVersion"),
    ("spec", "service"), ("spec", "service", "port"), ("spec", "service", "targetPort"),
    ("spec", "service", "name"), ("spec", "service", "portName"), ("spec", "service", "hosts"),
    ("spec", "service", "gateways"), ("spec", "service", "timeout"),
    ("spec", "service", "retries"), ("spec", "service", "appProtocol"),
    ("spec", "service", "gatewayImplementation"), ("spec", "service", "routeRef"),
    ("spec", "service", "gatewayRefs"), ("spec", "service", "match"),
    ("spec", "provider"), ("spec", "autoscalerRef"), ("spec", "progressDeadlineSeconds"),
    ("spec", "skipAnalysis"), ("spec", "suspend"), ("spec", "revertOnDeletion"),
    ("spec", "analysis"), ("spec", "analysis", "interval"), ("spec", "analysis", "threshold"),
    ("spec", "analysis", "maxWeight"), ("spec", "analysis", "stepWeight"),
    ("spec", "analysis", "stepWeights"), ("spec", "analysis", "stepWeightPromotion"),
    ("spec", "analysis", "iterations"), ("spec", "analysis", "mirror"),
    ("spec", "analysis", "mirrorWeight"), ("spec", "analysis", "primaryReadyThreshold"),
    ("spec", "analysis", "canaryReadyThreshold"), ("spec", "analysis", "sessionAffinity"),
    ("spec", "analysis", "match"), ("spec", "analysis", "judge"), _METRICS,
    (*_METRICS, 0), (*_METRICS, 0, "name"), (*_METRICS, 0, "interval"),
    (*_METRICS, 0, "thresholdRange"), (*_METRICS, 0, "thresholdRange", "min"),
    (*_METRICS, 0, "thresholdRange", "max"), (*_METRICS, 0, "threshold"),
    (*_METRICS, 1, "name"), (*_METRICS, 1, "templateRef"), (*_METRICS, 1, "templateRef", "name"),
    (*_METRICS, 1, "templateRef", "namespace"), (*_METRICS, 1, "templateVariables"),
    (*_METRICS, 1, "templateVariables", "value"), ("spec", "analysis", "webhooks"),
    (*_HOOK, "name"), (*_HOOK, "type"), (*_HOOK, "url"), (*_HOOK, "timeout"),
    (*_HOOK, "retries"), (*_HOOK, "metadata"), (*_HOOK, "secretRef"),
    ("spec", "analysis", "alerts"), (*_ALERT, "name"), (*_ALERT, "severity"),
    (*_ALERT, "providerRef"), (*_ALERT, "providerRef", "name"),
)
TEMPLATE_PATHS: tuple[Path, ...] = (
    ("metadata", "name"), ("spec",), ("spec", "provider"), ("spec", "provider", "type"),
    ("spec", "provider", "address"), ("spec", "provider", "secretRef"),
    ("spec", "provider", "secretRef", "name"), ("spec", "provider", "insecureSkipVerify"),
    ("spec", "query"),
)
PROVIDER_PATHS: tuple[Path, ...] = (
    ("metadata", "name"), ("spec",), ("spec", "type"), ("spec", "channel"),
    ("spec", "username"), ("spec", "proxy"), ("spec", "secretRef"),
    ("spec", "secretRef", "name"), ("spec", "messageTemplate"),
)
PATHS = {"Canary": CANARY_PATHS, "MetricTemplate": TEMPLATE_PATHS,
         "AlertProvider": PROVIDER_PATHS}

#: A value of every JSON type, for fields that expect another.
WRONG_TYPES: tuple[Any, ...] = (None, True, False, "x", "", 1, 1.5, [], {}, ["a"], {"a": 1},
                                [{"a": [1]}])
NUMBERS: tuple[Any, ...] = (-1, 0, 1, 100, 101, 65535, 65536, 2**31, -(2**31) - 1, 2**53 + 1,
                            2**63 - 1, -(2**63), 1e300, -1e-300, 0.5, -0.0)
#: Durations, names and text that look almost right, or are unusual Unicode.
ODD_STRINGS: tuple[str, ...] = (
    "1h30x", "0s", "-1s", "1e3s", "99999999999999999999h", "1.5.5s", "1m 30s", "ms", "1", "∞s",
    "\u202eevil\u202c", "a\x00b", "\x00", "😀🚀", "e\u0301\u0301\u0301", "\uff46\uff55\uff4c\uff4c",
    "-bad-", "UPPER", "a..b", "a_b", "\ud800", "\ufeffbom", "\n", " lead", "tail ", "%00",
    "../../etc/passwd", "http://[::1", "http://127.0.0.1:1", "https://exa mple.com",
    "javascript:alert(1)", "{{ variables.value }}", "{{", "}}", "${canary}", "$", "'; DROP",
    "missing", "nowhere", "istio", "kubernetes", "gatewayapi:v1", "linkerd", "latency",
    "errorRate", "1.5x", "+0pp", "1001x",
)
#: Placeholders a query or a message template may hold, right and wrong.
ODD_TEMPLATES: tuple[str, ...] = (
    "{{ variables.missing }}", "{{ variables.value | regex }}", "{{ name", "{{ nope }}",
    "{{ variables.value | upper }}", "{{ variables['value'] }}", "{% for x in y %}{% endfor %}",
    "{{ 7*7 }}", "{{ ''.__class__ }}", "{{ interval }}{{ interval }}",
    'sum(rate(x{a=~"{{ variables.value }}"}[{{ interval }}]))',
    'sum(rate(x{a="{{ variables.value }}"}[{{ variables.value }}]))',
    "\u202e{{ namespace }}", "sum(vector(1))", "(" * 500, "{{ variables.value }}" * 3000,
    "$", "${canary", "$unknown", "$$", "${canary}${phase}", "$canary" * 600, "\x00$canary",
    "{{ canary }}",
)
#: Whole objects in a field's place: what a user might plausibly (and wrongly) write.
SPECIAL: dict[Path, tuple[Any, ...]] = {
    ("spec", "analysis", "judge"): ({"metrics": [{"name": "e", "type": "errorRate"}]},
                                    {"metrics": [{"name": "l", "type": "latency"}]},
                                    {"metrics": []}, {"alpha": 0.9, "metrics": [
                                        {"name": "e", "type": "errorRate"}]}),
    ("spec", "autoscalerRef"): ({"kind": "HorizontalPodAutoscaler", "name": "missing-hpa"},),
    ("spec", "service", "routeRef"): ({"name": "missing-route"}, {"kind": "TCPRoute"}),
    ("spec", "service", "gatewayRefs"): ([{"name": "gw"}], [{"name": "GW!"}]),
    (*_METRICS, 0, "thresholdRange"): ({"min": 10, "max": 1}, {}, {"min": "ten"}),
    (*_METRICS, 1, "templateRef"): ({"name": "missing-template"},
                                    {"name": GOOD_TEMPLATE, "namespace": "no-such-ns"}),
    (*_ALERT, "providerRef"): ({"name": "missing-provider"},),
    ("spec", "analysis", "sessionAffinity"): ({"cookieName": "c", "maxAge": 0},
                                              {"cookieName": ""}),
    ("spec", "analysis", "match"): ([{"headers": {"x": {"exact": "1"}}}],),
    ("spec", "analysis", "stepWeights"): ([10, 50, 20], [0], [100] * 101, [5, 10]),
}
#: Sizes of oversized strings, in bytes: past every maxLength canary sets, past an
#: annotation's 256 KiB is too slow to be worth it.
OVERSIZED = (254, 1025, 4001, 32_769, 100_000)


@dataclass(frozen=True)
class Mutation:
    """One change to a valid manifest: set ``path`` to ``value``, or delete it."""

    path: Path
    delete: bool = False
    value: Any = None

    def __str__(self) -> str:
        what = "deleted" if self.delete else f"= {_short(self.value)}"
        return f"{manifest_path(self.path)} {what}"


@dataclass
class Fuzzed:
    """A manifest to send, and the mutations that made it from a valid one."""

    kind: str
    manifest: JSON
    mutations: list[Mutation] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str((self.manifest.get("metadata") or {}).get("name"))


def manifest_path(path: Path) -> str:
    """``path`` as the API server and canary spell it: ``spec.analysis.metrics[0].name``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _oversized(size: int, char: str) -> str:
    return char * max(1, size // len(char.encode("utf-8", "surrogatepass")))


def values(path: Path) -> st.SearchStrategy[Any]:
    """What may be put at ``path``: anything hostile, and a few plausible mistakes."""
    # Values of the right type but odd are drawn most often: a wrong type is refused at
    # once, and the interesting objects are those the API server accepts.
    plausible = st.sampled_from(NUMBERS + ODD_STRINGS + SPECIAL.get(path, ()))
    choices = [plausible, plausible, plausible, st.sampled_from(WRONG_TYPES),
               st.sampled_from(ODD_TEMPLATES),
               st.builds(_oversized, st.sampled_from(OVERSIZED),
                         st.sampled_from(["a", "é", "😀", "\u202e", "\x00"])),
               st.text(max_size=40),
               st.integers(min_value=-(2**63), max_value=2**63 - 1),
               st.floats(allow_nan=False, allow_infinity=False)]
    return st.one_of(*choices)


@st.composite
def mutations(draw: st.DrawFn, kind: str) -> Mutation:
    """One mutation of a ``kind`` manifest: a field set to something hostile, deleted, or
    an unknown field added beside it."""
    path = draw(st.sampled_from(PATHS[kind]))
    how = draw(st.sampled_from(["set", "set", "set", "delete", "unknown"]))
    if how == "delete":
        return Mutation(path, delete=True)
    if how == "unknown":
        parent = path if isinstance(path[-1], str) and path in _DICTS else path[:-1]
        return Mutation((*parent, draw(st.sampled_from(["xUnknown", "Port", "step_weight"]))),
                        value=draw(values(path)))
    return Mutation(path, value=draw(values(path)))


#: Paths that hold objects in the valid manifests: an unknown field may go inside them.
_DICTS = frozenset({("metadata",), ("spec",), ("spec", "targetRef"), ("spec", "service"),
                    ("spec", "analysis"), (*_METRICS, 0), (*_METRICS, 0, "thresholdRange"),
                    (*_METRICS, 1, "templateRef"), (*_METRICS, 1, "templateVariables"),
                    ("spec", "provider"), ("spec", "provider", "secretRef"),
                    ("spec", "secretRef"), _HOOK, _ALERT, (*_ALERT, "providerRef")})


@st.composite
def fuzzed_objects(draw: st.DrawFn) -> tuple[str, list[Mutation]]:
    """A kind (Canaries twice as often as each of the others) and one to three mutations."""
    kind = draw(st.sampled_from(["Canary", "Canary", "MetricTemplate", "AlertProvider"]))
    return kind, draw(st.lists(mutations(kind), min_size=1, max_size=3))


def generate(count: int, run_seed: int) -> list[tuple[str, list[Mutation]]]:
    """``count`` kinds and mutation lists, the same for the same seed."""
    drawn: list[tuple[str, list[Mutation]]] = []

    @seed(run_seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(fuzzed_objects())
    def collect(example: tuple[str, list[Mutation]]) -> None:
        drawn.append(example)

    collect()
    return drawn[:count]


def base(kind: str, name: str, namespace: str, target: str) -> JSON:
    """A valid ``kind`` manifest: the Canary delivers ``target`` with a built-in check, a
    MetricTemplate check, a webhook and an alert."""
    metadata = {"name": name, "namespace": namespace, "labels": {"fuzz": "yes"}}
    if kind == "MetricTemplate":
        return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata,
                "spec": {"provider": {"type": "prometheus"}, "query": GOOD_QUERY}}
    if kind == "AlertProvider":
        return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata,
                "spec": {"type": "webhook", "channel": "#deploys", "username": "canary",
                         "secretRef": {"name": f"{name}-address"},
                         "messageTemplate": "$canary is $phase"}}
    return {"apiVersion": API_VERSION, "kind": "Canary", "metadata": metadata, "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "service": {"port": 80, "targetPort": 9898},
        "progressDeadlineSeconds": 60,
        "analysis": {
            "interval": "1s", "threshold": 1, "maxWeight": 50, "stepWeight": 50,
            "metrics": [
                {"name": "request-success-rate", "interval": "10s",
                 "thresholdRange": {"min": 0}},
                {"name": "fuzzed", "templateRef": {"name": GOOD_TEMPLATE},
                 "templateVariables": {"value": "1"}, "thresholdRange": {"min": 0}}],
            "webhooks": [{"name": "hook", "type": "post-rollout",
                          "url": "http://127.0.0.1:9/hook"}],
            "alerts": [{"name": "alert", "severity": "error",
                        "providerRef": {"name": GOOD_PROVIDER}}]}}}


def mutated(manifest: JSON, changes: list[Mutation]) -> tuple[JSON, list[Mutation]]:
    """``manifest`` with ``changes`` made, and the changes that could be made (a change
    under a field an earlier one replaced with a scalar has nowhere to go)."""
    out = copy.deepcopy(manifest)
    made = []
    for change in changes:
        parent: Any = out
        for part in change.path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        leaf = change.path[-1]
        if isinstance(leaf, str) and isinstance(parent, dict):
            if change.delete:
                if parent.pop(leaf, _ABSENT) is _ABSENT:
                    continue
            else:
                parent[leaf] = copy.deepcopy(change.value)
            made.append(change)
        elif isinstance(leaf, int) and isinstance(parent, list) and leaf < len(parent):
            if change.delete:
                del parent[leaf]
            else:
                parent[leaf] = copy.deepcopy(change.value)
            made.append(change)
    return out, made


_ABSENT = object()


def field_words(mutation: Mutation) -> set[str]:
    """What a message naming the field of ``mutation`` contains one of: its path as the
    manifest spells it, the object holding it, or its own name."""
    words = {manifest_path(mutation.path)}
    if len(mutation.path) == 2 and mutation.path[0] == "metadata":
        # A metadata field of the wrong type is refused by the API server's decoder, which
        # spells the field as Go does: "Go struct field ObjectMeta.name of type string".
        words.add(f"ObjectMeta.{mutation.path[1]}")
    if len(mutation.path) > 2:
        words.add(manifest_path(mutation.path[:-1]))
    leaf = mutation.path[-1]
    if isinstance(leaf, str) and leaf not in _GENERIC:
        words.add(leaf)
    return words


#: Field names every message may contain whatever field it is about.
_GENERIC = frozenset({"name", "type", "spec", "metadata", "kind", "value", "xUnknown"})


def referenced(mutation: Mutation) -> str | None:
    """The name a mutated reference (``...Ref.name``, or a whole ``...Ref``) points at: a
    message about it names that object rather than the field."""
    path, value = mutation.path, mutation.value
    if len(path) >= 2 and path[-1] == "name" and str(path[-2]).endswith("Ref"):
        return value if isinstance(value, str) else None
    if str(path[-1]).endswith("Ref") and isinstance(value, dict):
        name = value.get("name")
        return name if isinstance(name, str) else None
    return None


def names_a_field(message: str, changes: list[Mutation], extra: tuple[str, ...] = ()) -> bool:
    """Whether ``message`` names one of the changed fields (or one of ``extra``: the
    objects a reference names)."""
    words = set(extra)
    for change in changes:
        words |= field_words(change)
        target = referenced(change)
        if target and target.strip():
            words.add(target)
    return any(word and word in message for word in words)
