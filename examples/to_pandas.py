"""Seven days of records into a pandas DataFrame, and from there into a Parquet file.

    pip install pandas pyarrow
    python examples/to_pandas.py records.parquet

`Record.to_dict()` gives JSON-ready values: every wire field, `created_at` as ISO-8601
UTC to the millisecond (one format for every record) and `matched`. The DataFrame gets
`created_at` as a timezone-aware datetime column; Parquet keeps the types.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import senselink_plus as slp

from _setup import example_client

if TYPE_CHECKING:
    import pandas as pd


async def frame(client: slp.Client, start: datetime, end: datetime) -> pd.DataFrame:
    """Every record of ``[start, end]`` as a DataFrame, one row a record."""
    import pandas as pd

    rows = [record.to_dict() async for record in client.records(start, end)]
    df = pd.DataFrame.from_records(rows)
    if not df.empty:  # one fixed format: 2024-05-01T00:00:00.000Z
        df["created_at"] = pd.to_datetime(df["created_at"], format="%Y-%m-%dT%H:%M:%S.%f%z")
    return df


async def run(target: Path) -> None:
    end = datetime.now(timezone.utc)
    start = end - timedelta(days=7)

    def seed(emu: object) -> None:
        from senselink_plus.testing import Emulator

        assert isinstance(emu, Emulator)
        emu.seed(5_000, start=start, span=timedelta(days=7), sn=["GATE-1", "GATE-2"])

    async with example_client(seed) as client:
        df = await frame(client, start, end)
    df.to_parquet(target, index=False)
    print(df.groupby("sn")["matched"].agg(["count", "sum"]).to_string())
    print(f"wrote {len(df)} records to {target}")


if __name__ == "__main__":
    asyncio.run(run(Path(sys.argv[1] if len(sys.argv) > 1 else "records.parquet")))
