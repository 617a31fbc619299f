#!/usr/bin/env python3
"""The bench's report: reads the guest logs of scripts/bench.sh (their
"BENCH {...}" lines, from bench/faas_bench.c), writes results.json and
bench.svg beside the first log, prints the table (ratios to local fork()
from the same guest run) and, with --readme, puts the table and the plot
into the README between its bench markers.

    bench/report.py [--machine TEXT] [--readme] build/bench/*.log
"""
import argparse
import datetime
import html
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
POLICIES = ("mow", "moa", "ht")
LABEL = {"nvdimm": "RAM-speed pool (shared NVDIMM as device-dax, TCG)",
         "cxl": "emulated CXL Type-3 pool (MMIO under TCG, ~30 MB/s)"}


def load(paths):
    rows = []
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.search(r"BENCH (\{.*\})\s*$", line)
                if m:
                    rows.append(json.loads(m.group(1)))
    return rows


def index(rows):
    """The synthetic function's {(backend, mb, thp): {method: row}}, its
    concurrency rows, and the real function's {(backend, mb): {method: row}}."""
    by, conc, real = {}, [], {}
    for r in rows:
        if r.get("workload", "synthetic") != "synthetic":
            real.setdefault((r["backend"], r["mb"]), {})[r["method"]] = r
        elif r["method"] == "concurrent":
            conc.append(r)
        else:
            by.setdefault((r["backend"], r["mb"], r["thp"]), {})[r["method"]] = r
    return by, conc, real


def ms(us):
    return f"{us / 1e3:.3g}" if us < 1e5 else f"{us / 1e3:.0f}"


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


def real_table(real):
    """The real function (python3.11 pyfunc.py): one row per backend."""
    out = ["**Real function: Debian's python3.11 running tests/runtimes/pyfunc.py (warm state: a dict, floats, a blob, "
           "an in-memory sqlite database), by pid**\n",
           "| pool | state MiB | Rss MiB | fork() ms | restore ms: MoW / MoA / HT | MoW vs fork() | CRIU restore ms | cold start ms | first request done ms: fork / MoW / CRIU / cold | steady request vs fork child: MoW / HT / CRIU | Pss kB: fork child / MoW / MoA / HT / CRIU | checkpoint ms vs plain copy | CRIU dump ms |",
           "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: |"]
    for (backend, mb), m in sorted(real.items(), key=lambda kv: (kv[0][0] != "nvdimm", kv[0])):
        f, cold, cr, ck, mow = m.get("fork"), m.get("cold"), m.get("criu"), m.get("checkpoint"), m.get("mow")
        if not f:
            continue
        pol = [m[p] for p in POLICIES if p in m]
        out.append("| " + " | ".join([
            backend, str(mb), f"{cold['rss_kb'] / 1024:.0f}" if cold else "-", ms(f["restore_us"]),
            " / ".join(ms(p["restore_us"]) for p in pol),
            ratio(mow["restore_us"], f["restore_us"]) if mow else "-",
            ms(cr["restore_us"]) if cr else "-",
            ms(cold["start_us"]) if cold else "-",
            " / ".join(ms(x["first_us"]) if x else "-" for x in (f, mow, cr, cold)),
            " / ".join(ratio(m[p]["steady_us"], f["steady_us"]) if p in m else "-" for p in ("mow", "ht", "criu")),
            " / ".join(str(x["pss_kb"]) if x else "-" for x in (f, mow, m.get("moa"), m.get("ht"), cr)),
            f"{ms(ck['ckpt_us'])} vs {ms(ck['copy_us'])} ({ratio(ck['ckpt_us'], ck['copy_us'])})" if ck and ck["copy_us"] > 0 else "-",
            ms(cr["dump_us"]) if cr else "-",
        ]) + " |")
    out.append("")
    return "\n".join(out) if len(out) > 4 else ""


