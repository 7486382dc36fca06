"""`crm create-org` and `crm create-user`: an org with its first admin, and a member of an
org, made from the command line by the same services as /api/auth/register/ and
/api/users/ (the same rules and messages). `crm orgs` and `crm members` list them."""

import asyncio
import getpass
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select

from crm.auth.endpoints import RegisterIn
from crm.db import Database
from crm.errors import ApiError, validation_errors
from crm.orgs import service
from crm.orgs.endpoints import ProfileIn
from crm.orgs.models import Org, Profile, User


class CommandError(Exception):
    """A problem to report in one line, with exit status 1."""


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():  # getpass would read what is piped in, or fail at its end
        raise CommandError("no terminal to type the password at: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise CommandError("the two passwords differ")
    return first


def checked(model: Any, **values: Any) -> Any:
    """`values` through the endpoint's own body model, so that the rules are the API's."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        reasons = validation_errors(list(error.errors()))
        message = "; ".join(f"{field}: {reason}" for field, reason in reasons.items())
        raise CommandError(message) from None


async def _create_org(database_url: str, name: str, email: str, password: str) -> str:
    body = checked(RegisterIn, org_name=name, email=email, password=password)
    database = Database(database_url)
    try:
        async with database.write_sessionmaker() as session, session.begin():
            org, _user, _profile = await service.register(
                session, body.org_name, body.email, body.password
            )
            return f"org {org.id} ({org.name}), admin {body.email.strip().lower()}"
    finally:
        await database.dispose()


async def _create_user(database_url: str, org_id: str, email: str, role: str, password: str) -> str:
    try:
        org_uuid = uuid.UUID(org_id)
    except ValueError:
        raise CommandError(f"--org: not an org id: {org_id}") from None
    body = checked(ProfileIn, email=email, password=password, role=role)
    database = Database(database_url)
    try:
        async with database.write_sessionmaker() as session, session.begin():
            if await session.get(Org, org_uuid) is None:
                raise CommandError(f"--org: no org {org_id}")
            user, profile = await service.add_member(
                session, org_uuid, body.email, body.password, body.role
            )
            return f"member {profile.id}: {user.email}, {profile.role.value} of org {org_id}"
    finally:
        await database.dispose()


def run(coroutine: Any) -> int:
    try:
        print(f"crm: created {asyncio.run(coroutine)}")
    except CommandError as error:
        print(f"crm: {error}", file=sys.stderr)
        return 1
    except ApiError as error:
        reasons = "; ".join(f"{field}: {reason}" for field, reason in error.errors.items())
        print(f"crm: {reasons}", file=sys.stderr)
        return 1
    return 0


def create_org(database_url: str, args: Any) -> int:
    try:
        password = read_password(args.password_stdin)
    except CommandError as error:
        print(f"crm: {error}", file=sys.stderr)
        return 1
    return run(_create_org(database_url, args.name, args.admin_email, password))


def create_user(database_url: str, args: Any) -> int:
    try:
        password = read_password(args.password_stdin)
    except CommandError as error:
        print(f"crm: {error}", file=sys.stderr)
        return 1
    return run(_create_user(database_url, args.org, args.email, args.role, password))


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns aligned on their widest cell, for a terminal and for `awk` alike."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


async def _orgs(database_url: str) -> str:
    members = func.count(Profile.id).filter(Profile.is_active.is_(True))
    statement = (
        select(Org.id, Org.name, members, Org.created_at)
        .outerjoin(Profile, Profile.org_id == Org.id)
        .group_by(Org.id, Org.name, Org.created_at)
        .order_by(Org.created_at, Org.id)
    )
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            rows = (await session.execute(statement)).all()
    finally:
        await database.dispose()
    return table(
        ("ID", "NAME", "MEMBERS", "CREATED"),
        [(str(id_), name, str(count), iso(created)) for id_, name, count, created in rows],
    )


async def _members(database_url: str, org_id: str) -> str:
    try:
        org_uuid = uuid.UUID(org_id)
    except ValueError:
        raise CommandError(f"--org: not an org id: {org_id}") from None
    statement = (
        select(Profile.id, User.email, Profile.role, Profile.is_active, Profile.created_at)
        .join(User, User.id == Profile.user_id)
        .where(Profile.org_id == org_uuid)
        .order_by(Profile.created_at, Profile.id)
    )
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            if await session.get(Org, org_uuid) is None:
                raise CommandError(f"--org: no org {org_id}")
            rows = (await session.execute(statement)).all()
    finally:
        await database.dispose()
    return table(
        ("PROFILE", "EMAIL", "ROLE", "ACTIVE", "JOINED"),
        [
            (str(id_), email, role.value, "yes" if active else "no", iso(joined))
            for id_, email, role, active, joined in rows
        ],
    )


def iso(moment: datetime) -> str:
    # SQLite hands back naive times, which are UTC.
    moment = moment.replace(tzinfo=moment.tzinfo or UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def show(coroutine: Any) -> int:
    try:
        print(asyncio.run(coroutine))
    except CommandError as error:
        print(f"crm: {error}", file=sys.stderr)
        return 1
    return 0


def list_orgs(database_url: str, _args: Any) -> int:
    return show(_orgs(database_url))


def list_members(database_url: str, args: Any) -> int:
    return show(_members(database_url, args.org))
