"""Shared building blocks of canary's API types."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: A Go-style duration: "30s", "1m", "1m30s", "500ms".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

Duration = Annotated[str, Field(pattern=DURATION_PATTERN,
                                json_schema_extra={"example": "1m"})]


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``"1m30s"`` -> 90.0); ValueError when malformed."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration such as 30s, 1m or 1m30s")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest Go-style duration for whole seconds or milliseconds."""
    if seconds == int(seconds) and seconds % 60 == 0 and seconds > 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python. Unknown fields are ignored: the API
    server prunes them from stored objects anyway (structural schemas)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              validate_by_alias=True, validate_by_name=True)

    def to_api(self) -> dict[str, Any]:
        """The wire form: camelCase, without unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ApiObject(ApiModel):
    """What every canary.dev object carries besides its spec; each kind narrows ``kind``."""

    api_version: Literal["canary.dev/v1beta1"] = Field(
        "canary.dev/v1beta1", description="The schema of this object: canary.dev/v1beta1.")
    kind: str = Field(description="The kind of this object, e.g. Canary.")
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "The object's name, namespace, labels and annotations."))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))


#: A Kubernetes object name (a DNS subdomain), as the Gateway API spells its references:
#: a reference that could name no object is refused at apply, not looked up in vain.
ObjectName = Annotated[str, Field(min_length=1, max_length=253,
                                  pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
#: A namespace's name (a DNS label), for the same reason.
NamespaceName = Annotated[str, Field(min_length=1, max_length=63,
                                     pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]

#: An object passed through to the mesh as written (a DestinationRule trafficPolicy, ...).
FreeForm = Annotated[dict[str, Any], Field(json_schema_extra={
    "x-kubernetes-preserve-unknown-fields": True})]
