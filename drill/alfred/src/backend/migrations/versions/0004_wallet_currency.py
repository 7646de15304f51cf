"""wallet_currency: wallets.currency (shipped by the 1.2.0-bad release)

Revision ID: 0004
Revises: 0003
Create Date: 2026-02-20
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE wallets ADD COLUMN currency text NOT NULL DEFAULT 'credits';")


def downgrade() -> None:
    op.execute("ALTER TABLE wallets DROP COLUMN currency;")
