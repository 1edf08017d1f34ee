"""kubernetes-asyncio is imported without its generated API classes and models, and
still works as canary uses it; a process that imported the whole package keeps it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    """``code`` in a fresh interpreter (imports are once per process); its output."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_client_loads_no_generated_module() -> None:
    out = run("""
        import sys
        from canary.kube import KubeClient, transport
        generated = [m for m in sys.modules if m.startswith(("kubernetes_asyncio.client.models.",
                                                             "kubernetes_asyncio.client.api."))]
        print(transport.bare(), len(generated))
    """)
    assert out == "True 0"


def test_a_bare_import_builds_a_configured_client() -> None:
    out = run("""
        import asyncio
        import certifi
        from canary.kube import KubeClient
        async def main():
            client = KubeClient.with_token("https://127.0.0.1:6443", "t0ken", certifi.where())
            api = client._api
            print(api.configuration.host, api.configuration.api_key["BearerToken"])
            await client.close()
        asyncio.run(main())
    """)
    assert out == "https://127.0.0.1:6443 t0ken"


def test_a_generated_module_still_imports_by_its_full_name() -> None:
    out = run("""
        from canary.kube import transport
        from kubernetes_asyncio.client.models.v1_config_map import V1ConfigMap
        print(V1ConfigMap(data={"k": "v"}).data)
    """)
    assert out == "{'k': 'v'}"


def test_a_package_imported_whole_before_is_used_as_it_is() -> None:
    out = run("""
        import kubernetes_asyncio.client as whole
        from canary.kube import transport
        loaded = transport.load()
        print(loaded.Configuration is whole.Configuration, transport.bare(),
              hasattr(whole, "V1Pod"))
    """)
    assert out == "True False True"
