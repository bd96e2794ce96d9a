"""Alembic environment: always run programmatically by ``db.migrations`` with a live connection."""

from alembic import context

from agentic_pipeline.db import schema
from agentic_pipeline.db.migrations import include_object

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    include_object=include_object,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
