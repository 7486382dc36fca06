"""A self-hosted, multi-tenant CRM REST API."""
