"""Serve the monitoring dashboard: a web page and a JSON API over the figures in Redis.

The dashboard reads only Redis, never Kafka. The page updates itself on every flush of
the worker (server-sent events); the API's description is at /docs and /openapi.json.
"""

from __future__ import annotations

import argparse

from dashboard.settings import DashboardSettings
from dossier_stream.listen import listening_socket
from dossier_stream.watch import redis_url_arg

EXAMPLES = """\
examples:
  dossier-stream dashboard                         # http://127.0.0.1:8066/
  dossier-stream dashboard --host 0.0.0.0 --port 8080
  dossier-stream dashboard --redis-prefix demo:v1  # the figures of `dossier-stream demo`
  curl -s http://127.0.0.1:8066/api/v1/scopes/city # one scope's figures, as JSON
"""


def configure(parser: argparse.ArgumentParser) -> None:
    settings = DashboardSettings()
    parser.add_argument("--host", default=settings.dashboard_host, help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=settings.dashboard_port, help="port to listen on (0: any)"
    )
    parser.add_argument(
        "--redis-url", type=redis_url_arg, default=settings.redis_url, help="Redis URL"
    )
    parser.add_argument("--redis-prefix", default=settings.redis_prefix, help="Redis key prefix")


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from dashboard.app import create_app

    settings = DashboardSettings().model_copy(
        update={
            "redis_url": args.redis_url,
            "redis_prefix": args.redis_prefix,
            "dashboard_host": args.host,
            "dashboard_port": args.port,
        }
    )
    sock = listening_socket(args.host, args.port)
    port = sock.getsockname()[1]
    print(
        f"dashboard on {url_of(args.host, port)} (Redis {args.redis_url}, prefix "
        f"{args.redis_prefix}); API {url_of(args.host, port)}docs; Ctrl-C stops it",
        flush=True,
    )
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
