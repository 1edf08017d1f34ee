"""``canary convert``: Flagger manifests into canary's (pure: text in, text and notes out).

Flagger's ``flagger.app/v1beta1`` Canary, MetricTemplate and AlertProvider share their
field names with canary's ``canary.dev/v1beta1``, so most of a conversion is a change of
``apiVersion``. What differs:

- fields canary does not have (another mesh's ``spec.provider``, ``ingressRef``,
  ``upstreamRef``, Gateway API ``gatewayRefs``, App Mesh's ``meshName``, ...) are left
  out, each reported as a :class:`Note` naming the document, the field path and the line;
- a few values are translated, and reported: the deprecated ``spec.canaryAnalysis`` becomes
  ``spec.analysis``, ``autoscaling/v2beta*`` becomes ``autoscaling/v2``, the AlertProvider
  type ``gchat`` becomes ``googlechat``, and an AlertProvider's inline ``address`` moves
  into a Secret (canary reads addresses from Secrets only);
- documents canary cannot carry at all (a MetricTemplate of another metrics provider, a
  Canary of a DaemonSet) are left out, with a note;
- what is carried but points at a service Flagger installs and canary does not (its load
  tester, its Prometheus) is noted with what to change (:mod:`.companions`).

HorizontalPodAutoscalers of the removed ``autoscaling/v2beta*`` versions become
``autoscaling/v2`` (:mod:`.autoscaling`), since a manifest converted for canary should
also apply. A rewritten document keeps its comments at their fields (:mod:`.comments`).

Malformed input is refused (:attr:`Result.errors`): YAML that does not parse, a document
that is not a mapping, a ``flagger.app`` apiVersion or kind that is not one of the three, a
duplicate key, and any field of the wrong type or form, found by validating every
converted object with canary's models (strictly, as the API server's schema would). Each
error names the source, the line and the field. A Canary's ``templateVariables`` value is
refused too where the query of its MetricTemplate would refuse it, when the input holds
that MetricTemplate (:mod:`.variables`); without it, values are checked only by the schema.

Documents of any other kind pass through as written (comments included), so a whole
application manifest can be piped through. Output documents keep the input's order.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canary.convert import autoscaling, companions, variables
from canary.convert.comments import Comments, collect, reattach
from canary.convert.paths import Path
from canary.models.base import DURATION_PATTERN, ApiModel
from canary.models.canary import BUILTIN_METRICS, Canary
from canary.models.templates import AlertProvider, MetricTemplate

FLAGGER_GROUP = "flagger.app"
FLAGGER_API_VERSION = f"{FLAGGER_GROUP}/v1beta1"
API_VERSION = "canary.dev/v1beta1"
MODELS: dict[str, type[ApiModel]] = {
    "Canary": Canary, "MetricTemplate": MetricTemplate, "AlertProvider": AlertProvider}

#: Flagger fields canary has no counterpart for, with what to do instead. Keys are field
#: paths with ``[]`` for any list index. Other unknown fields get a generic note.
UNSUPPORTED: dict[str, str] = {
    "spec.metricsServer": "set the Prometheus address for the controller "
                          "(`canary run --metrics-server`) or per MetricTemplate "
                          "(spec.provider.address)",
    "spec.ingressRef": "canary routes traffic through Istio only (no NGINX ingress)",
    "spec.routeRef": "canary routes traffic through Istio only (no APISIX routes)",
    "spec.upstreamRef": "canary routes traffic through Istio only (no Gloo upstreams)",
    "spec.service.gatewayRefs": "canary routes traffic through Istio only (no Gateway API "
                                "HTTPRoutes); Istio gateways go in spec.service.gateways",
    "spec.service.portDiscovery": "canary's Services expose spec.service.port only",
    "spec.service.appProtocol": "canary's Services do not set appProtocol",
    "spec.service.delegation": "canary's VirtualService always carries its hosts "
                               "(no Istio delegation)",
    "spec.service.meshName": "App Mesh is not supported",
    "spec.service.backends": "App Mesh is not supported",
    "spec.service.apex": "canary does not add custom labels or annotations to its Services",
    "spec.service.primary": "canary does not add custom labels or annotations to its "
                            "Services",
    "spec.service.canary": "canary does not add custom labels or annotations to its "
                           "Services",
    "spec.autoscalerRef.primaryScalerQueries": "KEDA ScaledObjects are not supported",
    "spec.autoscalerRef.primaryScalerReplicas": "the primary's autoscaler copies the "
                                                "user's replica bounds",
}

#: Flagger fields whose content canary implies: left out without a note.
SILENT = frozenset({
    "spec.analysis.metrics[].templateRef.apiVersion",
    "spec.analysis.metrics[].templateRef.kind",
    "spec.analysis.alerts[].providerRef.apiVersion",
    "spec.analysis.alerts[].providerRef.kind",
})

#: The query window Flagger gives a metric without ``interval``.
FLAGGER_METRIC_INTERVAL = "1m"

_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp",
                    "managedFields", "selfLink", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "ownerReferences", "finalizers")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_DOCUMENT_MARKER = re.compile(r"^---[ \t]*(#.*)?$")
_DROP = object()


@dataclass(frozen=True)
class Note:
    """One thing to tell the user about one field of one document."""

    source: str
    line: int | None
    document: str
    path: str
    message: str
    #: Something the input said is lost (False: carried over, in another form or with
    #: something to change before it works as it did under Flagger).
    lost: bool = True

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        field_path = f": {self.path}" if self.path else ""
        return f"{where}: {self.document}{field_path}: {self.message}"


@dataclass
class Result:
    """The converted documents (YAML texts, in input order) and what was said about them."""

    documents: list[str] = field(default_factory=list)
    #: Something was not carried over as written (left out, moved or translated).
    notes: list[Note] = field(default_factory=list)
    #: The input is malformed: nothing should be written.
    errors: list[Note] = field(default_factory=list)
    #: How many Flagger objects were converted.
    converted: int = 0
    #: The converted Canaries' metrics that name a MetricTemplate, and the converted
    #: MetricTemplates (the last of a name wins, as when applied in order).
    uses: list[variables.TemplateUse] = field(default_factory=list)
    templates: dict[variables.TemplateKey, variables.Template] = field(default_factory=dict)

    def extend(self, other: Result) -> None:
        self.documents += other.documents
        self.notes += other.notes
        self.errors += other.errors
        self.converted += other.converted
        self.uses += other.uses
        self.templates.update(other.templates)

    def text(self) -> str:
        """All documents as one multi-document YAML stream."""
        return "---\n".join(doc if doc.endswith("\n") else doc + "\n" for doc in self.documents)


def convert_text(text: str, source: str = "<stdin>") -> Result:
    """Convert every document of a YAML stream; see the module's docstring."""
    return convert_texts([(text, source)])


