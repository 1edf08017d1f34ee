"""``canary run``: the composition root. Builds the client and the controller from the
settings, and runs until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import structlog

from canary.controller import Controller
from canary.errors import ConfigError
from canary.kube import KubeClient
from canary.logging import configure_logging
from canary.models.base import parse_duration
from canary.settings import AnalysisSettings, KubeSettings, LogSettings, Settings, WorkloadSettings

log = structlog.get_logger("canary")


def _env(flag: str) -> str | None:
    return os.environ.get("CANARY_" + flag.upper().replace("-", "_"))


def add_parser(subparsers: Any) -> None:
    run = subparsers.add_parser("run", help="run the controller",
                                description="Run the canary controller. Every flag can also "
                                "be set with CANARY_<FLAG> (e.g. CANARY_METRICS_SERVER).")
    run.add_argument("--kubeconfig", type=Path, default=_env("kubeconfig"),
                     help="kubeconfig path (default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    run.add_argument("--namespace", default=_env("namespace"),
                     help="watch only this namespace (default: all)")
    run.add_argument("--metrics-server", default=_env("metrics-server"),
                     help="Prometheus URL for built-in metrics")
    run.add_argument("--min-interval", default=_env("min-interval") or "10s",
                     help="shortest analysis interval honoured (default 10s; lower it only "
                     "to compress time in tests and demos)")
    run.add_argument("--default-progress-deadline", default=_env("default-progress-deadline")
                     or "10m", help="readiness deadline when a Canary sets none (default 10m)")
    run.add_argument("--selector-labels", default=_env("selector-labels")
                     or "app,name,app.kubernetes.io/name",
                     help="label keys renamed for the primary, comma-separated")
    run.add_argument("--log-level", default=_env("log-level") or "info",
                     choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default=_env("log-format") or "json",
                     choices=["json", "console"])


def settings_from(args: argparse.Namespace) -> Settings:
    def duration(flag: str, text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise ConfigError(f"--{flag}: {exc}") from None

    labels = tuple(label.strip() for label in args.selector_labels.split(",") if label.strip())
    if not labels:
        raise ConfigError("--selector-labels: give at least one label key")
    return Settings(
        kube=KubeSettings(kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
                          namespace=args.namespace or None),
        analysis=AnalysisSettings(
            metrics_server=args.metrics_server or None,
            min_interval_seconds=duration("min-interval", args.min_interval),
            default_progress_deadline_seconds=duration("default-progress-deadline",
                                                       args.default_progress_deadline)),
        workloads=WorkloadSettings(selector_labels=labels),
        logging=LogSettings(level=args.log_level, format=args.log_format),
    )


async def serve(settings: Settings) -> None:
    async with await KubeClient.connect(settings.kube.kubeconfig) as client:
        controller = Controller(client, settings)
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        log.info("controller starting", api_server=client.host,
                 namespace=settings.kube.namespace or "(all)",
                 metrics_server=settings.analysis.metrics_server)
        try:
            await controller.run()
        except asyncio.CancelledError:
            log.info("controller stopping")
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await controller.stop()


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.logging.level, settings.logging.format)
    asyncio.run(serve(settings))
    return 0
