"""Every table of the app, so that Base.metadata (and Alembic) sees the whole schema: the
entities' specs too, which declare the indexes of the fields their lists order by."""

import crm.accounts.spec
import crm.contacts.spec
import crm.leads.spec
import crm.opportunities.spec
import crm.tasks.spec  # noqa: F401
from crm.accounts.models import Account
from crm.auth.models import Token
from crm.contacts.models import Contact
from crm.customfields.models import CustomField
from crm.db import Base
from crm.lead_sources.models import LeadSource
from crm.leads.models import Lead
from crm.opportunities.models import Opportunity, OpportunityContact
from crm.orgs.models import Org, Profile, User
from crm.records.models import Upload
from crm.tasks.models import Task

__all__ = [
    "Account",
    "Base",
    "Contact",
    "CustomField",
    "Lead",
    "LeadSource",
    "Opportunity",
    "OpportunityContact",
    "Org",
    "Profile",
    "Task",
    "Token",
    "Upload",
    "User",
]
