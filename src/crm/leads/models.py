"""The leads table."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKeyConstraint, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, folded
from crm.records.models import RecordMixin, record_table_args

STATUSES = ("new", "assigned", "in_process", "qualified", "recycled", "closed", "converted")


class Lead(RecordMixin, Base):
    __tablename__ = "leads"

    title: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))
    company_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="new")
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    converted_account_id: Mapped[uuid.UUID | None] = mapped_column()
    converted_contact_id: Mapped[uuid.UUID | None] = mapped_column()
    converted_opportunity_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = record_table_args(
        "leads",
        ForeignKeyConstraint(["org_id", "source_id"], ["lead_sources.org_id", "lead_sources.id"]),
        Index("ix_leads_org_id_status", "org_id", "status"),
        Index("ix_leads_org_id_source_id", "org_id", "source_id"),
        # Email is unique in the org among live leads, whatever its case.
        Index(
            "uq_leads_org_id_email",
            "org_id",
            folded(email),
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
