"""Peak memory of one method, measured in a fresh subprocess.

``python -m benchmarks.memprobe '{"method": ..., "n": ..., "T": ..., "batch": ..., "max_bytes": ...,
"tracemalloc": true}'`` prints one JSON line.

How: the subprocess imports everything the method needs and builds the
problem, then resets the kernel's resident-set high-water mark (writing ``5``
to ``/proc/self/clear_refs``, Linux >= 4.0) and records its resident set size
``VmRSS``; after one run of the method, ``peak = VmHWM - VmRSS_before``: the
extra resident memory the method needed at its peak, whoever allocated it
(numpy, torch's CPU allocator, BLAS buffers).  Without ``/proc`` it falls back to
``ru_maxrss`` deltas (coarser: a high-water mark that cannot be reset).  For
numpy methods it also runs the method once more under ``tracemalloc``, which
sees numpy's allocations but not torch's.  An address-space limit
(``RLIMIT_DATA`` = current + ``max_bytes``) turns an over-budget run into a
reported failure instead of an out-of-memory kill.
"""
from __future__ import annotations

import gc
import json
import resource
import sys
import time
import tracemalloc


def _status() -> dict:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, val = line.split(":", 1)
                if key in ("VmHWM", "VmRSS", "VmData"):
                    out[key] = int(val.split()[0]) * 1024
    except OSError:
        pass
    return out


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def probe(method: str, n: int, T: int, batch: int, max_bytes: float | None, use_tracemalloc: bool) -> dict:
    from .methods import ALIASES, METHODS, problem, warm_up

    method = ALIASES.get(method, method)  # a former name ("ntvp", "reference") is recorded as the method's name
    m = METHODS[method]
    if m.torch:
        import torch  # noqa: F401  (imported before the baseline)

        import verify.engine.autodiff
    import verify.engine.ntk
    import verify.engine.reference  # noqa: F401

    # one-time initialization (lazy imports, BLAS buffers, torch.func set-up) is not the method's cost
    warm_up(m)
    spec, rnn, X = problem(n, T, batch)
    gc.collect()
    st = _status()
    if max_bytes and "VmData" in st:
        limit = int(st["VmData"] + max_bytes)
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    reset = _reset_hwm()
    st = _status()
    base_rss = st.get("VmRSS")
    base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rec = {"method": method, "n": n, "T": T, "batch": batch}
    t0 = time.perf_counter()
    try:
        out = m.run(spec, rnn, X)
    except (MemoryError, RuntimeError) as exc:
        msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        if isinstance(exc, MemoryError) or "allocate" in msg:
            msg = f"over the memory budget of {max_bytes / 2**30:.2f} GiB ({msg})"
        rec.update(ok=False, error=msg)
        return rec
    rec["seconds"] = time.perf_counter() - t0
    st = _status()
    if reset and base_rss is not None:
        rec.update(rss_peak_bytes=st["VmHWM"] - base_rss, rss_method="VmHWM - VmRSS after clear_refs")
    else:
        rec.update(rss_peak_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base_max,
                   rss_method="ru_maxrss delta")
    del out
    gc.collect()
    if use_tracemalloc and not m.torch:
        tracemalloc.start()
        out = m.run(spec, rnn, X)
        rec["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del out
    rec["ok"] = True
    return rec


def main(argv=None) -> int:
    args = json.loads((argv or sys.argv[1:])[0])
    rec = probe(args["method"], int(args["n"]), int(args["T"]), int(args.get("batch", 4)),
                args.get("max_bytes"), bool(args.get("tracemalloc", True)))
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
