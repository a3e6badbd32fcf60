"""Example clients of the claim harness (:mod:`verify.harness.claim`).

Each module exposes ``model(width, seed) -> (params, apply)`` and
``kernel(X, Xp) -> (B, T, n_y, B', T', n_y)`` functions, usable as
``python -m verify claim --model verify.claims.elman:relu_model --kernel verify.claims.elman:relu_kernel``:

* :mod:`verify.claims.elman`: Elman RNNs (linear, ReLU, erf) against the exact kernels of
  :mod:`theory.kernel` (linear) and :mod:`theory.nonlinear`;
* :mod:`verify.claims.lru`: the LRU (diagonal complex recurrence) against
  :mod:`theory.diagonal`;
* :mod:`verify.claims.wrong`: deliberately wrong claims (a wrong s_W, the NNGP in place
  of the NTK, a missing factor 2) that the harness must reject.
"""
