"""GET /1/docs/spec (the OpenAPI JSON) and GET /1/docs (a self-contained HTML rendering).

The page is rendered on the server once, from the document itself: no JavaScript, no CDN,
so it works on isolated networks. Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, cast

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem}
h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.method{font-weight:bold;font-family:monospace;margin-right:.5rem}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}
pre{background:#f6f8fa;overflow:auto;padding:.5rem;max-height:30rem}
details{margin:.3rem 0}
"""
# Nothing on the page is fetched or executed; say so to the browser.
_CSP = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def _json_block(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return f"<pre>{escape(text)}</pre>"


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow one ``#/components/...`` reference."""
    target: Any = document
    if "$ref" in node:
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return cast(dict[str, Any], target)
    return node


def _parameters(document: dict[str, Any], parameters: list[dict[str, Any]]) -> str:
    rows = []
    for raw in parameters:
        param = _resolve(document, raw)
        rows.append(
            f"<tr><td><code>{escape(param['name'])}</code></td><td>{escape(param['in'])}</td>"
            f"<td>{'yes' if param.get('required') else 'no'}</td>"
            f"<td><code>{escape(orjson.dumps(param['schema']).decode())}</code></td>"
            f"<td>{escape(param.get('description', ''))}</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th>name</th><th>in</th><th>required</th><th>schema</th>"
            "<th>description</th></tr>" + "".join(rows) + "</table>")


def _operation(document: dict[str, Any], path: str, method: str, op: dict[str, Any],
               path_parameters: list[dict[str, Any]]) -> str:
    parts = [f"<div class='op' id='{escape(op['operationId'])}'>",
             f"<h3><span class='method'>{escape(method.upper())}</span>"
             f"<code>{escape(path)}</code></h3><p>{escape(op.get('summary', ''))}</p>",
             _parameters(document, path_parameters + op.get("parameters", []))]
    for media_type, content in op.get("requestBody", {}).get("content", {}).items():
        schema = _resolve(document, content["schema"])
        parts.append(f"<details><summary>request body ({escape(media_type)})</summary>"
                     f"{_json_block(schema)}</details>")
    for status, response in op["responses"].items():
        parts.append(f"<details><summary>{escape(status)}: "
                     f"{escape(response.get('description', ''))}</summary>")
        for media_type, content in response.get("content", {}).items():
            parts.append(f"<p>{escape(media_type)}</p>"
                         f"{_json_block(_resolve(document, content['schema']))}")
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


def render_html(document: dict[str, Any]) -> str:
    """The whole HTML page for ``document``."""
    info = document["info"]
    body = [f"<h1>{escape(info['title'])} {escape(info['version'])}</h1>",
            f"<p>{escape(info.get('description', ''))}</p>",
            "<p>Machine-readable: <a href='/1/docs/spec'>/1/docs/spec</a></p>"]
    for tag in document.get("tags", []):
        body.append(f"<h2>{escape(tag['name'])}</h2>")
        for path, item in document["paths"].items():
            for method, op in item.items():
                if method != "parameters" and tag["name"] in op.get("tags", []):
                    body.append(_operation(document, path, method, op,
                                           item.get("parameters", [])))
    body.append("<h2>schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        body.append(f"<details id='schema-{escape(name)}'><summary>{escape(name)}</summary>"
                    f"{_json_block(schema)}</details>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{escape(info['title'])} API</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>")


async def spec_endpoint(request: Request) -> Response:
    """GET /1/docs/spec."""
    return Response(request.app.state.openapi_json, media_type="application/json")


async def docs_endpoint(request: Request) -> Response:
    """GET /1/docs."""
    return HTMLResponse(request.app.state.openapi_html, headers=_CSP)
