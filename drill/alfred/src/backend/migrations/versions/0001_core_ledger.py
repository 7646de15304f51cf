"""core_ledger: users, wallets, request_logs, audit_logs, token_transfers, approval_requests

Revision ID: 0001
Revises:
Create Date: 2026-02-20
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
          id bigserial PRIMARY KEY,
          email text NOT NULL UNIQUE,
          api_key_hash text NOT NULL UNIQUE,
          personal_quota bigint NOT NULL DEFAULT 100000,
          used_tokens bigint NOT NULL DEFAULT 0,
          is_admin boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE wallets (
          id bigserial PRIMARY KEY,
          user_id bigint NOT NULL REFERENCES users(id),
          balance bigint NOT NULL DEFAULT 0,
          hard_limit bigint NOT NULL DEFAULT 100000,
          updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE request_logs (
          id bigserial PRIMARY KEY,
          request_id text NOT NULL,
          user_id bigint NOT NULL REFERENCES users(id),
          amount bigint NOT NULL,
          refund_of bigint REFERENCES request_logs(id),
          model text,
          provider text,
          status text NOT NULL DEFAULT 'completed',
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE audit_logs (
          id bigserial PRIMARY KEY,
          actor_user_id bigint,
          action text NOT NULL,
          target_type text,
          target_id text,
          details jsonb NOT NULL DEFAULT '{}'::jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          previous_hash text,
          hash text
        );
        CREATE TABLE token_transfers (
          id bigserial PRIMARY KEY,
          sender_id bigint NOT NULL REFERENCES users(id),
          recipient_id bigint NOT NULL REFERENCES users(id),
          amount bigint NOT NULL CHECK (amount > 0),
          status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'failed')),
          created_at timestamptz NOT NULL DEFAULT now(),
          applied_at timestamptz
        );
        CREATE TABLE approval_requests (
          id bigserial PRIMARY KEY,
          transfer_id bigint NOT NULL REFERENCES token_transfers(id),
          status text NOT NULL DEFAULT 'pending',
          created_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE approval_requests; DROP TABLE token_transfers; DROP TABLE audit_logs;
        DROP TABLE request_logs; DROP TABLE wallets; DROP TABLE users;
        """
    )
