"""Leads, declared once: the shared record machinery builds their endpoints from this."""

from typing import Literal

from pydantic import Field

from crm.accounts.models import Account
from crm.contacts.models import Contact
from crm.lead_sources.models import LeadSource
from crm.leads.models import STATUSES, Lead
from crm.opportunities.models import Opportunity
from crm.records.fields import Required255, Text100, Text255
from crm.records.spec import EntitySpec, Link, ReachableIn, register

Status = Literal["new", "assigned", "in_process", "qualified", "recycled", "closed", "converted"]


class LeadIn(ReachableIn):
    title: Required255
    first_name: Text100 | None = None
    last_name: Text100 | None = None
    company_name: Text255 | None = None
    status: Status = "new"
    source: Text255 | None = Field(default=None, description="The name of a lead source.")


LEADS = register(
    EntitySpec(
        Lead,
        LeadIn,
        "lead",
        links=(
            Link(field="source", column="source_id", target=LeadSource, by="name"),
            # Set by convert only (read-only), and read as null while the record is deleted.
            Link(field="converted_account", column="converted_account_id", target=Account),
            Link(field="converted_contact", column="converted_contact_id", target=Contact),
            Link(
                field="converted_opportunity",
                column="converted_opportunity_id",
                target=Opportunity,
            ),
        ),
        read_only=(
            "converted_at",
            "converted_account",
            "converted_contact",
            "converted_opportunity",
        ),
        unique=("email",),
        natural_key="email",
        search=("title", "first_name", "last_name", "email", "company_name", "phone"),
        filters=("status", "source"),
        ordering=("title", "first_name", "last_name", "email", "company_name", "status"),
        choices={"status": STATUSES},
        server_set={"status": {"converted": "converting the lead"}},
        example={
            "title": "Acme renewal interest",
            "first_name": "Jane",
            "last_name": "Doe",
            "email": "jane@acme.com",
            "phone": "+1 555 1234",
            "status": "new",
            "source": "website_form",  # one of a new org's sources
            "tags": ["renewal"],
        },
    )
)
