"""The knowledge base in the store: idempotent import, versions, what is live on a day,
offers with true deflection, and the consultations no entry answers (gaps)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.vocabulary import RequestType
from db.models import Department, KbEntry
from db.session import unit_of_work
from db.tickets import create_ticket
from kb.entries import (
    EntryError,
    current_entries,
    import_entries,
    latest,
    live_entries,
    load_file,
    matcher,
    publish,
)
from kb.offers import deflection, gaps, mark_accepted, mark_heard, record_offer

SAMPLE = Path(__file__).resolve().parents[2] / "kb" / "sample_entries.yaml"
NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


def entry(key: str = "heating-not-warm", **changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "key": key,
        "title": "暖气不热找谁",
        "phrasings": ["家里暖气不热应该找谁", "暖气片温度太低怎么办", "供暖室温不达标去哪反映"],
        "keywords": ["暖气", "供暖"],
        "answer_zh": "请拨打供热公司热线96069。",
        "category": "水电气暖",
        "status": "published",
    }
    return {**base, **changes}


def write(tmp_path: Path, *entries: dict[str, object], name: str = "kb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"entries": list(entries)}, allow_unicode=True))
    return path


def rows(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(KbEntry)) or 0)


def test_the_sample_imports_once_and_a_second_import_changes_nothing(
    store: sessionmaker[Session],
) -> None:
    entries = load_file(SAMPLE)
    with unit_of_work(store) as session:
        first = import_entries(session, entries, "test", NOW)
    with unit_of_work(store) as session:
        again = import_entries(session, load_file(SAMPLE), "test", NOW + timedelta(days=1))
        assert rows(session) == 40
    assert len(first.added) == 40
    assert again.unchanged == first.added
    assert not again.added and not again.changed and not again.status_changed


def test_a_changed_entry_gets_a_new_version_and_the_old_one_is_retired(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    with unit_of_work(store) as session:
        import_entries(session, load_file(write(tmp_path, entry(), entry("water"))), "a", NOW)
    changed = entry(answer_zh="请拨打供热公司热线96069，或在小程序报修。")
    with unit_of_work(store) as session:
        result = import_entries(session, load_file(write(tmp_path, changed, entry("water"))), "b")
    assert result.changed == ["heating-not-warm"] and result.unchanged == ["water"]
    with unit_of_work(store) as session:
        versions = session.scalars(
            select(KbEntry).where(KbEntry.key == "heating-not-warm").order_by(KbEntry.version)
        ).all()
        assert [(v.version, v.status) for v in versions] == [(1, "retired"), (2, "published")]
        assert versions[1].answer_zh.endswith("小程序报修。") and versions[1].updated_by == "b"
        assert {r.key: r.version for r in current_entries(session)} == {
            "heating-not-warm": 2,
            "water": 1,
        }


def test_a_status_change_alone_keeps_the_version(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    with unit_of_work(store) as session:
        import_entries(session, load_file(write(tmp_path, entry(status="draft"))), "a", NOW)
        assert live_entries(session, date(2026, 11, 10)) == []
    with unit_of_work(store) as session:
        result = import_entries(session, load_file(write(tmp_path, entry())), "a", NOW)
        assert result.status_changed == ["heating-not-warm"]
        row = latest(session, "heating-not-warm")
        assert row is not None and (row.version, row.status) == (1, "published")
        assert row.reviewed_at is not None


def test_publish_makes_a_draft_live(store: sessionmaker[Session], tmp_path: Path) -> None:
    with unit_of_work(store) as session:
        import_entries(session, load_file(write(tmp_path, entry(status="draft"))), "a", NOW)
        publish(session, "heating-not-warm", "boss", NOW)
        assert [r.key for r in live_entries(session, date(2026, 11, 10))] == ["heating-not-warm"]
        with pytest.raises(EntryError, match="no-such"):
            publish(session, "no-such", "boss")


def test_live_entries_respect_validity_and_lines(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    winter = entry("winter", valid_from="2026-11-01", valid_to="2027-03-31")
    labour = entry("labour", lines=["12333"])
    with unit_of_work(store) as session:
        import_entries(session, load_file(write(tmp_path, winter, labour)), "a", NOW)
        assert {r.key for r in live_entries(session, date(2026, 12, 1))} == {"winter", "labour"}
        assert {r.key for r in live_entries(session, date(2027, 5, 1))} == {"labour"}
        assert {r.key for r in live_entries(session, date(2026, 12, 1), {"12345"})} == {"winter"}
        assert {r.key for r in live_entries(session, date(2026, 12, 1), {"12333"})} == {
            "winter",
            "labour",
        }


def test_the_owner_is_a_department_code(store: sessionmaker[Session], tmp_path: Path) -> None:
    with unit_of_work(store) as session:
        session.add(Department(code="HEAT", name="供热公司", level=2))
        session.flush()
        import_entries(session, load_file(write(tmp_path, entry(owner="HEAT"))), "a", NOW)
        row = latest(session, "heating-not-warm")
        assert row is not None and row.owner_department_id is not None
        with pytest.raises(EntryError, match="owner: no department with code 'NOPE'"):
            import_entries(session, load_file(write(tmp_path, entry(owner="NOPE"))), "a")


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        ({"entries": [entry(phrasings=["一", "二"])]}, "entries.0.phrasings"),
        ({"entries": [entry(), entry()]}, "entries.1.key: 'heating-not-warm' appears twice"),
        ({"entries": [entry(valid_from="2026-12-01", valid_to="2026-11-01")]}, "valid_to"),
        ({"entries": [entry(colour="red")]}, "entries.0.colour"),
        ({"entries": [{k: v for k, v in entry().items() if k != "answer_zh"}]}, "answer_zh"),
        ({"items": []}, "entries"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_field(
    tmp_path: Path, content: dict[str, object], fault: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(content, allow_unicode=True))
    with pytest.raises(EntryError) as raised:
        load_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and fault in message and "\n" not in message


def test_broken_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("entries: [\n  - key: x\n")
    with pytest.raises(EntryError, match="not valid YAML") as raised:
        load_file(path)
    assert "\n" not in str(raised.value)


def ticket(session: Session, number: str, at: datetime, category: str, **fields: object) -> int:
    made = create_ticket(
        session,
        caller_number=number,
        local_day=at.date(),
        accepted_at=at,
        category=category,
        **fields,  # type: ignore[arg-type]
    )
    return made.id


def test_true_deflection_counts_accepted_offers_whose_caller_did_not_come_back(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    with unit_of_work(store) as session:
        import_entries(session, load_file(write(tmp_path, entry())), "a", NOW)
        entry_id = latest(session, "heating-not-warm").id  # type: ignore[union-attr]
        offered = {}
        for number in ("13800000001", "13800000002", "13800000003", "13800000004"):
            own = ticket(session, number, NOW, "水电气暖", source="ivr-kb")
            offer = record_offer(
                session, entry_id, "queue", caller_number=number, ticket_id=own, at=NOW
            )
            offered[number] = offer.id
        for number in ("13800000001", "13800000002", "13800000003"):
            mark_accepted(session, offered[number])
        mark_heard(session, offered["13800000004"])
        ticket(session, "13800000002", NOW + timedelta(days=3), "水电气暖")  # came back
        ticket(session, "13800000003", NOW + timedelta(days=10), "水电气暖")  # after 7 days
        ticket(session, "13800000001", NOW + timedelta(days=2), "劳动纠纷")  # another matter
    with unit_of_work(store) as session:
        [figures] = deflection(
            session, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), 7
        )
    assert (figures.key, figures.offered, figures.heard, figures.accepted) == (
        "heating-not-warm",
        4,
        4,
        3,
    )
    assert figures.deflected == 2
    assert figures.deflection_rate == 0.5


def test_gaps_are_consultations_no_entry_answers(store: sessionmaker[Session]) -> None:
    with unit_of_work(store) as session:
        import_entries(session, load_file(SAMPLE), "a", NOW)
        index = matcher(current_entries(session))
        at = NOW
        for text in ("小区充电桩安装要找谁", "充电桩报装流程", "家里能不能装充电桩"):
            at += timedelta(hours=1)
            ticket(session, "13900000001", at, "房地产", description=text,
                   request_type=RequestType.CONSULTATION)  # fmt: skip
        ticket(session, "13900000002", at, "水电气暖", description="暖气不热找谁",
               request_type=RequestType.CONSULTATION)  # fmt: skip
        ticket(session, "13900000003", at, "城市管理", description="充电桩占了消防通道",
               request_type=RequestType.COMPLAINT)  # fmt: skip
    with unit_of_work(store) as session:
        found = gaps(
            session,
            index,
            datetime(2026, 11, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
            0.35,
        )
    assert found[0].term == "充电" and found[0].count == 3
    assert len(found[0].tickets) == 3
    assert all(g.term not in ("暖气", "不热") for g in found)
