"""``canary devenv ...``: install, start, inspect and stop the local environment."""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from canary.devenv import gomod
from canary.devenv.environment import (
    ComponentStatus,
    EnvironmentSettings,
    LocalEnvironment,
    state_home,
)
from canary.devenv.errors import DevenvError
from canary.devenv.install import install, locate
from canary.devenv.traffic.mix import with_host_header


def add_parser(subparsers: Any) -> None:
    devenv = subparsers.add_parser("devenv", help="the local Kubernetes environment",
                                   description=__doc__)
    commands = devenv.add_subparsers(dest="devenv_command", required=True)

    commands.add_parser("install", help="build and fetch every piece (cached; idempotent)")
    commands.add_parser("pin", help="regenerate the helper Go modules from the pinned versions")

    up = commands.add_parser("up", help="start an environment in the background")
    up.add_argument("--print-env", action="store_true",
                    help="print only `export` lines, for eval")
    up.add_argument("--scrape-interval", type=float, default=1.0, metavar="SECONDS")
    up.add_argument("--seed", type=int, default=1, help="the traffic simulator's seed")
    up.add_argument("--crds", type=Path, action="append", default=[],
                    help="extra CRD manifest to apply (repeatable)")
    up.add_argument("--controller", action="store_true",
                    help="also run the canary controller (logs in the run directory)")
    up.add_argument("--flux", action="store_true",
                    help="also run Flux's source-controller and kustomize-controller")

    commands.add_parser("status", help="show the current environment's components")
    commands.add_parser("env", help="print `export` lines for the current environment "
                                    "(KUBECONFIG, PROMETHEUS_URL, PATH with its kubectl)")
    down = commands.add_parser("down", help="stop the current environment")
    down.add_argument("--keep", action="store_true", help="keep its run directory and logs")

    traffic = commands.add_parser("traffic", help="set the request rate for a host")
    traffic.add_argument("host", nargs="?", help="service host, e.g. podinfo.test, or a "
                                                 "Gateway's address, e.g. public.shop.gateway")
    traffic.add_argument("--rps", type=float, help="requests per second (0 stops)")
    traffic.add_argument("--mix", type=Path, help="JSON file with users, profiles and paths")
    traffic.add_argument("--host-header", metavar="HOSTNAME",
                         help="send every request with this Host header (what a Gateway "
                              "routes by)")


def _current_file() -> Path:
    return state_home() / "current"


def remember(env: LocalEnvironment) -> None:
    """Make ``env`` the current environment (the one `canary devenv env/down` act on)."""
    _current_file().parent.mkdir(parents=True, exist_ok=True)
    _current_file().write_text(str(env.run_dir))


def current() -> LocalEnvironment:
    try:
        run_dir = Path(_current_file().read_text().strip())
    except OSError:
        raise DevenvError("no environment is running: start one with `canary devenv up`") from None
    return LocalEnvironment.attach(run_dir)


def run(args: argparse.Namespace) -> int:
    command = args.devenv_command
    if command == "install":
        install(sys.stderr)
        return 0
    if command == "pin":
        for module in gomod.ALL:
            started = time.monotonic()
            gomod.pin(module)
            print(f"pinned {module.name} {module.version} "
                  f"({time.monotonic() - started:.1f}s)", file=sys.stderr)
        return 0
    if command == "up":
        return _up(args)
    if command == "status":
        return _status()
    if command == "env":
        _print_exports(current(), locate()["kubectl"])
        return 0
    if command == "down":
        env = current()
        env.stop(remove=not args.keep)
        _current_file().unlink(missing_ok=True)
        print(f"stopped the environment in {env.run_dir}"
              + (" (kept)" if args.keep else ""), file=sys.stderr)
        return 0
    if command == "traffic":
        return asyncio.run(_traffic(args))
    raise AssertionError(command)


def refuse_if_running(why: str = "") -> None:
    """Raise DevenvError when the current environment is still running: one at a time."""
    try:
        existing = current()
    except DevenvError:
        return
    if any(s.alive for s in existing.status()):
        raise DevenvError(f"an environment is already running in {existing.run_dir}; "
                          f"stop it with `canary devenv down`{why}")


def _up(args: argparse.Namespace) -> int:
    refuse_if_running()
    binaries = install(sys.stderr)
    kubectl = binaries["kubectl"]
    started = time.monotonic()
    settings = EnvironmentSettings(scrape_interval_seconds=args.scrape_interval, seed=args.seed,
                                   extra_crd_files=tuple(args.crds), controller=args.controller,
                                   flux=args.flux)
    env = asyncio.run(LocalEnvironment.start(
        settings=settings, progress=lambda line: print(f"  {line}", file=sys.stderr)))
    remember(env)
    if args.print_env:
        _print_exports(env, kubectl)
        return 0
    print(f"ready in {time.monotonic() - started:.1f}s; run directory {env.run_dir}")
    for key, value in env.env_vars().items():
        print(f"  {key}={value}")
    print(f"  kubectl {kubectl}")
    print('use:  eval "$(canary devenv env)"; kubectl get nodes')
    print("stop: canary devenv down")
    return 0


def _print_exports(env: LocalEnvironment, kubectl: Path) -> None:
    for key, value in env.env_vars().items():
        print(f"export {key}={shlex.quote(value)}")
    print(f'export PATH={shlex.quote(str(kubectl.parent))}:"$PATH"')


def _status() -> int:
    env = current()
    statuses = env.status()
    print(status_report(env, statuses))
    return 0 if all(s.alive for s in statuses) else 1


def status_report(env: LocalEnvironment, statuses: list[ComponentStatus]) -> str:
    """What `canary devenv status` prints: where things are (the logs first, as that is
    where one looks when a component stopped), then each component."""
    lines = [f"run directory: {env.run_dir}", f"logs: {env.logs_dir}"]
    lines += [f"{key}={value}" for key, value in env.env_vars().items()]
    lines.append(f"{'COMPONENT':<26}{'PID':>8}  {'STATE':<8}{'RSS':>10}")
    for status in statuses:
        state = "running" if status.alive else "stopped"
        lines.append(f"{status.name:<26}{status.pid:>8}  {state:<8}"
                     f"{status.rss_bytes / 2**20:>8.0f}Mi")
    total = sum(status.rss_bytes for status in statuses)
    lines.append(f"{'total':<44}{total / 2**20:>8.0f}Mi")
    return "\n".join(lines)


async def _traffic(args: argparse.Namespace) -> int:
    env = current()
    if args.host is None:
        print(json.dumps(await env.traffic(), indent=2))
        return 0
    if args.rps is None:
        raise DevenvError("give --rps N (requests per second; 0 stops the traffic)")
    mix = json.loads(args.mix.read_text()) if args.mix else None
    if args.host_header:
        mix = with_host_header(mix, args.host_header)
    result = await env.set_traffic(args.host, args.rps, mix)
    print(f"{result['host']}: {result['rps']:g} requests/s")
    return 0
