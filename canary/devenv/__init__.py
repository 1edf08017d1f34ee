"""The local environment: a real control plane, Prometheus and a traffic simulator.

Used by the end-to-end tests and the demo. ``canary devenv install`` builds the pieces,
``canary devenv up`` starts them; :class:`LocalEnvironment` is the Python API.
"""

from canary.devenv.environment import EnvironmentSettings, LocalEnvironment
from canary.devenv.errors import ComponentFailed, DevenvError, InstallFailed, NotInstalled

__all__ = [
    "ComponentFailed", "DevenvError", "EnvironmentSettings", "InstallFailed", "LocalEnvironment",
    "NotInstalled",
]
