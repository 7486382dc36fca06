"""Creating orgs, users and memberships."""

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.passwords import hash_password, verify_password
from crm.db import Database, next_numbers, utcnow
from crm.errors import ApiError
from crm.lead_sources.service import create_defaults
from crm.orgs.models import Org, Profile, Role, User


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def find_user(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def authenticate(database: Database, email: str, password: str) -> User | None:
    """The user with these credentials, or None. It reads on a session of its own and
    verifies the password (tens of milliseconds of argon2) before the request's own
    transaction begins, so that no database lock is held meanwhile."""
    async with database.sessionmaker() as session:
        user = await find_user(session, email)
    if not await verify_password(user.password_hash if user else None, password):
        return None
    return user


async def create_user(session: AsyncSession, email: str, password_hash: str) -> User:
    (number,) = await next_numbers(session)
    user = User(
        id=uuid.uuid4(),
        number=number,
        email=normalize_email(email),
        password_hash=password_hash,
        created_at=utcnow(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # the same email registered at the same moment
        raise ApiError(400, {"email": "A user with this email already exists."}) from None
    return user


async def add_profile(session: AsyncSession, org_id: uuid.UUID, user: User, role: Role) -> Profile:
    profile = Profile(
        org_id=org_id,
        id=uuid.uuid4(),
        user_id=user.id,
        role=role,
        is_active=True,
        created_at=utcnow(),
    )
    session.add(profile)
    try:
        await session.flush()
    except IntegrityError:  # the same user added to the same org at the same moment
        raise ApiError(400, {"email": "This user is already a member of the org."}) from None
    return profile


async def add_member(
    session: AsyncSession, org_id: uuid.UUID, email: str, password: str, role: Role
) -> tuple[User, Profile]:
    """A membership of the org for the user with this email, made first if there is none
    (an existing user keeps its password); one already in the org is 400 naming `email`."""
    user = await find_user(session, email)
    if user is None:
        user = await create_user(session, email, await hash_password(password))
    else:
        member = await session.scalar(
            select(Profile.id).where(Profile.org_id == org_id, Profile.user_id == user.id)
        )
        if member is not None:
            raise ApiError(400, {"email": "This user is already a member of the org."})
    return user, await add_profile(session, org_id, user, role)


async def register(
    session: AsyncSession, org_name: str, email: str, password: str
) -> tuple[Org, User, Profile]:
    """A new user, a new org, and the user as its admin. The password is hashed before the
    first statement, while no database lock is held."""
    password_hash = await hash_password(password)
    if await find_user(session, email) is not None:
        raise ApiError(400, {"email": "A user with this email already exists."})
    user = await create_user(session, email, password_hash)
    org = Org(id=uuid.uuid4(), name=org_name, created_at=utcnow())
    session.add(org)
    await session.flush()
    profile = await add_profile(session, org.id, user, Role.admin)
    await create_defaults(session, org.id, profile.id)
    return org, user, profile


async def lock_memberships(session: AsyncSession, org_id: uuid.UUID) -> None:
    """Changes of one org's profiles apply one after the other: each locks the org's row
    until its transaction ends, so the "at least one active admin" check of the next sees
    what the previous wrote (two admins demoting each other at once would otherwise both
    see two admins). NO KEY UPDATE leaves the org's other writes, whose foreign keys take
    a KEY SHARE lock on the row, unblocked. SQLite's single writer already serialises."""
    await session.execute(select(Org.id).where(Org.id == org_id).with_for_update(key_share=True))


async def count_active_admins(session: AsyncSession, org_id: uuid.UUID) -> int:
    return (
        await session.scalar(
            select(func.count()).where(
                Profile.org_id == org_id, Profile.role == Role.admin, Profile.is_active.is_(True)
            )
        )
        or 0
    )
