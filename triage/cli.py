"""`triage` command: serve, worker, migrate, setup, check."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from pydantic import ValidationError

from triage import __version__
from triage.config import Settings
from triage.core.errors import ConfigError
from triage.core.json_limits import first_error
from triage.db import DatabaseUnavailable
from triage.logs import configure_logging


def _settings() -> Settings:
    settings = Settings()
    _ = settings.config  # fail early, with the key named, on an invalid config file
    return settings


def _migrate(settings: Settings) -> None:
    """Bring the database to the latest schema; an unusable DATABASE_URL is one line, not a traceback."""
    import sqlalchemy as sa

    from triage.db import DatabaseUnavailable, check_database, explain
    from triage.migrate import upgrade

    check_database(settings.database_url)
    try:
        upgrade(settings.database_url)
    except sa.exc.DBAPIError as e:  # went away between the check and the migration
        raise DatabaseUnavailable(explain(settings.database_url, e)) from None


def cmd_migrate(args: argparse.Namespace) -> int:
    _migrate(_settings())
    print("database is at the latest schema")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from triage.logs import uvicorn_log_config
    from triage.web import create_app

    settings = _settings()
    _migrate(settings)
    app = create_app(settings, migrate=False, freeze_gc=True)
    # One log format for uvicorn and the app; the app logs one line per request itself (with the route and
    # its duration), so uvicorn's own access log is off.
    uvicorn.run(app, host=args.host, port=args.port or settings.port, log_config=uvicorn_log_config(settings),
                access_log=False, proxy_headers=True, forwarded_allow_ips="*")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from triage.db import make_engine
    from triage.services import Services
    from triage.worker import Worker

    settings = _settings()
    _migrate(settings)
    worker = Worker(Services(settings, make_engine(settings.database_url)))
    if args.once:
        report = worker.run_once()
        print(f"delivered {report.delivered}, waiting {report.delivery.retried}")
        return 0
    if args.metrics_port:
        from prometheus_client import start_http_server

        from triage import metrics

        metrics.watch_outbox(worker.services.engine)
        start_http_server(args.metrics_port, registry=metrics.REGISTRY)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (worker.stop(), stop.set()))
    worker.start()
    stop.wait()
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from triage.ops import setup

    return setup(_settings(), dry_run=args.dry_run)


def cmd_check(args: argparse.Namespace) -> int:
    from triage.ops import check

    return check(_settings())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triage", description="SA request intake: Slack -> GitLab, with SLAs")
    parser.add_argument("--version", action="version", version=f"triage {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="migrate, then serve the web app (and the worker unless "
                                     "TRIAGE_EMBEDDED_WORKER=false)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("worker", help="deliver GitLab/Slack side effects and run the SLA sweep")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve this worker's Prometheus metrics on this port (default: none)")
    p.set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="alembic upgrade head on DATABASE_URL").set_defaults(fn=cmd_migrate)
    p = sub.add_parser("setup", help="create the labels and the triage board on every configured project")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(fn=cmd_setup)
    sub.add_parser("check", help="validate config and reach Slack and GitLab").set_defaults(fn=cmd_check)
    args = parser.parse_args(argv)
    try:
        configure_logging(Settings())
        return args.fn(args)
    except ValidationError as e:  # an env var of the wrong type (PORT=abc): name it, don't dump the model
        print(f"triage: invalid setting {first_error(e, 'settings')}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"triage: invalid configuration: {e}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as e:
        print(f"triage: {e}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
