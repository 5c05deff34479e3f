"""Serves a Django project with waitress for previewd's launcher, and reads its route table from
Django's URL resolver.

Invocation (see launcher.py):

    python -u launcher.py --framework django --app mysite.settings --port 3001

For Django, `--app` is the *settings module* (what DJANGO_SETTINGS_MODULE names), not a
module:attribute pair; it is imported from the working dir (the folder of manage.py). It is set
as DJANGO_SETTINGS_MODULE before `django.setup()`, whatever the environment says.

Start-up:
- `django.setup()`, then the root URLconf and the WSGI application (middleware) are loaded
  before serving, so a broken settings file, app, urls.py or view module stops the launch with
  the user's traceback on stderr and exit code 1.
- ALLOWED_HOSTS: previews are reached as 127.0.0.1 / localhost (previewd's proxy and envelope
  connect to 127.0.0.1:<port>), so "127.0.0.1", "localhost" and "[::1]" are appended to
  `settings.ALLOWED_HOSTS` at start-up; the project's own hosts stay allowed. Without this a
  project with `ALLOWED_HOSTS = ["example.com"]` (or DEBUG off) would answer 400 DisallowedHost.
- Migrations are not run; nothing touches the database before the first request that does.

Serving: waitress (no autoreloader, threads) on the WSGI application, one access-log line per
request on stdout. Under previewd's proxy, `X-Forwarded-Prefix` becomes the request's
SCRIPT_NAME (the launcher's `WSGIForwardedPrefix`), so `reverse()` and redirects (APPEND_SLASH's
included) carry the proxy prefix. With DEBUG on and django.contrib.staticfiles installed,
static files are served the way `runserver` does (StaticFilesHandler); otherwise they are not.
That handler sits outside the prefix wrapper and sees the stripped path, so
`/preview/<id>/static/...` is served. `{% static %}` URLs do not carry the prefix, though:
Django fixes STATIC_URL (with the script prefix of that moment) the first time it is read, at
start-up, so pages link their static files at the root.

Route table (PREVIEWD_ROUTES_FILE), from `get_resolver().url_patterns` walked recursively:
- paths: the patterns of every level joined, `<int:pk>` and `(?P<pk>...)` become `{pk}`, regex
  anchors and escapes removed (the same rules as the static extractor's `regex_path`);
- methods, from the view:
  - DRF ViewSets through a router: the keys of `view.actions`;
  - class-based views (Django's and DRF's, `@api_view` included): the handlers the class has
    (`get`, `post`, ...) that `http_method_names` allows;
  - functions: the methods `require_http_methods` / `require_GET` / `require_POST` /
    `require_safe` allow (found in the decorator's closure, through any other wrappers);
  - a function without a restriction answers every method; it is listed once, as GET (what a
    browser and a preview's "try it" send). HEAD and OPTIONS are never listed: Django answers
    them by itself for every view that has GET / for every class-based view.
- the admin site (`admin.site.urls`) is collapsed into one `GET <prefix>` entry tagged "admin":
  its dozens of model routes are Django's, not the project's API;
- left out: DRF's format-suffix variants (`/books.{format}`) and static/media file routes
  (`django.views.static.serve`);
- a (method, path) listed twice keeps its first occurrence (the one Django resolves to);
- tags: the namespaces of the includes above the route, outermost first;
- summary: the first line of the view's docstring, description: the rest (both null for views
  outside the project, and without a docstring); the docstring is the @action method's for DRF
  extra actions, else the view class's, else the function's;
- file/line: the view function or class (the @action method for extra actions).
"""

import inspect
import logging
import os
import re
import sys

# Methods Django answers by itself; never listed.
AUTOMATIC_METHODS = ("HEAD", "OPTIONS")
# The method listed for a function view without a method restriction.
UNRESTRICTED_METHOD = "GET"
# Hosts previews are reached as.
PREVIEW_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# DRF's format suffix (`format_suffix_patterns`), as regex and as path converter.
FORMAT_SUFFIX = re.compile(r"\\\.\(\?P<format>|<drf_format_suffix\w*:format>")
# `<int:pk>` / `<pk>` in a `path()` route.
ROUTE_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")


