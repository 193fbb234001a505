"""The power experiment's candidate, unchanged: exactly the MLP baseline (hidden x10)."""

from kanbench import Implementation
from kanbench.baseline import MLP

spec = Implementation(
    name="candidate",
    build=lambda widths, device, dtype: MLP(widths).to(device=device, dtype=dtype),
    description="the MLP baseline (power experiment, unchanged)",
)
