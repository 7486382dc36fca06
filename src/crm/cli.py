"""The `crm` command: migrate, check, serve, import, export, create-org, create-user,
reset-password, orgs and members."""

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from crm import VERSION
from crm.config import Settings, get_settings
from crm.db import DatabaseUrlError
from crm.errors import message_for
from crm.migrations import database_revision, head_revision, upgrade


def fail(message: str) -> NoReturn:
    """One line on stderr and a non-zero exit: a setting is wrong, not the program."""
    print(f"crm: {message}", file=sys.stderr)
    raise SystemExit(1)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as error:
        problems = [
            f"CRM_{'_'.join(map(str, problem['loc'])).upper()}: {message_for(problem)}"
            for problem in error.errors()
        ]
        fail("; ".join(problems))


@contextmanager
def database_errors(database_url: str) -> Iterator[None]:
    """What stops a command from using the database, as one line and exit 1."""
    try:
        yield
    except DatabaseUrlError as error:
        fail(f"CRM_DATABASE_URL: {error}")
    except (OSError, SQLAlchemyError) as error:
        # OSError: no server at that address (or no such host); SQLAlchemyError: the server
        # or the SQLite file refused (no such database or role, wrong password, read-only).
        reason = error.orig if isinstance(error, DBAPIError) else error
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else repr(reason)
        fail(f"cannot use the database at {shown(database_url)}: {first_line}")


def shown(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def migrate(database_url: str) -> str | None:
    """Apply pending migrations; the revision the database was at before (None: empty)."""
    with database_errors(database_url):
        return upgrade(database_url)


def migrate_command(database_url: str) -> None:
    before, head = migrate(database_url), head_revision()
    where = f"the database at {shown(database_url)}"
    if before == head:
        print(f"crm: {where} is at {head}: nothing to apply")
    else:
        print(f"crm: migrated {where} from {before or 'empty'} to {head}")


def require_head(database_url: str) -> str:
    """The database answers and its migrations are current (else one line and exit 1);
    changes nothing."""
    with database_errors(database_url):
        current = database_revision(database_url)
    head = head_revision()
    if current != head:
        fail(
            f"the database at {shown(database_url)} is at migration {current or 'none'},"
            f" the code at {head}: run crm migrate"
        )
    return head


def check(database_url: str) -> None:
    """Settings valid (they were read), database reachable, migrations current."""
    head = require_head(database_url)
    print(f"crm: settings valid; the database at {shown(database_url)} answers, at {head}")


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="The CRM API server.")
    parser.add_argument("--version", action="version", version=f"crm {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations to CRM_DATABASE_URL")
    commands.add_parser(
        "check",
        help="check that the settings are valid, the database answers and its migrations"
        " are current; changes nothing (exit 1 otherwise)",
    )
    serve = commands.add_parser(
        "serve",
        help="apply pending migrations, then serve the API",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    imports = commands.add_parser(
        "import", help="import a CSV file into an org's records, as POST /api/<entity>/upload/"
    )
    imports.add_argument("--org", required=True, help="the org's id")
    imports.add_argument(
        "--as", dest="as_email", required=True, metavar="EMAIL", help="the member importing"
    )
    imports.add_argument(
        "--entity",
        default="leads",
        help="what the rows are: leads (the default), contacts, accounts, opportunities, tasks",
    )
    imports.add_argument("--dry-run", action="store_true", help="report, write nothing")
    imports.add_argument("file", help="the CSV file")
    export = commands.add_parser(
        "export",
        help="write an org's live records to standard output as the CSV file an upload takes",
    )
    export.add_argument(
        "entity",
        metavar="ENTITY",
        help="what to export: leads, contacts, accounts, opportunities or tasks",
    )
    export.add_argument("--org", required=True, help="the org's id")
    password_help = "read the password from the first line of standard input (else a prompt)"
    org = commands.add_parser("create-org", help="create an org and its first admin")
    org.add_argument("--name", required=True, help="the org's name")
    org.add_argument("--admin-email", required=True, metavar="EMAIL", help="its first admin")
    org.add_argument("--password-stdin", action="store_true", help=password_help)
    user = commands.add_parser(
        "create-user", help="add a new user to an org, or invite an existing one (no password)"
    )
    user.add_argument("--org", required=True, help="the org's id")
    user.add_argument("--email", required=True)
    user.add_argument("--role", required=True, choices=("admin", "user"))
    user.add_argument("--password-stdin", action="store_true", help=password_help)
    reset = commands.add_parser(
        "reset-password", help="set a user's new password; every token of the user stops"
    )
    reset.add_argument("--email", required=True, help="the user's")
    reset.add_argument("--password-stdin", action="store_true", help=password_help)
    commands.add_parser("orgs", help="list the orgs: id, name, members, created")
    members = commands.add_parser(
        "members", help="list an org's members: profile id, email, role, status, joined"
    )
    members.add_argument("--org", required=True, help="the org's id")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = command_line().parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic's INFO lines ("Context impl", each upgrade) are not the operator's business;
    # its warnings and errors are. `crm migrate` says in one line what it applied.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = load_settings()
    if args.command == "check":
        check(settings.database_url)
        return
    if args.command == "export":  # reads only: the database must be current already
        require_head(settings.database_url)
        from crm import exportcli

        with database_errors(settings.database_url):
            sys.exit(exportcli.main(settings.database_url, args))
    if args.command in ("orgs", "members"):  # read only, as export
        require_head(settings.database_url)
        from crm import admincli

        show = admincli.list_orgs if args.command == "orgs" else admincli.list_members
        with database_errors(settings.database_url):
            sys.exit(show(settings.database_url, args))
    if args.command == "migrate":
        migrate_command(settings.database_url)
        return
    migrate(settings.database_url)
    if args.command in ("create-org", "create-user"):
        from crm import admincli

        make = admincli.create_org if args.command == "create-org" else admincli.create_user
        sys.exit(make(settings.database_url, args))
    if args.command == "reset-password":
        from crm import admincli

        sys.exit(admincli.reset_password(settings.database_url, args))
    if args.command == "import":
        from crm import importcli

        sys.exit(importcli.main(settings.database_url, args))
    if args.command == "serve":
        from crm.server import serve as run_server

        run_server(args.host, args.port, args.workers, metrics=settings.metrics)


if __name__ == "__main__":
    main()
