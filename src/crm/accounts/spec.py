"""Accounts, declared once."""

from crm.accounts.models import Account
from crm.records.fields import Description, Email, Phone, Required255, Text100, Text255
from crm.records.spec import EntitySpec, RecordIn, register


class AccountIn(RecordIn):
    name: Required255
    email: Email | None = None
    phone: Phone | None = None
    website: Text255 | None = None
    industry: Text100 | None = None
    description: Description | None = None


ACCOUNTS = register(
    EntitySpec(
        name="accounts",
        singular="account",
        model=Account,
        schema=AccountIn,
        search=("name", "email", "phone", "website", "industry"),
        filters=("industry",),
        ordering=("name", "email", "industry"),
        unique=("name",),
        natural_key="name",
    )
)
