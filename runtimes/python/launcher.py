"""previewd's Python launcher: imports a user's web app and serves it on one port.

previewd embeds this file in its binary and writes it under its data dir; it runs as

    <venv>/bin/python -u launcher.py --framework fastapi --app app.main:app --port 3001
        [--factory] [--host 127.0.0.1]

with the app's working dir as cwd. Environment it reads:

    PREVIEWD_ROUTES_FILE   absolute path; when set, the app's route table is written there as
                           JSON (atomically) before the server starts.
    PREVIEWD_PROJECT_ROOT  the project root that `file` in the route table is relative to
                           (default: cwd).

Under previewd's reverse proxy the app is served at /preview/<id>/: the proxy strips that
prefix from the path and sends it in `X-Forwarded-Prefix`, and each serving module makes it the
request's root (ASGI `root_path`, WSGI `SCRIPT_NAME`, see `WSGIForwardedPrefix`), so the URLs
the app builds carry it. Requests without the header are served at the root.

Exit codes: 0 after a clean shutdown (SIGTERM / SIGINT), 1 when the app cannot be imported or
built (the user's traceback is on stderr), 2 for bad arguments or an unknown framework, 3 when
the server could not start (port taken, lifespan startup failed).

Only the standard library and the framework's own packages are used. Each framework is one
entry in FRAMEWORKS naming a `serve_<framework>.py` beside this file, which previewd ships too.
"""

import argparse
import enum
import importlib
import inspect
import json
import os
import re
import signal
import sys
import tempfile
import traceback

METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
CONVERTER = re.compile(r"\{([^{}:]+):[^{}]*\}")
PARAM = re.compile(r"\{([^{}]+)\}")


