"""The leads table."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, folded_copy
from crm.records.models import Reachable, RecordMixin, link_fk, record_table_args, unique_live

STATUSES = ("new", "assigned", "in_process", "qualified", "recycled", "closed", "converted")


class Lead(Reachable, RecordMixin, Base):
    __tablename__ = "leads"

    title: Mapped[str] = mapped_column(String(255))
    email_folded: Mapped[str | None] = folded_copy()
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="new")
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    converted_account_id: Mapped[uuid.UUID | None] = mapped_column()
    converted_contact_id: Mapped[uuid.UUID | None] = mapped_column()
    converted_opportunity_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = record_table_args(
        "leads",
        link_fk("source_id", "lead_sources"),
        link_fk("converted_account_id", "accounts"),
        link_fk("converted_contact_id", "contacts"),
        link_fk("converted_opportunity_id", "opportunities"),
        Index("ix_leads_org_id_status", "org_id", "status"),
        Index("ix_leads_org_id_source_id", "org_id", "source_id"),
    )


unique_live(Lead, "email")
