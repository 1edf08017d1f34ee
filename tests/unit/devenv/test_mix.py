"""Simulated users keep their profile and their cookies, so sticky sessions can be tested."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from canary.devenv.traffic.mix import HostTraffic, Population, Profile, TrafficMix, User


def test_profiles_are_shared_out_by_weight() -> None:
    mix = TrafficMix(users=4000, profiles=[
        Profile(weight=9, headers={"user-agent": "chrome"}),
        Profile(weight=1, headers={"user-agent": "firefox"}, cookies={"canary": "always"})])
    population = Population("h", mix, random.Random(1))
    insiders = sum(1 for u in population.users if u.profile.cookies)
    assert insiders / 4000 == pytest.approx(0.1, abs=0.02)


def test_a_user_sends_its_profile_cookies_and_the_cookies_it_received() -> None:
    user = User(Profile(cookies={"canary": "always"}))
    user.receive("affinity=abc; Max-Age=60; Path=/", now=0)
    assert user.cookie_header(now=10) == "canary=always; affinity=abc"
    assert user.cookie_header(now=61) == "canary=always"


def test_requests_carry_lower_case_headers() -> None:
    mix = TrafficMix(users=1, profiles=[Profile(headers={"User-Agent": "x"})])
    _, request = Population("h", mix, random.Random(1)).next_request(random.Random(1), 0)
    assert request.headers == {"user-agent": "x"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        HostTraffic.model_validate({"rps": -1})
    with pytest.raises(ValidationError):
        HostTraffic.model_validate({"rps": 1, "mix": {"users": 0}})
    with pytest.raises(ValidationError):
        HostTraffic.model_validate({"rps": 1, "bogus": True})
