"""Orgs (tenants), users and profiles (a user's membership of an org, with a role)."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, new_uuid, utcnow


class Role(enum.StrEnum):
    admin = "admin"
    user = "user"


class Membership(enum.StrEnum):
    """Where a profile stands: invited (no access until its user accepts), a member (active
    or deactivated by `is_active`), or removed (declined, or ended by an admin: kept, as
    records still name it, but out of the org). Only a member may be active."""

    invited = "invited"
    member = "member"
    removed = "removed"


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # One more with every change of the org's custom field definitions, in the same
    # transaction: a process that keeps the definitions knows from this when to read them
    # again (the token's lookup reads it on every request).
    custom_fields_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # The integer by which the /v2/ dialect knows a user (`creator_id`).
    number: Mapped[int] = mapped_column(Integer, unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Profile(Base):
    __tablename__ = "profiles"
    __table_args__ = (UniqueConstraint("org_id", "user_id"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    membership: Mapped[Membership] = mapped_column(
        Enum(Membership, native_enum=False, length=20),
        default=Membership.member,
        server_default=Membership.member.value,
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def profile_fk(column: str) -> ForeignKeyConstraint:
    """The composite link from a tenant table to a profile of the same org."""
    return ForeignKeyConstraint(["org_id", column], ["profiles.org_id", "profiles.id"])
