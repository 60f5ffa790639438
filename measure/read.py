"""Reading the uplift report's input (``experiment_exposures``) and writing its output."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from measure.uplift import UpliftRow

EXPOSURES_SQL = """
SELECT trigger_name, experiment_id, experiment_group, brain, segment, converted, revenue, cost, pending
FROM experiment_exposures
WHERE first_exposed_at >= now() - %(since)s
  AND (CAST(%(trigger)s AS text) IS NULL OR trigger_name = %(trigger)s)
"""
FORMATS = ("table", "json", "csv")
BY = ("brain", "segment")


def exposure_params(trigger: str | None, since: timedelta) -> dict[str, Any]:
    return {"trigger": trigger, "since": since}


def flat(row: UpliftRow) -> dict[str, Any]:
    """One report row as flat columns (csv, table)."""
    out: dict[str, Any] = {"trigger": row.trigger, "key": row.key}
    for g in ("holdout", "control", "treatment"):
        out[f"n_{g}"] = row.customers.get(g, 0)
        out[f"conv_{g}"] = row.conversion_rate.get(g)
        out[f"rpc_{g}"] = row.revenue_per_customer.get(g)
    for name, lift in (("conv", row.conversion_lift), ("rev", row.revenue_lift)):
        out[f"{name}_lift"] = lift.absolute if lift else None
        out[f"{name}_lift_low"] = lift.low if lift else None
        out[f"{name}_lift_high"] = lift.high if lift else None
        out[f"{name}_lift_rel"] = lift.relative if lift else None
    out.update(
        incremental_revenue=row.incremental_revenue,
        cost=row.cost,
        net=row.net,
        srm_p=row.srm_p,
        srm_warning=row.srm_warning,
    )
    return out


def render(rows: list[UpliftRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.as_dict() for r in rows], indent=2, default=float)
    table = [flat(r) for r in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(table[0]) if table else ["trigger"])
        writer.writeheader()
        writer.writerows(table)
        return buf.getvalue()
    if not rows:
        return "no closed exposures in the period"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = []
    for r in rows:
        head = f"{r.trigger}{' / ' + r.key if r.key else ''}"
        sizes = ", ".join(f"{g} {n}" for g, n in r.customers.items())
        rates = ", ".join(f"{g} {pct(v)}" for g, v in r.conversion_rate.items())
        lines.append(f"{head}: customers {sizes}; conversion {rates}")
        if r.conversion_lift:
            c = r.conversion_lift
            lines.append(
                f"  conversion lift {pct(c.absolute)} (95% CI {pct(c.low)} .. {pct(c.high)}),"
                f" relative {pct(c.relative)}"
            )
        if r.revenue_lift and r.net is not None:
            v = r.revenue_lift
            lines.append(
                f"  revenue/customer lift {v.absolute:.2f} (95% CI {v.low:.2f} .. {v.high:.2f});"
                f" incremental revenue {r.incremental_revenue:.2f} - cost {r.cost:.2f} = {r.net:.2f}"
            )
        if r.srm_warning:
            lines.append(f"  WARNING {r.srm_warning}")
    return "\n".join(lines)
