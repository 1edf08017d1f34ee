"""The CRDs in crds/ are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

from canary.models import crds

CRD_DIR = Path(__file__).parents[3] / "crds"


def test_committed_crds_match_the_models() -> None:
    for name, manifest in crds.definitions().items():
        committed = (CRD_DIR / name).read_text()
        assert committed == crds.render(manifest), (
            f"crds/{name} is out of date: run `canary crds` and commit the result")


def test_no_other_crd_files_are_committed() -> None:
    assert {p.name for p in CRD_DIR.glob("*.yaml")} == set(crds.definitions())
