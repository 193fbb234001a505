"""The Triton (CUDA) kernels of ``better_kan::kan_linear_forward`` / ``kan_linear_backward``.

Forward, one kernel: each program owns a (batch block, output block) tile of y (batch, out),
contiguous, and walks the flattened (input, basis) axis, computing the features F[s, p, j] of its
rows on the fly from x and the basis tables and multiplying them into the weight tile (``tl.dot``;
IEEE float32, no TF32, so the result matches the CPU to float tolerance). The programs of the first
output block also store F (feature-major, (in, n + 1, batch)) for the backward.

Backward, one kernel: each program owns (batch block, input p) and walks that input's n + 1
features in tiles, computing dL/dF for its rows (grad_y @ W[:, p, :]), then the basis derivatives,
and reduces them into grad_x[s, p]; with trainable centers it also stores phi'(z) dL/dF for the
gradients of a and b. Grids are one-dimensional and offsets 64-bit.

Bases: the closed-form uniform B-spline of any order, Cox--de Boor on any knots (each lane runs the
de Boor triangle over its basis function's own k + 2 knots), the six RBF kernels; base
activations silu, identity, zero, gelu, tanh, by the codes of :data:`better_kan.reference.BASES`.
The launches, checks and fallback are :mod:`better_kan.triton_ops`. Tested on the CPU with Triton's
interpreter (``TRITON_INTERPRET=1``, tests/test_triton_kernels.py) and compiled for an H100/H200
target (sm_90) there, without a GPU.
"""

from __future__ import annotations

import math

import torch

from . import reference

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the CPU wheels of torch do not bring Triton
    triton = None
    tl = None

#: basis name -> the kernels' code (one table for every path: better_kan.reference)
BASIS_CODES = reference.BASES
BASE_CODES = reference.BASE_ACTIVATION_CODES


AVAILABLE = triton is not None

