"""``python -m canary.devenv.traffic``: run the traffic simulator (started by devenv up)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from canary.devenv.traffic.simulator import serve
from canary.logging import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m canary.devenv.traffic",
                                     description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, default=None)
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to serve on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--state", type=Path, default=None,
                        help="file keeping the traffic settings across restarts")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.kubeconfig, host, int(port), args.seed, args.state))


main()
