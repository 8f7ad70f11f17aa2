"""Master.csv lines as a node's Asterisk writes them, and what the store kept of them."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import CdrRecord
from db.session import unit_of_work


def cdr_line(uniqueid: str, ended: str = "2026-12-05 02:01:30", dstchannel: str = "") -> str:
    """One cdr_csv line as a node's Asterisk writes it: strings quoted, numbers bare."""
    fields = [
        *("", "13800138000", "12345", "hotline-in", '"" <13800138000>', "PJSIP/sip-front-1"),
        *(dstchannel, "AGI", "agi://127.0.0.11:4573/inbound", ended[:-2] + "00", ended, ended),
    ]
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="").writerow(fields)
    tail = io.StringIO()
    csv.writer(tail, quoting=csv.QUOTE_ALL, lineterminator="").writerow(
        ["ANSWERED", "DOCUMENTATION", uniqueid, ""]
    )
    return f"{out.getvalue()},90,90,{tail.getvalue()}\n"


def stored_uniqueids(sessions: sessionmaker[Session], node: str = "ast1") -> list[str]:
    with unit_of_work(sessions) as session:
        return list(
            session.scalars(
                select(CdrRecord.uniqueid).where(CdrRecord.node == node).order_by(CdrRecord.id)
            )
        )