def table(by, conc, real):
    out = []
    order = lambda kv: (kv[0][2] == 0, kv[0][1])
    for backend in sorted({k[0] for k in by}, key=lambda b: (b != "nvdimm", b)):
        rows = [(k, m) for k, m in sorted(by.items(), key=order) if k[0] == backend and "fork" in m]
        out.append(f"**{LABEL.get(backend, backend)}**\n")
        out.append("| MiB | THP | fork() ms | restore ms: MoW / MoA / HT | MoW vs fork() | CRIU restore ms | CRIU vs MoW | cold start ms | first request done ms: fork / MoW / CRIU / cold |")
        out.append("| ---: | :-: | ---: | --- | ---: | ---: | ---: | ---: | --- |")
        for (b, mb, thp), m in rows:
            f, cold, cr = m["fork"], m.get("cold"), m.get("criu")
            pol = [m[p] for p in POLICIES if p in m]
            mow = m.get("mow")
            out.append("| " + " | ".join([
                str(mb), "on" if thp else "off", ms(f["restore_us"]),
                " / ".join(ms(p["restore_us"]) for p in pol),
                ratio(mow["restore_us"], f["restore_us"]) if mow else "-",
                ms(cr["restore_us"]) if cr else "-",
                ratio(cr["restore_us"], mow["restore_us"]) if cr and mow else "-",
                ms(cold["start_us"]) if cold else "-",
                " / ".join(ms(x["first_us"]) if x else "-" for x in (f, mow, cr, cold)),
            ]) + " |")
        out.append("")
        out.append("| MiB | THP | steady request vs fork child: MoW / HT / CRIU | Pss kB after 6 requests: fork child / MoW / MoA / HT / CRIU | checkpoint ms vs plain copy | CRIU dump ms | pool MiB / CRIU images MiB |")
        out.append("| ---: | :-: | --- | --- | --- | ---: | --- |")
        for (b, mb, thp), m in rows:
            f, ck, cr = m["fork"], m.get("checkpoint"), m.get("criu")
            steady = " / ".join(ratio(m[p]["steady_us"], f["steady_us"]) if p in m else "-" for p in ("mow", "ht", "criu"))
            pss = " / ".join(str(x["pss_kb"]) if x else "-" for x in (f, m.get("mow"), m.get("moa"), m.get("ht"), cr))
            ckpt = f"{ms(ck['ckpt_us'])} vs {ms(ck['copy_us'])} ({ratio(ck['ckpt_us'], ck['copy_us'])})" if ck and ck["copy_us"] > 0 else "-"
            sizes = f"{ck['pool_bytes'] / 2**20:.0f}" if ck else "-"
            sizes += f" / {cr['image_bytes'] / 2**20:.0f}" if cr else ""
            out.append(f"| {mb} | {'on' if thp else 'off'} | {steady} | {pss} | {ckpt} | {ms(cr['dump_us']) if cr else '-'} | {sizes} |")
        cs = [c for c in conc if c["backend"] == backend]
        if cs:
            out.append("")
            out.append("| N at once (MoW clones, fork children) | MiB | clones/s | all served ms: clones / fork children | Pss kB per clone / per fork child |")
            out.append("| ---: | ---: | ---: | --- | --- |")
            for c in sorted(cs, key=lambda c: c["n"]):
                out.append(f"| {c['n']} | {c['mb']} | {c['n'] / (c['clones_all_done_us'] / 1e6):.1f} | {ms(c['clones_all_done_us'])} / {ms(c['forks_all_done_us'])} | {c['clone_pss_kb']:.0f} / {c['fork_pss_kb']:.0f} |")
        out.append("")
    out.append(real_table(real))
    return "\n".join(out)