def convert_texts(inputs: Iterable[tuple[str, str]]) -> Result:
    """Convert YAML streams, given as (text, source), as one input: a Canary's template
    variables are checked against a MetricTemplate of any of them."""
    result = Result()
    for text, source in inputs:
        for chunk in _documents(text, source, result):
            result.extend(_convert_document(chunk, source))
    for use, name, message in variables.problems(result.uses, result.templates):
        path, line = use.where(name)
        result.errors.append(Note(use.source, line, use.document, path, message))
    return result


# -- reading YAML with the line of every field ------------------------------------------


@dataclass
class _Chunk:
    data: Any
    #: The 1-based line of each field path of ``data``.
    lines: dict[Path, int]
    #: The document exactly as written, when it can be reproduced so.
    text: str | None
    line: int
    #: The composed document, when ``text`` is its own (for its comments).
    node: Node | None = None

    def comments(self) -> Comments:
        """The document's comments, for when it is rewritten."""
        if self.node is None or self.text is None:
            return Comments()
        return collect(self.node, self.text)


def _documents(text: str, source: str, result: Result) -> Iterator[_Chunk]:
    """Each document of ``text`` with its lines; a YAML error is recorded in ``result``."""
    pieces: list[tuple[int, list[str]]] = [(0, [])]
    for number, text_line in enumerate(text.splitlines(keepends=True)):
        if _DOCUMENT_MARKER.match(text_line.rstrip("\r\n")):
            pieces.append((number + 1, []))
        else:
            pieces[-1][1].append(text_line)
    for offset, lines in pieces:
        piece = "".join(lines)
        if not piece.strip():
            continue
        try:
            found = list(_compose(piece, offset, source, result))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = offset + mark.line + 1 if mark is not None else offset + 1
            problem = getattr(exc, "problem", None) or str(exc)
            result.errors.append(Note(source, line, "YAML", "", f"cannot parse: {problem}"))
            continue
        for data, node_lines, node in found:
            alone = len(found) == 1
            yield _Chunk(data, node_lines, piece if alone else None,
                         min(node_lines.values(), default=offset + 1), node)


