# cargo alembic's reader of a Python Alembic project (`import alembic`).
#
# Run by `cargo alembic import alembic` with the project's Python; never the
# project's env.py (it usually needs the application). Every revision module
# is imported as it is, and its upgrade() and downgrade() are rendered as
# PostgreSQL SQL in Alembic's offline mode, all in this one process.
#
# Modes (argv[1]):
#   render <json: {"path": ...}>   -> one JSON document on stdout
#   apply <json: {"path": ..., "url": ...}>
#                                  -> reads {"revision", "direction"} lines on
#                                     stdin, runs each online, answers a line
import io
import json
import os
import re
import sys
import traceback


def fail(kind, message, **extra):
    print(json.dumps(dict(error=kind, message=message, **extra)))
    sys.exit(0)


def where(exc, paths):
    """The innermost frame of the traceback in one of `paths`."""
    frames = traceback.extract_tb(exc.__traceback__)
    real = {os.path.realpath(p) for p in paths}
    for frame in reversed(frames):
        if os.path.realpath(frame.filename) in real:
            return frame.filename, frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    return None, None


def project_config(ini, toml):
    """The Config of an alembic.ini and/or a pyproject.toml with a
    [tool.alembic] table (Alembic 1.16 and later), if it names a
    script_location; None otherwise."""
    from alembic.config import Config

    if toml:
        with open(toml, encoding="utf-8") as f:
            if "[tool.alembic]" not in f.read():
                toml = None
    if not ini and not toml:
        return None
    try:
        cfg = Config(ini, toml_file=toml) if toml else Config(ini)
    except TypeError:  # an Alembic before 1.16 reads no pyproject.toml
        if not ini:
            return None
        cfg = Config(ini)
    get = getattr(cfg, "get_alembic_option", cfg.get_main_option)
    return cfg if get("script_location") else None


def script_directory(path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    if os.path.isfile(path):
        if os.path.basename(path) == "pyproject.toml":
            cfg, section = project_config(None, path), "[tool.alembic] table"
        else:
            cfg, section = project_config(path, None), "[alembic] section"
        if cfg is None:
            fail("config", "%s has no script_location in its %s" % (path, section))
        return ScriptDirectory.from_config(cfg)
    # A project's folder: its alembic.ini (or pyproject.toml) says where the
    # script location is.
    ini, toml = os.path.join(path, "alembic.ini"), os.path.join(path, "pyproject.toml")
    cfg = project_config(ini if os.path.isfile(ini) else None, toml if os.path.isfile(toml) else None)
    if cfg is not None:
        return ScriptDirectory.from_config(cfg)
    if not os.path.isdir(os.path.join(path, "versions")):
        # A Flask app's folder: the one sub-folder holding env.py and
        # versions/ (Flask-Migrate's `migrations`) is the script location.
        found = [
            d for d in sorted(os.listdir(path))
            if os.path.isfile(os.path.join(path, d, "env.py"))
            and os.path.isdir(os.path.join(path, d, "versions"))
        ]
        if len(found) == 1:
            path = os.path.join(path, found[0])
    cfg = Config()
    cfg.set_main_option("script_location", os.path.abspath(path))
    ini = os.path.join(path, "alembic.ini")
    if os.path.isfile(ini):
        # Flask-Migrate keeps its alembic.ini in the script location, without
        # a script_location; version_locations may still be there.
        own = Config(ini)
        recursive = own.get_main_option("recursive_version_locations")
        if recursive:
            cfg.set_main_option("recursive_version_locations", recursive)
        locations = own.get_main_option("version_locations")
        if locations:
            here = os.path.abspath(path)
            cfg.set_main_option("version_locations", locations.replace("%(here)s", here))
            separator = own.get_main_option("version_path_separator")
            if separator:
                cfg.set_main_option("version_path_separator", separator)
    return ScriptDirectory.from_config(cfg)


def load(path):
    try:
        import alembic  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError as e:
        fail("python", "this Python cannot import %s" % e.name)
    import warnings

    # Alembic only warns about a revision id in two files, and keeps one.
    warnings.filterwarnings("error", message=".*present more than once.*")
    try:
        scripts = script_directory(path)
        revisions = list(scripts.walk_revisions("base", "heads"))
    except SystemExit:
        raise
    except BaseException as e:  # a revision module that does not import
        root = os.path.realpath(path if os.path.isdir(path) else os.path.dirname(path) or ".")
        file, line = None, None
        if isinstance(e, SyntaxError) and e.filename:
            file, line = e.filename, e.lineno
        else:
            for frame in reversed(traceback.extract_tb(e.__traceback__)):
                if os.path.realpath(frame.filename).startswith(root + os.sep):
                    file, line = frame.filename, frame.lineno
                    break
        missing = e.name if isinstance(e, ImportError) else None
        message = "%s: %s" % (type(e).__name__, e)
        if isinstance(e, KeyError) and e.args:
            message = "a revision names %r as its down_revision or depends_on, but no revision file has that id" % (e.args[0],)
        fail("load", message, file=file, line=line, missing=missing)
    if not revisions:
        locations = [os.path.abspath(p) for p in scripts._version_locations]
        fail("empty", "no Alembic revisions in %s" % ", ".join(locations))
    revisions.reverse()  # base first
    return scripts, revisions


def render_one(script, direction):
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buf = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": buf, "literal_binds": True},
    )
    function = getattr(script.module, direction, None)
    if function is None:
        return {"sql": None}
    try:
        with Operations.context(ctx):
            function()
    except BaseException as e:
        _, line = where(e, [script.path])
        return {"sql": buf.getvalue(), "error": "%s: %s" % (type(e).__name__, e), "line": line}
    return {"sql": buf.getvalue()}


