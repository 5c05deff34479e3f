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

Warm mode: previewd keeps idle interpreters with the framework already imported, started as

    <venv>/bin/python -u launcher.py --warm --framework fastapi [--preload MODULE]...

without a project. Such a process prints `previewd-warm: started` on stdout, loads the
framework's serving module (the same module object main() uses later) and imports each
--preload module (one that is not installed is skipped silently; any other failure is one
`previewd: warning: ...` line on stderr), prints `previewd-warm: ready`, then blocks reading one
"go" line on stdin: JSON `{"args": [...], "cwd": "/abs/dir", "env": {...}}`. It then chdirs to
`cwd`, replaces its whole environment with `env`, sets sys.argv to this file + `args` and runs
main(args) exactly as a cold launch with those arguments would. EOF instead of a go line exits
0 quietly; a line that is not such JSON exits 2. Nothing else is written on stdout before
`ready`.

Only the standard library and the framework's own packages are used. Each framework is one
entry in FRAMEWORKS naming a `serve_<framework>.py` beside this file, which previewd ships too.
"""

import argparse
import contextlib
import enum
import importlib
import inspect
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings

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


# --framework value -> its serving module once loaded: a warm process loads it before the go
# line and main() then uses that same module.
LOADED_FRAMEWORKS = {}


def load_framework(name):
    """The serving module of a framework, loaded from its file under a private name (so that it
    never shadows, or is shadowed by, a module of the user's project); loaded once."""
    module = LOADED_FRAMEWORKS.get(name)
    if module is not None:
        return module
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), FRAMEWORKS[name])
    spec = importlib.util.spec_from_file_location("_previewd_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    LOADED_FRAMEWORKS[name] = module
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


# ---------------------------------------------------------------------------------------------
# Warm mode

WARM_STARTED = "previewd-warm: started"
WARM_READY = "previewd-warm: ready"
# C locale coercion (PEP 538): an interpreter starting in the C or POSIX locale (LC_ALL unset)
# switches to a UTF-8 one and exports it as LC_CTYPE. A warm process did that for its own
# environment; the app's environment gets what its cold start would have exported.
COERCED_LOCALES = ("C.UTF-8", "C.utf8", "UTF-8")
STARTUP_LC_CTYPE = os.environ.get("LC_CTYPE")


def parse_warm_args(argv):
    parser = argparse.ArgumentParser(
        prog="launcher.py", description="Wait, framework imported, for a preview to serve."
    )
    parser.add_argument("--warm", action="store_true", required=True)
    parser.add_argument("--framework", required=True, help="one of: " + ", ".join(FRAMEWORKS))
    parser.add_argument(
        "--preload", action="append", default=[], metavar="MODULE", help="a module to import"
    )
    return parser.parse_args(argv)


def announce(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def is_not_installed(error, module_name):
    """True when `error` says `module_name` itself (or a package above it) does not exist, rather
    than something it imports."""
    missing = getattr(error, "name", None)
    return (
        isinstance(error, ModuleNotFoundError)
        and bool(missing)
        and (module_name == missing or module_name.startswith(missing + "."))
    )


def preimport(framework, modules):
    """Loads the serving module of `framework` and imports `modules`; prints nothing on stdout
    (whatever they print goes to stderr, so that `ready` stays the next stdout line)."""
    with contextlib.redirect_stdout(sys.stderr):
        if framework in FRAMEWORKS:
            try:
                load_framework(framework)
            except Exception as error:
                warn_preimport("serve_%s.py" % framework, error)
        # Warnings a preload raises are the pre-import's (e.g. pydantic.v1 on a Python it no
        # longer supports, which FastAPI itself silences), not the app's: they stay out of its log.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in modules:
                try:
                    importlib.import_module(name)
                except Exception as error:
                    if not is_not_installed(error, name):
                        warn_preimport(name, error)


def warn_preimport(name, error):
    message = " ".join(str(error).split())
    say("warning: could not pre-import %s: %s: %s" % (name, type(error).__name__, message))


def read_go():
    """The go line as (args, cwd, env); None at EOF. ValueError when it is not one."""
    line = sys.stdin.buffer.readline()
    if not line:
        return None
    go = json.loads(line)
    if not isinstance(go, dict):
        raise ValueError("the go line is not a JSON object")
    args, cwd, env = go.get("args"), go.get("cwd"), go.get("env")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValueError('"args" must be a list of strings')
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise ValueError('"cwd" must be an absolute path')
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise ValueError('"env" must be an object of strings')
    return args, cwd, env


def become_app(cwd, env):
    """Takes on the app's working dir and (complete) environment, as a cold launch starts."""
    try:
        os.chdir(cwd)
    except OSError as error:
        raise LaunchError("could not enter %s: %s" % (cwd, error.strerror or error), 2)
    os.environ.clear()
    try:
        os.environ.update(env)
    except ValueError as error:  # a name with "=" or a NUL
        raise LaunchError("bad go line: %s" % error, 2)
    coerce_c_locale(os.environ)
    tempfile.tempdir = None  # TMPDIR is read again
    if hasattr(time, "tzset"):
        time.tzset()  # TZ too
    # The project appeared (mounted) after the import system looked at the file system.
    importlib.invalidate_caches()


def coerce_c_locale(environ):
    """Sets LC_CTYPE in `environ` as this interpreter's start-up would have with it."""
    if STARTUP_LC_CTYPE not in COERCED_LOCALES:
        return  # this interpreter does not coerce (or was not started in the C locale)
    if environ.get("LC_ALL") or environ.get("PYTHONCOERCECLOCALE") == "0":
        return
    if (environ.get("LC_CTYPE") or environ.get("LANG") or "C") in ("C", "POSIX"):
        environ["LC_CTYPE"] = STARTUP_LC_CTYPE


def warm_main(argv):
    announce(WARM_STARTED)
    args = parse_warm_args(argv)
    signal.signal(signal.SIGTERM, exit_cleanly)
    signal.signal(signal.SIGINT, exit_cleanly)
    # Nothing is imported from the launcher's own dir; main() puts the app's dir first later.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        del sys.path[0]
    preimport(args.framework, args.preload)
    announce(WARM_READY)
    try:
        go = read_go()
    except (ValueError, UnicodeDecodeError) as error:
        say("bad go line: %s" % " ".join(str(error).split()))
        return 2
    if go is None:
        return 0  # previewd retired this process
    app_args, cwd, env = go
    try:
        become_app(cwd, env)
    except LaunchError as error:
        say(str(error))
        return error.code
    sys.argv = sys.argv[:1] + app_args
    return main(app_args)


if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(warm_main(argv) if "--warm" in argv else main(argv))
