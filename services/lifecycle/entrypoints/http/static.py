"""What the service serves from its package, no build step and no external
scripts: the partner's Leads page and the message contract (AsyncAPI) as a
document and as a page."""

from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import HTMLResponse

from services.lifecycle.entrypoints.http.openapi import PUBLIC

_WEB = files("services.lifecycle.entrypoints") / "web"
_PAGE_ASSETS = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_PAGE_HEADERS = {
    # Scripts and styles from this origin only; the page talks to this API only.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def add_contract_routes(router: APIRouter, asyncapi: dict[str, Any]) -> None:
    """The AsyncAPI document, and a page rendering it with the official AsyncAPI
    component, served from the package so that it works offline."""
    page = (_WEB / "asyncapi.html").read_text().replace("{{TITLE}}", asyncapi["info"]["title"])
    assets = {
        name: (media, (_WEB / "asyncapi" / name).read_bytes())
        for name, media in (("standalone.js", "text/javascript"), ("default.min.css", "text/css"))
    }

    @router.get(
        "/asyncapi.json",
        tags=["contract"],
        operation_id="getAsyncApi",
        summary="The AsyncAPI 3.0 document",
        openapi_extra=PUBLIC,
    )
    async def asyncapi_document() -> dict[str, Any]:
        """What the service consumes and publishes on Kafka: channels, messages, headers."""
        return asyncapi

    @router.get(
        "/asyncapi",
        tags=["contract"],
        operation_id="getAsyncApiPage",
        summary="The AsyncAPI document as a page",
        openapi_extra=PUBLIC,
        response_class=HTMLResponse,
    )
    async def asyncapi_page() -> HTMLResponse:
        """The AsyncAPI document rendered for reading in a browser (no external scripts)."""
        return HTMLResponse(page)

    _files(router, "/asyncapi/{asset}", assets, "max-age=3600")


def add_page_routes(router: APIRouter) -> None:
    """The partner's Leads page: static files shipped in the package."""
    folder = _WEB / "leads"
    page = (folder / "index.html").read_bytes()
    assets = {
        item.name: (_PAGE_ASSETS[suffix], item.read_bytes())
        for item in folder.iterdir()
        if (suffix := "." + item.name.rpartition(".")[2]) in _PAGE_ASSETS
    }

    @router.get(
        "/",
        tags=["page"],
        operation_id="getLeadsPage",
        summary="The partner's Leads page",
        openapi_extra=PUBLIC,
        response_class=HTMLResponse,
    )
    async def leads_page() -> HTMLResponse:
        """Tabs, filters, a lead's detail and the actions its stage allows. Signs in with
        a bearer token passed in the URL fragment (`/#token=...`), kept in sessionStorage."""
        return HTMLResponse(page, headers=_PAGE_HEADERS)

    _files(router, "/leads/{asset}", assets, "no-cache")


def _files(
    router: APIRouter, path: str, assets: Mapping[str, tuple[str, bytes]], cache_control: str
) -> None:
    """Serves these files (name: media type and content) at `path`, out of the OpenAPI
    document; any other name is 404."""

    @router.get(path, include_in_schema=False)
    async def asset_file(asset: str) -> Response:
        if asset not in assets:
            raise HTTPException(404, "no such file")
        media, content = assets[asset]
        return Response(content, media_type=media, headers={"Cache-Control": cache_control})
