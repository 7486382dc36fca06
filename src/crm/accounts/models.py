"""The accounts table: the companies a team sells to."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, folded_copy
from crm.records.models import Reachable, RecordMixin, unique_live


class Account(Reachable, RecordMixin, Base):
    __tablename__ = "accounts"

    name: Mapped[str] = mapped_column(String(255))
    name_folded: Mapped[str | None] = folded_copy()
    website: Mapped[str | None] = mapped_column(String(255))
    industry: Mapped[str | None] = mapped_column(String(100))


unique_live(Account, "name")
