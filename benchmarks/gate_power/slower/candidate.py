"""The power experiment's candidate after a 'regression': the MLP with 25% more work.

Hidden width x12.5 instead of x10: every matmul and activation does 25% more
multiply-adds. At the gate workload ([100,100,1], batch 100) that measured
1.24x the MLP's forward+backward time on 2 CPU threads.
"""

from kanbench import Implementation
from kanbench.baseline import MLP

spec = Implementation(
    name="candidate",
    build=lambda widths, device, dtype: MLP(widths, hidden_factor=12.5).to(device=device, dtype=dtype),
    description="the MLP with 25% more work (power experiment, regressed)",
)
