"""The accounts table: the companies a team sells to."""

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base
from crm.records.models import RecordMixin, record_table_args, unique_live


class Account(RecordMixin, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))
    website: Mapped[str | None] = mapped_column(String(255))
    industry: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)

    __table_args__ = record_table_args("accounts", unique_live("accounts", "name", name))
