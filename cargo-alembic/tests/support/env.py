# The env.py of the differential test's Alembic project: the driver hands
# Alembic an open connection, in the Alembic cookbook's way; offline
# (`--sql`), the SQL is written for PostgreSQL.
from alembic import context

if context.is_offline_mode():
    # `--sql`: the script goes to the config's output buffer.
    context.configure(dialect_name="postgresql", literal_binds=True, target_metadata=None)
else:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