def tuple_of(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def render(path):
    scripts, revisions = load(path)
    locations = [os.path.abspath(p) for p in scripts._version_locations]
    out = []
    for script in revisions:
        doc = script.module.__doc__ or ""
        date = re.search(r"^Create Date:\s*(.+?)\s*$", doc, re.M)
        full = os.path.abspath(script.path)
        relative = os.path.basename(full)
        for location in locations:
            if full.startswith(location + os.sep):
                relative = os.path.relpath(full, location)
                break
        out.append(
            {
                "revision": script.revision,
                "down_revision": tuple_of(script.down_revision),
                # As declared: Alembic's `branch_labels` also has the
                # labels a revision inherits.
                "branch_labels": sorted(tuple_of(getattr(script.module, "branch_labels", None))),
                "depends_on": tuple_of(script.dependencies),
                "message": (script.doc or "").strip(),
                "create_date": date.group(1) if date else None,
                "path": full,
                "relative": relative,
                "upgrade": render_one(script, "upgrade"),
                "downgrade": render_one(script, "downgrade"),
            }
        )
    print(json.dumps({"revisions": out}))


def apply(path, url):
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    scripts, revisions = load(path)
    by_id = {s.revision: s for s in revisions}
    driver = None
    for module, name in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        try:
            __import__(module)
            driver = name
            break
        except ImportError:
            pass
    if driver is None:
        fail("connect", "this Python has neither psycopg2 nor psycopg")
    url = re.sub(r"^postgres(ql)?://", "postgresql+%s://" % driver, url)
    try:
        engine = sa.create_engine(url)
        connection = engine.connect()
    except BaseException as e:
        fail("connect", "%s: %s" % (type(e).__name__, e))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        script = by_id[request["revision"]]
        try:
            with connection.begin():
                ctx = MigrationContext.configure(connection=connection)
                with Operations.context(ctx):
                    getattr(script.module, request["direction"])()
            print(json.dumps({"ok": True}), flush=True)
        except BaseException as e:
            _, line = where(e, [script.path])
            print(json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e), "line": line}), flush=True)


def main():
    mode, request = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, os.getcwd())
    if mode == "render":
        render(request["path"])
    else:
        apply(request["path"], request["url"])


main()
