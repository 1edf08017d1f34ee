"""What simulated traffic looks like: how many users, what they send, and at what rate."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from canary.devenv.traffic.routing import Request

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


class Profile(BaseModel):
    """A kind of user: the headers and cookies every request of such a user carries."""

    model_config = ConfigDict(extra="forbid")
    weight: float = Field(1.0, gt=0, description="share of users with this profile (relative)")
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)


class PathChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field("/", pattern=r"^/")
    method: str = "GET"
    weight: float = Field(1.0, gt=0)


class TrafficMix(BaseModel):
    """The population behind a host's traffic. Each user keeps its profile and its cookies."""

    model_config = ConfigDict(extra="forbid")
    users: int = Field(1000, ge=1, le=1_000_000)
    profiles: list[Profile] = Field(
        default_factory=lambda: [Profile(headers={"user-agent": BROWSER})], min_length=1)
    paths: list[PathChoice] = Field(default_factory=lambda: [PathChoice()], min_length=1)


def with_host_header(mix: Mapping[str, Any] | None, hostname: str) -> dict[str, Any]:
    """A traffic mix (as JSON) whose every profile sends ``Host: hostname``: what a
    Gateway routes by, when the traffic is sent to the Gateway's address."""
    result = dict(mix or {})
    profiles = [dict(p) for p in result.get("profiles") or [Profile().model_dump()]]
    for profile in profiles:
        headers = {k: v for k, v in (profile.get("headers") or {}).items()
                   if k.lower() != "host"}
        profile["headers"] = {**headers, "host": hostname}
    result["profiles"] = profiles
    return result


class HostTraffic(BaseModel):
    """The traffic sent to one host: ``rps`` requests per second with a ``mix``."""

    model_config = ConfigDict(extra="forbid")
    rps: float = Field(ge=0, le=100_000)
    mix: TrafficMix = Field(default_factory=TrafficMix)


@dataclass
class User:
    profile: Profile
    #: Cookies the user received: name -> (value, expiry in simulator seconds or None).
    jar: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    #: The workload that answered this user last.
    last_workload: str | None = None

    def cookie_header(self, now: float) -> str | None:
        cookies = dict(self.profile.cookies)
        for name, (value, expires) in list(self.jar.items()):
            if expires is not None and expires <= now:
                del self.jar[name]
            else:
                cookies[name] = value
        return "; ".join(f"{k}={v}" for k, v in cookies.items()) or None

    def receive(self, set_cookie: str, now: float) -> None:
        """Store a ``Set-Cookie`` value, honouring ``Max-Age``."""
        first, *attributes = [part.strip() for part in set_cookie.split(";")]
        name, sep, value = first.partition("=")
        if not sep or not name:
            return
        expires: float | None = None
        for attribute in attributes:
            key, _, raw = attribute.partition("=")
            if key.strip().lower() == "max-age":
                with contextlib.suppress(ValueError):
                    expires = now + float(raw)
        self.jar[name.strip()] = (value.strip(), expires)


class Population:
    """The users of one host, created with a seeded generator so runs repeat."""

    def __init__(self, host: str, mix: TrafficMix, rng: random.Random) -> None:
        self.host, self.mix = host, mix
        weights = [p.weight for p in mix.profiles]
        self.users = [User(profile) for profile in
                      rng.choices(mix.profiles, weights=weights, k=mix.users)]
        self._path_weights = [p.weight for p in mix.paths]

    def next_request(self, rng: random.Random, now: float) -> tuple[User, Request]:
        user = self.users[rng.randrange(len(self.users))]
        path = rng.choices(self.mix.paths, weights=self._path_weights)[0]
        headers = {k.lower(): v for k, v in user.profile.headers.items()}
        cookie = user.cookie_header(now)
        if cookie:
            headers["cookie"] = cookie
        return user, Request(self.host, path.path, path.method.upper(), headers)
