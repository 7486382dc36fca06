"""The `crm` command: `crm migrate`, `crm serve` and `crm import`."""

import argparse
import logging
import sys

from crm.config import get_settings
from crm.migrations import upgrade


def command_line() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="The CRM API server.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations to CRM_DATABASE_URL")
    serve = commands.add_parser("serve", help="apply pending migrations, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = command_line().parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    upgrade(settings.database_url)
    if args.command == "import":
        from crm import importcli

        sys.exit(importcli.main(settings.database_url, args))
    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            "crm.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            proxy_headers=False,
        )


if __name__ == "__main__":
    main()
