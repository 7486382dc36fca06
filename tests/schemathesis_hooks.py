"""Schemathesis hooks (SCHEMATHESIS_HOOKS): every case runs as the admin of an org.

A fresh org is registered for the first case, and again whenever a case answers 401
(schemathesis then fetches a token anew and replays the case): the fuzzer may log out, revoke
or deactivate the admin it runs as, and each is a legitimate answer, not the end of the run."""

import uuid
from typing import Any

import httpx
import schemathesis

PASSWORD = "correct-horse-battery"


@schemathesis.auth(refresh_interval=3600)
class FreshAdmin:
    def get(self, case: Any, context: Any) -> str:
        base_url = context.operation.schema.get_base_url().rstrip("/")
        response = httpx.post(
            f"{base_url}/api/auth/register/",
            json={
                "org_name": "Fuzz",
                "email": f"fuzz-{uuid.uuid4().hex[:12]}@example.com",
                "password": PASSWORD,
            },
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
