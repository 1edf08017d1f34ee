"""The helper Go modules: which replace lines of a dependency's go.mod are carried over."""

from __future__ import annotations

from canary.devenv import gomod, versions


def test_module_version_replacements_are_copied_and_local_directories_are_not() -> None:
    served: dict[str, object] = {
        "Module": {"Path": "github.com/fluxcd/kustomize-controller"}, "Replace": [
        {"Old": {"Path": "github.com/fluxcd/kustomize-controller/api"},
         "New": {"Path": "./api"}},
        {"Old": {"Path": "sigs.k8s.io/kustomize/api"},
         "New": {"Path": "sigs.k8s.io/kustomize/api", "Version": "v0.21.1"}},
        {"Old": {"Path": "gopkg.in/yaml.v3", "Version": "v3.0.0"},
         "New": {"Path": "gopkg.in/yaml.v3", "Version": "v3.0.1"}},
        ]}
    assert gomod.replace_edits(served) == [
        "sigs.k8s.io/kustomize/api=sigs.k8s.io/kustomize/api@v0.21.1",
        "gopkg.in/yaml.v3@v3.0.0=gopkg.in/yaml.v3@v3.0.1",
    ]
    assert gomod.replace_edits({"Module": {"Path": "x"}}) == []


def test_each_flux_controller_is_built_with_its_api_module_at_the_same_version() -> None:
    for module in gomod.FLUX:
        (controller, version), (api, api_version) = module.requires
        assert api == f"{controller}/api" and version == api_version == versions.FLUX
        assert module.copy_replaces_of == controller
        assert list(module.tools.values()) == [controller.rsplit("/", 1)[1]]


def test_the_pinned_flux_modules_carry_the_served_replace_lines() -> None:
    """What `canary devenv pin` wrote: the replace lines of each controller's go.mod that
    name versions, and the substitutes for versions the proxy does not serve."""
    kustomize = (gomod.FLUX_KUSTOMIZE.source / "go.mod").read_text()
    assert "sigs.k8s.io/kustomize/api => sigs.k8s.io/kustomize/api v0.21.1" in kustomize
    for module in gomod.FLUX:
        text = (module.source / "go.mod").read_text()
        assert "=> ./api" not in text
        assert f"\ntool {module.requires[0][0]}\n" in text
        for path, named, built in versions.FLUX_SUBSTITUTES:
            assert f"replace {path} {named} => {path} {built}" in text