def _compose(piece: str, offset: int, source: str, result: Result
             ) -> Iterator[tuple[Any, dict[Path, int], Node]]:
    loader = yaml.SafeLoader(piece)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path, int] = {(): offset + node.start_mark.line + 1}
            _record_lines(node, (), offset, lines, source, result, set())
            yield loader.construct_document(node), lines, node
    finally:
        loader.dispose()


def _record_lines(node: Node, path: Path, offset: int, lines: dict[Path, int], source: str,
                  result: Result, active: set[int]) -> None:
    if id(node) in active:  # a recursive alias
        return
    active = active | {id(node)}
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            line = offset + key_node.start_mark.line + 1
            if key in seen and key != "<<":
                result.errors.append(Note(source, line, "YAML", _dotted((*path, key)),
                                          "duplicate key"))
            seen.add(key)
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), offset, lines, source, result, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = offset + item.start_mark.line + 1
            _record_lines(item, (*path, index), offset, lines, source, result, active)


# -- one document -----------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style as kubectl writes it: list items indented under their key, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line strings (queries, scripts) as literal blocks, as people write them."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


def _convert_document(chunk: _Chunk, source: str) -> Result:
    result = Result()
    data = chunk.data
    if data is None:
        return result
    if not isinstance(data, dict):
        result.errors.append(Note(source, chunk.line, "document", "",
                                  f"not a mapping but {_kind_of(data)}: not a Kubernetes "
                                  "object"))
        return result
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or \
            not api_version or not kind:
        result.errors.append(Note(source, chunk.line, "document", "",
                                  "not a Kubernetes object: apiVersion and kind are "
                                  "required"))
        return result
    if kind.endswith("List") and api_version == "v1" and isinstance(data.get("items"), list):
        converted = _convert_list(data, chunk, source, result)
        result.documents.append(chunk.text if converted is data and chunk.text is not None
                                else _dump(converted))
        return result
    if autoscaling.is_old(data):
        converted, origin = _autoscaler(data, chunk.lines, (), source, result)
        result.documents.append(reattach(_dump(converted), chunk.comments(),
                                         lambda path: _moved_from(origin, path)))
        return result
    if _group(api_version) != FLAGGER_GROUP:
        result.documents.append(chunk.text if chunk.text is not None else _dump(data))
        return result
    converter = _Converter(source, chunk.lines, (), result)
    outputs = converter.convert(data)
    result.documents += [_dump(obj) for obj in outputs[:-1]]  # a Secret it needs
    if outputs:  # the converted object itself, last, where its comments go
        result.documents.append(reattach(_dump(outputs[-1]), chunk.comments(),
                                         converter.input_path))
    return result


def _autoscaler(data: dict[str, Any], lines: dict[Path, int], base: Path, source: str,
                result: Result) -> tuple[dict[str, Any], dict[Path, Path]]:
    """An HPA of a removed version as ``autoscaling/v2``, noted; with its moved fields."""
    converted, said, origin = autoscaling.to_v2(data)
    name = _document_name(str(data["kind"]), data.get("metadata"))
    result.notes += [Note(source, _line(lines, base + path), name, _dotted(path), message,
                          lost=False) for path, message in said]
    return converted, origin


