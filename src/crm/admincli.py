"""`crm create-org`, `crm create-user` and `crm reset-password`: an org with its first
admin, a member of an org, and a forgotten password, made from the command line by the same
services as /api/auth/register/, /api/users/ and /api/auth/password/ (the same rules and
messages)."""

import asyncio
import getpass
import sys
import uuid
from typing import Any

from pydantic import ValidationError

from crm.auth.endpoints import NewPasswordIn, RegisterIn
from crm.db import Database
from crm.errors import ApiError, validation_errors
from crm.orgs import service
from crm.orgs.endpoints import ProfileIn
from crm.orgs.models import Org


class CommandError(Exception):
    """A problem to report in one line, with exit status 1."""


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
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


def reset_password(database_url: str, args: Any) -> int:
    try:
        password = read_password(args.password_stdin)
    except CommandError as error:
        print(f"crm: {error}", file=sys.stderr)
        return 1
    return run(_reset_password(database_url, args.email, password), done="reset the")
