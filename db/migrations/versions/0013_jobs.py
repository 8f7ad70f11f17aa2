"""scale-out (issue 22): the job queue's tables (procrastinate), on PostgreSQL only

procrastinate's own schema SQL, as shipped in the pinned procrastinate package,
applied in a PostgreSQL schema of its own (`procrastinate`): the ticket store's
tables and the models' comparison never meet it, and the downgrade drops it
whole. SQLite (one box) has no job queue: nothing to do there, and procrastinate
is not even imported.

Upgrading procrastinate past the pinned version means a new migration of ours
that applies its migration files between the two versions in this schema.

Revision ID: 0013_jobs
Revises: 0012_nodes
"""

from __future__ import annotations

from alembic import op

revision = "0013_jobs"
down_revision = "0012_nodes"
branch_labels = None
depends_on = None

SCHEMA = "procrastinate"  # db.jobs.JOBS_SCHEMA, written out: a migration never changes


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager  # the job queue exists on PostgreSQL only

    bind.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    before = bind.exec_driver_sql("SELECT current_setting('search_path')").scalar_one()
    # procrastinate's SQL names its objects without a schema: they land first on the path
    bind.exec_driver_sql(f"SELECT set_config('search_path', '{SCHEMA}', true)")
    driver = bind.connection.dbapi_connection  # no parameters: "%" is the SQL's own
    driver.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
    bind.exec_driver_sql("SELECT set_config('search_path', %s, true)", (before,))
    driver.execute(PIN_FUNCTIONS)  # type: ignore[union-attr]


# Its functions and triggers find their tables wherever they are called from (a trigger
# fired by an UPDATE from the store's own sessions too). A later procrastinate migration
# that replaces a function must run this again.
PIN_FUNCTIONS = f"""
DO $$
DECLARE routine regprocedure;
BEGIN
    FOR routine IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
          JOIN pg_namespace AS n ON n.oid = p.pronamespace
         WHERE n.nspname = '{SCHEMA}'
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = {SCHEMA}', routine);
    END LOOP;
END $$
"""


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
