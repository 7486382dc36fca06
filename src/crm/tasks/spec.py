"""Tasks, declared once."""

import uuid
from typing import Literal

from crm.accounts.models import Account
from crm.contacts.models import Contact
from crm.leads.models import Lead
from crm.opportunities.models import Opportunity
from crm.records.fields import IsoDateTime, Required255
from crm.records.spec import EntitySpec, Link, RecordIn, register
from crm.tasks.models import PARENTS, PRIORITIES, STATUSES, Task


class TaskIn(RecordIn):
    title: Required255
    status: Literal["new", "in_progress", "completed"] = "new"
    priority: Literal["low", "medium", "high"] = "medium"
    due_date: IsoDateTime | None = None
    lead: uuid.UUID | None = None
    contact: uuid.UUID | None = None
    account: uuid.UUID | None = None
    opportunity: uuid.UUID | None = None


PARENT_MODELS = {"lead": Lead, "contact": Contact, "account": Account, "opportunity": Opportunity}

TASKS = register(
    EntitySpec(
        Task,
        TaskIn,
        "task",
        links=tuple(
            Link(field=parent, column=f"{parent}_id", target=model)
            for parent, model in PARENT_MODELS.items()
        ),
        exclusive=tuple(PARENTS),
        search=("title", "description"),
        filters=("status", "priority", *PARENTS),
        ordering=("title", "status", "priority", "due_date"),
        choices={"status": STATUSES, "priority": PRIORITIES},
    )
)
