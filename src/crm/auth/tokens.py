"""Issuing, finding and revoking bearer tokens. A token is 64 characters [A-Za-z0-9]
(clients of the /v2/ dialect check the length); only its SHA-256 is stored."""

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.models import Token, TokenKind
from crm.config import Settings
from crm.db import new_uuid, utcnow
from crm.orgs.models import Org, Profile, Role, User

TOKEN_LENGTH = 64
_ALPHABET = string.ascii_letters + string.digits


def new_secret() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who makes the request: the token's profile, its user and its org."""

    token_id: uuid.UUID
    token_kind: TokenKind
    session_id: uuid.UUID | None
    org_id: uuid.UUID
    org_name: str
    profile_id: uuid.UUID
    role: Role
    user_id: uuid.UUID
    user_number: int
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


async def find_principal(session: AsyncSession, secret: str) -> Principal | None:
    """The live token's principal, in one indexed lookup; None for an unknown, expired or
    revoked token, a deactivated profile, or a refresh token (good only for
    /api/auth/refresh/: a bearer token that lived 14 days would defeat the access token's
    short life)."""
    if len(secret) != TOKEN_LENGTH:
        return None
    row = (
        await session.execute(
            select(Token, Profile.role, Profile.is_active, User, Org.name)
            .join(Profile, (Profile.org_id == Token.org_id) & (Profile.id == Token.profile_id))
            .join(User, User.id == Profile.user_id)
            .join(Org, Org.id == Token.org_id)
            .where(Token.token_hash == hash_secret(secret), Token.kind != TokenKind.refresh)
        )
    ).one_or_none()
    if row is None:
        return None
    token, role, is_active, user, org_name = row
    if token.revoked_at is not None or not is_active:
        return None
    if token.expires_at is not None and _aware(token.expires_at) <= utcnow():
        return None
    return Principal(
        token_id=token.id,
        token_kind=token.kind,
        session_id=token.session_id,
        org_id=token.org_id,
        org_name=org_name,
        profile_id=token.profile_id,
        role=role,
        user_id=user.id,
        user_number=user.number,
        email=user.email,
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


async def issue_token(
    session: AsyncSession,
    org_id: uuid.UUID,
    profile_id: uuid.UUID,
    kind: TokenKind,
    expires_at: datetime | None,
    session_id: uuid.UUID | None = None,
    name: str | None = None,
    chain_id: uuid.UUID | None = None,
) -> tuple[Token, str]:
    secret = new_secret()
    token = Token(
        id=new_uuid(),
        org_id=org_id,
        profile_id=profile_id,
        kind=kind,
        token_hash=hash_secret(secret),
        session_id=session_id,
        chain_id=chain_id,
        name=name,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(token)
    await session.flush()
    return token, secret


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


async def issue_pair(
    session: AsyncSession,
    settings: Settings,
    org_id: uuid.UUID,
    profile_id: uuid.UUID,
    chain_id: uuid.UUID | None = None,
) -> TokenPair:
    """A new access and refresh token; of a new chain at login, of the refreshed token's
    chain at a refresh."""
    now = utcnow()
    pair_id = new_uuid()
    chain_id = chain_id or new_uuid()
    _, access = await issue_token(
        session,
        org_id,
        profile_id,
        TokenKind.access,
        now + timedelta(seconds=settings.access_token_seconds),
        pair_id,
        chain_id=chain_id,
    )
    _, refresh = await issue_token(
        session,
        org_id,
        profile_id,
        TokenKind.refresh,
        now + timedelta(seconds=settings.refresh_token_seconds),
        pair_id,
        chain_id=chain_id,
    )
    return TokenPair(access, refresh, settings.access_token_seconds)


async def use_refresh_token(session: AsyncSession, secret: str) -> Token | None:
    """Mark a live refresh token used and return it; None if it cannot be used. A used or
    revoked one presented again is the sign of a stolen token (its thief or its owner used
    it first): every token of its chain is revoked (refresh-token reuse detection). The
    conditional UPDATE makes two concurrent uses of one token one use and one replay."""
    token = await session.scalar(
        select(Token).where(
            Token.token_hash == hash_secret(secret), Token.kind == TokenKind.refresh
        )
    )
    if token is None:
        return None
    if token.revoked_at is not None:
        await revoke_chain(session, token)
        return None
    if token.expires_at is None or _aware(token.expires_at) <= utcnow():
        return None
    claimed = await session.execute(
        update(Token)
        .where(Token.org_id == token.org_id, Token.id == token.id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        await revoke_chain(session, token)
        return None
    return token


async def revoke_chain(session: AsyncSession, token: Token) -> None:
    """Every token descended from the login that issued this one."""
    # A token without a chain stands alone (`chain_id == None` would match every such token).
    scope = Token.chain_id == token.chain_id if token.chain_id is not None else Token.id == token.id
    await session.execute(
        update(Token)
        .where(Token.org_id == token.org_id, scope, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def revoke_for_logout(session: AsyncSession, principal: Principal) -> None:
    """End the token used; for an access token, the refresh token issued with it too."""
    scope = (
        Token.session_id == principal.session_id
        if principal.session_id is not None
        else Token.id == principal.token_id
    )
    await session.execute(
        update(Token)
        .where(Token.org_id == principal.org_id, scope, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def revoke_profile_tokens(
    session: AsyncSession, org_id: uuid.UUID, profile_id: uuid.UUID
) -> None:
    """End every token of a profile being deactivated, so that re-activating it later does
    not bring them back: its member logs in again."""
    await session.execute(
        update(Token)
        .where(Token.org_id == org_id, Token.profile_id == profile_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
