"""Command line: ``lightfuse serve | migrate | keys create | init``. Thin: parse, build, delegate."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import orjson

from lightfuse.runtime import settle_heap

if TYPE_CHECKING:
    from lightfuse.config import Settings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = {"trace": "DEBUG", "warn": "WARNING"}.get(settings.log_level, settings.log_level.upper())
    root.setLevel(getattr(logging, level, logging.INFO))
    # migration chatter on every start says nothing an operator needs
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from lightfuse.app import build_services, create_app
    from lightfuse.server import DrainingServer

    services = build_services(settings)
    app = create_app(services)
    settle_heap()
    host = args.host or settings.hostname
    port = args.port or settings.port
    logging.getLogger("lightfuse").info("Lightfuse listening on http://%s:%s", host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        # uvicorn annotates this int but only hands it to asyncio.wait_for, which takes float seconds (2.5 works)
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,  # type: ignore[arg-type]
    )
    lifecycle = services.lifecycle
    DrainingServer(config, lifecycle.begin_stopping, settings.shutdown_delay_seconds, lifecycle.close).run()
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from lightfuse.store.sql import migrate
    from lightfuse.store.sql.database import make_engine

    migrate.upgrade(make_engine(settings.sqlalchemy_url))
    print("migrations applied")
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from lightfuse.app import build_services

    services = build_services(settings)
    if services.accounts.get_project(args.project) is None:
        print(f"error: project {args.project} not found", file=sys.stderr)
        return 2
    key = services.keys.create_key(args.project, note=args.note)
    print(f"LANGFUSE_PUBLIC_KEY={key.public_key}")
    print(f"LANGFUSE_SECRET_KEY={key.secret_key}")
    return 0


def _init(settings: Settings, _args: argparse.Namespace) -> int:
    from lightfuse.app import build_services

    build_services(settings)  # migrations and LANGFUSE_INIT_* provisioning run as part of building
    print("initialised")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lightfuse", description="Langfuse-compatible LLM observability.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API, OTLP receiver, UI and worker in one process")
    serve.add_argument("--host", default=None, help="bind address (default: $HOSTNAME or 0.0.0.0)")
    serve.add_argument("--port", type=int, default=None, help="port (default: $PORT or 3000)")
    serve.set_defaults(run=_serve)
    sub.add_parser("migrate", help="apply database migrations and exit").set_defaults(run=_migrate)
    sub.add_parser("init", help="apply migrations and LANGFUSE_INIT_* provisioning, then exit").set_defaults(
        run=_init
    )
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key pair for a project and print it")
    create.add_argument("--project", required=True, help="project id")
    create.add_argument("--note", default=None)
    create.set_defaults(run=_keys_create)

    args = parser.parse_args(argv)
    # imported here, not at the top: the OTLP decode helpers import this module (the server's __main__) when
    # they start, and pydantic-settings would add ~15 MiB to each
    from lightfuse.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except (ConfigError, ValueError) as exc:
        print(f"lightfuse: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    return args.run(settings, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
