"""The opportunities table, and the link table of the contacts each one involves."""

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base
from crm.records.models import Money, RecordMixin, link_fk, record_table_args

STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")


class Opportunity(RecordMixin, Base):
    __tablename__ = "opportunities"

    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[uuid.UUID | None] = mapped_column()
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stage: Mapped[str] = mapped_column(String(20), default="prospecting")
    probability: Mapped[int | None] = mapped_column(Integer)
    close_date: Mapped[date | None] = mapped_column(Date)
    source_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = record_table_args(
        "opportunities",
        link_fk("account_id", "accounts"),
        link_fk("source_id", "lead_sources"),
        Index("ix_opportunities_org_id_account_id", "org_id", "account_id"),
        Index("ix_opportunities_org_id_stage", "org_id", "stage"),
    )


class OpportunityContact(Base):
    """One contact an opportunity involves."""

    __tablename__ = "opportunity_contacts"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    opportunity_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    __table_args__ = (
        link_fk("opportunity_id", "opportunities"),
        link_fk("contact_id", "contacts"),
        Index("ix_opportunity_contacts_org_id_contact_id", "org_id", "contact_id"),
    )
