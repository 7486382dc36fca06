"""Leads, declared once: the shared record machinery builds their endpoints from this."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from crm.lead_sources.models import LeadSource
from crm.leads.models import STATUSES, Lead
from crm.records.spec import Email, EntitySpec, Link, RecordIn, register

Text255 = Annotated[str, StringConstraints(max_length=255)]
Name = Annotated[str, StringConstraints(max_length=100)]
Status = Literal["new", "assigned", "in_process", "qualified", "recycled", "closed", "converted"]


class LeadIn(RecordIn):
    title: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(max_length=50)] | None = None
    company_name: Text255 | None = None
    status: Status = "new"
    source: Text255 | None = Field(default=None, description="The name of a lead source.")
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None

    @field_validator("status")
    @classmethod
    def not_converted(cls, value: str | None) -> str | None:
        if value == "converted":
            raise ValueError("'converted' is set only by converting the lead.")
        return value


LEADS = register(
    EntitySpec(
        name="leads",
        singular="lead",
        model=Lead,
        schema=LeadIn,
        search=("title", "first_name", "last_name", "email", "company_name", "phone"),
        filters=("status", "source"),
        ordering=(
            "title",
            "first_name",
            "last_name",
            "email",
            "company_name",
            "status",
        ),
        links=(Link(field="source", column="source_id", target=LeadSource, by="name"),),
        read_only=(
            "converted_at",
            "converted_account",
            "converted_contact",
            "converted_opportunity",
        ),
        unique=("email",),
        natural_key="email",
        choices={"status": STATUSES},
    )
)
