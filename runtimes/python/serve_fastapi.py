"""Serves a FastAPI (or any ASGI/Starlette) app with uvicorn for previewd's launcher, and reads
its route table from the live app: included routers (lazy in recent FastAPI), mounted sub-apps
and WebSocket routes, without FastAPI's own documentation routes.

Under previewd's proxy the app is served at `/preview/<id>/`: the proxy strips that prefix and
names it in `X-Forwarded-Prefix`, and `ForwardedPrefix` makes it the request's ASGI `root_path`
(as uvicorn's own `--root-path` would), so the app builds its URLs under it: Swagger UI at
`/docs` loads `/preview/<id>/openapi.json`, whose `servers` is `/preview/<id>`. Requests without
the header (previewd's envelope and health checks) are served at the root, unchanged.
"""

# Attributes of a FastAPI app naming its documentation routes, which are not the user's API.
DOCS_ATTRIBUTES = ("openapi_url", "docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
# The method shown for a WebSocket route.
WEBSOCKET_METHOD = "WEBSOCKET"


def flatten_routes(routes):
    """The routes of one router, with FastAPI's included routers expanded.

    FastAPI >= 0.16x keeps `include_router` lazily as one route that `iter_route_contexts`
    expands (with prefixes and tags merged); older versions copy the routes into `app.routes`.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return list(routes)
    return list(iter_route_contexts(routes))


def original_route(route):
    return getattr(route, "original_route", route)


def docs_paths(app):
    return {getattr(app, attr) for attr in DOCS_ATTRIBUTES if getattr(app, attr, None)}


def unwrap_app(app):
    """Middleware wrappers (`CORSMiddleware(app)`) hide the routes; look through them."""
    for _ in range(32):
        if hasattr(app, "routes") or not hasattr(app, "app"):
            break
        app = app.app
    return app


def asgi_route_table(kit, app, project_root, prefix=""):
    """One entry per method of every HTTP route (FastAPI's and Starlette's), one `WEBSOCKET`
    entry per WebSocket route; mounted sub-apps are walked with their prefix; FastAPI's own
    documentation routes and static-file mounts are left out."""
    from starlette.routing import Mount, Route, WebSocketRoute

    try:
        from fastapi.routing import APIRoute
    except ImportError:
        APIRoute = ()  # a plain Starlette app: isinstance(x, ()) is always False
    app = unwrap_app(app)
    skip = docs_paths(app)
    table = []
    for route in flatten_routes(getattr(app, "routes", None) or []):
        kind = original_route(route)
        path = getattr(route, "path_format", None) or getattr(route, "path", "")
        if isinstance(kind, Mount):
            mount_path = getattr(route, "path", "")
            table.extend(asgi_route_table(kit, route.app, project_root, prefix + mount_path))
            continue
        if isinstance(kind, (Route, WebSocketRoute)) and path in skip:
            continue
        endpoint = getattr(route, "endpoint", None)
        name = getattr(route, "name", None)
        if isinstance(kind, Route):  # FastAPI's APIRoute included
            methods = set(getattr(route, "methods", None) or ["GET"])
            if not isinstance(kind, APIRoute) and "GET" in methods:
                methods.discard("HEAD")  # Starlette adds HEAD to every GET route
            summary = getattr(route, "summary", None)
            description = getattr(route, "description", None)
            tags = getattr(route, "tags", None)
            methods = kit.ordered_methods(methods)
        elif isinstance(kind, WebSocketRoute):
            methods, summary, description, tags = [WEBSOCKET_METHOD], None, None, None
        else:
            continue  # Host routes, FastAPI frontend groups: not part of the API
        table.extend(
            kit.route_entries(
                prefix + path, methods, endpoint, name, summary, description, tags, project_root
            )
        )
    return table


class ForwardedPrefix:
    """ASGI middleware serving each request under the prefix previewd's proxy names.

    With `X-Forwarded-Prefix: /preview/<id>`, the scope gets that `root_path`, so the URLs the
    app builds (`request.url_for`, redirects, Swagger UI's) carry it. The proxy keeps the
    browser's `Host`, and uvicorn has already applied `X-Forwarded-For` and `-Proto` (it trusts
    previewd's address), so absolute URLs point where the browser is.

    `path_has_root`: whether `path` and `raw_path` must start with the root path too. That is
    the ASGI spec's reading, which uvicorn follows for its own `--root-path` and Starlette
    >= 0.35 expects (its routing strips the root path again); older Starlette routes on `path`
    as it is and adds the root path itself when it builds URLs.
    """

    def __init__(self, app, path_has_root):
        self.app = app
        self.path_has_root = path_has_root

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = forwarded_scope(scope, self.path_has_root)
        await self.app(scope, receive, send)


def forwarded_scope(scope, path_has_root):
    """The scope as the browser addressed it, or `scope` itself without a usable prefix."""
    prefix = None
    for name, value in scope["headers"]:
        if name == b"x-forwarded-prefix":
            prefix = value.decode("latin-1").strip().rstrip("/")
    if not prefix or not prefix.startswith("/") or prefix.startswith("//"):
        return scope
    scope = dict(scope)
    scope["root_path"] = prefix + scope.get("root_path", "")
    if path_has_root:
        scope["path"] = prefix + scope["path"]
        if scope.get("raw_path") is not None:
            scope["raw_path"] = prefix.encode("latin-1") + scope["raw_path"]
    return scope


def starlette_strips_root_path():
    """False for Starlette before 0.35, which routes on the whole `path`; True otherwise (a
    recent Starlette, or an ASGI app that is not Starlette's, for which the spec's reading
    holds)."""
    try:
        import starlette  # noqa: F401
    except ImportError:
        return True
    try:
        from starlette._utils import get_route_path  # noqa: F401
    except ImportError:
        return False
    return True


def serve(args, kit):
    try:
        import uvicorn
    except ImportError as error:
        raise kit.LaunchError("uvicorn is not installed in this environment (%s)" % error, 1)
    app = kit.load_app(args.app, args.factory)
    kit.publish_routes(lambda app, root: asgi_route_table(kit, app, root), app)
    config = uvicorn.Config(
        ForwardedPrefix(app, starlette_strips_root_path()),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=True,
        lifespan="auto",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise kit.LaunchError("the server did not start (see the log above)", 3)
    return 0
