"""Definitions that survive a comparison (issue 13): the 2023 names and descriptions that would
mislead a reader comparing two years, corrected; `large_accident_claim_paid` marked a single
event.

A data migration, on purpose: databases seeded before it get the same text as a fresh seed
(seed/changzhou-2023-review.yaml). Codes do not change. Each field is changed only where it
still holds the old text, so a database whose operator wrote their own is left alone. This file
is the record of the change (indicators and units keep no history table): OLD holds every text
replaced, and downgrade() puts it back where the new text is still in place.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00.000000
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEMOBILISED_SOLDIERS = (
    'One of the four trainings of demobilised soldiers (退役士兵) the review lists: adaptive, '
    'diploma or degree education, entrepreneurship and personalised training.'
)

# (table, code, field): (old text, new text). None: the field was empty.
CHANGES: dict[tuple[str, str, str], tuple[Any, Any]] = {
    ('unit', 'post', 'name_en'): ('jobs offered', 'jobs (posts)'),
    ('category', 'employment_entrepreneurship', 'description_en'): (
        'Training, job fairs, entrepreneurship support, placement of demobilised officers and '
        'soldiers.',
        'Training, job fairs, entrepreneurship support, placement of transferred officers and '
        'demobilised soldiers.',
    ),
    ('indicator', 'assigned_soldier_posts_per_person', 'name_zh'): (
        '人岗比例',
        '每名安排工作退役士兵对应岗位数',
    ),
    ('indicator', 'assigned_soldier_posts_per_person', 'description_zh'): (
        None,
        '岗位数与安排工作退役士兵人数之比:原文“人岗比例超过1:1.5”指每名退役士兵对应1.5个以上岗位,'
        '不是人数比岗位数为1.5比1。',
    ),
    ('indicator', 'wechat_monthly_reads', 'name_zh'): (
        '局微信公众号单月阅读量',
        '局微信公众号峰值月份阅读量',
    ),
    ('indicator', 'wechat_monthly_reads', 'name_en'): (
        "Monthly reads of the bureau's WeChat account (in a single month)",
        "Reads of the bureau's WeChat account in its peak month",
    ),
    ('indicator', 'wechat_monthly_reads', 'description_zh'): (
        None,
        '全年阅读量最高的单月,不是月均阅读量。',
    ),
    ('indicator', 'wechat_monthly_reads', 'description_en'): (
        'The review states that reads in a single month exceeded this figure.',
        'The best single month of the year, not a typical month: the review states that reads '
        'in a single month exceeded this figure. Not a monthly average; not to be multiplied '
        'by 12.',
    ),
    ('indicator', 'employment_demonstration_bases', 'name_zh'): (
        '获评全市第二批退役军人就业创业示范基地的企业',
        '当年新获评全市退役军人就业创业示范基地的企业',
    ),
    ('indicator', 'employment_demonstration_bases', 'name_en'): (
        "Enterprises named in the city's second group of veterans' employment bases",
        "Enterprises newly named veterans' employment and entrepreneurship demonstration bases "
        'of the city in the year',
    ),
    ('indicator', 'employment_demonstration_bases', 'description_zh'): (
        None,
        '当年新获评的企业数,批次见备注(2023年为第二批);不含此前批次,不是示范基地总数。',
    ),
    ('indicator', 'employment_demonstration_bases', 'description_en'): (
        None,
        'The enterprises named in the year; the batch is in the note (2023: the second batch, '
        '第二批). Earlier batches are not included: this is not the number of bases.',
    ),
    ('indicator', 'recruitment_reward_amount', 'name_zh'): (
        '招录退役士兵30人以上企业一次性奖励金',
        '招录退役士兵30人以上企业一次性奖励金(每家企业标准)',
    ),
    ('indicator', 'recruitment_reward_amount', 'name_en'): (
        'One-off reward for enterprises hiring 30 or more demobilised soldiers',
        'One-off reward per enterprise hiring 30 or more demobilised soldiers (a rate)',
    ),
    ('indicator', 'recruitment_reward_amount', 'description_zh'): (
        None,
        '每家符合条件企业获得的奖励标准,不是发放总额;不得与其他支出相加。',
    ),
    ('indicator', 'recruitment_reward_amount', 'description_en'): (
        'The text does not say whether the amount is per enterprise or in total.',
        'A per-enterprise rate, not an outlay: what each enterprise hiring 30 or more '
        'demobilised soldiers receives. The review gives no number of enterprises, so no total '
        'follows from it; it must not be added to outlays (employer_subsidies, '
        'model_family_farm_rewards).',
    ),
    ('indicator', 'transferred_officers_placed', 'name_en'): (
        'Demobilised officers placed',
        'Transferred officers placed',
    ),
    ('indicator', 'transferred_officers_placed', 'description_en'): (
        None,
        'Officers transferred to civilian work (转业), not demobilised (复员).',
    ),
    ('indicator', 'transferred_officers_public_placement_rate', 'name_en'): (
        'Share of demobilised officers placed in Party and government bodies',
        'Share of transferred officers placed in Party and government bodies',
    ),
    ('indicator', 'transferred_officers_public_placement_rate', 'description_en'): (
        'Placed in Party and government organs and civil-service-managed institutions.',
        'Officers transferred to civilian work (转业), not demobilised (复员), placed in Party '
        'and government organs and civil-service-managed institutions.',
    ),
    ('indicator', 'job_fair_preliminary_agreements', 'name_en'): (
        'Applicants who reached a preliminary job agreement',
        'Applicants who stated a preliminary intention to take a job',
    ),
    ('indicator', 'job_fair_preliminary_agreements', 'description_en'): (
        None,
        '意向 is an intention, not an agreement or a hire.',
    ),
    ('indicator', 'education_training_trainees', 'name_zh'): (
        '学历教育培训人次',
        '退役士兵学历教育培训人次',
    ),
    ('indicator', 'education_training_trainees', 'name_en'): (
        'Academic education training (person-times)',
        'Diploma or degree education of demobilised soldiers (person-times)',
    ),
    ('indicator', 'education_training_trainees', 'description_en'): (
        None,
        '学历教育: education leading to a diploma or degree. ' + DEMOBILISED_SOLDIERS,
    ),
    ('indicator', 'entrepreneurship_training_trainees', 'name_zh'): (
        '创业培训人次',
        '退役士兵创业培训人次',
    ),
    ('indicator', 'entrepreneurship_training_trainees', 'name_en'): (
        'Entrepreneurship training (person-times)',
        'Entrepreneurship training of demobilised soldiers (person-times)',
    ),
    ('indicator', 'entrepreneurship_training_trainees', 'description_en'): (
        None,
        DEMOBILISED_SOLDIERS,
    ),
    ('indicator', 'personalised_training_trainees', 'name_zh'): (
        '个性化培训人次',
        '退役士兵个性化培训人次',
    ),
    ('indicator', 'personalised_training_trainees', 'name_en'): (
        'Personalised training (person-times)',
        'Personalised training of demobilised soldiers (person-times)',
    ),
    ('indicator', 'personalised_training_trainees', 'description_en'): (
        None,
        DEMOBILISED_SOLDIERS,
    ),
    ('indicator', 'adaptive_training_trainees', 'description_en'): (
        None,
        DEMOBILISED_SOLDIERS,
    ),
    ('indicator', 'large_accident_claim_paid', 'name_en'): (
        'Large insurance claim paid to the family of a veteran who died in an accident',
        "Large insurance claim paid to one veteran's family after a fatal accident (one case)",
    ),
    ('indicator', 'large_accident_claim_paid', 'description_zh'): (
        None,
        '单一个案:新北区一名退役军人意外死亡后家属获得的理赔,全省首例;不是逐年统计的指标,不作同比。',
    ),
    ('indicator', 'large_accident_claim_paid', 'description_en'): (
        'One case, the first of its kind in Jiangsu.',
        "One family's claim, the first of its kind in Jiangsu: a single event, not a yearly "
        'series or a total, so comparisons answer not_a_series.',
    ),
    ('indicator', 'large_accident_claim_paid', 'single_event'): (False, True),
}


def _apply(direction: int) -> None:
    """Each field from its old text to its new (direction 1), or back (-1), by code, only
    where the field still holds the text it is changed from."""
    connection = op.get_bind()
    for (table_name, code, field), texts in CHANGES.items():
        before, after = texts[::direction]
        kind = sa.Boolean() if isinstance(after, bool) else sa.Text()
        table = sa.table(table_name, sa.column('code'), sa.column(field, kind))
        statement = sa.update(table).where(table.c.code == code).values({field: after})
        if before is None:
            statement = statement.where(table.c[field].is_(None))
        else:
            statement = statement.where(table.c[field] == before)
        connection.execute(statement)


def upgrade() -> None:
    _apply(1)


def downgrade() -> None:
    _apply(-1)
