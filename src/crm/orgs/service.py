"""Creating orgs, users and memberships; invitations, removal, passwords."""

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.passwords import hash_password, verify_password
from crm.auth.tokens import revoke_profile_tokens, revoke_user_tokens
from crm.db import Database, next_numbers, utcnow
from crm.errors import ApiError, not_found
from crm.lead_sources.service import create_defaults
from crm.orgs.models import Membership, Org, Profile, Role, User


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


async def create_user(
    session: AsyncSession, email: str, password_hash: str, name: str | None = None
) -> User:
    (number,) = await next_numbers(session)
    user = User(
        id=uuid.uuid4(),
        number=number,
        email=normalize_email(email),
        name=name,
        password_hash=password_hash,
        created_at=utcnow(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # the same email registered at the same moment
        raise ApiError(400, {"email": "A user with this email already exists."}) from None
    return user


async def add_profile(
    session: AsyncSession,
    org_id: uuid.UUID,
    user: User,
    role: Role,
    membership: Membership = Membership.member,
) -> Profile:
    profile = Profile(
        org_id=org_id,
        id=uuid.uuid4(),
        user_id=user.id,
        role=role,
        is_active=membership is Membership.member,
        membership=membership,
        created_at=utcnow(),
    )
    session.add(profile)
    try:
        await session.flush()
    except IntegrityError:  # the same user added to the same org at the same moment
        raise ApiError(400, {"email": "This user is already a member of the org."}) from None
    return profile


async def add_member(
    session: AsyncSession,
    org_id: uuid.UUID,
    email: str,
    password: str | None,
    role: Role,
    name: str | None = None,
) -> tuple[User, Profile]:
    """A membership of the org for the user with this email. A new user is made with the
    password and name given, and is a member at once. A user that exists (of another org)
    keeps its password and name, which are not the admin's to set (400 if given), and is
    invited: a profile without access until that user accepts. One already in the org, or
    invited, is 400 naming `email`; one removed earlier is invited again on its old profile
    (its records still name it)."""
    password_hash = await hash_password(password) if password is not None else None
    await lock_memberships(session, org_id)
    user = await find_user(session, email)
    if user is None:
        if password_hash is None:
            raise ApiError(400, {"password": "A new user needs a password."})
        user = await create_user(session, email, password_hash, name)
        return user, await add_profile(session, org_id, user, role)
    earlier = await session.scalar(
        select(Profile).where(Profile.org_id == org_id, Profile.user_id == user.id)
    )
    if earlier is not None and earlier.membership is Membership.member:
        raise ApiError(400, {"email": "This user is already a member of the org."})
    if earlier is not None and earlier.membership is Membership.invited:
        raise ApiError(400, {"email": "This user is already invited to the org."})
    foreign = {
        field: f"This email already has a user, whose {field} is their own: invite them"
        f" without one; they join by accepting the invitation."
        for field, value in (("password", password), ("name", name))
        if value is not None
    }
    if foreign:
        raise ApiError(400, foreign)
    if earlier is None:
        return user, await add_profile(session, org_id, user, role, Membership.invited)
    earlier.membership, earlier.role, earlier.is_active = Membership.invited, role, False
    await session.flush()
    return user, earlier


async def remove_member(session: AsyncSession, org_id: uuid.UUID, profile_id: uuid.UUID) -> None:
    """End a membership (or withdraw an invitation): the profile stays, as its records
    still name it, out of the org and without tokens. 404 for one not in the org."""
    await lock_memberships(session, org_id)
    profile = await session.scalar(
        select(Profile).where(
            Profile.org_id == org_id,
            Profile.id == profile_id,
            Profile.membership != Membership.removed,
        )
    )
    if profile is None:
        raise not_found()
    profile.membership, profile.is_active = Membership.removed, False
    await session.flush()
    await revoke_profile_tokens(session, org_id, profile_id)
    await require_an_active_admin(session, org_id)


async def require_an_active_admin(session: AsyncSession, org_id: uuid.UUID) -> None:
    """After a change of the org's profiles, made under lock_memberships."""
    if await count_active_admins(session, org_id) == 0:
        raise ApiError(400, {"detail": "The org must keep at least one active admin."})


async def set_password(
    session: AsyncSession, user_id: uuid.UUID, password: str, keep: uuid.UUID | None = None
) -> None:
    """A new password for the user; every token of the user stops, in every org, but the
    one that asked for the change (`keep`)."""
    password_hash = await hash_password(password)
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(password_hash=password_hash)
        .execution_options(synchronize_session=False)
    )
    await revoke_user_tokens(session, user_id, keep)


async def set_name(session: AsyncSession, user_id: uuid.UUID, name: str | None) -> None:
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(name=name)
        .execution_options(synchronize_session=False)
    )


def invitations_of(user_id: uuid.UUID) -> Any:
    """The conditions of the profiles to which the user is invited."""
    return (Profile.user_id == user_id, Profile.membership == Membership.invited)


async def answer_invitation(
    session: AsyncSession, user_id: uuid.UUID, profile_id: uuid.UUID, accept: bool
) -> Profile:
    """Accept (the profile becomes an active member) or decline (it is removed) one of the
    user's invitations; 404 for any other id, an answered invitation included."""
    profile = await session.scalar(
        select(Profile).where(*invitations_of(user_id), Profile.id == profile_id)
    )
    if profile is None:
        raise not_found()
    await lock_memberships(session, profile.org_id)
    answered = await session.execute(
        update(Profile)
        .where(
            Profile.org_id == profile.org_id,
            Profile.id == profile_id,
            Profile.membership == Membership.invited,
        )
        .values(membership=Membership.member if accept else Membership.removed, is_active=accept)
        .execution_options(synchronize_session=False)
    )
    if answered.rowcount != 1:  # type: ignore[attr-defined]
        raise not_found()  # withdrawn meanwhile
    await session.refresh(profile)
    return profile


async def register(
    session: AsyncSession, org_name: str, email: str, password: str, name: str | None = None
) -> tuple[Org, User, Profile]:
    """A new user, a new org, and the user as its admin. The password is hashed before the
    first statement, while no database lock is held."""
    password_hash = await hash_password(password)
    if await find_user(session, email) is not None:
        raise ApiError(400, {"email": "A user with this email already exists."})
    user = await create_user(session, email, password_hash, name)
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
