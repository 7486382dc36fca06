"""`crm import`: a CSV file imported into an org's records from the command line, by the
same importer as POST /api/<entity>/upload/, with a progress bar."""

import asyncio
import gc
import os
import time
import uuid
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.app import ENTITIES
from crm.auth.tokens import Principal, TokenKind
from crm.db import Database
from crm.errors import ApiError
from crm.orgs.models import Org, Profile, User
from crm.orgs.service import normalize_email
from crm.records.importer import import_csv

ENTITY_NAMES = tuple(spec.name for spec in ENTITIES)


class CommandError(Exception):
    """A problem to report in one line, with exit status 2."""


async def find_org(session: AsyncSession, org_id: str) -> uuid.UUID:
    """The id of the org that --org names, or why it names none."""
    try:
        org_uuid = uuid.UUID(org_id)
    except ValueError:
        raise CommandError(f"--org: not an org id: {org_id}") from None
    if await session.get(Org, org_uuid) is None:
        raise CommandError(f"--org: no org {org_id}")
    return org_uuid


async def member(session: AsyncSession, org_id: str, email: str) -> Principal:
    """The active member of the org the import runs as: it is the records' creator, and a
    `user` may update only the records it sees, as over HTTP."""
    org_uuid = await find_org(session, org_id)
    row = (
        await session.execute(
            select(Profile, User, Org.name, Org.custom_fields_version)
            .join(User, User.id == Profile.user_id)
            .join(Org, Org.id == Profile.org_id)
            .where(
                Profile.org_id == org_uuid,
                Profile.is_active.is_(True),
                User.email == normalize_email(email),  # stored normalised
            )
        )
    ).one_or_none()
    if row is None:
        raise CommandError(f"--as: {email} is no active member of org {org_id}")
    profile, user, org_name, custom_fields_version = row
    return Principal(
        token_id=uuid.uuid4(),  # no token: the command line is trusted as this member
        token_kind=TokenKind.personal,
        session_id=None,
        org_id=org_uuid,
        org_name=org_name,
        profile_id=profile.id,
        role=profile.role,
        user_id=user.id,
        user_number=user.number,
        email=user.email,
        custom_fields_version=custom_fields_version,
    )


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        console=console,
    )


async def run_import(
    database_url: str, entity: str, org_id: str, email: str, file: IO[bytes], *, dry_run: bool
) -> dict[str, Any]:
    spec = next((spec for spec in ENTITIES if spec.name == entity), None)
    if spec is None:
        raise CommandError(f"--entity: one of {', '.join(ENTITY_NAMES)}, not {entity}")
    name, size = os.path.basename(file.name), os.fstat(file.fileno()).st_size
    database = Database(database_url)
    console = Console(stderr=True)
    gc.freeze()  # as the server at start: full collections leave what is loaded by now alone
    try:
        async with database.write_sessionmaker() as session:
            principal = await member(session, org_id, email)
            with progress_bar(console) as bar:
                task = bar.add_task(name, total=size, rows=0, rate=0)
                report = await import_csv(
                    session,
                    spec,
                    principal,
                    file,
                    dry_run=dry_run,
                    progress=counter(bar, task, file),
                )
            await session.commit()
    finally:
        await database.dispose()
    return report


def counter(bar: Progress, task: Any, file: IO[bytes]) -> Callable[[int], None]:
    started = time.monotonic()
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        rate = done / max(time.monotonic() - started, 1e-9)
        bar.update(task, completed=file.tell(), rows=done, rate=rate)

    return advance


def summary(report: dict[str, Any], *, dry_run: bool, errors_shown: int = 20) -> str:
    lines = [
        f"{len(report['created'])} created, {len(report['updated'])} updated, "
        f"{len(report['errors'])} errors"
        + (f", {len(report['skipped'])} skipped (created before)" if report["skipped"] else "")
        + (" (dry run: nothing was written)" if dry_run else "")
    ]
    for entry in report["errors"][:errors_shown]:
        reasons = "; ".join(f"{field}: {reason}" for field, reason in entry["errors"].items())
        lines.append(f"  row {entry['row']}: {reasons}")
    if len(report["errors"]) > errors_shown:
        lines.append(f"  … and {len(report['errors']) - errors_shown} more")
    return "\n".join(lines)


def main(database_url: str, args: Any) -> int:
    try:
        with open(args.file, "rb") as file:
            report = asyncio.run(
                run_import(
                    database_url, args.entity, args.org, args.as_email, file, dry_run=args.dry_run
                )
            )
    except CommandError as exc:
        print(f"crm import: {exc}")
        return 2
    except ApiError as exc:  # a whole-file error: nothing was written
        reasons = "; ".join(f"{field}: {reason}" for field, reason in exc.errors.items())
        print(f"crm import: the file was refused, nothing was written: {reasons}")
        return 1
    except OSError as exc:
        print(f"crm import: {exc}")
        return 2
    print(summary(report, dry_run=args.dry_run))
    return 1 if report["errors"] else 0
