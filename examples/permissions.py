"""A permission set: load the YAML spec, build it, apply events in bulk.

    python examples/permissions.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convergent import check, load_spec
from convergent import Machine

HERE = Path(__file__).parent


def main() -> None:
    spec = load_spec(str(HERE / "permissions.yaml"))
    report = check(spec)
    print(report.render_text())
    machine = Machine.from_spec(spec)
    s = machine.run(["grant_admin", "suspend"])
    print("grant_admin then suspend:", s.to_dict())
    # every state at once: where does grant_write lead?
    ids = np.flatnonzero(machine.valid_table)
    after = machine.apply_many(ids, "grant_write")
    print(f"grant_write from {len(ids)} valid states reaches {len(set(after.tolist()))} states")


if __name__ == "__main__":
    main()
