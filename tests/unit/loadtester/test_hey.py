"""Hooks written for Flagger's load tester (``hey`` command lines) are understood, and
anything else is refused with the flag named."""

from __future__ import annotations

import pytest

from canary.errors import ConfigError
from canary.loadtester import LoadSpec, parse_hey


def test_a_typical_flagger_rollout_hook_command() -> None:
    spec = parse_hey("hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/")
    assert spec == LoadSpec(url="http://podinfo-canary.test:9898/", concurrency=2,
                            rate_per_worker=10.0, duration=60.0)
    assert spec.total_rate == 20.0


def test_headers_method_body_and_timeout() -> None:
    spec = parse_hey("hey -n 50 -c 5 -m post -H 'X-Canary: always' -H 'Cookie: a=b' "
                     "-T application/json -d '{\"x\": 1}' -t 3 -host app.example "
                     "http://svc/api")
    assert spec.method == "POST" and spec.requests == 50 and spec.timeout == 3.0
    assert spec.headers == (("X-Canary", "always"), ("Cookie", "a=b"),
                            ("Content-Type", "application/json"), ("Host", "app.example"))
    assert spec.body == '{"x": 1}'


def test_flags_with_equals_signs_and_a_path_to_hey() -> None:
    spec = parse_hey("/usr/local/bin/hey -z=30s -c=1 -disable-keepalive http://svc/")
    assert spec.duration == 30.0 and spec.concurrency == 1


@pytest.mark.parametrize(("command", "named"), [
    ("curl http://svc/", "only `hey` commands"),
    ("bash -c 'hey http://svc/'", "only `hey` commands"),
    ("hey -z 1m", "no URL"),
    ("hey -z 1m svc:9898", "must start with http"),
    ("hey -q fast http://svc/", "-q: 'fast' is not a number"),
    ("hey -c 0 -z 1s http://svc/", "-c must be positive"),
    ("hey -z soon http://svc/", "-z:"),
    ("hey -n 5 -c 10 http://svc/", "-n (5) cannot be less than -c (10)"),
    ("hey -H nocolon http://svc/", "-H"),
    ("hey -D body.txt http://svc/", "-D is not supported"),
    ("hey -o csv http://svc/", "-o is not supported"),
    ("hey -bogus http://svc/", "-bogus is not supported"),
    ("hey -z", "-z needs a value"),
    ("hey http://a/ http://b/", "unexpected argument"),
    ("hey 'unterminated http://svc/", "cannot read the command"),
])
def test_bad_commands_are_refused_with_the_reason(command: str, named: str) -> None:
    with pytest.raises(ConfigError, match=None) as error:
        parse_hey(command)
    assert named in str(error.value)