def regex_path(regex):
    """A `re_path` regex as a path: anchors dropped, `(?P<name>...)` -> `{name}`, other groups
    -> `{argN}`, backslash escapes -> the escaped character. Mirrors the static extractor."""
    if regex.startswith("^"):
        regex = regex[1:]
    for anchor in ("\\Z", "$"):
        if regex.endswith(anchor) and not regex.endswith("\\" + anchor):
            regex = regex[: -len(anchor)]
            break
    out = []
    i = 0
    positional = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            out.append(regex[i + 1])
            i += 2
        elif c == "(":
            end = group_end(regex, i)
            group = regex[i:end]
            named = re.match(r"\(\?P<(\w+)>", group)
            if named:
                out.append("{%s}" % named.group(1))
            elif group.startswith("(?"):
                out.append(group)
            else:
                positional += 1
                out.append("{arg%d}" % positional)
            i = end
        else:
            out.append(c)
            i += 1
    return "".join(out)


def group_end(regex, start):
    """The index after the `)` closing the group opened at `start` (escapes and classes aware)."""
    depth = 0
    i = start
    in_class = False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(regex)


def pattern_path(pattern):
    """The path a URL pattern (RoutePattern, RegexPattern, LocalePrefixPattern) contributes."""
    from django.urls.resolvers import RegexPattern

    text = str(pattern)
    if isinstance(pattern, RegexPattern):
        return regex_path(text)
    return ROUTE_PARAM.sub(r"{\1}", text)


def restricted_methods(function):
    """The methods a `require_http_methods`-style decorator allows, looking through wrappers
    (`login_required`, `csrf_exempt`, ...); None when there is no restriction."""
    seen = 0
    while function is not None and seen < 32:
        seen += 1
        code = getattr(function, "__code__", None)
        closure = getattr(function, "__closure__", None) or ()
        if code is not None:
            for name, cell in zip(code.co_freevars, closure):
                if name == "request_method_list":
                    try:
                        return [str(m).upper() for m in cell.cell_contents]
                    except ValueError:  # an empty cell
                        return None
        function = getattr(function, "__wrapped__", None)
    return None


def class_methods(cls):
    """The handlers a class-based view has that its `http_method_names` allows."""
    names = getattr(cls, "http_method_names", None) or []
    return [m.upper() for m in names if callable(getattr(cls, m, None))]


def view_class(callback):
    """The class behind a class-based view: `view_class` (Django), `cls` (DRF ViewSets)."""
    return getattr(callback, "view_class", None) or getattr(callback, "cls", None)


def view_methods(callback):
    """The methods listed for a view callback (see the module docstring)."""
    actions = getattr(callback, "actions", None)
    if isinstance(actions, dict) and actions:
        methods = [m.upper() for m in actions]
    elif view_class(callback) is not None:
        methods = class_methods(view_class(callback))
    else:
        methods = restricted_methods(callback) or [UNRESTRICTED_METHOD]
    return [m for m in methods if m not in AUTOMATIC_METHODS]


def view_target(callback):
    """What documents and locates a view: the @action method, the view class, or the function."""
    cls = view_class(callback)
    actions = getattr(callback, "actions", None)
    if cls is not None and isinstance(actions, dict):
        for name in actions.values():
            method = getattr(cls, name, None)
            if method is not None and hasattr(method, "mapping"):
                return method
    if cls is not None:
        return api_view_function(cls) or cls
    try:
        return inspect.unwrap(callback)
    except ValueError:
        return callback


def api_view_function(cls):
    """The function behind DRF's `@api_view` class (its handlers call it through a closure)."""
    for name in getattr(cls, "http_method_names", None) or []:
        handler = cls.__dict__.get(name)
        code = getattr(handler, "__code__", None)
        if code is None or not handler.__qualname__.startswith("api_view."):
            continue
        for var, cell in zip(code.co_freevars, handler.__closure__ or ()):
            if var == "func":
                return cell.cell_contents
    return None


def docstring_parts(target):
    """(summary, description) from the target's own docstring (never an inherited one)."""
    doc = target.__dict__.get("__doc__") if inspect.isclass(target) else target.__doc__
    if not isinstance(doc, str):
        return None, None
    doc = inspect.cleandoc(doc)
    if not doc:
        return None, None
    first, _, rest = doc.partition("\n")
    return first.strip() or None, rest.strip() or None


def is_admin(resolver):
    return getattr(resolver, "app_name", None) == "admin"


def is_static_serve(callback):
    from django.views.static import serve

    return callback is serve or getattr(callback, "__wrapped__", None) is serve


