"""The `crm` command: `crm migrate` and `crm serve`."""

import argparse
import logging

from crm.config import get_settings
from crm.migrations import upgrade


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
    settings = get_settings()
    upgrade(settings.database_url)
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
