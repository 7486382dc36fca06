"""Opportunities, declared once."""

import uuid
from typing import Annotated, Literal

from pydantic import Field

from crm.accounts.models import Account
from crm.contacts.models import Contact
from crm.lead_sources.models import LeadSource
from crm.opportunities.models import STAGES, Opportunity, OpportunityContact
from crm.records.fields import (
    CURRENCIES,
    Amount,
    Currency,
    IsoDate,
    Percent,
    Required255,
    Text255,
)
from crm.records.spec import EntitySpec, Link, ManyLink, RecordIn, register

Stage = Literal[
    "prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"
]


class OpportunityIn(RecordIn):
    name: Required255
    account: uuid.UUID | None = None
    contacts: Annotated[list[uuid.UUID], Field(max_length=100)] = Field(default_factory=list)
    amount: Amount | None = None
    currency: Currency = "USD"
    stage: Stage = "prospecting"
    probability: Percent | None = None
    close_date: IsoDate | None = None
    source: Text255 | None = Field(default=None, description="The name of a lead source.")


OPPORTUNITIES = register(
    EntitySpec(
        Opportunity,
        OpportunityIn,
        "opportunity",
        links=(
            Link(field="account", column="account_id", target=Account),
            Link(field="source", column="source_id", target=LeadSource, by="name"),
        ),
        many=(
            ManyLink(
                field="contacts",
                table=OpportunityContact,
                owner="opportunity_id",
                target_column="contact_id",
                target=Contact,
            ),
        ),
        search=("name", "description"),
        filters=("stage", "account", "source", "currency"),
        ordering=("name", "amount", "stage", "probability", "close_date"),
        choices={"stage": STAGES, "currency": tuple(sorted(CURRENCIES))},
    )
)
