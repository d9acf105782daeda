"""Runs Alembic commands read from stdin, one JSON object a line, against one
PostgreSQL database, and answers each with a JSON line: whether it succeeded,
Alembic's error if not, its warnings, and `alembic_version`'s rows after it.

Used by tests/differential.rs: one Python process runs a whole sequence, so
that hundreds of commands take seconds, not one interpreter start each.

    python alembic_driver.py PROJECT_DIR DATABASE_URL
    {"cmd": "upgrade", "args": ["ab12+2"]}
    {"cmd": "stamp", "args": ["a", "b"], "purge": false}
    {"cmd": "reset"}
    {"cmd": "history", "range": "ab12:", "indicate": true}
    {"cmd": "rows"}
    {"cmd": "heads"}
    {"cmd": "branches"}
    {"cmd": "show", "args": ["ab12"]}
    {"cmd": "offline", "verb": "upgrade", "range": ["ab12:cd34"]}

`history`, `heads`, `branches`, `show` and `offline` (`upgrade --sql`,
`downgrade --sql`: the script) answer with what Alembic printed, and whether an error was
Alembic's own refusal (a CommandError) or a crash (an assertion, say).
"""

import io
import json
import sys
import warnings

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import create_engine, text


def main():
    project, url = sys.argv[1], sys.argv[2]
    cfg = Config()
    cfg.set_main_option("script_location", project)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request = json.loads(line)
        cmd, args = request["cmd"], request.get("args", [])
        ok, error, crash = True, None, False
        cfg.stdout = io.StringIO()
        cfg.output_buffer = io.StringIO()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with engine.begin() as connection:
                    cfg.attributes["connection"] = connection
                    if cmd == "reset":
                        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
                    elif cmd == "upgrade":
                        command.upgrade(cfg, args[0])
                    elif cmd == "downgrade":
                        command.downgrade(cfg, args[0])
                    elif cmd == "rows":
                        pass
                    elif cmd == "heads":
                        command.heads(cfg)
                    elif cmd == "branches":
                        command.branches(cfg)
                    elif cmd == "show":
                        command.show(cfg, args[0])
                    elif cmd == "history":
                        command.history(cfg, request.get("range"),
                                        indicate_current=bool(request.get("indicate")))
                    elif cmd == "offline":
                        verb = getattr(command, request["verb"])
                        targets = request["range"]
                        if request["verb"] != "stamp":
                            targets = targets[0]
                        verb(cfg, targets, sql=True)
                        cfg.stdout.write(cfg.output_buffer.getvalue())
                    elif cmd == "stamp":
                        command.stamp(cfg, args if len(args) > 1 else args[0],
                                      purge=bool(request.get("purge")))
                    else:
                        raise ValueError("unknown command %r" % cmd)
            except Exception as e:  # every refusal Alembic can make
                ok, error = False, "%s: %s" % (type(e).__name__, e)
                crash = not isinstance(e, CommandError)
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
            rows = sorted(r[0] for r in connection.execute(
                text("SELECT version_num FROM alembic_version"))) if exists else []
        print(json.dumps({"ok": ok, "error": error, "crash": crash,
                          "output": cfg.stdout.getvalue(), "rows": rows,
                          "warnings": [str(w.message) for w in caught]}), flush=True)


if __name__ == "__main__":
    main()
