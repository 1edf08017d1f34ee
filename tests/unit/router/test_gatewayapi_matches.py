"""Istio matches (analysis.match, service.match) translated into Gateway API matches:
every condition translated into one selecting the same requests, or refused by name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.router.gatewayapi.matches import UnsupportedRoute, escape, translate

FIELD = "spec.analysis.match"
TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
PATH = st.builds(lambda parts, slash: "/" + "/".join(parts) + ("/" if slash else ""),
                 st.lists(st.sampled_from(["a", "ab", "b.c", "", "%2F", ".", "x-1"]),
                          max_size=3), st.booleans())
STRING_MATCH = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["exact", "prefix", "regex"]), TEXT),
    st.just({}), st.just({"exact": "a", "prefix": "b"}), st.just({"suffix": "x"}))
NAMES = st.sampled_from(["x-user", "Cookie", ":authority", "bad name", "x_1"])
MATCH = st.dictionaries(
    st.sampled_from(["uri", "headers", "queryParams", "method", "authority", "scheme",
                     "withoutHeaders", "port", "ignoreUriCase", "name", "sourceLabels"]),
    st.one_of(STRING_MATCH, st.dictionaries(NAMES, STRING_MATCH, max_size=3),
              st.booleans()), max_size=4)


def gateway_path_matches(path: JSON, request_path: str) -> bool:
    """The Gateway API's meaning of a path match (PathPrefix compares whole segments)."""
    kind, value = str(path["type"]), str(path["value"])
    if kind == "Exact":
        return request_path == value
    if kind == "PathPrefix":
        base = value.rstrip("/")
        return request_path == base or request_path.startswith(base + "/") or base == ""
    return re.fullmatch(value, request_path) is not None


JSON = dict[str, Any]


class TestEveryMatchIsTranslatedOrRefused:
    """Nothing is dropped: an unsupported condition raises, naming its field."""

    @given(matches=st.lists(MATCH, max_size=3), grpc=st.booleans())
    def test_translated_or_refused_by_name(self, matches: list[JSON], grpc: bool) -> None:
        try:
            translated = translate(matches, FIELD, grpc=grpc)
        except UnsupportedRoute as exc:
            assert re.match(re.escape(FIELD) + r"\[\d\]\.\w+", str(exc)), str(exc)
            return
        assert len(translated) == len(matches)
        for istio, gateway in zip(matches, translated, strict=True):
            assert set(istio) - {"name", "ignoreUriCase"} <= {
                "uri", "headers", "queryParams", "method"}
            if istio.get("headers"):
                assert len(gateway["headers"]) == len(istio["headers"])

    def test_conditions_without_an_equivalent_name_the_field(self) -> None:
        for match, field in (({"withoutHeaders": {"x": {"exact": "1"}}}, "withoutHeaders"),
                             ({"authority": {"exact": "a"}}, "authority"),
                             ({"ignoreUriCase": True}, "ignoreUriCase"),
                             ({"method": {"prefix": "P"}}, "method"),
                             ({"headers": {":authority": {"exact": "a"}}}, "headers.:authority"),
                             ({"headers": {"x": {"exact": ""}}}, "headers.x.exact")):
            with pytest.raises(UnsupportedRoute, match=re.escape(f"{FIELD}[0].{field}")):
                translate([match], FIELD, grpc=False)


class TestHeadersAndQueryParameters:
    """Exact stays Exact; prefix and presence become regexes of the same values."""

    @given(prefix=TEXT, value=TEXT)
    def test_a_prefix_matches_the_values_istio_matches(self, prefix: str, value: str) -> None:
        [match] = translate([{"headers": {"x-user": {"prefix": prefix}}}], FIELD, grpc=False)
        [header] = match["headers"]
        assert header["type"] == "RegularExpression"
        assert bool(re.fullmatch(header["value"], value)) == value.startswith(prefix)

    def test_exact_regex_presence_and_query_parameters(self) -> None:
        [match] = translate([{"headers": {"a": {"exact": "1"}, "b": {"regex": "v[0-9]"},
                                          "c": {}},
                              "queryParams": {"q": {"exact": "yes"}}, "method": {"exact": "get"}}],
                            FIELD, grpc=False)
        assert match == {
            "headers": [{"name": "a", "type": "Exact", "value": "1"},
                        {"name": "b", "type": "RegularExpression", "value": "v[0-9]"},
                        {"name": "c", "type": "RegularExpression", "value": ".*"}],
            "queryParams": [{"name": "q", "type": "Exact", "value": "yes"}],
            "method": "GET"}

    @given(TEXT)
    def test_escape_matches_the_literal_only(self, text: str) -> None:
        assert re.fullmatch(escape(text), text)
        assert not re.fullmatch(escape(text), text + "x")


class TestPaths:
    """Exact and PathPrefix where they mean what Istio means, a regex otherwise."""

    @given(prefix=PATH, request_path=PATH)
    def test_a_prefix_selects_the_paths_istio_selects(self, prefix: str,
                                                      request_path: str) -> None:
        [match] = translate([{"uri": {"prefix": prefix}}], FIELD, grpc=False)
        gateway = gateway_path_matches(match["path"], request_path)
        istio = request_path.startswith(prefix)
        # PathPrefix "/a/" also matches "/a": the one difference, documented.
        assert gateway == istio or (match["path"]["type"] == "PathPrefix"
                                    and request_path == prefix.rstrip("/"))

    @given(exact=PATH, request_path=PATH)
    def test_an_exact_path(self, exact: str, request_path: str) -> None:
        [match] = translate([{"uri": {"exact": exact}}], FIELD, grpc=False)
        assert gateway_path_matches(match["path"], request_path) == (request_path == exact)

    def test_the_usual_shapes(self) -> None:
        assert translate([{"uri": {"prefix": "/api/"}}, {"uri": {"prefix": "/api"}},
                          {"uri": {"exact": "/a//b"}}, {"uri": {"regex": "/v[12]/.*"}}],
                         FIELD, grpc=False) == [
            {"path": {"type": "PathPrefix", "value": "/api/"}},
            {"path": {"type": "RegularExpression", "value": "/api.*"}},
            {"path": {"type": "RegularExpression", "value": "/a//b"}},
            {"path": {"type": "RegularExpression", "value": "/v[12]/.*"}}]


class TestGrpc:
    """A gRPC call's path is its service and method."""

    def test_service_and_method(self) -> None:
        assert translate([{"uri": {"exact": "/shop.Cart/Add"}},
                          {"uri": {"prefix": "/shop.Cart/"}, "method": {"exact": "POST"},
                           "headers": {"x-user": {"exact": "me"}}}], FIELD, grpc=True) == [
            {"method": {"type": "Exact", "service": "shop.Cart", "method": "Add"}},
            {"method": {"type": "Exact", "service": "shop.Cart"},
             "headers": [{"name": "x-user", "type": "Exact", "value": "me"}]}]

    def test_what_a_grpc_route_cannot_match(self) -> None:
        for match, field in (({"uri": {"regex": "/shop.*"}}, "uri"),
                             ({"uri": {"prefix": "/shop"}}, "uri"),
                             ({"method": {"exact": "GET"}}, "method"),
                             ({"queryParams": {"q": {"exact": "1"}}}, "queryParams")):
            with pytest.raises(UnsupportedRoute, match=re.escape(f"{FIELD}[0].{field}")):
                translate([match], FIELD, grpc=True)
