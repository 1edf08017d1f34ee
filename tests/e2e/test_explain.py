"""`kubectl explain` documents canary's resources from the descriptions in the models,
as the API server publishes them from the installed CRDs."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.models.canary import CanaryAnalysis, CanarySpec, CanaryStatus
from canary.models.templates import AlertProviderSpec, MetricTemplateSpec
from tests.e2e.waiting import wait_until


async def explain(environment: LocalEnvironment, path: str) -> tuple[int, str]:
    """kubectl's exit status and output, its text on one line per word run."""
    process = await asyncio.create_subprocess_exec(
        str(locate()["kubectl"]), "--kubeconfig", str(environment.kubeconfig), "explain",
        path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode or 0, " ".join((out or err).decode().split())


def described(text: str | None) -> str:
    """A description as kubectl prints it once its line wrapping is undone."""
    return " ".join((text or "").split())


@pytest.mark.parametrize(("path", "model", "own"), [
    ("canary.spec.analysis", CanaryAnalysis, CanarySpec.model_fields["analysis"].description),
    ("canary.spec", CanarySpec, CanarySpec.__doc__),
    ("canary.status", CanaryStatus, CanaryStatus.__doc__),
    ("metrictemplate.spec", MetricTemplateSpec, MetricTemplateSpec.__doc__),
    ("alertprovider.spec", AlertProviderSpec, AlertProviderSpec.__doc__),
], ids=["canary.spec.analysis", "canary.spec", "canary.status", "metrictemplate.spec",
        "alertprovider.spec"])
async def test_kubectl_explain_prints_every_field_with_its_description(
        environment: LocalEnvironment, path: str, model: type[BaseModel],
        own: str | None) -> None:
    # The API server publishes a new CRD's schema shortly after it is Established.
    _, output = await wait_until(lambda: explain(environment, path),
                                 lambda result: result[0] == 0 and "FIELDS:" in result[1],
                                 f"kubectl explain {path}", timeout=30)
    assert "<no description>" not in output, output
    assert own and described(own) in output, f"no description of {path} in: {output}"
    for name, field in model.model_fields.items():
        alias = field.alias or name
        assert field.description, f"{path}.{alias} has no description in the models"
        assert f"{alias} <" in output, f"{path}.{alias} missing from: {output}"
        assert described(field.description) in output, \
            f"{path}.{alias}: {field.description!r} missing from: {output}"