class LaunchError(Exception):
    """A failure to report as one line on stderr, with the exit code to leave with."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def say(message):
    print("previewd: " + message, file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="launcher.py", description="Serve a Python web app for previewd."
    )
    parser.add_argument("--framework", required=True, help="one of: " + ", ".join(FRAMEWORKS))
    parser.add_argument(
        "--app",
        required=True,
        help="module:attribute, e.g. app.main:app (for Django: the settings module, e.g. mysite.settings)",
    )
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--factory", action="store_true", help="the attribute is a function returning the app"
    )
    return parser.parse_args(argv)


def load_app(spec, factory):
    """Imports `module:attr` from cwd and returns the app (the factory's result with --factory).

    The user's own exception goes to stderr as a traceback without the launcher's frames.
    """
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise LaunchError("--app must look like module:attribute, got %r" % spec, 2)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        print_user_traceback(error)
        raise LaunchError("could not import %s (traceback above)" % module_name, 1)
    target = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LaunchError("module %s has no attribute %r" % (module_name, attr_path), 1)
    if not factory:
        return target
    try:
        return target()
    except Exception as error:
        print_user_traceback(error)
        raise LaunchError("the app factory %s raised (traceback above)" % spec, 1)


def print_user_traceback(error):
    # Leading frames are the launcher's and the import machinery's; the user's start after.
    machinery = (__file__, importlib.__file__)
    tb = error.__traceback__
    while tb is not None and (
        tb.tb_frame.f_code.co_filename in machinery
        or tb.tb_frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb, file=sys.stderr)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Route table


def write_routes(path, routes):
    """Writes `routes` as JSON to `path` through a temp file in the same dir + os.replace."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".routes-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(routes, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def source_location(endpoint, project_root):
    """(file relative to project_root, 1-based line of the `def`), or (None, None) outside it."""
    target = endpoint
    while True:
        inner = getattr(target, "func", None)  # functools.partial
        if inner is None or not callable(inner):
            break
        target = inner
    try:
        target = inspect.unwrap(target)
    except ValueError:
        pass
    try:
        filename = inspect.getsourcefile(target)
    except TypeError:
        return None, None
    if not filename:
        return None, None
    real = os.path.realpath(filename)
    if os.path.commonpath([real, project_root]) != project_root:
        return None, None
    relative = os.path.relpath(real, project_root).replace(os.sep, "/")
    try:
        lines, start = inspect.getsourcelines(target)
    except (OSError, TypeError):
        return relative, None
    # getsourcelines starts at the first decorator; report the `def` (or `class`) line.
    for offset, text in enumerate(lines):
        stripped = text.lstrip()
        if stripped.startswith(("def ", "async def ", "class ")):
            return relative, start + offset
    return relative, start


def tag_name(tag):
    return str(tag.value) if isinstance(tag, enum.Enum) else str(tag)


def ordered_methods(methods):
    known = [m for m in METHOD_ORDER if m in methods]
    return known + sorted(m for m in methods if m not in METHOD_ORDER)


def route_entries(path, methods, endpoint, name, summary, description, tags, project_root):
    path = CONVERTER.sub(r"{\1}", path)
    file, line = source_location(endpoint, project_root)
    if not description:
        description = inspect.getdoc(endpoint) or None
    entry = {
        "path": path,
        "path_params": PARAM.findall(path),
        "summary": summary or (name or "").replace("_", " ").title() or None,
        "description": description or None,
        "tags": [tag_name(t) for t in tags or []],
        "file": file,
        "line": line,
    }
    return [dict(method=m, **entry) for m in methods]


def publish_routes(build_table, app):
    """Writes the route table if PREVIEWD_ROUTES_FILE asks for it; never stops the launch."""
    routes_file = os.environ.get("PREVIEWD_ROUTES_FILE")
    if not routes_file:
        return
    project_root = os.path.realpath(os.environ.get("PREVIEWD_PROJECT_ROOT") or os.getcwd())
    try:
        write_routes(routes_file, build_table(app, project_root))
    except Exception as error:
        message = " ".join(str(error).split())
        say("warning: could not write the route table: %s: %s" % (type(error).__name__, message))


# ---------------------------------------------------------------------------------------------
# Serving under previewd's proxy


class WSGIForwardedPrefix:
    """WSGI middleware serving each request under the prefix previewd's proxy names in
    `X-Forwarded-Prefix` (`/preview/<id>`): it becomes the request's SCRIPT_NAME, so `url_for`,
    `reverse()` and redirects include it. The proxy has already taken it off PATH_INFO.
    Requests without the header (the envelope, health checks) are served at the root."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        prefix = environ.get("HTTP_X_FORWARDED_PREFIX", "").strip().rstrip("/")
        if prefix.startswith("/") and not prefix.startswith("//"):
            environ["SCRIPT_NAME"] = prefix + environ.get("SCRIPT_NAME", "")
        return self.app(environ, start_response)


# ---------------------------------------------------------------------------------------------
# Frameworks


# --framework value -> the file (beside this one) whose `serve(args, kit)` serves the app until
# shutdown and returns the exit code; `kit` is this module, with the helpers above.
FRAMEWORKS = {
    "fastapi": "serve_fastapi.py",
    "flask": "serve_flask.py",
    "django": "serve_django.py",
}


def load_framework(name):
    """The serving module of a framework, loaded from its file under a private name (so that it
    never shadows, or is shadowed by, a module of the user's project)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), FRAMEWORKS[name])
    spec = importlib.util.spec_from_file_location("_previewd_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_cleanly(signum, frame):
    raise SystemExit(0)


def main(argv):
    args = parse_args(argv)
    if args.framework not in FRAMEWORKS:
        say(
            "unknown framework %r; this launcher serves: %s"
            % (args.framework, ", ".join(sorted(FRAMEWORKS)))
        )
        return 2
    # The app's directory comes first on the path, in place of the launcher's own directory.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]
    sys.path.insert(0, os.getcwd())
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal under the
    # previous handler: make that handler a clean exit (also before the server is up).
    signal.signal(signal.SIGTERM, exit_cleanly)
    signal.signal(signal.SIGINT, exit_cleanly)
    try:
        return load_framework(args.framework).serve(args, sys.modules[__name__])
    except LaunchError as error:
        say(str(error))
        return error.code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
