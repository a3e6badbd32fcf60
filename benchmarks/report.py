"""Tables (plain text or markdown) of a benchmark result."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence


def _table(headers: Sequence[str], rows: List[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def _s(x: Optional[float]) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _mib(b: Optional[float]) -> str:
    return "-" if b is None else f"{b / 2**20:.1f}"


def _x(r: Optional[float]) -> str:
    return "-" if r is None else (f"{r:.0f}x" if r >= 10 else f"{r:.2f}x")


def ntk_table(records: List[Dict], markdown: bool) -> str:
    headers = ["n", "T", "method", "median s", "min s", "runs", "peak RSS MiB", "tracemalloc MiB",
               "rel. diff", "note"]
    rows = []
    for r in records:
        note = r.get("reason", "")
        if r.get("timed_in") == "memory-probe subprocess":
            note = "timed once, in the probe: " + note
        diff = r.get("max_rel_diff_vs_structured")
        rows.append([str(r["n"]), str(r["T"]), r["method"], _s(r.get("median_s")), _s(r.get("min_s")),
                     str(r.get("repeats", "-")), _mib(r.get("rss_peak_bytes")),
                     _mib(r.get("tracemalloc_peak_bytes")), "-" if diff is None else f"{diff:.1e}",
                     note if r.get("status") != "ok" else ""])
    return _table(headers, rows, markdown)


def parts_table(records: List[Dict], markdown: bool) -> str:
    headers = ["n", "T", "structured s", "Krylov s", "lag Gram s (incl. Krylov)", "contraction s"]
    rows = []
    for r in records:
        p = r.get("parts")
        if r["method"] == "structured" and p:
            rows.append([str(r["n"]), str(r["T"]), _s(r["median_s"]), _s(p["krylov"]), _s(p["lag_gram"]),
                         _s(p["contraction"])])
    return _table(headers, rows, markdown)


def ratio_table(rows: List[Dict], markdown: bool) -> str:
    headers = ["n", "T", "jacobian / structured (time)", "jacobian / structured (peak RSS)",
               "structured / Krylov floor (time)"]
    out = [[str(r["n"]), str(r["T"]), _x(r.get("jacobian_over_structured_time")),
            _x(r.get("jacobian_over_structured_memory")), _x(r.get("structured_over_krylov_time"))] for r in rows]
    return _table(headers, out, markdown)


def target_table(res: List[Dict], markdown: bool) -> str:
    rows = [[t["target"], _x(t["value"]), {True: "met", False: "MISSED", None: "not measured"}[t["met"]]]
            for t in res]
    return _table(["target", "measured", "status"], rows, markdown)


def exact_table(records: List[Dict], markdown: bool) -> str:
    return _table(["case", "median s", "runs"],
                  [[r["case"], _s(r["median_s"]), str(r["repeats"])] for r in records], markdown)


def machine_text(info: Dict) -> str:
    blas = info.get("blas", {})
    if blas.get("source") == "threadpoolctl":
        blas_s = "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                           for p in blas.get("pools", []))
    else:
        blas_s = f"{blas.get('name')} {blas.get('version')} [{blas.get('configuration')}] ({blas.get('source')})"
    lines = [
        f"- CPU: {info.get('cpu')}; {info.get('cores_logical')} logical cores, {info.get('cores_usable')} usable; "
        f"load average at start {' '.join(info.get('loadavg_at_start', []))}",
        f"- {info.get('platform')}; Python {info.get('python')}, numpy {info.get('numpy')}, "
        f"torch {info.get('torch')} ({info.get('torch_threads')} intra-op threads), mpmath {info.get('mpmath')} "
        f"(backend {info.get('mpmath_backend')})",
        f"- BLAS: {blas_s}",
        "- thread variables: " + ", ".join(f"{k}={v}" for k, v in info.get("thread_env", {}).items()),
    ]
    return "\n".join(lines)


def render(result: Dict, markdown: bool) -> str:
    h = (lambda s: f"\n### {s}\n") if markdown else (lambda s: f"\n{s}\n")
    parts = [h("Machine"), machine_text(result["machine"]), "", f"command: `{result['command']}`"]
    if result.get("ntk"):
        parts += [h(f"Empirical NTK, B = {result['ntk'][0]['B']} sequences, n_x = n_y = 1 "
                    "(wall seconds; peak memory above the process's resident set before the call)"),
                  ntk_table(result["ntk"], markdown),
                  h("Ratios"), ratio_table(result["ratios"], markdown),
                  h("Targets"), target_table(result["targets"], markdown),
                  h("Where the structured method's time goes"), parts_table(result["ntk"], markdown)]
    for size, text in (result.get("profiles") or {}).items():
        parts += [h(f"cProfile of the structured method at n x T = {size}"), "```\n" + text + "\n```"]
    if result.get("exact"):
        parts += [h("Exact side (mpmath)"), exact_table(result["exact"], markdown)]
    return "\n".join(parts) + "\n"
