"""The contacts table: people, each perhaps at an account."""

import uuid

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, folded_copy
from crm.records.models import Reachable, RecordMixin, link_fk, record_table_args, unique_live


class Contact(Reachable, RecordMixin, Base):
    __tablename__ = "contacts"

    first_name: Mapped[str] = mapped_column(String(255))
    email_folded: Mapped[str | None] = folded_copy()
    last_name: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255))
    account_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = record_table_args(
        "contacts",
        link_fk("account_id", "accounts"),
        Index("ix_contacts_org_id_account_id", "org_id", "account_id"),
    )


unique_live(Contact, "email")
