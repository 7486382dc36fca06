"""Every table of the app, so that Base.metadata (and Alembic) sees the whole schema."""

from crm.auth.models import Token
from crm.db import Base
from crm.lead_sources.models import LeadSource
from crm.orgs.models import Org, Profile, User

__all__ = ["Base", "LeadSource", "Org", "Profile", "Token", "User"]
