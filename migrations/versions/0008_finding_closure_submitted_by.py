"""findings: who submitted a closure (four eyes on closure reviews)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closure_submitted_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_finding_closure_submitted_by_id_user_account'),
            'user_account',
            ['closure_submitted_by_id'],
            ['id'],
        )
    # Closures submitted before this column existed: the submitter is in the audit trail
    # (the newest 'finding.closure_submitted' entry of each finding).
    op.execute(
        """
        UPDATE finding SET closure_submitted_by_id = (
            SELECT ae.actor_id FROM audit_event ae
            WHERE ae.action = 'finding.closure_submitted' AND ae.object_type = 'finding'
              AND ae.object_id = CAST(finding.id AS VARCHAR(80))
            ORDER BY ae.id DESC LIMIT 1
        )
        WHERE closure_submitted_at IS NOT NULL
        """
    )


def downgrade():
    with op.batch_alter_table('finding', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_finding_closure_submitted_by_id_user_account'), type_='foreignkey'
        )
        batch_op.drop_column('closure_submitted_by_id')
