"""`canary demo`, the README's first command, tells the whole story and ends with one
promoted and one rolled-back release."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_promotes_one_release_and_rolls_back_the_other(tmp_path: Path) -> None:
    # Its own environment, recorded under a state directory of its own.
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    result = subprocess.run([sys.executable, "-m", "canary", "demo", "--down", "--rps", "50"],
                            capture_output=True, text=True, env=env, timeout=600, check=False)
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr[-3000:]}"
    steps = [line for line in out.splitlines() if line.split("]", 1)[-1].strip()[:2]
             in ("1.", "2.", "3.", "4.", "5.")]
    assert len(steps) == 5, out
    assert "✔ promoted in" in out
    rolled_back = next(line for line in out.splitlines() if "✘ rolled back in" in line)
    assert "request-success-rate" in rolled_back and "must be >= 99" in rolled_back
    assert "✘ request-success-rate" in out  # the failing check was shown as it happened
    assert out.index("✔ promoted in") < out.index("✘ rolled back in")
    assert "one release promoted, one rolled back" in out


def test_the_gitops_demo_releases_through_commits_that_flux_applies(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    result = subprocess.run([sys.executable, "-m", "canary", "demo", "--gitops", "--down",
                             "--rps", "50"],
                            capture_output=True, text=True, env=env, timeout=900, check=False)
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr[-3000:]}"
    commits = [line for line in out.splitlines() if "commit " in line and " pushed to " in line]
    assert len(commits) == 3, out  # the first version, the healthy one, the faulty one
    flux = [line.strip() for line in out.splitlines() if "Flux: Kustomization demo" in line]
    assert [line.split("Ready=")[1][:5] for line in flux] == ["True ", "True ", "False"], out
    assert "Canary/demo/podinfo" in flux[-1], flux[-1]
    assert out.index("✔ promoted in") < out.index("✘ rolled back in") < out.index(flux[-1])
    assert "one release promoted, one rolled back" in out
