"""Markdown tables and goal checks from ``python -m stss_runtime evaluate --json`` files, so the
README's and ``docs/RESULTS.md``'s tables are regenerated from the runs, not typed.

    .venv/bin/python scripts/results_tables.py docs/results/eval_traffic.json docs/results/eval_fence.json \\
        --pass stss_recurrent

For each file: every method's Y-PSNR / FLIP on rendered (SF) and extrapolated (EF) frames,
its temporal stability and its median CPU time per frame, best values in bold; then the
goals for ``--pass``: SF >= ``temporal`` + 1 dB, EF >= the best zero-latency baseline + 1 dB,
the lowest FLIP of all zero-latency methods on both kinds, stability no worse than
``temporal``'s. A file evaluated with ``--generated-frames N > 1`` gets the per-distance
table instead, with the mean over the distances against the interpolation passes'.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from stss_runtime.evaluation.evaluate import is_baseline
from stss_runtime.passes import PASSES


def zero_latency(method: str) -> bool:
    return method in PASSES and PASSES[method].latency_frames == 0


def interpolation(method: str) -> bool:
    return method in PASSES and PASSES[method].latency_frames > 0


def _fmt(v: float, best: bool, digits: int) -> str:
    s = "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"
    return f"**{s}**" if best else s


def _best(values: dict[str, float], lower: bool) -> str | None:
    ok = {m: v for m, v in values.items() if v is not None and not math.isnan(v)}
    return (min if lower else max)(ok, key=ok.get) if ok else None


def table_2x(r: dict) -> list[str]:
    methods = list(r["methods"])
    stab = r.get("stability", {})
    col = {}
    for kind in ("sf", "ef"):
        col[f"{kind}_psnr"] = {m: r["methods"][m][kind]["all"]["psnr"] for m in methods}
        col[f"{kind}_flip"] = {m: r["methods"][m][kind]["all"]["flip"] for m in methods}
        col[f"{kind}_stab"] = {m: stab.get(m, {}).get(kind) for m in methods}
    best = {k: _best(v, lower=not k.endswith("psnr")) for k, v in col.items()}
    lines = ["| method | SF PSNR / FLIP | EF PSNR / FLIP | stability SF / EF | ms per frame |",
             "| --- | --- | --- | --- | --- |"]
    for m in methods:
        cells = []
        for kind in ("sf", "ef"):
            cells.append(f"{_fmt(col[f'{kind}_psnr'][m], best[f'{kind}_psnr'] == m, 2)} / "
                         f"{_fmt(col[f'{kind}_flip'][m], best[f'{kind}_flip'] == m, 4)}")
        cells.append(" / ".join(_fmt(col[f"{k}_stab"][m], best[f"{k}_stab"] == m, 3) for k in ("sf", "ef")))
        ms = r["time_ms"].get(m)
        note = "" if zero_latency(m) else " (+1 frame latency)"
        lines.append(f"| `{m}`{note} | " + " | ".join(cells) + (f" | {ms:.0f} |" if ms is not None else " | n/a |"))
    return lines


def goals_2x(r: dict, name: str) -> list[str]:
    if name not in r["methods"]:
        return [f"`{name}` was not evaluated"]
    m = r["methods"]
    psnr = {k: {x: m[x][k]["all"]["psnr"] for x in m} for k in ("sf", "ef")}
    flip = {k: {x: m[x][k]["all"]["flip"] for x in m} for k in ("sf", "ef")}
    out = []
    if "temporal" in m:
        d = psnr["sf"][name] - psnr["sf"]["temporal"]
        out.append(f"SF vs `temporal`: {d:+.2f} dB (goal +1.00): {'met' if d >= 1.0 else 'missed'}")
    bases = [x for x in m if is_baseline(x)]
    if bases:
        b = max(bases, key=lambda x: psnr["ef"][x])
        d = psnr["ef"][name] - psnr["ef"][b]
        out.append(f"EF vs the best zero-latency baseline (`{b}`): {d:+.2f} dB (goal +1.00): "
                   f"{'met' if d >= 1.0 else 'missed'}")
    for k in ("sf", "ef"):
        others = {x: flip[k][x] for x in m if zero_latency(x) and x != name}
        if others:
            low = min(others, key=others.get)
            ok = flip[k][name] <= others[low]
            out.append(f"{k.upper()} FLIP {flip[k][name]:.4f} vs the lowest other zero-latency method's "
                       f"({low}) {others[low]:.4f}: {'lowest' if ok else 'not the lowest'}")
    st = r.get("stability", {})
    if name in st and "temporal" in st:
        for k in ("sf", "ef"):
            a, b = st[name][k], st["temporal"][k]
            out.append(f"{k.upper()} stability {a:.3f} vs `temporal` {b:.3f}: {'no worse' if a <= b else 'worse'}")
    return out


def table_nx(r: dict, name: str) -> list[str]:
    n = r["generated_frames"]
    kinds = [f"ef{k}" for k in range(1, n + 1)]
    stab = r.get("stability", {})
    lines = ["| method | " + " | ".join(f"EF{k} PSNR / FLIP / stab" for k in range(1, n + 1))
             + " | EF mean PSNR | SF PSNR |", "| --- |" + " --- |" * (n + 2)]
    means = {}
    for m, res in r["methods"].items():
        cells = []
        for k in kinds:
            s = stab.get(m, {}).get(k)
            cells.append(f"{res[k]['all']['psnr']:.2f} / {res[k]['all']['flip']:.4f} / "
                         + (f"{s:.3f}" if s is not None else "n/a"))
        means[m] = sum(res[k]["all"]["psnr"] for k in kinds) / n
        note = "" if zero_latency(m) else " (+1 frame latency)"
        lines.append(f"| `{m}`{note} | " + " | ".join(cells) + f" | {means[m]:.2f} | {res['sf']['all']['psnr']:.2f} |")
    if name in r["methods"]:
        bases = [x for x in r["methods"] if is_baseline(x)]
        for k in kinds:
            beaten = [x for x in bases if r["methods"][name][k]["all"]["psnr"] <= r["methods"][x][k]["all"]["psnr"]]
            lines.append(f"\n{k.upper()}: `{name}` " + ("beats every zero-latency baseline" if not beaten else
                                                       "does not beat " + ", ".join(beaten)))
        interp = {x: means[x] for x in r["methods"] if interpolation(x)}
        if interp:
            best = max(interp, key=interp.get)
            d = means[name] - interp[best]
            lines.append(f"\nEF mean: `{name}` {means[name]:.2f} vs the best interpolation pass (`{best}`) "
                         f"{interp[best]:.2f}: {d:+.2f} dB (goal: within 0.5 dB): "
                         f"{'met' if d >= -0.5 else 'missed'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+", type=Path, help="evaluate --json files")
    ap.add_argument("--pass", dest="name", default="stss_recurrent", help="the pass the goals are checked for")
    args = ap.parse_args(argv)
    for path in args.json:
        r = json.loads(path.read_text())
        print(f"\n### {r['scene']} ({path.name}): {r['frames']['sf']} SF + {r['frames']['ef']} EF frames\n")
        if r.get("generated_frames", 1) > 1:
            print("\n".join(table_nx(r, args.name)))
        else:
            print("\n".join(table_2x(r)))
            print("\n" + "\n".join(f"- {g}" for g in goals_2x(r, args.name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
