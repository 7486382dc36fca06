"""Accounts, declared once."""

from crm.accounts.models import Account
from crm.records.fields import Required255, Text100, Text255
from crm.records.spec import EntitySpec, ReachableIn, register


class AccountIn(ReachableIn):
    name: Required255
    website: Text255 | None = None
    industry: Text100 | None = None


ACCOUNTS = register(
    EntitySpec(
        Account,
        AccountIn,
        "account",
        unique=("name",),
        natural_key="name",
        search=("name", "email", "phone", "website", "industry"),
        filters=("industry",),
        ordering=("name", "email", "industry"),
    )
)