def resolver_table(kit, patterns, project_root, prefix="", tags=()):
    """The route table of a list of URL patterns, under `prefix` and namespace `tags`."""
    from django.urls.resolvers import URLResolver

    table = []
    for entry in patterns:
        raw = str(entry.pattern)
        if FORMAT_SUFFIX.search(raw):
            continue
        path = prefix + pattern_path(entry.pattern)
        if isinstance(entry, URLResolver):
            namespace = getattr(entry, "namespace", None)
            inner_tags = tags + ((namespace,) if namespace else ())
            if is_admin(entry):
                table.append(entry_dict("GET", "/" + path, inner_tags, None, None, None, None))
                continue
            table.extend(
                resolver_table(kit, entry.url_patterns, project_root, path, inner_tags)
            )
            continue
        callback = entry.callback
        if is_static_serve(callback):
            continue
        target = view_target(callback)
        file, line = kit.source_location(target, project_root)
        summary, description = docstring_parts(target) if file else (None, None)
        for method in kit.ordered_methods(view_methods(callback)):
            table.append(entry_dict(method, "/" + path, tags, summary, description, file, line))
    return table


def entry_dict(method, path, tags, summary, description, file, line):
    return {
        "method": method,
        "path": path,
        "path_params": re.findall(r"\{([^{}]+)\}", path),
        "summary": summary,
        "description": description,
        "tags": list(tags),
        "file": file,
        "line": line,
    }


def route_table(kit, resolver, project_root):
    """Every route of the project, first occurrence of each (method, path) kept."""
    seen = set()
    table = []
    for entry in resolver_table(kit, resolver.url_patterns, project_root):
        key = (entry["method"], entry["path"])
        if key not in seen:
            seen.add(key)
            table.append(entry)
    return table


class AccessLog:
    """WSGI middleware printing one line per request on stdout: method, path, status."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def logged_start_response(status, headers, exc_info=None):
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING")
            if query:
                path += "?" + query
            print(
                '%s - "%s %s %s" %s'
                % (
                    environ.get("REMOTE_ADDR", "-"),
                    environ.get("REQUEST_METHOD", "-"),
                    path,
                    environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    status.split(" ", 1)[0],
                ),
                flush=True,
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged_start_response)


def allow_preview_hosts(settings):
    hosts = list(settings.ALLOWED_HOSTS or [])
    if not hosts and settings.DEBUG:
        # Django's own DEBUG default, kept: it is replaced once the list is not empty.
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    settings.ALLOWED_HOSTS = hosts + [h for h in PREVIEW_HOSTS if h not in hosts]


def load_project(kit, settings_module):
    """django.setup(), the URLconf and the WSGI app; the user's errors exit with code 1."""
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    try:
        import django
    except ImportError as error:
        raise kit.LaunchError("django is not installed in this environment (%s)" % error, 1)
    step = "set up Django with %s" % settings_module
    try:
        django.setup()
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application
        from django.urls import get_resolver

        allow_preview_hosts(settings)
        step = "load the URLconf %s" % settings.ROOT_URLCONF
        resolver = get_resolver()
        resolver.url_patterns  # imports every urls.py and view module
        step = "build the WSGI application"
        application = get_wsgi_application()
    except Exception as error:
        kit.print_user_traceback(error)
        raise kit.LaunchError("could not %s (traceback above)" % step, 1)
    return settings, resolver, application


def with_static_files(settings, application):
    """runserver's static-file serving, in DEBUG with django.contrib.staticfiles only."""
    if not settings.DEBUG or "django.contrib.staticfiles" not in settings.INSTALLED_APPS:
        return application
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    return StaticFilesHandler(application)


def serve(args, kit):
    try:
        import waitress
    except ImportError as error:
        raise kit.LaunchError("waitress is not installed in this environment (%s)" % error, 1)
    settings, resolver, application = load_project(kit, args.app)
    kit.publish_routes(lambda resolver, root: route_table(kit, resolver, root), resolver)
    app = AccessLog(with_static_files(settings, kit.WSGIForwardedPrefix(application)))
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        server = waitress.create_server(
            app, host=args.host, port=args.port, threads=4
        )
    except OSError as error:
        raise kit.LaunchError("the server could not start: %s" % error, 3)
    print("previewd: serving %s on http://%s:%d" % (args.app, args.host, args.port), flush=True)
    server.run()
    return 0
