"""Contacts, declared once."""

import uuid

from crm.accounts.models import Account
from crm.contacts.models import Contact
from crm.records.fields import Description, Email, Phone, Required255, Text255
from crm.records.spec import EntitySpec, Link, RecordIn, register


class ContactIn(RecordIn):
    first_name: Required255
    last_name: Text255 | None = None
    email: Email | None = None
    phone: Phone | None = None
    title: Text255 | None = None
    account: uuid.UUID | None = None
    description: Description | None = None


CONTACTS = register(
    EntitySpec(
        name="contacts",
        singular="contact",
        model=Contact,
        schema=ContactIn,
        search=("first_name", "last_name", "email", "phone", "title"),
        filters=("account",),
        ordering=("first_name", "last_name", "email", "title"),
        links=(Link(field="account", column="account_id", target=Account),),
        unique=("email",),
        natural_key="email",
    )
)
