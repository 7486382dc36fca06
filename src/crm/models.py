"""Every table of the app, so that Base.metadata (and Alembic) sees the whole schema."""

from crm.auth.models import Token
from crm.customfields.models import CustomField
from crm.db import Base
from crm.lead_sources.models import LeadSource
from crm.leads.models import Lead
from crm.orgs.models import Org, Profile, User

__all__ = ["Base", "CustomField", "Lead", "LeadSource", "Org", "Profile", "Token", "User"]
