"""The dependencies that authenticate a request: CurrentPrincipal and AdminPrincipal."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request

from crm.auth.tokens import Principal, find_principal
from crm.db import SessionDep
from crm.errors import forbidden, unauthorized
from crm.ratelimit import limit_unknown_token

# What a token of the "read" scope alone may send.
READ_METHODS = frozenset({"GET", "HEAD"})

_bearer = HTTPBearer(auto_error=False, description="A 64-character access or personal token.")


async def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise unauthorized()
    principal = await find_principal(session, credentials.credentials)
    if principal is None:
        await limit_unknown_token(request)
        raise unauthorized("The token is unknown, expired or revoked.")
    request.state.principal = principal
    if not principal.may_write and request.method not in READ_METHODS:
        raise forbidden("This token is read-only: GET and HEAD only.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.is_admin:
        raise forbidden("Only an admin of the org may do this.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