if AVAILABLE:

    @triton.jit
    def _power(c, E: tl.constexpr):
        out = tl.full(c.shape, 1.0, c.dtype)
        for _ in tl.static_range(E):
            out = out * c
        return out

    @triton.jit
    def _cardinal(z, terms_ptr, ORDER: tl.constexpr, DERIVATIVE: tl.constexpr):
        """M_k(z) (or M_k'(z)) = sum_j w_j (s_j - |z|)_+^k, s_j = (k+1)/2 - j; the weights w_j (or k w_j)
        come from ``terms_ptr`` in z's dtype (a Python float held in a variable would be an fp32 constant)."""
        if ORDER == 0:
            if DERIVATIVE:
                out = tl.zeros_like(z)
            else:
                out = tl.where((z >= -0.5) & (z < 0.5), 1.0, 0.0).to(z.dtype)
        else:
            r = tl.abs(z)
            out = tl.zeros_like(z)
            for j in tl.static_range((ORDER + 2) // 2):
                c = (ORDER + 1) / 2 - j - r
                c = tl.where(c < 0, tl.zeros_like(c), c)  # NaN stays NaN, as clamp_min
                weight = tl.load(terms_ptr + j).to(z.dtype)
                if DERIVATIVE:
                    if ORDER == 1:
                        term = tl.where(c > 0, 1.0, 0.0).to(z.dtype)
                    else:
                        term = _power(c, ORDER - 1)
                    out += term * (weight * ORDER)
                else:
                    out += _power(c, ORDER) * weight
            if DERIVATIVE:
                sign = tl.where(z > 0, 1.0, tl.where(z < 0, -1.0, 0.0)).to(z.dtype)
                out = -sign * out
        return out

    @triton.jit
    def _safe_inverse(d):
        return tl.where(d > 0, 1.0 / tl.where(d > 0, d, 1.0), 0.0)

    @triton.jit
    def _cox(xv, knots_ptr, row, mask, ORDER: tl.constexpr, DERIVATIVE: tl.constexpr):
        """B_{j,k}(x) (or its derivative) by the de Boor triangle over knots t_j .. t_{j+k+1}.

        ``row`` = p * n_knots + j (the offset of t_j), broadcast to ``xv``'s shape."""
        t = ()
        for m in tl.static_range(ORDER + 2):
            t = t + (tl.load(knots_ptr + row + m, mask=mask, other=0.0),)
        level = ()
        for m in tl.static_range(ORDER + 1):
            level = level + (tl.where((xv >= t[m]) & (xv < t[m + 1]), 1.0, 0.0).to(xv.dtype),)
        for d in tl.static_range(1, ORDER + 1 - DERIVATIVE):  # degree k (or k - 1 for the derivative)
            nxt = ()
            for m in tl.static_range(ORDER + 1 - d):
                left = (xv - t[m]) * _safe_inverse(t[m + d] - t[m])
                right = (t[m + d + 1] - xv) * _safe_inverse(t[m + d + 1] - t[m + 1])
                nxt = nxt + (left * level[m] + right * level[m + 1],)
            level = nxt
        if DERIVATIVE:
            if ORDER == 0:
                out = tl.zeros_like(xv)
            else:
                out = ORDER * (level[0] * _safe_inverse(t[ORDER] - t[0]) - level[1] * _safe_inverse(t[ORDER + 1] - t[1]))
        else:
            out = level[0]
        return out

    @triton.jit
    def _rbf(z, BASIS: tl.constexpr):
        if BASIS == 2:
            out = tl.exp(-(z * z))
        elif BASIS == 3:
            out = 1.0 / (z * z + 1.0)
        elif BASIS == 4:
            out = tl.sqrt(z * z + 1.0)
        elif BASIS == 5:
            out = 1.0 / tl.sqrt(z * z + 1.0)
        elif BASIS == 6:
            r = tl.abs(z) * 1.7320508075688772
            out = tl.exp(-r) * (r + 1.0)
        else:
            r = tl.abs(z) * 2.23606797749979
            out = tl.exp(-r) * (r * r / 3.0 + r + 1.0)
        return out

    @triton.jit
    def _rbf_derivative(z, phi, BASIS: tl.constexpr):
        if BASIS == 2:
            out = z * phi * -2.0
        elif BASIS == 3:
            out = z * (phi * phi) * -2.0
        elif BASIS == 4:
            out = z / phi
        elif BASIS == 5:
            out = -z * (phi * phi * phi)
        elif BASIS == 6:
            out = z * (phi / (tl.abs(z) * 1.7320508075688772 + 1.0)) * -3.0
        else:
            r = tl.abs(z) * 2.23606797749979
            out = z * (phi * (r + 1.0) / (r * r / 3.0 + r + 1.0)) * (-5.0 / 3.0)
        return out

    @triton.jit
    def _sigmoid(x):
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _base(x, BASE: tl.constexpr, DERIVATIVE: tl.constexpr):
        if BASE == 0:  # silu
            s = _sigmoid(x)
            out = s * (1.0 + x * (1.0 - s)) if DERIVATIVE else x * s
        elif BASE == 1:  # identity
            out = tl.full(x.shape, 1.0, x.dtype) if DERIVATIVE else x
        elif BASE == 2:  # zero
            out = tl.zeros_like(x)
        elif BASE == 3:  # gelu (erf form)
            cdf = 0.5 * (1.0 + tl.math.erf(x * 0.7071067811865476))
            out = cdf + x * tl.exp(-0.5 * x * x) * 0.3989422804014327 if DERIVATIVE else x * cdf
        else:  # tanh = 2 sigmoid(2x) - 1
            t = 2.0 * _sigmoid(2.0 * x) - 1.0
            out = 1.0 - t * t if DERIVATIVE else t
        return out

    @triton.jit
    def _features(xv, p, j, valid, a_ptr, b_ptr, terms_ptr, N, NK, BASIS: tl.constexpr, ORDER: tl.constexpr, BASE: tl.constexpr):
        """F for x values ``xv`` (rows, cols) at inputs ``p`` and basis indices ``j`` (cols; j == N: the base)."""
        is_basis = valid & (j < N)
        if BASIS == 1:
            phi = _cox(xv, a_ptr, (p * NK + j)[None, :], is_basis[None, :], ORDER, False)
        else:
            av = tl.load(a_ptr + p * N + j, mask=is_basis, other=0.0)
            bv = tl.load(b_ptr + p * N + j, mask=is_basis, other=0.0)
            z = xv * av[None, :] + bv[None, :]
            if BASIS == 0:
                phi = _cardinal(z, terms_ptr, ORDER, False)
            else:
                phi = _rbf(z, BASIS)
        return tl.where(is_basis[None, :], phi, _base(xv, BASE, False))

    @triton.jit
    def _forward_kernel(
        x_ptr,
        sx0,
        sx1,
        w_ptr,
        bias_ptr,
        a_ptr,
        b_ptr,
        terms_ptr,
        f_ptr,
        y_ptr,
        B,
        I,
        O,
        N,
        NK,
        HAS_BIAS: tl.constexpr,
        BASIS: tl.constexpr,
        ORDER: tl.constexpr,
        BASE: tl.constexpr,
        BS: tl.constexpr,
        BQ: tl.constexpr,
        BK: tl.constexpr,
        IEEE: tl.constexpr,
    ):
        pid = tl.program_id(0)
        blocks_s = tl.cdiv(B, BS)
        pid_s = pid % blocks_s
        pid_q = pid // blocks_s
        N1 = N + 1
        K = I.to(tl.int64) * N1
        s = pid_s.to(tl.int64) * BS + tl.arange(0, BS)
        q = pid_q.to(tl.int64) * BQ + tl.arange(0, BQ)
        smask = s < B
        qmask = q < O
        acc = tl.zeros((BS, BQ), dtype=y_ptr.dtype.element_ty)
        for k0 in range(0, K, BK):
            kk = k0 + tl.arange(0, BK).to(tl.int64)
            kmask = kk < K
            p = kk // N1
            j = kk % N1
            tile = smask[:, None] & kmask[None, :]
            xv = tl.load(x_ptr + s[:, None] * sx0 + p[None, :] * sx1, mask=tile, other=0.0)
            f = tl.where(tile, _features(xv, p, j, kmask, a_ptr, b_ptr, terms_ptr, N, NK, BASIS, ORDER, BASE), 0.0)
            if pid_q == 0:
                tl.store(f_ptr + kk[None, :] * B + s[:, None], f, mask=tile)
            w = tl.load(w_ptr + q[None, :] * K + kk[:, None], mask=kmask[:, None] & qmask[None, :], other=0.0)
            if IEEE:
                acc += tl.dot(f, w, input_precision="ieee")
            else:
                acc += tl.dot(f, w)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + q, mask=qmask, other=0.0)[None, :]
        tl.store(y_ptr + s[:, None] * O + q[None, :], acc, mask=smask[:, None] & qmask[None, :])

    @triton.jit
    def _backward_kernel(
        gy_ptr,
        sg0,
        sg1,
        x_ptr,
        sx0,
        sx1,
        w_ptr,
        f_ptr,
        a_ptr,
        b_ptr,
        terms_ptr,
        gx_ptr,
        dz_ptr,
        B,
        I,
        O,
        N,
        NK,
        NEED_DZ: tl.constexpr,
        BASIS: tl.constexpr,
        ORDER: tl.constexpr,
        BASE: tl.constexpr,
        BS: tl.constexpr,
        BQ: tl.constexpr,
        BJ: tl.constexpr,
        IEEE: tl.constexpr,
    ):
        pid = tl.program_id(0)
        blocks_s = tl.cdiv(B, BS)
        pid_s = pid % blocks_s
        p = (pid // blocks_s).to(tl.int64)
        N1 = N + 1
        K = I.to(tl.int64) * N1
        s = pid_s.to(tl.int64) * BS + tl.arange(0, BS)
        smask = s < B
        xv = tl.load(x_ptr + s * sx0 + p * sx1, mask=smask, other=0.0)
        slope_sum = tl.zeros((BS,), dtype=gx_ptr.dtype.element_ty)
        base_grad = tl.zeros((BS,), dtype=gx_ptr.dtype.element_ty)
        for j0 in range(0, N1, BJ):  # input p's features, a tile of BJ at a time
            j = j0 + tl.arange(0, BJ)
            jmask = j < N1
            is_basis = j < N
            # dL/dF[s, p, j] = sum_q grad_y[s, q] W[q, p, j]
            gf = tl.zeros((BS, BJ), dtype=gx_ptr.dtype.element_ty)
            for q0 in range(0, O, BQ):
                q = q0 + tl.arange(0, BQ).to(tl.int64)
                qmask = q < O
                g = tl.load(gy_ptr + s[:, None] * sg0 + q[None, :] * sg1, mask=smask[:, None] & qmask[None, :], other=0.0)
                w = tl.load(w_ptr + q[:, None] * K + (p * N1 + j)[None, :], mask=qmask[:, None] & jmask[None, :], other=0.0)
                if IEEE:
                    gf += tl.dot(g, w, input_precision="ieee")
                else:
                    gf += tl.dot(g, w)
            xb = xv[:, None] + tl.zeros((BS, BJ), dtype=xv.dtype)
            tile = smask[:, None] & is_basis[None, :]
            if BASIS == 1:
                slope = _cox(xb, a_ptr, (p * NK + j)[None, :], tile, ORDER, True)  # dB/dx
            else:
                av = tl.load(a_ptr + p * N + j, mask=is_basis, other=0.0)
                bv = tl.load(b_ptr + p * N + j, mask=is_basis, other=0.0)
                z = xb * av[None, :] + bv[None, :]
                if BASIS == 0:
                    dphi = _cardinal(z, terms_ptr, ORDER, True)
                else:
                    phi = tl.load(f_ptr + (p * N1 + j)[None, :] * B + s[:, None], mask=tile, other=1.0)
                    dphi = _rbf_derivative(z, phi, BASIS)
                if NEED_DZ:
                    tl.store(dz_ptr + (p * N + j)[None, :] * B + s[:, None], dphi * gf, mask=tile)
                slope = dphi * av[None, :]
            slope_sum += tl.sum(tl.where(tile, slope * gf, 0.0), axis=1)
            base_grad += tl.sum(tl.where((j == N)[None, :], gf, 0.0), axis=1)
        gx = slope_sum + _base(xv, BASE, True) * base_grad
        tl.store(gx_ptr + s * I + p, gx, mask=smask)


_TERMS: dict = {}


def _terms(order: int, like: torch.Tensor) -> torch.Tensor:
    """The cardinal B-spline's weights w_j = (-1)^j C(k+1, j) / k! on ``like``'s device and dtype (cached)."""
    key = (order, like.dtype, like.device)
    if key not in _TERMS:
        weights = [(-1) ** j * math.comb(order + 1, j) / math.factorial(order) for j in range((order + 2) // 2)] or [1.0]
        _TERMS[key] = torch.tensor(weights, dtype=like.dtype, device=like.device)
    return _TERMS[key]


__all__ = ["AVAILABLE", "BASE_CODES", "BASIS_CODES"]
