"""Serves a FastAPI (or any ASGI/Starlette) app with uvicorn for previewd's launcher, and reads
its route table from the live app: included routers (lazy in recent FastAPI), mounted sub-apps
and WebSocket routes, without FastAPI's own documentation routes."""

import os

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


def serve(args, kit):
    try:
        import uvicorn
    except ImportError as error:
        raise kit.LaunchError("uvicorn is not installed in this environment (%s)" % error, 1)
    app = kit.load_app(args.app, args.factory)
    kit.publish_routes(lambda app, root: asgi_route_table(kit, app, root), app)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        root_path=os.environ.get("PREVIEWD_ROOT_PATH", ""),
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
