"""The `crm` command: `crm migrate` and `crm serve`."""

import argparse
import logging
import sys
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crm.config import Settings, get_settings
from crm.db import DatabaseUrlError
from crm.migrations import upgrade


def fail(message: str) -> NoReturn:
    """One line on stderr and a non-zero exit: a setting is wrong, not the program."""
    print(f"crm: {message}", file=sys.stderr)
    raise SystemExit(1)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as error:
        problems = [
            f"CRM_{'_'.join(map(str, problem['loc'])).upper()} {problem['msg']}"
            for problem in error.errors()
        ]
        fail("; ".join(problems))


def migrate(database_url: str) -> None:
    try:
        upgrade(database_url)
    except DatabaseUrlError as error:
        fail(f"CRM_DATABASE_URL: {error}")
    except (OSError, SQLAlchemyError) as error:
        # OSError: no server at that address (or no such host); SQLAlchemyError: the server
        # or the SQLite file refused (no such database or role, wrong password, read-only).
        reason = error.orig if isinstance(error, DBAPIError) else error
        shown = make_url(database_url).render_as_string(hide_password=True)
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else repr(reason)
        fail(f"cannot use the database at {shown}: {first_line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="crm", description="The CRM API server.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations to CRM_DATABASE_URL")
    serve = commands.add_parser("serve", help="apply pending migrations, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    migrate(settings.database_url)
    if args.command == "serve":
        from crm.server import serve as run_server

        run_server(args.host, args.port, args.workers)


if __name__ == "__main__":
    main()
