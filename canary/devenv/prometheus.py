"""The Prometheus configuration of the local environment."""

from __future__ import annotations

from collections.abc import Mapping

import yaml


def config(scrape_interval_seconds: float, targets: Mapping[str, str]) -> str:
    """A configuration scraping each ``job -> host:port`` target at the given interval."""
    interval = f"{int(scrape_interval_seconds * 1000)}ms"
    document = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in sorted(targets.items())
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)
