"""request_log_indexes: request_id and created_at indexes on request_logs, created_at on audit_logs

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-20
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE INDEX request_logs_request_id_idx ON request_logs (request_id);
        CREATE INDEX request_logs_created_at_idx ON request_logs (created_at);
        CREATE INDEX audit_logs_created_at_idx ON audit_logs (created_at);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX audit_logs_created_at_idx; DROP INDEX request_logs_created_at_idx;
        DROP INDEX request_logs_request_id_idx;
        """
    )
