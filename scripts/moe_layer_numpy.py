#!/usr/bin/env python3
"""The numpy peer of `cargo run --release --example moe_layer` (default, reduced sizes): the same
MoE layer maths at the same shapes, in f32 (numpy has no bf16), timed the same way (one forward
pass after the weights are in memory). Issue 14 compares the simulator against it.

    python3 scripts/moe_layer_numpy.py          # needs numpy (pip install numpy); CI does not run it

Shapes: 16 tokens, hidden 1024, 64 routed experts in 8 groups (top-4 groups, top-8 experts),
moe_intermediate 256, one shared expert; sigmoid scores with a selection bias, routed scaling
2.5, SwiGLU experts, weights stored [N, K] as in the example.
"""

import time

import numpy as np

TOKENS, HIDDEN, INTER, EXPERTS = 16, 1024, 256, 64
GROUPS, TOPK_GROUPS, TOP_K, SCALE = 8, 4, 8, 2.5


def values(seed, n, scale):
    """The example's deterministic values in [-scale, scale)."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2_654_435_761) + np.uint64(seed * 40_503)) % np.uint64(2001)
    return ((h.astype(np.float32) / 1000.0 - 1.0) * scale).astype(np.float32)


def ffn_weights(seed, stack):
    shapes = [(INTER, HIDDEN), (INTER, HIDDEN), (HIDDEN, INTER)]
    mats = [[], [], []]
    for e in range(stack):
        for p, (n, k) in enumerate(shapes):
            mats[p].append(values(seed + 3 * e + p, n * k, 0.05).reshape(n, k))
    return [np.stack(m) for m in mats]  # [E, N, K] each


def silu(v):
    return v / (1.0 + np.exp(-v))


def forward(x, router, bias, gate, up, down, shared):
    logits = x @ router.T  # [T, E]
    scores = 1.0 / (1.0 + np.exp(-logits))
    biased = scores + bias
    per_group = EXPERTS // GROUPS
    grouped = biased.reshape(TOKENS, GROUPS, per_group)
    group_score = np.sort(grouped, axis=2)[:, :, -2:].sum(axis=2)
    keep_groups = np.argsort(-group_score, axis=1, kind="stable")[:, :TOPK_GROUPS]
    mask = np.full((TOKENS, GROUPS), -np.inf, dtype=np.float32)
    np.put_along_axis(mask, keep_groups, 0.0, axis=1)
    masked = (grouped + mask[:, :, None]).reshape(TOKENS, EXPERTS)
    ids = np.argsort(-masked, axis=1, kind="stable")[:, :TOP_K]  # [T, K]
    w = np.take_along_axis(scores, ids, axis=1)
    w = w / w.sum(axis=1, keepdims=True) * SCALE

    flat = ids.reshape(-1)
    order = np.argsort(flat, kind="stable")
    rows = x[order // TOP_K]  # dispatched rows, sorted by expert
    counts = np.bincount(flat, minlength=EXPERTS)
    y = np.empty((rows.shape[0], HIDDEN), dtype=np.float32)
    start = 0
    for e in range(EXPERTS):
        end = start + counts[e]
        if end > start:
            r = rows[start:end]
            h = silu(r @ gate[e].T) * (r @ up[e].T)
            y[start:end] = h @ down[e].T
        start = end
    routed = np.empty_like(y)
    routed[order] = y
    out = (routed.reshape(TOKENS, TOP_K, HIDDEN) * w[:, :, None]).sum(axis=1)
    sg, su, sd = shared
    out += (silu(x @ sg[0].T) * (x @ su[0].T)) @ sd[0].T
    return out


def main():
    router = values(1, EXPERTS * HIDDEN, 0.02).reshape(EXPERTS, HIDDEN)
    bias = values(2, EXPERTS, 0.1)
    gate, up, down = ffn_weights(10, EXPERTS)
    shared = ffn_weights(1_000_000, 1)
    x = values(3, TOKENS * HIDDEN, 1.0).reshape(TOKENS, HIDDEN)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        forward(x, router, bias, gate, up, down, shared)
        times.append((time.perf_counter() - t) * 1e3)
    print(
        f"numpy {np.__version__} MoE layer ({TOKENS} tokens, hidden {HIDDEN}, {EXPERTS} experts, "
        f"inter {INTER}, f32): first {times[0]:.1f} ms, median {sorted(times)[3]:.1f} ms, "
        f"best {min(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
