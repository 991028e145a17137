"""The malformed-call campaign, counted: every case executed, C (``c_abi_table.py``, each
call in a forked child) and Python (``test_bad_input.py``), with how many were refused with a
clear error naming the field, how many crashed, changed the context or answered INTERNAL.
The count is of the records the cases left when they ran, not of the tables; Python cases
this process has not run yet (this file run alone, or with ``-k``) are run here.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q -s tests/plugin/test_campaign.py
"""

from __future__ import annotations

from .campaign import RECORDS, Summary, run_case


def test_the_campaign_counts_every_executed_case(c_table):
    from .test_bad_input import CASES

    proc, c_records = c_table
    for case in CASES:
        if case.id not in RECORDS:
            run_case(case)
    py_records = [RECORDS[c.id] for c in CASES]
    summary = Summary.of(py_records + c_records)
    print(f"\ncampaign: {summary.line()}")
    assert summary.by_interface.get("c", 0) >= 130 and summary.by_interface["python"] >= 150, summary
    assert summary.cases >= 150
    assert summary.crashes == 0, [r for r in c_records if r["crashed"]]
    assert summary.state_changes == 0, [r["id"] for r in py_records + c_records if r["state_changed"]]
    assert summary.internal == 0, [r["id"] for r in py_records + c_records if r["code"] == 5]
    assert summary.named_errors == summary.cases, [(r["id"], r["message"]) for r in py_records + c_records
                                                   if not r["named"]]
    assert all(r["typed"] for r in py_records), [(r["id"], r["error"]) for r in py_records if not r["typed"]]
