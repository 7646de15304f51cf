"""governance_and_refunds: governance_settings, ip_blocks, wallet_topups, drill_counters, one refund per charge

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-20
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE governance_settings (id int PRIMARY KEY CHECK (id = 1), settings jsonb NOT NULL,
                                          updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE ip_blocks (ip text PRIMARY KEY, reason text, created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE wallet_topups (
          id bigserial PRIMARY KEY,
          wallet_id bigint NOT NULL REFERENCES wallets(id),
          amount bigint NOT NULL,
          reason text,
          idempotency_key text UNIQUE,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE drill_counters (name text PRIMARY KEY, value bigint NOT NULL DEFAULT 0);
        CREATE UNIQUE INDEX request_logs_one_refund_per_charge ON request_logs (refund_of) WHERE refund_of IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX request_logs_one_refund_per_charge; DROP TABLE drill_counters; DROP TABLE wallet_topups;
        DROP TABLE ip_blocks; DROP TABLE governance_settings;
        """
    )
