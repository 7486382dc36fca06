"""The lead sources service, shared by both dialects."""

import uuid

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm.db import next_numbers, utcnow
from crm.lead_sources.models import DEFAULT_SOURCES, ID_SEQUENCE, LeadSource


async def create_defaults(
    session: AsyncSession, org_id: uuid.UUID, creator_profile_id: uuid.UUID
) -> None:
    """Every new org starts with the default sources."""
    ids = await next_numbers(session, LeadSource.id, ID_SEQUENCE, len(DEFAULT_SOURCES))
    now = utcnow()
    await session.execute(
        insert(LeadSource),
        [
            {
                "org_id": org_id,
                "id": source_id,
                "name": name,
                "resource_type": "lead",
                "created_by_id": creator_profile_id,
                "created_at": now,
                "updated_at": now,
            }
            for source_id, name in zip(ids, DEFAULT_SOURCES, strict=True)
        ],
    )
