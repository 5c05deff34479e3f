"""Serves a Flask (or any WSGI) app with waitress for previewd's launcher, and reads its route
table from the live app's URL map.

waitress is a production WSGI server in pure Python: no reloader, no debugger, a clean exit on
SIGTERM (the launcher turns the signal into SystemExit). It logs no access lines itself, so the
app is wrapped in `AccessLog`, which prints one line per request to stdout. Under previewd's
proxy, `X-Forwarded-Prefix` becomes the request's SCRIPT_NAME (the launcher's
`WSGIForwardedPrefix`) and waitress applies `X-Forwarded-Host/-Proto/-For` from previewd's
address, so `url_for` builds the URLs the browser uses, `_external=True` included. An
unguarded `app.run()` in the user's module is a no-op, as under `flask run`.

The route table follows what previewd's static extraction (plugins/flask) can see, so both
agree: one entry per declared method (the HEAD Werkzeug adds to every GET rule and Flask's
automatic OPTIONS left out), `<int:id>` as `{id}`, static-file routes left out, the blueprint's
full name as the tag, and for class-based views one entry per method located at its handler
(`def get`, else `dispatch_request`, else the class). Summary and description: the handler's
docstring, first line and the rest.
"""

import inspect
import os
import re
import sys
import time

# Werkzeug's variable syntax in a rule: <converter(arguments):name> or <name>.
RULE_VARIABLE = re.compile(
    r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\((?:.*?)\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>"
)
# How the static-file rules Flask adds for the app and for blueprints end.
STATIC_RULE_SUFFIX = "/<path:filename>"
# Classes whose methods are Flask's own, not the user's handlers.
FLASK_VIEW_MODULES = ("flask.views",)
# Proxy headers trusted from previewd's reverse proxy on the loopback address.
TRUSTED_PROXY = "127.0.0.1"
TRUSTED_PROXY_HEADERS = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}


def declared_methods(rule):
    """The methods a rule declares, without the ones Flask and Werkzeug add on their own."""
    methods = set(rule.methods or ())
    if "GET" in methods:
        methods.discard("HEAD")  # Werkzeug adds HEAD to every GET rule
    if getattr(rule, "provide_automatic_options", False):
        methods.discard("OPTIONS")  # Flask answers OPTIONS itself unless it was declared
    return methods


def is_static_route(rule):
    """The static-file route Flask adds for the app (`static`) or a blueprint (`bp.static`)."""
    endpoint = rule.endpoint
    return (endpoint == "static" or endpoint.endswith(".static")) and rule.rule.endswith(
        STATIC_RULE_SUFFIX
    )


def class_attribute(view_class, name):
    """`name` as the class or a base defines it, skipping Flask's own view classes."""
    for klass in inspect.getmro(view_class):
        if getattr(klass, "__module__", None) in FLASK_VIEW_MODULES:
            continue
        if name in vars(klass):
            return getattr(view_class, name)
    return None


def view_handler(view, method):
    """The function handling `method` for a view function or a class-based view."""
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return view
    return (
        class_attribute(view_class, method.lower())
        or class_attribute(view_class, "dispatch_request")
        or view_class
    )


def summary_and_description(handler):
    """The cleaned docstring's first line and the rest, each stripped, None when empty."""
    try:
        target = inspect.unwrap(handler)
    except ValueError:
        target = handler
    doc = getattr(target, "__doc__", None)
    if not isinstance(doc, str):
        return None, None
    first, _, rest = inspect.cleandoc(doc).partition("\n")
    return first.strip() or None, rest.strip() or None


def route_table(kit, app, project_root):
    """One entry per declared method of every URL rule of a Flask app."""
    table = []
    blueprints = getattr(app, "blueprints", {}) or {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        if is_static_route(rule):
            continue
        path = RULE_VARIABLE.sub(r"{\1}", rule.rule)
        blueprint = rule.endpoint.rpartition(".")[0]
        tags = [blueprint] if blueprint in blueprints else []
        for method in kit.ordered_methods(declared_methods(rule)):
            handler = view_handler(view, method)
            entries = kit.route_entries(
                path, [method], handler, None, None, None, tags, project_root
            )
            summary, description = summary_and_description(handler)
            for entry in entries:
                entry["summary"] = summary
                entry["description"] = description
            table.extend(entries)
    return table


class AccessLog:
    """WSGI middleware printing one line per request to stdout, when its response is done:
    `127.0.0.1 "GET /items/1?x=2 HTTP/1.1" 200 12.3ms`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        started = time.monotonic()
        status = []

        def recording_start_response(status_line, headers, exc_info=None):
            status[:] = [status_line.split(" ", 1)[0]]
            return start_response(status_line, headers, exc_info)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            log_request(environ, "500", started)
            raise
        return LoggedBody(body, lambda: log_request(environ, (status or ["-"])[0], started))


class LoggedBody:
    """A response body that logs its request once the server closes it."""

    def __init__(self, body, on_close):
        self.body = body
        self.on_close = on_close

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.on_close()


def log_request(environ, status, started):
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    if query:
        path += "?" + query
    print(
        '%s "%s %s %s" %s %.1fms'
        % (
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "-"),
            path,
            environ.get("SERVER_PROTOCOL", "-"),
            status,
            (time.monotonic() - started) * 1000,
        ),
        flush=True,
    )


def serve(args, kit):
    try:
        import waitress
    except ImportError as error:
        raise kit.LaunchError("waitress is not installed in this environment (%s)" % error, 1)
    # Flask's own CLI sets this so that an unguarded `app.run()` in the user's module returns
    # at once (with a notice) instead of starting the development server on another port.
    os.environ["FLASK_RUN_FROM_CLI"] = "true"
    app = kit.load_app(args.app, args.factory)
    if not callable(app):
        raise kit.LaunchError(
            "%s is a %s, not a WSGI app" % (args.app, type(app).__name__), 1
        )
    if hasattr(app, "url_map"):
        kit.publish_routes(lambda app, root: route_table(kit, app, root), app)
    try:
        server = waitress.create_server(
            AccessLog(kit.WSGIForwardedPrefix(app)),
            host=args.host,
            port=args.port,
            trusted_proxy=TRUSTED_PROXY,
            trusted_proxy_headers=TRUSTED_PROXY_HEADERS,
            clear_untrusted_proxy_headers=True,
        )
    except OSError as error:
        raise kit.LaunchError("the server could not start: %s" % error, 3)
    print(
        "previewd: serving %s with waitress on http://%s:%s" % (args.app, args.host, args.port),
        file=sys.stderr,
        flush=True,
    )
    try:
        server.run()
    finally:
        server.close()
    return 0
