"""Bearer tokens: only their SHA-256 is stored."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, ForeignKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, new_uuid, utcnow
from crm.orgs.models import profile_fk


class TokenKind(enum.StrEnum):
    access = "access"
    refresh = "refresh"
    personal = "personal"


READ, WRITE = "read", "write"
FULL_SCOPES = f"{READ} {WRITE}"


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (
        profile_fk("profile_id"),
        ForeignKeyConstraint(["org_id", "parent_id"], ["tokens.org_id", "tokens.id"]),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    profile_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[TokenKind] = mapped_column(Enum(TokenKind, native_enum=False, length=20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # An access token and the refresh token issued with it share a session id, so that
    # logout ends both at once.
    session_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # Every access and refresh token descended from one login, across refreshes, shares a
    # chain id, so that a replayed refresh token ends the whole chain.
    chain_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # The personal token that created this one, if a personal token did: this one expires
    # no later and is revoked with it.
    parent_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # What the token may do, space-separated: "read" (GET and HEAD only) or "read write".
    scopes: Mapped[str] = mapped_column(
        String(100), default=FULL_SCOPES, server_default=FULL_SCOPES
    )
    name: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
