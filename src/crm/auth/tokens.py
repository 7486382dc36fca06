"""Issuing, finding and revoking bearer tokens. A token is 64 characters [A-Za-z0-9]
(clients of the /v2/ dialect check the length); only its SHA-256 is stored."""

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.models import FULL_SCOPES, WRITE, Token, TokenKind
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
    # The org's custom field definitions as of this request (see crm.customfields.service).
    custom_fields_version: int
    user_name: str | None = None
    token_expires_at: datetime | None = None
    # False for a read-only personal token: GET and HEAD only.
    may_write: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


_token = Token.__table__
_profile = Profile.__table__
_user = User.__table__
_org = Org.__table__

# Built once and in Core: SQLAlchemy keeps its compiled form, so a request pays for neither
# building the statement, its cache key nor the ORM's loading of the rows.
PRINCIPAL_STATEMENT = (
    select(
        _token.c.id,
        _token.c.kind,
        _token.c.session_id,
        _token.c.org_id,
        _token.c.profile_id,
        _token.c.expires_at,
        _token.c.scopes,
        _profile.c.role,
        _user.c.id.label("user_id"),
        _user.c.number,
        _user.c.email,
        _user.c.name.label("user_name"),
        _org.c.name,
        _org.c.custom_fields_version,
    )
    .join(
        _profile,
        (_profile.c.org_id == _token.c.org_id) & (_profile.c.id == _token.c.profile_id),
    )
    .join(_user, _user.c.id == _profile.c.user_id)
    .join(_org, _org.c.id == _token.c.org_id)
    .where(
        _token.c.token_hash == bindparam("token_hash"),
        _token.c.kind != TokenKind.refresh,
        _token.c.revoked_at.is_(None),
        _profile.c.is_active.is_(True),
    )
)


async def find_principal(session: AsyncSession, secret: str) -> Principal | None:
    """The live token's principal, in one indexed lookup on every request (what a token may
    do is never kept between requests: a revoked token is refused at once by every process);
    None for an unknown, expired or revoked token, a deactivated profile, or a refresh token
    (good only for /api/auth/refresh/: a bearer token that lived 14 days would defeat the
    access token's short life)."""
    if len(secret) != TOKEN_LENGTH:
        return None
    result = await session.execute(PRINCIPAL_STATEMENT, {"token_hash": hash_secret(secret)})
    row = result.one_or_none()
    if row is None:
        return None
    if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
        return None
    return Principal(
        token_id=row.id,
        token_kind=row.kind,
        session_id=row.session_id,
        token_expires_at=_aware(row.expires_at) if row.expires_at is not None else None,
        may_write=WRITE in row.scopes.split(),
        org_id=row.org_id,
        org_name=row.name,
        profile_id=row.profile_id,
        role=row.role,
        user_id=row.user_id,
        user_number=row.number,
        email=row.email,
        user_name=row.user_name,
        custom_fields_version=row.custom_fields_version,
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
    parent_id: uuid.UUID | None = None,
    scopes: str = FULL_SCOPES,
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
        parent_id=parent_id,
        scopes=scopes,
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
    """End the token used; for an access token, the refresh token issued with it too; for a
    personal token, the tokens created with it."""
    if principal.session_id is not None:
        await session.execute(
            update(Token)
            .where(
                Token.org_id == principal.org_id,
                Token.session_id == principal.session_id,
                Token.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    else:
        await revoke_with_descendants(session, principal.org_id, Token.id == principal.token_id)


async def revoke_with_descendants(
    session: AsyncSession, org_id: uuid.UUID, *roots: ColumnElement[bool]
) -> int:
    """Revoke the org's live tokens that `roots` select, and every token created with them,
    at any depth (a token created with a personal token is bound to it); the number of
    roots revoked."""
    # Locked: of two revocations of one token at once, the second finds it revoked.
    chosen = (
        select(_token.c.id)
        .where(_token.c.org_id == org_id, _token.c.revoked_at.is_(None), *roots)
        .with_for_update()
    )
    root_ids = list(await session.scalars(chosen))
    if not root_ids:
        return 0
    tree = (
        select(_token.c.id)
        .where(_token.c.org_id == org_id, _token.c.id.in_(root_ids))
        .cte("bound", recursive=True)
    )
    child = _token.alias("child")
    tree = tree.union_all(
        select(child.c.id).where(child.c.org_id == org_id, child.c.parent_id == tree.c.id)
    )
    await session.execute(
        update(Token)
        .where(Token.org_id == org_id, Token.id.in_(select(tree.c.id)), Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return len(root_ids)


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


async def revoke_user_tokens(
    session: AsyncSession, user_id: uuid.UUID, keep: uuid.UUID | None = None
) -> None:
    """End every token of the user, in every org (its password changed), but `keep`."""
    of_user = exists().where(
        Profile.org_id == Token.org_id, Profile.id == Token.profile_id, Profile.user_id == user_id
    )
    await session.execute(
        update(Token)
        .where(of_user, Token.revoked_at.is_(None), *([Token.id != keep] if keep else []))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
