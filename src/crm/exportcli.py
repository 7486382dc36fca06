"""`crm export <entity> --org ID > file.csv`: an org's live records as the CSV file that
POST /api/<entity>/upload/ and `crm import` read, the file GET /api/<entity>/export/ writes."""

import asyncio
import sys
from typing import IO, Any

from crm.app import ENTITIES
from crm.db import Database
from crm.importcli import ENTITY_NAMES, CommandError, find_org
from crm.records.exporter import export_csv, snapshot


async def run_export(database_url: str, entity: str, org_id: str, out: IO[str]) -> int:
    spec = next((spec for spec in ENTITIES if spec.name == entity), None)
    if spec is None:
        raise CommandError(f"no entity {entity}: one of {', '.join(ENTITY_NAMES)}")
    database = Database(database_url)
    count = 0
    try:
        async with snapshot(database) as session:
            org_uuid = await find_org(session, org_id)
            async for chunk, records in export_csv(session, spec, org_uuid):
                out.write(chunk)
                out.flush()
                count += records
    finally:
        await database.dispose()
    return count


def main(database_url: str, args: Any, out: IO[str] | None = None) -> int:
    """Exit status 0, or 2 for a wrong entity or org (one line on standard error, which
    keeps standard output for the file)."""
    if out is None:
        out = sys.stdout
        if hasattr(out, "reconfigure"):
            out.reconfigure(encoding="utf-8")  # what the upload reads, whatever the locale
    try:
        count = asyncio.run(run_export(database_url, args.entity, args.org, out))
    except CommandError as exc:
        print(f"crm export: {exc}", file=sys.stderr)
        return 2
    print(f"crm export: {count} {args.entity}", file=sys.stderr)
    return 0
