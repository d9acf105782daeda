# The env.py of the differential test's Alembic project: the driver hands
# Alembic an open connection, in the Alembic cookbook's way.
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
