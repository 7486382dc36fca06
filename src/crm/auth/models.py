"""Bearer tokens: only their SHA-256 is stored."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, new_uuid, utcnow
from crm.orgs.models import profile_fk


class TokenKind(enum.StrEnum):
    access = "access"
    refresh = "refresh"
    personal = "personal"


class Token(Base):
    __tablename__ = "tokens"
    __table_args__ = (profile_fk("profile_id"),)

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
    name: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
