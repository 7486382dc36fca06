"""/api/leads/."""

from crm.leads.spec import LEADS
from crm.records.router import build_router

router = build_router(LEADS)
