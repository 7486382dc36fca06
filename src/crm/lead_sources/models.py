"""Lead sources: org configuration with integer ids (the /v2/ dialect's)."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, folded_copy, utcnow
from crm.orgs.models import profile_fk

DEFAULT_SOURCES = (
    "website_form",
    "call",
    "email",
    "existing_customer",
    "partner",
    "public_relations",
    "campaign",
    "other",
)


class LeadSource(Base):
    __tablename__ = "lead_sources"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    name_folded: Mapped[str | None] = folded_copy()
    resource_type: Mapped[str] = mapped_column(String(20), default="lead")
    created_by_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        profile_fk("created_by_id"),
        Index("uq_lead_sources_org_id_name", "org_id", "name_folded", unique=True),
        Index("uq_lead_sources_id", "id", unique=True),
    )
