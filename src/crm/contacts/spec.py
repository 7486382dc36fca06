"""Contacts, declared once."""

import uuid

from crm.accounts.models import Account
from crm.contacts.models import Contact
from crm.records.fields import Required255, Text255
from crm.records.spec import EntitySpec, Link, ReachableIn, register


class ContactIn(ReachableIn):
    first_name: Required255
    last_name: Text255 | None = None
    title: Text255 | None = None
    account: uuid.UUID | None = None


CONTACTS = register(
    EntitySpec(
        Contact,
        ContactIn,
        "contact",
        links=(Link(field="account", column="account_id", target=Account),),
        unique=("email",),
        natural_key="email",
        search=("first_name", "last_name", "email", "phone", "title"),
        filters=("account",),
        ordering=("first_name", "last_name", "email", "title"),
    )
)