def svg(by):
    """Two panels per backend: latency to a served first request and restore
    latency vs footprint (log y), and Pss per clone vs footprint."""
    backends = sorted({k[0] for k in by}, key=lambda b: (b != "nvdimm", b))
    W, H, PW, PH, ML, MT = 1100, 330 * max(1, len(backends)) + 40, 420, 230, 70, 40
    colors = {"fork": "#444", "fork()": "#444", "cold": "#999", "mow": "#1f77b4", "moa": "#2ca02c", "ht": "#d62728", "criu": "#ff7f0e"}
    import math
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']

    def panel(x0, y0, title, series, ylab, logy):
        xs = sorted({x for s in series.values() for x, _ in s})
        ys = [y for s in series.values() for _, y in s if y > 0]
        if not xs or not ys:
            return
        lx = lambda x: x0 + (math.log2(x) - math.log2(xs[0])) / max(1e-9, math.log2(xs[-1]) - math.log2(xs[0])) * PW
        lo, hi = (math.log10(min(ys)), math.log10(max(ys))) if logy else (0, max(ys))
        lo, hi = (math.floor(lo), math.ceil(hi)) if logy else (lo, hi * 1.1)
        ty = lambda y: y0 + PH - ((math.log10(y) if logy else y) - lo) / max(1e-9, hi - lo) * PH
        parts.append(f'<text x="{x0}" y="{y0 - 12}" font-weight="bold">{html.escape(title)}</text>')
        parts.append(f'<rect x="{x0}" y="{y0}" width="{PW}" height="{PH}" fill="none" stroke="#ccc"/>')
        ticks = [10 ** e for e in range(int(lo), int(hi) + 1)] if logy else [lo + (hi - lo) * i / 4 for i in range(5)]
        for t in ticks:
            parts.append(f'<line x1="{x0}" x2="{x0 + PW}" y1="{ty(t):.1f}" y2="{ty(t):.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{x0 - 6}" y="{ty(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
        for x in xs:
            parts.append(f'<text x="{lx(x):.1f}" y="{y0 + PH + 16}" text-anchor="middle">{x}</text>')
        parts.append(f'<text x="{x0 + PW / 2}" y="{y0 + PH + 32}" text-anchor="middle">footprint (MiB)</text>')
        parts.append(f'<text transform="translate({x0 - 48},{y0 + PH / 2}) rotate(-90)" text-anchor="middle">{html.escape(ylab)}</text>')
        for i, (name, pts) in enumerate(series.items()):
            pts = [(x, y) for x, y in sorted(pts) if y > 0]
            c = colors.get(name.split()[0], "#000")
            dash = ' stroke-dasharray="5,3"' if "first" in name else ""
            if pts:
                parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="' +
                             " ".join(f"{lx(x):.1f},{ty(y):.1f}" for x, y in pts) + '"/>')
                for x, y in pts:
                    parts.append(f'<circle cx="{lx(x):.1f}" cy="{ty(y):.1f}" r="3" fill="{c}"/>')
            parts.append(f'<line x1="{x0 + PW + 12}" x2="{x0 + PW + 32}" y1="{y0 + 10 + i * 16}" y2="{y0 + 10 + i * 16}" stroke="{c}" stroke-width="2"{dash}/>')
            parts.append(f'<text x="{x0 + PW + 36}" y="{y0 + 14 + i * 16}">{html.escape(name)}</text>')

    for bi, b in enumerate(backends):
        y0 = MT + 20 + bi * 330
        lat, mem = {}, {}
        for (bb, mb, thp), m in by.items():
            if bb != b or thp != 1:
                continue
            if "fork" in m:
                lat.setdefault("fork()", []).append((mb, m["fork"]["restore_us"] / 1e3))
                lat.setdefault("fork first request", []).append((mb, m["fork"]["first_us"] / 1e3))
                mem.setdefault("fork child", []).append((mb, m["fork"]["pss_kb"] / 1024))
            if "cold" in m:
                lat.setdefault("cold first request", []).append((mb, m["cold"]["first_us"] / 1e3))
            for p in POLICIES:
                if p in m:
                    lat.setdefault(f"{p} restore", []).append((mb, m[p]["restore_us"] / 1e3))
                    mem.setdefault(p, []).append((mb, m[p]["pss_kb"] / 1024))
            if "mow" in m:
                lat.setdefault("mow first request", []).append((mb, m["mow"]["first_us"] / 1e3))
            if "criu" in m:
                lat.setdefault("criu restore", []).append((mb, m["criu"]["restore_us"] / 1e3))
                mem.setdefault("criu", []).append((mb, m["criu"]["pss_kb"] / 1024))
        panel(ML, y0, f"{b}: latency (THP on)", lat, "ms (log)", True)
        panel(ML + PW + 190, y0, f"{b}: local memory per process after 6 requests", mem, "Pss MiB", False)
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machine", default="")
    ap.add_argument("--readme", action="store_true", help="update README.md and docs/bench.svg")
    ap.add_argument("logs", nargs="+")
    a = ap.parse_args()
    rows = load(a.logs)
    if not rows:
        sys.exit("report.py: no BENCH lines in " + " ".join(a.logs))
    out = os.path.dirname(os.path.abspath(a.logs[0]))
    date = datetime.date.today().isoformat()
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"date": date, "machine": a.machine, "results": rows}, f, indent=1)
    with open(os.path.join(out, "bench.svg"), "w") as f:
        f.write(svg(index(rows)[0]))
    t = table(*index(rows))
    print(t)
    if a.readme:
        os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
        shutil.copy(os.path.join(out, "bench.svg"), os.path.join(ROOT, "docs", "bench.svg"))
        p = os.path.join(ROOT, "README.md")
        s = open(p).read()
        i, j = s.find(BEGIN), s.find(END)
        if i < 0 or j < i:
            sys.exit("report.py: README.md has no bench markers")
        body = (f"{BEGIN}\n_Generated by `make bench` (bench/report.py) on {date}; {a.machine}; "
                f"TCG guest (no KVM) with 2 vCPUs and 3 GiB, the bench kernel (distro + CRIU's options)._\n\n"
                f"![latency and local memory per method](docs/bench.svg)\n\n{t}\n")
        open(p, "w").write(s[:i] + body + s[j:])


if __name__ == "__main__":
    main()
