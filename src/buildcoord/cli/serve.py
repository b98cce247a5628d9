"""buildcoord serve: the coordinator (HTTP API and maintenance) and buildcoord config show."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import click

from buildcoord.cli.context import get_context
from buildcoord.config import Settings, load_settings
from buildcoord.services.coordinator import Coordinator
from buildcoord.services.tokens import new_secret
from buildcoord.store import Store
from buildcoord.store.engine import default_home, default_url


def admin_token_file() -> Path:
    """Where serve keeps a generated admin token when none is configured."""
    return default_home() / "admin-token"


def ensure_admin_token(settings: Settings) -> tuple[str, str]:
    """Return the admin secret and where it came from, generating one on first start."""
    if settings.admin_token:
        return settings.admin_token, settings.sources.get("admin_token", "setting")
    path = admin_token_file()
    if path.exists():
        return path.read_text().strip(), str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret, f"{path} (generated)"


@click.command("serve")
@click.option("--db", "url", help="Database URL (env BUILDCOORD_DB; default: embedded SQLite).")
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8765).")
@click.option("--log-level", default="info", show_default=True)
def serve(url: str | None, host: str | None, port: int | None, log_level: str) -> None:
    """Run the coordinator: HTTP API under /api/v1 plus maintenance every second."""
    import uvicorn

    from buildcoord.web.app import create_app

    settings = load_settings(
        config_path=get_context().config, overrides={"db": url, "host": host, "port": port}
    )
    database = settings.db or default_url()
    secret, origin = ensure_admin_token(settings)
    settings = replace(settings, db=database, admin_token=secret)
    store = Store.open(database)
    coordinator = Coordinator(store, settings)
    coordinator.start()
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    click.echo(f"buildcoord coordinator on http://{settings.host}:{settings.port}", err=True)
    click.echo(f"  database: {store.engine.url.render_as_string(hide_password=True)}", err=True)
    click.echo(f"  admin token from {origin}", err=True)
    server: uvicorn.Server | None = None
    app = create_app(
        coordinator,
        run_maintenance=True,
        shutting_down=lambda: server is not None and server.should_exit,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        # Agent sessions are endless streams: do not wait for them to end on shutdown.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        store.close()


@click.group("config")
def config() -> None:
    """Settings."""


@config.command("show")
def show() -> None:
    """Print the settings in force and where each came from (secrets hidden)."""
    settings = load_settings(config_path=get_context().config)
    for name in Settings.__dataclass_fields__:
        if name == "sources":
            continue
        value = getattr(settings, name)
        if name in ("admin_token", "webhook_secret") and value:
            value = "****"
        if name == "db" and not value:
            value = default_url()
        click.echo(f"{name} = {value!r}  # {settings.sources.get(name, 'default')}")
