"""Custom field definitions: per org and entity, the keys a record's custom_fields may hold."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import Base, new_uuid, utcnow

# The entities custom fields are defined for, named in the singular.
ENTITIES = ("lead", "contact", "account", "opportunity", "task")


class FieldType(enum.StrEnum):
    text = "text"
    number = "number"
    date = "date"
    checkbox = "checkbox"
    dropdown = "dropdown"


class CustomField(Base):
    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("org_id", "entity", "key"),)

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    entity: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(63))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[FieldType] = mapped_column(String(20))
    options: Mapped[list[str] | None] = mapped_column(JSON)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    filterable: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
