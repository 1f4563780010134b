"""/docs works offline: the page and everything it loads come from this server."""

from __future__ import annotations

import re

import httpx


async def test_docs_page_and_its_assets_are_served_locally(app) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        page = await c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        refs = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert sorted(refs) == [
            "/docs/assets/favicon.png",
            "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/swagger-ui.css",
            "/openapi.json",
        ]
        assert "cdn" not in html.lower() and '"validatorUrl": null' in html
        kinds = {}
        for ref in refs:
            r = await c.get(ref)
            assert r.status_code == 200, ref
            kinds[ref] = r.headers["content-type"].split(";")[0]
        assert kinds["/docs/assets/swagger-ui-bundle.js"] in ("text/javascript", "application/javascript")
        assert kinds["/docs/assets/swagger-ui.css"] == "text/css"
        spec = (await c.get("/openapi.json")).json()
        assert "/v1/assistants" in spec["paths"] and "/v1/models" in spec["paths"]
