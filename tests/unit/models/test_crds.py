"""The CRDs in crds/ and in the chart's crds/ are exactly what the models generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.models import crds

ROOT = Path(__file__).parents[3]
CRD_DIRS = [ROOT / "crds", ROOT / "charts" / "canary" / "crds"]


@pytest.mark.parametrize("directory", CRD_DIRS, ids=["crds", "chart"])
def test_committed_crds_match_the_models(directory: Path) -> None:
    for name, manifest in crds.definitions().items():
        committed = (directory / name).read_text()
        assert committed == crds.render(manifest), (
            f"{directory.relative_to(ROOT)}/{name} is out of date: run `canary crds` and "
            "commit the result")


@pytest.mark.parametrize("directory", CRD_DIRS, ids=["crds", "chart"])
def test_no_other_crd_files_are_committed(directory: Path) -> None:
    assert {p.name for p in directory.glob("*.yaml")} == set(crds.definitions())
