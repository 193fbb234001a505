"""Where a small KAN's forward time goes: the network operator against its layers one by one.

    python benchmarks/profile_network.py [--out benchmarks/results/profile-network-DATE.md]

At the seed workload ([2,150,1], batch 32, float32, 2 threads) it times, best of five repeats of
3000 calls each, in microseconds per call: each layer's native operator alone (no Python module
around it), the whole network's operator alone, building the network operator's arguments in
Python (``KAN.network_arguments``), a layer module's call, the network's forward on both paths,
and the param-matched MLP's forward ([2,1050,1]: two ``F.linear`` and a ReLU). It says what a call costs
where: the per-call Python and dispatch that one operator per network removes, against the
arithmetic of each layer's basis, which it does not. The same second layer with Gaussian RBFs
says what its exp costs.

At the mnist workload ([784,64,10], batch 128) the cost is the first layer's products: it times
the forward and dL/dW products of our first layer (64 x 7056 x 128 multiply-adds each way, through
BLAS) against the param-matched MLP's first layer (575 x 784 x 128), and our first layer's basis
values (784 x 9 x 128) alone.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "implementations"))

from better_kan import build_rbf_kan, build_spline_kan, native  # noqa: E402


def per_call_us(fn, calls: int = 3000, repeats: int = 5) -> float:
    """The best of ``repeats`` means over ``calls`` calls, in microseconds."""
    for _ in range(200):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


def measure() -> list[tuple[str, float]]:
    torch.manual_seed(0)
    model = build_spline_kan([2, 150, 1])
    x = torch.rand(32, 2)
    first, second = model.layers
    tables = [layer.native_basis() for layer in model.layers]
    hidden = first(x).detach()
    args = model.network_arguments(x)
    # the param-matched MLP (4,201 parameters, as our KAN), its parameters recorded by autograd as ours are
    w1, b1 = torch.randn(1050, 2, requires_grad=True), torch.randn(1050, requires_grad=True)
    w2, b2 = torch.randn(1, 1050, requires_grad=True), torch.randn(1, requires_grad=True)
    rows = [
        (
            "layer 1 operator (2 -> 150: 32 x 2 x 9 basis values)",
            lambda: native.OP(x, first.weight, first.bias, *tables[0], "silu"),
        ),
        (
            "layer 2 operator (150 -> 1: 32 x 150 x 9 basis values)",
            lambda: native.OP(hidden, second.weight, second.bias, *tables[1], "silu"),
        ),
        ("network operator alone (both layers)", lambda: native.NETWORK_OP(x, *args)),
        ("KAN.network_arguments (Python, per call)", lambda: model.network_arguments(x)),
        ("layer 1 module call (its Python + operator)", lambda: first(x)),
    ]
    model.fused = True
    rows.append(("network forward, one operator", lambda: model(x)))
    layered = build_spline_kan([2, 150, 1])
    layered.load_state_dict(model.state_dict())
    layered.fused = False
    rows.append(("network forward, layers one by one", lambda: layered(x)))
    linear = torch.nn.functional.linear
    rows.append(("MLP forward [2,1050,1] (two F.linear and a ReLU)", lambda: linear(torch.relu(linear(x, w1, b1)), w2, b2)))
    rbf = build_rbf_kan([2, 150, 1]).layers[1]
    rbf_tables = rbf.native_basis()
    rows.append(
        (
            "layer 2 operator, Gaussian RBF (150 -> 1: 32 x 150 x 9 values)",
            lambda: native.OP(hidden, rbf.weight, rbf.bias, *rbf_tables, "silu"),
        )
    )
    return [(name, per_call_us(fn)) for name, fn in rows]


def measure_mnist() -> list[tuple[str, float]]:
    """The mnist workload's first layers: our products and basis against the MLP's products."""
    torch.manual_seed(0)
    layer = build_spline_kan([784, 64]).layers[0]
    x = torch.rand(128, 784)
    with torch.no_grad():
        _, features = torch.ops.better_kan.kan_linear_forward(x, layer.weight, layer.bias, *layer.native_basis(), "silu")
    w = layer.weight.detach().reshape(64, -1)
    f = features.reshape(-1, 128)
    gy = torch.rand(128, 64)
    w_mlp, gy_mlp = torch.randn(575, 784), torch.rand(128, 575)
    rows = [
        ("KAN layer 1 forward product W F (64 x 7056 x 128)", lambda: torch.mm(w, f)),
        ("KAN layer 1 dL/dW product (64 x 128 x 7056)", lambda: torch.mm(gy.t(), f.t())),
        ("MLP layer 1 forward product x W^T (128 x 784 x 575)", lambda: torch.mm(x, w_mlp.t())),
        ("MLP layer 1 dL/dW product (575 x 128 x 784)", lambda: torch.mm(gy_mlp.t(), x)),
        (
            "KAN layer 1 operator forward (basis values and product)",
            lambda: torch.ops.better_kan.kan_linear_forward(
                x, layer.weight.detach(), layer.bias.detach(), *layer.native_basis(), "silu"
            ),
        ),
    ]
    return [(name, per_call_us(fn, calls=200)) for name, fn in rows]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    date = datetime.date.today().isoformat()
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"profile-network-{date}.md")
    rows = measure()
    lines = [
        f"# Where a seed-workload KAN's forward time goes ({date})",
        "",
        f"Measured by `python benchmarks/profile_network.py` on this project's 2-core CI-class VM (torch "
        f"{torch.__version__}, 2 threads, {native.STATUS.describe()}): [2,150,1] B-spline KAN, batch 32, "
        "float32, with autograd recording; best of five repeats of 3000 calls.",
        "",
        "| what | us per call |",
        "|---|---:|",
        *[f"| {name} | {us:.1f} |" for name, us in rows],
        "",
        "## mnist ([784,64,10], batch 128): the first layer",
        "",
        "Best of five repeats of 200 calls, no autograd; the MLP's first layer is the param-matched one (784 -> 575: 457,135 parameters against our 457,418).",
        "",
        "| what | us per call |",
        "|---|---:|",
        *[f"| {name} | {us:.1f} |" for name, us in measure_mnist()],
    ]
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
