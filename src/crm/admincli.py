"""`crm create-org`, `crm create-user` and `crm reset-password`: an org with its first
admin, a member of an org, and a forgotten password, made from the command line by the same
services as /api/auth/register/, /api/users/ and /api/auth/password/ (the same rules and
messages). `crm orgs` and `crm members` list orgs and members."""

import asyncio
import functools
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, func, select

from crm.auth.endpoints import NewPasswordIn, RegisterIn
from crm.db import Database
from crm.errors import ApiError, validation_errors
from crm.importcli import CommandError, find_org
from crm.orgs import service
from crm.orgs.endpoints import IN_ORG, ProfileIn, member_status
from crm.orgs.models import Membership, Org, Profile, User


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


async def _create_user(
    database_url: str, org_id: str, email: str, role: str, password: str | None
) -> str:
    """A new user as a member, or an existing user (password None) invited, as POST
    /api/users/ does: that user joins by accepting the invitation."""
    body = checked(ProfileIn, email=email, password=password, role=role)
    database = Database(database_url)
    try:
        async with database.write_sessionmaker() as session, session.begin():
            org_uuid = await find_org(session, org_id)
            user, profile = await service.add_member(
                session, org_uuid, body.email, body.password, body.role
            )
            kind = "member" if profile.membership is Membership.member else "invitation"
            return f"{kind} {profile.id}: {user.email}, {profile.role.value} of org {org_id}"
    finally:
        await database.dispose()


async def _has_user(database_url: str, email: str) -> bool:
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            return await service.find_user(session, email) is not None
    finally:
        await database.dispose()


async def _reset_password(database_url: str, email: str, password: str) -> str:
    body = checked(NewPasswordIn, new_password=password)
    database = Database(database_url)
    try:
        async with database.write_sessionmaker() as session, session.begin():
            user = await service.find_user(session, email)
            if user is None:
                raise CommandError(f"--email: no user {email}")
            await service.set_password(session, user.id, body.new_password)
            return f"password of {user.email}: every token of the user stopped"
    finally:
        await database.dispose()


def run(coroutine: Any, done: str = "created") -> int:
    try:
        print(f"crm: {done} {asyncio.run(coroutine)}")
    except ApiError as error:
        reasons = "; ".join(f"{field}: {reason}" for field, reason in error.errors.items())
        print(f"crm: {reasons}", file=sys.stderr)
        return 1
    return 0


def one_line_errors(command: Callable[[str, Any], int]) -> Callable[[str, Any], int]:
    """A command whose CommandError is one line on standard error and exit status 1."""

    @functools.wraps(command)
    def reporting(database_url: str, args: Any) -> int:
        try:
            return command(database_url, args)
        except CommandError as error:
            print(f"crm: {error}", file=sys.stderr)
            return 1

    return reporting


@one_line_errors
def create_org(database_url: str, args: Any) -> int:
    password = read_password(args.password_stdin)
    return run(_create_org(database_url, args.name, args.admin_email, password))


@one_line_errors
def create_user(database_url: str, args: Any) -> int:
    # An email that already has a user is invited: its password is the user's own.
    password = None
    if not asyncio.run(_has_user(database_url, args.email)):
        password = read_password(args.password_stdin)
    return run(_create_user(database_url, args.org, args.email, args.role, password))


@one_line_errors
def reset_password(database_url: str, args: Any) -> int:
    password = read_password(args.password_stdin)
    return run(_reset_password(database_url, args.email, password), done="reset the")


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
    statement = (
        select(Profile, User.email)
        .join(User, User.id == Profile.user_id)
        .where(Profile.org_id == bindparam("org_id"), IN_ORG)
        .order_by(Profile.created_at, Profile.id)
    )
    database = Database(database_url)
    try:
        async with database.sessionmaker() as session:
            org_uuid = await find_org(session, org_id)
            rows = (await session.execute(statement, {"org_id": org_uuid})).all()
    finally:
        await database.dispose()
    return table(
        ("PROFILE", "EMAIL", "ROLE", "STATUS", "JOINED"),
        [
            (str(p.id), email, p.role.value, member_status(p), iso(p.created_at))
            for p, email in rows
        ],
    )


def iso(moment: datetime) -> str:
    # SQLite hands back naive times, which are UTC.
    moment = moment.replace(tzinfo=moment.tzinfo or UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def show(coroutine: Any) -> int:
    print(asyncio.run(coroutine))
    return 0


@one_line_errors
def list_orgs(database_url: str, _args: Any) -> int:
    return show(_orgs(database_url))


@one_line_errors
def list_members(database_url: str, args: Any) -> int:
    return show(_members(database_url, args.org))
