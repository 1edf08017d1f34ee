"""kubernetes-asyncio's transport, imported without its generated API classes and models.

canary talks to the API server through kubernetes-asyncio's ``ApiClient.call_api`` (its
credentials, their refresh, its TLS and connection pool) and its kubeconfig and
in-cluster loaders, and decodes the JSON itself. The package's ``__init__`` modules
import every generated API class and model as well: some 1,100 modules that no code of
canary's runs, about 34 MiB of the process' resident memory and 0.3 s of its start-up.

:func:`load` registers ``kubernetes_asyncio``, ``kubernetes_asyncio.client`` and
``kubernetes_asyncio.client.models`` as packages over their directories without running
their ``__init__``, then imports the modules canary uses and gives the client package the
two names the loaders import from it (``ApiClient``, ``Configuration``). Any module of
the package still imports by its full name. Once the package has been imported whole
(by other code of the process, before), that one is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # names for the reader; loaded at run time by :func:`load`
    from kubernetes_asyncio.client import ApiClient, Configuration

PACKAGE = "kubernetes_asyncio"
#: The packages registered without their ``__init__``, and their directories under the
#: package's own.
_BARE = ((PACKAGE, ()), (f"{PACKAGE}.client", ("client",)),
         (f"{PACKAGE}.client.models", ("client", "models")))


@dataclass(frozen=True)
class Transport:
    """What canary uses of kubernetes-asyncio."""

    #: The API server, credentials, TLS.
    Configuration: type[Configuration]
    #: ``call_api`` over a connection pool.
    ApiClient: type[ApiClient]
    #: ``kubernetes_asyncio.config``: ``load_kube_config``, ``load_incluster_config``,
    #: ``ConfigException``.
    config: Any


def load() -> Transport:
    """The transport, importing the package bare unless it was imported before."""
    if PACKAGE not in sys.modules:
        _register_bare()
    configuration = importlib.import_module(f"{PACKAGE}.client.configuration")
    api_client = importlib.import_module(f"{PACKAGE}.client.api_client")
    client = sys.modules[f"{PACKAGE}.client"]
    for name, value in (("Configuration", configuration.Configuration),
                        ("ApiClient", api_client.ApiClient)):
        if not hasattr(client, name):
            setattr(client, name, value)
    return Transport(configuration.Configuration, api_client.ApiClient,
                     importlib.import_module(f"{PACKAGE}.config"))


def _register_bare() -> None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(f"{PACKAGE} is not installed")
    root = Path(spec.origin).parent
    for name, parts in _BARE:
        module = ModuleType(name)
        module.__path__ = [str(root.joinpath(*parts))]
        module.__package__ = name
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def bare() -> bool:
    """Whether the package was imported bare (none of its generated models loaded)."""
    module = sys.modules.get(f"{PACKAGE}.client.models")
    return module is not None and not hasattr(module, "V1Pod")
