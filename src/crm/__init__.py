"""A self-hosted, multi-tenant CRM REST API."""

from importlib.metadata import version

# The one place the version is read: the installed package's metadata (pyproject.toml's).
VERSION = version("crm")
