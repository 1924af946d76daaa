#!/usr/bin/env python
"""CPU per stored submission by batch size: `Services.submit_many` called directly, no HTTP, no Slack.

What the submission's ack spends storing, and how it falls as group commit puts more submissions in one
transaction. Each batch is a list of valid, distinct submissions (the modal state `ack_compare.py` sends,
validated as the listener validates it); batch sizes alternate in ABBA order in one process and the
first round is a warm-up. `time.process_time()` covers every thread of the process. With `--app-dir`
the app is imported from another checkout (e.g. an export of an older commit), for before/after.

  .venv/bin/python bench/bench_store.py --db postgres --batch 1,4,8
  .venv/bin/python bench/bench_store.py --db postgres --app-dir /tmp/triage-before
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--batch", default="1,4,8", help="batch sizes, comma-separated")
    ap.add_argument("--per", type=int, default=160, help="submissions per batch size and round")
    ap.add_argument("--rounds", type=int, default=8, help="rounds (the first is a warm-up)")
    ap.add_argument("--app-dir", default=str(REPO), help="import the app from this checkout")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "bench"))
    import ack_compare as AC  # the modal state and Opportunity ids the ack benchmark sends

    sys.path.insert(0, str(Path(a.app_dir).resolve()))  # ahead of the repository ack_compare put first

    url, pg_db = AC.create_database(a.db, Path(tempfile.mkdtemp(prefix="triage-store-")), "bench_store")
    os.environ.update(DATABASE_URL=url, TRIAGE_CONFIG=str(REPO / "bench" / "bench.toml"))
    try:
        import triage
        from triage.config import Settings
        from triage.core import fields
        from triage.core.fields import RequestFields
        from triage.db import make_engine
        from triage.migrate import upgrade
        from triage.services import Services, Submission
        from triage.slack.forms import read_state

        upgrade(url)
        settings = Settings()
        engine = make_engine(url)
        services = Services(settings, engine)
        seq = iter(range(1, 10**9))

        def submission() -> Submission:
            n = next(seq)
            values = read_state(AC.product_values(opportunity=AC.opportunity_id(n), customer=f"Bench {n}"))
            cleaned = fields.validate(values, now=services.now(), queue_keys=services.config.queue_keys,
                                      tz=UTC).cleaned
            return Submission(uuid.uuid4().hex, "U0BENCHAE", RequestFields.model_validate(
                {**cleaned, "requester_name": "bench"}), None, None)

        sizes = [int(x) for x in a.batch.split(",")]
        seen: dict[int, list[float]] = {size: [] for size in sizes}
        gc.freeze()  # as `triage serve` does once started
        for rnd in range(a.rounds):
            for size in (sizes if rnd % 2 == 0 else sizes[::-1]):
                subs = [submission() for _ in range(a.per)]
                gc.collect()
                t0 = time.process_time()
                for i in range(0, a.per, size):
                    for result in services.submit_many(subs[i:i + size]):
                        assert not isinstance(result, Exception), result
                spent = time.process_time() - t0
                if rnd:
                    seen[size].append(1000 * spent / a.per)
        engine.dispose()
        print(f"app from {Path(triage.__file__).parent.parent}, {a.db}, {a.per} submissions per batch size and round, "
              f"{a.rounds - 1} rounds measured")
        for size, xs in seen.items():
            print(f"batch {size:3d}: CPU ms per stored submission median {statistics.median(xs):.3f}, "
                  f"min {min(xs):.3f}")
    finally:
        AC.drop_database(pg_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