def _line(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of the nearest enclosing field written."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def _moved_from(origin: dict[Path, Path], out: Path) -> Path:
    """Where the output field ``out`` was written in the input (``origin``: moves)."""
    for cut in range(len(out), -1, -1):
        if out[:cut] in origin:
            return origin[out[:cut]] + out[cut:]
    return out


def _convert_list(data: dict[str, Any], chunk: _Chunk, source: str, result: Result
                  ) -> dict[str, Any]:
    """A ``v1`` List (``kubectl get -o yaml``): its Flagger items and old autoscalers are
    converted."""
    items: list[Any] = []
    changed = False
    for index, item in enumerate(data["items"]):
        base: Path = ("items", index)
        if isinstance(item, dict) and autoscaling.is_old(item):
            changed = True
            items.append(_autoscaler(item, chunk.lines, base, source, result)[0])
            continue
        if not isinstance(item, dict) or \
                _group(str(item.get("apiVersion", ""))) != FLAGGER_GROUP:
            items.append(item)
            continue
        changed = True
        items += _Converter(source, chunk.lines, base, result).convert(item)
    if not changed:
        return data
    return {**data, "items": items}


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _pattern(path: Path) -> str:
    return _dotted(tuple(0 if isinstance(p, int) else p for p in path)).replace("[0]", "[]")


def _empty(value: Any) -> bool:
    """A Go zero value, which Flagger writes for fields left unset."""
    return value is None or value is False or value == "" or value == 0 or value == [] \
        or value == {}


class _Converter:
    """Converts one Flagger object (``base`` is its path within the chunk, for lines)."""

    def __init__(self, source: str, lines: dict[Path, int], base: Path,
                 result: Result) -> None:
        self.source = source
        self.lines = lines
        self.base = base
        self.result = result
        self.name = "document"
        #: The input path each output path came from (the same unless a field moved).
        self.origin: dict[Path, Path] = {}
        #: Input paths of fields that moved: where they are now -> where they were written.
        self.moved: dict[Path, Path] = {}

    # -- reporting --

    def line(self, path: Path) -> int | None:
        return _line(self.lines, self.base + path)

    def note(self, path: Path, message: str, lost: bool = True) -> None:
        self.result.notes.append(Note(self.source, self.line(path), self.name,
                                      _dotted(path), message, lost))

    def error(self, path: Path, message: str) -> None:
        self.result.errors.append(Note(self.source, self.line(path), self.name,
                                       _dotted(path), message))

    # -- the object --

    def convert(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The canary objects for one Flagger object: none, one, or (for an AlertProvider
        with an inline address) a Secret and the AlertProvider."""
        kind, api_version = str(data["kind"]), str(data["apiVersion"])
        metadata = data.get("metadata")
        self.name = _document_name(kind, metadata)
        if kind not in MODELS:
            self.error(("kind",), f"{api_version} {kind} is not a Flagger kind canary "
                       f"converts (Canary, MetricTemplate, AlertProvider)")
            return []
        if api_version != FLAGGER_API_VERSION:
            self.error(("apiVersion",), f"{api_version} is not supported: only "
                       f"{FLAGGER_API_VERSION} manifests are converted")
            return []
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) \
                or not metadata.get("name"):
            self.error(("metadata", "name") if isinstance(metadata, dict) else ("metadata",),
                       "metadata.name is required")
            return []
        spec = data.get("spec")
        if not isinstance(spec, dict):
            self.error(("spec",), "spec is required and must be a mapping"
                       if spec is None else f"expected a mapping, got {_kind_of(spec)}")
            return []
        spec = copy.deepcopy(spec)
        errors_before = len(self.result.errors)
        extra: list[dict[str, Any]] = []
        if kind == "Canary":
            keep = self._canary_fixups(spec)
        elif kind == "MetricTemplate":
            keep = self._metric_template_fixups(spec)
        else:
            keep, extra = self._alert_provider_fixups(spec, metadata)
        if not keep:
            return []
        model = MODELS[kind]
        spec_model = _submodel(model.model_fields["spec"].annotation)[0]
        assert spec_model is not None
        converted = {
            "apiVersion": API_VERSION, "kind": kind, "metadata": self._metadata(metadata),
            "spec": self._carry(spec, spec_model, ("spec",), ("spec",)),
        }
        refused = len(self.result.errors) > errors_before  # by a fixup
        if not self._validate(model, converted) or refused:
            return []
        self.result.converted += 1
        self._record(converted)
        return [*extra, converted]

    def _record(self, converted: dict[str, Any]) -> None:
        """Keep what checking template variables across documents needs."""
        metadata, spec = converted["metadata"], converted["spec"]
        namespace = _namespace(metadata)
        if converted["kind"] == "MetricTemplate":
            self.result.templates[(namespace, metadata["name"])] = variables.Template(
                self.name, spec["query"])
            return
        if converted["kind"] != "Canary":
            return
        for index, metric in enumerate((spec.get("analysis") or {}).get("metrics") or []):
            ref = metric.get("templateRef")
            if ref is None:
                continue
            out = ("spec", "analysis", "metrics", index, "templateVariables")
            here = self.input_path(out)
            values = metric.get("templateVariables") or {}
            self.result.uses.append(variables.TemplateUse(
                self.source, self.name, (ref.get("namespace") or namespace, ref["name"]),
                values, _dotted(here), self.line(here),
                {key: self.line(self.input_path((*out, key))) for key in values}))

    def _metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        kept = {k: copy.deepcopy(v) for k, v in metadata.items() if k not in _SERVER_METADATA}
        annotations = kept.get("annotations")
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
            if annotations:
                kept["annotations"] = annotations
            else:
                del kept["annotations"]
        return kept

    def _validate(self, model: type[ApiModel], converted: dict[str, Any]) -> bool:
        try:
            model.model_validate_json(json.dumps(converted), strict=True)
        except ValidationError as exc:
            messages: dict[Path, list[str]] = {}
            for problem in exc.errors():
                path = self._existing(converted, tuple(problem["loc"]))
                messages.setdefault(path, [])
                text = _explain(problem)
                if text not in messages[path]:
                    messages[path].append(text)
            for path, texts in messages.items():
                self.error(self.input_path(path), _join(texts))
            return False
        return True

    def input_path(self, out: Path) -> Path:
        """Where the output field ``out`` was written in the Flagger object."""
        return _moved_from(self.origin, out)

    @staticmethod
    def _existing(data: Any, loc: Path) -> Path:
        """The part of a validation error's location that is a path in ``data``."""
        found: list[str | int] = []
        for part in loc:
            inside = (isinstance(data, dict) and part in data) or (
                isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data))
            if inside:
                data = data[part]
            elif isinstance(data, dict) and isinstance(part, str) and \
                    not part.startswith(("function-", "literal[")) and \
                    part not in ("int", "str", "float", "bool"):
                found.append(part)  # a required field that is missing
                break
            else:
                break
            found.append(part)
        return tuple(found)

    def _carry(self, value: Any, model: type[ApiModel], in_path: Path, out_path: Path) -> Any:
        """``value`` with the fields ``model`` knows; the others are left out and noted."""
        self.origin[out_path] = in_path
        if not isinstance(value, dict):
            return value  # the wrong type: validation says so, with the line
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        out: dict[str, Any] = {}
        for key, item in value.items():
            here = self.moved.get((*in_path, key), (*in_path, key))
            if item is _DROP:
                continue
            target = fields.get(key)
            if target is None:
                pattern = _pattern(here).replace("spec.canaryAnalysis", "spec.analysis")
                if not _empty(item) and pattern not in SILENT:
                    why = UNSUPPORTED.get(pattern, "canary has no such field")
                    self.note(here, f"not carried over: {why}")
                continue
            sub, many = _submodel(target.annotation)
            there = (*out_path, key)
            self.origin[there] = here
            if sub is not None and many and isinstance(item, list):
                kept: list[Any] = []
                for index, element in enumerate(item):
                    if element is _DROP:
                        continue
                    kept.append(self._carry(element, sub, (*here, index),
                                            (*there, len(kept))))
                out[key] = kept
            elif sub is not None:
                out[key] = self._carry(item, sub, here, there)
            else:
                out[key] = item
        return out

    # -- Canary --

    def _canary_fixups(self, spec: dict[str, Any]) -> bool:
        provider = spec.pop("provider", None)
        if provider is not None and not isinstance(provider, str):
            self.error(("spec", "provider"), f"expected a string, got {_kind_of(provider)}")
            return False
        other_mesh = isinstance(provider, str) and provider not in ("", "istio")
        if other_mesh:
            self.note(("spec", "provider"), f"not carried over: the mesh provider {provider} "
                      "is not supported; canary routes traffic through Istio")
        if "canaryAnalysis" in spec:
            old = spec.pop("canaryAnalysis")
            if "analysis" in spec:
                if not _empty(old):
                    self.note(("spec", "canaryAnalysis"), "not carried over: Flagger ignores "
                              "it when spec.analysis is set")
            else:
                spec["analysis"] = old
                self.note(("spec", "canaryAnalysis"), "moved to spec.analysis (its "
                          "replacement in flagger.app/v1beta1)", lost=False)
                self.moved[("spec", "analysis")] = ("spec", "canaryAnalysis")
        target = spec.get("targetRef")
        if isinstance(target, dict) and target.get("kind") not in (None, "Deployment"):
            self.note(("spec", "targetRef", "kind"), f"the Canary is left out: canary "
                      f"delivers Deployments only, not {target.get('kind')}")
            return False
        autoscaler = spec.get("autoscalerRef")
        if isinstance(autoscaler, dict):
            if autoscaler.get("kind") not in (None, "HorizontalPodAutoscaler"):
                self.note(("spec", "autoscalerRef"), f"not carried over: canary supports "
                          f"HorizontalPodAutoscalers only, not {autoscaler.get('kind')}")
                spec["autoscalerRef"] = _DROP
            elif str(autoscaler.get("apiVersion", "")).startswith("autoscaling/v2beta"):
                self.note(("spec", "autoscalerRef", "apiVersion"),
                          f"{autoscaler['apiVersion']} changed to autoscaling/v2 (the "
                          "version canary reads)", lost=False)
                autoscaler["apiVersion"] = "autoscaling/v2"
        analysis = spec.get("analysis")
        if isinstance(analysis, dict):
            self._analysis_fixups(analysis, self.moved.get(("spec", "analysis"),
                                                           ("spec", "analysis")),
                                  other_mesh, provider)
        return True

    def _analysis_fixups(self, analysis: dict[str, Any], path: Path, other_mesh: bool,
                         provider: Any) -> None:
        if other_mesh and analysis.get("mirror"):
            self.note((*path, "mirror"), f"not carried over: Flagger mirrors traffic only on "
                      f"Istio, so with {provider} this Canary ran as plain blue/green; it "
                      "stays so")
            analysis["mirror"] = _DROP
            if "mirrorWeight" in analysis:
                analysis["mirrorWeight"] = _DROP
        metrics = analysis.get("metrics")
        if isinstance(metrics, list):
            for index, metric in enumerate(metrics):
                if isinstance(metric, dict):
                    self._metric_fixups(metric, (*path, "metrics", index))
            for index, metric in enumerate(metrics):
                if not isinstance(metric, dict) or _empty(metric.get("query")):
                    continue
                here = (*path, "metrics", index)
                if metric.get("name") in BUILTIN_METRICS or metric.get("templateRef"):
                    self.note((*here, "query"), "not carried over: canary does not run "
                              "inline queries (the built-in or the templateRef query is used)")
                    metric["query"] = _DROP
                else:
                    self.note(here, f"not carried over: the metric {metric.get('name')!r} "
                              "has an inline query; put it in a MetricTemplate and refer to "
                              "it with templateRef")
                    metrics[index] = _DROP
        webhooks = analysis.get("webhooks")
        if isinstance(webhooks, list):
            for index, hook in enumerate(webhooks):
                if not isinstance(hook, dict):
                    continue
                if hook.get("type") == "":
                    del hook["type"]  # Flagger's zero value: a rollout hook, canary's default
                for sub, message in companions.hook_notes(hook):
                    self.note((*path, "webhooks", index, *sub), message, lost=False)
                if hook.get("muteAlert") is True:
                    self.note((*path, "webhooks", index, "muteAlert"), "carried over, but "
                              "canary does not act on it yet: alerts about this hook are sent")

    def _metric_fixups(self, metric: dict[str, Any], here: Path) -> None:
        """Keep a metric's query window."""
        if _empty(metric.get("interval")) and (metric.get("name") in BUILTIN_METRICS
                                               or metric.get("templateRef")):
            metric["interval"] = FLAGGER_METRIC_INTERVAL
            self.note((*here, "interval"), f"set to {FLAGGER_METRIC_INTERVAL}, Flagger's "
                      "default query window for a metric (canary's default is the analysis "
                      "interval)", lost=False)

    # -- MetricTemplate --

    def _metric_template_fixups(self, spec: dict[str, Any]) -> bool:
        provider = spec.get("provider")
        kind = provider.get("type") if isinstance(provider, dict) else None
        if isinstance(kind, str) and kind != "prometheus":
            self.note(("spec", "provider", "type"), f"the MetricTemplate is left out: canary "
                      f"queries Prometheus only, not {kind}")
            return False
        address_note = companions.prometheus_note(
            provider.get("address") if isinstance(provider, dict) else None)
        if address_note is not None:
            self.note(("spec", "provider", "address"), address_note, lost=False)
        query = spec.get("query")
        if isinstance(query, str) and re.search(r"\{\{\s*ingress\s*\}\}", query):
            self.note(("spec", "query"), "uses {{ ingress }}, which canary does not provide "
                      "(no ingress controllers): the query will fail until it is changed")
        return True

    # -- AlertProvider --

    def _alert_provider_fixups(self, spec: dict[str, Any], metadata: dict[str, Any]
                               ) -> tuple[bool, list[dict[str, Any]]]:
        if spec.get("type") == "gchat":
            spec["type"] = "googlechat"
            self.note(("spec", "type"), "gchat changed to googlechat (canary's name for "
                      "Google Chat)", lost=False)
        address = spec.pop("address", None)
        if _empty(address):
            return True, []
        if not isinstance(address, str):
            self.error(("spec", "address"), f"expected a string, got {_kind_of(address)}")
            return False, []
        if spec.get("secretRef"):
            self.note(("spec", "address"), "dropped: with secretRef set, Flagger reads the "
                      "address from the Secret's `address` key, and so does canary",
                      lost=False)
            return True, []
        secret = f"{metadata['name']}-address"
        namespace = metadata.get("namespace")
        self.note(("spec", "address"), f"moved into the Secret {secret} (key address) that "
                  "precedes this AlertProvider, with secretRef naming it: canary reads "
                  "addresses from Secrets only; keep that Secret out of Git", lost=False)
        spec["secretRef"] = {"name": secret}
        secret_meta: dict[str, Any] = {"name": secret}
        if namespace:
            secret_meta["namespace"] = namespace
        return True, [{"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta,
                       "type": "Opaque", "stringData": {"address": address}}]


def _namespace(metadata: dict[str, Any]) -> str | None:
    """An object's namespace, None when the manifest leaves it to ``kubectl apply -n``."""
    namespace = metadata.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def _document_name(kind: str, metadata: Any) -> str:
    if not isinstance(metadata, dict) or not metadata.get("name"):
        return kind
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{metadata['name']}" if namespace else \
        f"{kind} {metadata['name']}"


def _submodel(annotation: Any) -> tuple[type[ApiModel] | None, bool]:
    """The model a field holds (directly, optionally, or as a list of them)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                found = _submodel(arg)
                if found[0] is not None:
                    return found
        return None, False
    if origin is list:
        inner, _ = _submodel(typing.get_args(annotation)[0])
        return inner, inner is not None
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        return annotation, False
    return None, False


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "string_type": "a string", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
}


def _explain(problem: Any) -> str:
    kind = problem["type"]
    given = problem.get("input")
    shown = json.dumps(given) if isinstance(given, str | int | float | bool) or given is None \
        else _kind_of(given)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if kind == "missing":
        return "required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown}"
    if kind == "string_pattern_mismatch" and \
            (problem.get("ctx") or {}).get("pattern") == DURATION_PATTERN:
        return f"expected a duration such as 30s, 1m or 1m30s, got {shown}"
    return f"{problem['msg']}, got {shown}"


def _join(texts: list[str]) -> str:
    expectations = [t.removeprefix("expected ").rsplit(", got ", 1) for t in texts]
    if len(texts) > 1 and all(t.startswith("expected ") for t in texts) and \
            len({e[1] for e in expectations if len(e) == 2}) == 1:
        return f"expected {' or '.join(e[0] for e in expectations)}, got {expectations[0][1]}"
    return "; ".join(texts)
