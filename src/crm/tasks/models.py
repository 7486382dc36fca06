"""The tasks table: things to do, each about at most one lead, contact, account or
opportunity."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base
from crm.records.models import RecordMixin, link_fk, record_table_args

STATUSES = ("new", "in_progress", "completed")
PRIORITIES = ("low", "medium", "high")
# A task's possible parent, and its table.
PARENTS = {
    "lead": "leads",
    "contact": "contacts",
    "account": "accounts",
    "opportunity": "opportunities",
}


def at_most_one(*columns: str) -> CheckConstraint:
    set_count = " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in columns)
    return CheckConstraint(f"{set_count} <= 1", name="one_parent")


class Task(RecordMixin, Base):
    __tablename__ = "tasks"

    title: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="new")
    priority: Mapped[str] = mapped_column(String(20), default="medium")
    due_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lead_id: Mapped[uuid.UUID | None] = mapped_column()
    contact_id: Mapped[uuid.UUID | None] = mapped_column()
    account_id: Mapped[uuid.UUID | None] = mapped_column()
    opportunity_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = record_table_args(
        "tasks",
        *(link_fk(f"{parent}_id", table) for parent, table in PARENTS.items()),
        *(Index(f"ix_tasks_org_id_{p}_id", "org_id", f"{p}_id") for p in PARENTS),
        Index("ix_tasks_org_id_status", "org_id", "status"),
        at_most_one(*(f"{parent}_id" for parent in PARENTS)),
    )
