"""Absolute URLs in answers (the pages of a list): built here only, on CRM_PUBLIC_URL when
it is set, so that a forged Host header cannot steer where clients follow them."""

from starlette.requests import Request

from crm.config import app_settings


def absolute_url(request: Request, **params: int | str) -> str:
    """The request's own URL, with `params` replacing those query parameters."""
    url = request.url.include_query_params(**params) if params else request.url
    public = app_settings(request).public_url
    if public is None:
        return str(url)
    return public + url.path + (f"?{url.query}" if url.query else "")
