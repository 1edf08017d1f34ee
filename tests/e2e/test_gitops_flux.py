"""GitOps with Flux (docs/gitops.md): the application, its autoscaler, a MetricTemplate and
its Canary live in a Git repository; Flux's source-controller and kustomize-controller apply
them (``prune: true``, ``wait: true``) and see each rollout through the Canary's status.

The GitRepository and the Kustomization live in the test's namespace; the application lives
in a namespace that the repository itself declares, which Flux prunes with the rest when the
test's namespace (and so the Kustomization) is deleted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.flux import GIT_REPOSITORIES, KUSTOMIZATIONS, flux_objects
from canary.devenv.gitserver import Repository
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import APP, events, occurrences, phase, target_revision
from tests.e2e.waiting import prometheus_value, wait_until
from tests.unit.core.test_argocd_health import health as argocd_health

pytestmark = pytest.mark.usefixtures("running_controller", "flux")

IMAGE = "ghcr.io/stefanprodan/podinfo"
#: Argo CD's health of a Canary in each phase, per docs/gitops.md.
ARGO_CD_HEALTH = {
    "Initializing": "Progressing", "Waiting": "Progressing", "Queued": "Progressing",
    "Progressing": "Progressing", "Promoting": "Progressing", "Finalising": "Progressing",
    "Initialized": "Healthy", "Succeeded": "Healthy", "Failed": "Degraded"}
FAULTY = {"devenv.canary.dev/error-rate": "0.3"}
#: How often Flux looks at the repository and re-applies it.
FLUX_INTERVAL = "2s"
#: The percentage of the target's responses whose code matches ``codes``, as 100 minus the
#: rest: a query on the matching responses alone has no series (no value) when none failed.
ERROR_PERCENT = (
    '100 - 100 * sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",'
    'response_code!~"{{ variables.codes }}"}[{{ interval }}])) / '
    'sum(rate(istio_requests_total{reporter="destination",'
    'destination_workload_namespace="{{ namespace }}",'
    'destination_workload="{{ target }}"}[{{ interval }}]))')
ANALYSIS: dict[str, Any] = {
    "interval": "3s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
    "metrics": [{"name": "error-percent", "templateRef": {"name": "error-percent"},
                 "templateVariables": {"codes": "5.."}, "interval": "10s",
                 "thresholdRange": {"max": 5}}],
}


class GitOpsApp:
    """The repository of one test's application, and what Flux made of it."""

    def __init__(self, kube: KubeClient, env: LocalEnvironment, repository: Repository,
                 namespace: str) -> None:
        self.kube, self.env, self.repository = kube, env, repository
        #: Where the GitRepository and the Kustomization are.
        self.flux_namespace = namespace
        #: Where the application is: declared in the repository.
        self.namespace = f"{namespace}-app"
        #: Every state of the Canary read so far, oldest first.
        self.seen: list[dict[str, Any]] = []

    def files(self, tag: str, annotations: dict[str, str] | None = None,
              analysis: dict[str, Any] | None = None) -> dict[str, str]:
        """The repository's manifests with image ``tag`` and pod ``annotations``."""
        ns = self.namespace
        deployment = manifests.deployment(APP, ns, annotations=annotations)
        # The autoscaler owns the replica count (and canary scales the target to zero):
        # a count in Git would have Flux put it back at every reconciliation.
        del deployment["spec"]["replicas"]
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = f"{IMAGE}:{tag}"
        canary = manifests.canary(
            APP, ns, analysis=analysis or ANALYSIS, progressDeadlineSeconds=60,
            revertOnDeletion=True,
            autoscalerRef={"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                           "name": APP})
        return {
            "app/namespace.yaml": _dump({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": ns}}),
            "app/deployment.yaml": _dump(deployment),
            "app/autoscaler.yaml": _dump(manifests.autoscaler(APP, ns)),
            "app/metric-template.yaml": _dump({
                "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
                "metadata": {"name": "error-percent", "namespace": ns},
                "spec": {"provider": {"type": "prometheus",
                                      "address": self.env.prometheus_url},
                         "query": ERROR_PERCENT}}),
            "app/canary.yaml": _dump(canary),
        }

    async def start(self, **files: Any) -> str:
        """Commit the first version, have Flux apply it and drive traffic at it; returns
        once the Canary is Initialized and the Kustomization Ready at that commit."""
        sha = self.repository.commit(self.files("6.7.0", **files), "Add podinfo under a Canary")
        for resource, document in flux_objects("apps", self.flux_namespace,
                                               self.repository.url, "./app", FLUX_INTERVAL):
            await self.kube.apply(document, field_manager="e2e", resource=resource)
        await self.env.set_traffic(f"{APP}.{self.namespace}", rps=100)
        try:
            await wait_until(self.canary, lambda c: phase(c) == "Initialized",
                             "the Canary applied by Flux to be Initialized", timeout=90)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{await self.flux_view()}") from exc
        await self.ready_at(sha)
        return sha

    async def flux_view(self) -> str:
        """What Flux says of the repository and the Kustomization, and the end of its
        controllers' logs: why nothing was applied, when nothing was."""
        said = []
        for resource in (GIT_REPOSITORIES, KUSTOMIZATIONS):
            try:
                obj = await self.kube.get(resource, "apps", self.flux_namespace)
                said.append(f"{obj['kind']}: {(obj.get('status') or {}).get('conditions')}")
            except Exception as exc:  # said in the failure, whatever it is
                said.append(f"{resource}: {exc!r}")
        for name in ("source-controller", "kustomize-controller", "git-server"):
            log = self.env.logs_dir / f"{name}.log"
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            said.append(f"{name}.log, last lines:\n" + "\n".join(tail))
        return "\n".join(said)

    async def canary(self) -> dict[str, Any]:
        """The Canary as it is now; each one read is kept in ``seen``."""
        obj = await self.kube.get(r.CANARIES, APP, self.namespace)
        self.seen.append(obj)
        return obj

    async def kustomization(self) -> dict[str, Any]:
        return await self.kube.get(KUSTOMIZATIONS, "apps", self.flux_namespace)

    async def ready_at(self, sha: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the Kustomization is Ready with commit ``sha`` applied."""
        return await wait_until(
            self.kustomization,
            lambda k: ready(k)[0] == "True" and applied(k).endswith(sha),
            f"the Kustomization to be Ready at {sha[:8]}", timeout=timeout)

    async def image(self, name: str) -> str:
        deployment = await self.kube.get(r.DEPLOYMENTS, name, self.namespace)
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def ready(obj: dict[str, Any]) -> tuple[str | None, str]:
    """The Ready condition's status and message."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status"), str(condition.get("message") or "")
    return None, ""


def applied(kustomization: dict[str, Any]) -> str:
    """The source revision the Kustomization last applied (``main@sha1:<sha>``)."""
    return str((kustomization.get("status") or {}).get("lastAppliedRevision") or "")


@pytest_asyncio.fixture(loop_scope="session")
async def app(kube: KubeClient, environment: LocalEnvironment,
              git_repository: Callable[[str], Repository],
              namespace: str) -> AsyncIterator[GitOpsApp]:
    """The test's application, with its traffic stopped afterwards (its namespace is
    pruned by Flux when the test's namespace goes)."""
    application = GitOpsApp(kube, environment, git_repository(namespace), namespace)
    try:
        yield application
    finally:
        with contextlib.suppress(Exception):
            await environment.stop_traffic(application.namespace)


async def test_flux_rolls_out_a_new_image_and_a_faulty_commit_is_rolled_back(
        app: GitOpsApp) -> None:
    await app.start()
    watching = asyncio.create_task(_every_state(app))
    assert await app.image(f"{APP}-primary") == f"{IMAGE}:6.7.0"

    change = app.repository.commit(app.files("6.7.1"), "podinfo 6.7.1")
    await wait_until(app.kustomization, lambda k: applied(k).endswith(change),
                     "Flux to apply podinfo 6.7.1")
    revision = await target_revision(app.kube, app.namespace)
    await wait_until(app.canary, lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "podinfo 6.7.1 to be promoted", timeout=120)
    assert await app.image(f"{APP}-primary") == f"{IMAGE}:6.7.1"
    await app.ready_at(change)

    faulty = app.repository.commit(app.files("6.7.2", FAULTY), "podinfo 6.7.2")
    failed = await wait_until(app.canary, lambda c: phase(c) == "Failed",
                              "podinfo 6.7.2 to be rolled back", timeout=120)
    assert failed["status"]["lastPromotedSpec"] == revision
    assert await app.image(f"{APP}-primary") == f"{IMAGE}:6.7.1"
    # Git still holds the faulty version, and so does the target Deployment...
    assert await app.image(APP) == f"{IMAGE}:6.7.2"
    source = await app.kube.get(GIT_REPOSITORIES, "apps", app.flux_namespace)
    assert source["status"]["artifact"]["revision"].endswith(faulty)
    # ...and Flux says which object of the commit failed.
    reported = await wait_until(app.kustomization, lambda k: ready(k)[0] == "False",
                                "the Kustomization to report the failed rollout")
    # A commit whose health check failed is attempted, not applied (in Flux's words).
    assert reported["status"]["lastAttemptedRevision"].endswith(faulty)
    assert applied(reported).endswith(change)
    assert f"Canary/{app.namespace}/{APP}" in ready(reported)[1], ready(reported)
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    _argo_cd_agrees(app.seen, {"Initialized", "Progressing", "Promoting", "Finalising",
                               "Succeeded", "Failed"})


async def _every_state(app: GitOpsApp) -> None:
    """Keep every state of the Canary its watch delivers (each status write, however
    brief: Promoting and Finalising last a moment) in ``app.seen``."""
    version = (await app.kube.list(r.CANARIES, app.namespace))["metadata"]["resourceVersion"]
    while True:
        async for event in app.kube.watch(r.CANARIES, app.namespace, version,
                                          timeout_seconds=300):
            obj = event.get("object") or {}
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if event.get("type") in ("ADDED", "MODIFIED") and obj.get("kind") == "Canary":
                app.seen.append(obj)


def _argo_cd_agrees(seen: list[dict[str, Any]], phases: set[str]) -> None:
    """docs/argocd-health.lua, run as Argo CD runs it, on every state of the Canary read
    or watched during the rollouts: each phase has its health, and ``phases`` were all
    among them."""
    verdicts: collections.Counter[tuple[str, str]] = collections.Counter()
    for obj in seen:
        status = obj.get("status") or {}
        expected = ("Progressing" if status.get("observedGeneration") !=
                    obj["metadata"]["generation"] else ARGO_CD_HEALTH[status["phase"]])
        verdict, message = argocd_health(obj)
        assert verdict == expected, (status, verdict, message)
        verdicts[(str(status.get("phase")), verdict)] += 1
    print(f"\nArgo CD's health of {len(seen)} Canary states read: {dict(verdicts)}")
    assert phases <= {phase for phase, _ in verdicts}, verdicts


async def test_a_revert_pushed_mid_analysis_restarts_it_on_the_reverted_template(
        app: GitOpsApp) -> None:
    slow = {**ANALYSIS, "stepWeight": 10, "maxWeight": 50}
    await app.start(analysis=slow)
    first = await target_revision(app.kube, app.namespace)
    change = app.repository.commit(app.files("6.7.1", analysis=slow), "podinfo 6.7.1")
    await wait_until(app.canary, lambda c: phase(c) == "Progressing"
                     and (c["status"].get("canaryWeight") or 0) >= 10,
                     "the analysis of podinfo 6.7.1 to be under way", timeout=60)
    revert = app.repository.revert(change)
    restarted = await wait_until(app.canary,
                                 lambda c: c["status"].get("lastAppliedSpec") == first,
                                 "the analysis to restart on the reverted template")
    assert phase(restarted) == "Progressing"
    await wait_until(app.canary, lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == first,
                     "the reverted template to be promoted", timeout=120)
    assert await app.image(f"{APP}-primary") == f"{IMAGE}:6.7.0"
    notes = [e["note"] for e in await events(app.kube, app.namespace)]
    assert any("restarting the analysis" in note for note in notes), notes
    await app.ready_at(revert)


async def test_a_canary_removed_from_git_leaves_traffic_on_the_target(
        app: GitOpsApp) -> None:
    await app.start()
    removal = app.repository.commit({"app/canary.yaml": None}, "Stop canary releases")
    await app.ready_at(removal)
    await wait_until(lambda: app.kube.list(r.CANARIES, app.namespace),
                     lambda found: not found["items"], "Flux to prune the Canary")
    apex = await app.kube.get(r.SERVICES, APP, app.namespace)
    assert apex["spec"]["selector"] == {"app": APP}
    await wait_until(lambda: app.kube.list(r.DEPLOYMENTS, app.namespace),
                     lambda found: [d["metadata"]["name"] for d in found["items"]] == [APP],
                     "the primary to be garbage-collected")
    target = await app.kube.get(r.DEPLOYMENTS, APP, app.namespace)
    assert target["spec"]["replicas"] >= 2
    query = (f'sum(istio_requests_total{{reporter="destination",'
             f'destination_workload_namespace="{app.namespace}",destination_workload="{APP}",'
             f'response_code="200"}})')
    before = await prometheus_value(app.env.prometheus_url, query) or 0.0
    await wait_until(lambda: prometheus_value(app.env.prometheus_url, query),
                     lambda v: v is not None and v > before + 200,
                     "successful requests to the target after the removal")


async def test_objects_canary_owns_edited_by_hand_are_put_back_while_flux_reconciles(
        app: GitOpsApp) -> None:
    """Someone shifts traffic in the VirtualService, points the primary's Service
    elsewhere and changes the primary's image while Flux keeps applying the rest: canary
    puts each back within seconds, says so once, and Flux, which owns none of them, stays
    Ready at its commit."""
    sha = await app.start()
    kube, namespace = app.kube, app.namespace
    vs = await kube.get(r.VIRTUAL_SERVICES, APP, namespace)
    http = vs["spec"]["http"]
    http[-1]["route"][0]["weight"], http[-1]["route"][1]["weight"] = 50, 50
    weights = await _repaired(
        kube.merge_patch(r.VIRTUAL_SERVICES, APP, {"spec": {"http": http}}, namespace),
        lambda: kube.get(r.VIRTUAL_SERVICES, APP, namespace),
        lambda v: v["spec"]["http"][-1]["route"][1]["weight"] == 0, "the weights")
    selector = await _repaired(
        kube.merge_patch(r.SERVICES, f"{APP}-primary",
                         {"spec": {"selector": {"app": "someone-else"}}}, namespace),
        lambda: kube.get(r.SERVICES, f"{APP}-primary", namespace),
        lambda svc: svc["spec"]["selector"].get("app") == f"{APP}-primary",
        "the primary Service's selector")
    image = await _repaired(
        kube.json_patch(r.DEPLOYMENTS, f"{APP}-primary", [
            {"op": "replace", "path": "/spec/template/spec/containers/0/image",
             "value": f"{IMAGE}:hand-edited"}], namespace),
        lambda: app.image(f"{APP}-primary"), lambda found: found == f"{IMAGE}:6.7.0",
        "the primary's image")
    print(f"\nput back while Flux reconciles every {FLUX_INTERVAL}: VirtualService weights "
          f"in {weights:.2f}s, the primary Service's selector in {selector:.2f}s, the "
          f"primary Deployment's image in {image:.2f}s")
    assert weights < 10 and selector < 10 and image < 10
    restored = await wait_until(lambda: events(kube, namespace, "Restored"),
                                lambda found: len(found) == 3, "the three repairs to be said")
    assert [occurrences([e]) for e in restored] == [1, 1, 1]
    assert restored[0]["note"].startswith(f"VirtualService {APP} was changed outside canary")
    assert restored[1]["note"].startswith(f"Service {APP}-primary was changed outside canary")
    assert restored[2]["note"].startswith(f"Deployment {APP}-primary"), restored[2]["note"]
    await asyncio.sleep(10)  # a few more reconciles of Flux's, and canary's answers
    assert len(await events(kube, namespace, "Restored")) == 3
    assert phase(await app.canary()) == "Initialized"
    await app.ready_at(sha)


async def _repaired(edit: Awaitable[Any], fetch: Callable[[], Awaitable[Any]],
                    back: Callable[[Any], bool], what: str) -> float:
    """Seconds from ``edit`` until ``fetch`` shows it undone."""
    loop = asyncio.get_running_loop()
    await edit
    edited = loop.time()
    await wait_until(fetch, back, f"{what} to be put back", timeout=30, interval=0.1)
    return loop.time() - edited
