#!/usr/bin/env python3
"""bench/report.py: the table, the CSV and the plots of bench/run.

Reads the raw figures bench/run recorded (one CSV line each: section, path,
condition, metric, param, value, unit, note), adds for each the baseline it is
compared with and the ratio, writes the CSV (--out), prints the table and
the goals, and draws PNG plots with gnuplot into --plots.

Baselines (same run, same condition):
  tput, rtt, udp (iperf3)   path "forward" (plain Linux IP forwarding)
  udp through a splice      path "forward-nsperf" (same tool over forwarding)
  product                   path "straight" (same client to the same server
                            through the same NATs, port forward on NATA)
  fastpath                  the "parse only" program of the same hook
  ttfb                      "plain" TCP
  tunnels                   path "portfwd" (the same client to the same
                            server through a port forward on the same NAT)
"""
import argparse
import csv
import os
import re
import subprocess
import sys
from collections import OrderedDict

PATH_ORDER = ["direct", "forward", "nat", "haproxy", "socat", "userspace", "xdp", "tc",
              "pure-xdp", "pure-tc", "forward-nsperf", "userspace-udp", "xdp-udp", "tc-udp",
              "straight", "product", "portfwd", "tunnel", "tunnel-nopool", "haproxy2", "ssh-r"]


# one colour per path in every plot; baselines dashed
COLORS = {"direct": "#000000", "forward": "#555555", "nat": "#1f77b4", "haproxy": "#ff7f0e",
          "socat": "#bcbd22", "userspace": "#8c564b", "xdp": "#d62728", "tc": "#2ca02c",
          "pure-xdp": "#e377c2", "pure-tc": "#17becf", "forward-nsperf": "#555555",
          "userspace-udp": "#8c564b", "xdp-udp": "#d62728", "tc-udp": "#2ca02c",
          "straight": "#555555", "product": "#9467bd"}
BASELINES = ("direct", "forward", "forward-nsperf", "straight")


def style(path):
    st = "lw 2 lc rgb '%s'" % COLORS.get(path, "#7f7f7f")
    return st + (" dt 2" if path in BASELINES else "")


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, unit=""):
    x = num(v)
    if x is None:
        return "N/A"
    if abs(x) >= 1000:
        return "%.0f" % x
    if abs(x) >= 100:
        return "%.1f" % x
    if abs(x) >= 10:
        return "%.2f" % x
    return "%.3g" % x if x != 0 else "0"


def baseline_path(row):
    s, p = row["section"], row["path"]
    if s in ("tput", "rtt"):
        return "straight" if p in ("product", "straight") else "forward"
    if s == "udp":
        if p.endswith("-udp") or p == "forward-nsperf":
            return "forward-nsperf"
        return "forward"
    if s in ("ttfb", "broker"):
        return "plain"
    if s == "tunnels":
        return "portfwd"
    return None


def load(raw):
    rows = []
    with open(raw) as f:
        for r in csv.reader(f):
            if len(r) < 8:
                continue
            rows.append(dict(section=r[0], path=r[1], cond=r[2], metric=r[3], param=r[4],
                             value=r[5], unit=r[6], note=",".join(r[7:])))
    return rows


def enrich(rows):
    idx = {(r["section"], r["path"], r["cond"], r["metric"], r["param"]): r for r in rows}
    # fast path: net of the test-run loop, and the ratio to parse-only
    extra = []
    for r in rows:
        if r["section"] == "fastpath" and r["param"].endswith("_hit"):
            e = idx.get(("fastpath", r["path"], r["cond"], r["metric"], "empty_loop"))
            if e and num(r["value"]) is not None and num(e["value"]) is not None:
                extra.append(dict(r, param=r["param"] + "_net", value="%.1f" % (num(r["value"]) - num(e["value"])),
                                  note="minus the empty program (test-run loop)"))
    # CPU of the middle: the path's cost minus the direct path's (same
    # condition, same connections): the two end hosts' share cancels out
    for r in rows:
        if r["section"] == "tput" and r["metric"] == "cpu_s_per_gb" and r["path"] not in ("direct", "product", "straight"):
            d = idx.get(("tput", "direct", r["cond"], "cpu_s_per_gb", r["param"]))
            if d and num(r["value"]) is not None and num(d["value"]) is not None:
                extra.append(dict(r, metric="cpu_s_per_gb_middle", value="%.3f" % max(0.0, num(r["value"]) - num(d["value"])),
                                  note="minus the direct path's s/GB (the end hosts' share)"))
    rows += extra
    idx.update({(r["section"], r["path"], r["cond"], r["metric"], r["param"]): r for r in extra})
    for r in rows:
        r["baseline"], r["base_value"], r["ratio"] = "", "", ""
        if r["section"] == "fastpath":
            bp = ("fastpath", r["path"], r["cond"], r["metric"], "parse_only")
            b = idx.get(bp)
            if b and r["param"] != "parse_only" and not r["param"].endswith("_net"):
                r["baseline"], r["base_value"] = "parse_only", b["value"]
        else:
            bpath = baseline_path(r)
            if bpath:
                b = idx.get((r["section"], bpath, r["cond"], r["metric"], r["param"]))
                if b:
                    r["baseline"], r["base_value"] = bpath, b["value"]
        v, bv = num(r["value"]), num(r["base_value"])
        if v is not None and bv and r["metric"] != "loss_pct":
            r["ratio"] = "%.3f" % (v / bv)
        # ping-pong: each path is interleaved with the same direct reference
        # in its own bed; the ratio of the two ratios cancels the machine's
        # state at the time (its latency mode changes over seconds)
        if r["section"] == "rtt" and r["param"] == "nsperf" and r["metric"] in ("rtt_p50_us", "rtt_p99_us") \
                and r["baseline"] and v is not None and bv:
            ref = idx.get(("rtt", r["path"], r["cond"], r["metric"].replace("rtt_", "rtt_ref_"), "nsperf"))
            bref = idx.get(("rtt", r["baseline"], r["cond"], r["metric"].replace("rtt_", "rtt_ref_"), "nsperf"))
            if ref and bref and num(ref["value"]) and num(bref["value"]):
                r["ratio"] = "%.3f" % ((v / num(ref["value"])) / (bv / num(bref["value"])))
                r["note"] = (r["note"] + "; " if r["note"] else "") + \
                    "ratio normalised by the interleaved direct reference (raw %.3f)" % (v / bv)
    return rows


def write_csv(rows, out):
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "path", "condition", "metric", "param", "value", "unit",
                    "baseline", "baseline_value", "ratio_to_baseline", "note"])
        for r in rows:
            w.writerow([r["section"], r["path"], r["cond"], r["metric"], r["param"], r["value"],
                        r["unit"], r["baseline"], r["base_value"], r["ratio"], r["note"]])


def cell(r, ratio=True):
    if r is None:
        return "-"
    s = fmt(r["value"])
    if ratio and r["ratio"]:
        s += " (%.2f)" % float(r["ratio"])
    return s


def udpcell(r):
    """loss %, and the rate that actually arrived (the sender may not reach the offered one)"""
    if r is None:
        return "-"
    s = fmt(r["value"])
    m = re.search(r"received ([0-9.]+) Gbit/s", r["note"])
    if m and num(r["value"]) is not None:
        s += " @%.2f" % float(m.group(1))
    return s


def table(title, header, lines):
    print()
    print(title)
    widths = [max(len(str(x[i])) for x in [header] + lines) for i in range(len(header))]
    for ln in [header] + lines:
        print("  " + "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                               for i, c in enumerate(ln)).rstrip())


def ordered_paths(rows, pred):
    ps = OrderedDict()
    for r in rows:
        if pred(r):
            ps[(r["path"], r["cond"])] = 1
    key = lambda pc: (0 if pc[1] == "wire" else 1, PATH_ORDER.index(pc[0]) if pc[0] in PATH_ORDER else 99)
    return sorted(ps, key=key)


def report(rows):
    idx = {(r["section"], r["path"], r["cond"], r["metric"], r["param"]): r for r in rows}
    get = lambda *k: idx.get(k)

    # throughput
    conns = sorted({r["param"] for r in rows if r["section"] == "tput"}, key=lambda x: int(x))
    tp = ordered_paths(rows, lambda r: r["section"] == "tput")
    if tp:
        maxc = conns[-1]
        lines = []
        for p, c in tp:
            lines.append([p, c] + [cell(get("tput", p, c, "gbps", n)) for n in conns] +
                         [cell(get("tput", p, c, "cpu_s_per_gb", maxc)),
                          cell(get("tput", p, c, "cpu_s_per_gb_middle", maxc))])
        table("TCP THROUGHPUT, Gbit/s (ratio to forward, same condition; product: to straight); "
              "CPU s per GB at %s connections: whole bed, and middle = path minus direct" % maxc,
              ["path", "cond"] + ["x%s" % n for n in conns] + ["CPU s/GB", "middle s/GB"], lines)

    rp = ordered_paths(rows, lambda r: r["section"] == "rtt")
    if rp:
        lines = [[p, c, cell(get("rtt", p, c, "rtt_p50_us", "nsperf")), cell(get("rtt", p, c, "rtt_p99_us", "nsperf")),
                  cell(get("rtt", p, c, "rtt_p50_us", "sockperf")), cell(get("rtt", p, c, "rtt_p99_us", "sockperf"))]
                 for p, c in rp]
        table("TCP ROUND TRIP, 64 B ping-pong, microseconds (ratio to forward; nsperf ratios normalised by "
              "a direct reference interleaved in the same bed, see bench/README.md)",
              ["path", "cond", "p50", "p99", "sockperf p50", "sockperf p99"], lines)

    up = ordered_paths(rows, lambda r: r["section"] == "udp")
    if up:
        for kind, label in (("rate=", "UDP LOSS %% vs RATE at 1 KiB"), ("size=", "UDP LOSS %% vs SIZE")):
            params = []
            for r in rows:
                if r["section"] == "udp" and r["param"].startswith(kind) and r["param"] not in params:
                    params.append(r["param"])
            lines = [[p, c] + [udpcell(get("udp", p, c, "loss_pct", q)) for q in params] for p, c in up]
            table(label.replace("%%", "%") + ", @ Gbit/s received (iperf3; *-udp and forward-nsperf: nsperf)",
                  ["path", "cond"] + [q.split("=")[1] for q in params], lines)

    lines = []
    for r in rows:
        if r["section"] == "fastpath":
            lines.append([r["path"], r["param"], fmt(r["value"]) + " ns",
                          ("x%.2f of parse-only" % float(r["ratio"])) if r["ratio"] else ""])
    if lines:
        table("FAST PATH (BPF_PROG_TEST_RUN, ns/packet)", ["hook", "case", "ns/p", ""], lines)
    lines = []
    for r in rows:
        if r["section"] in ("ttfb", "broker", "splices"):
            lines.append([r["section"], r["path"], r["metric"], r["param"], fmt(r["value"]) + " " + r["unit"],
                          ("ratio %.2f" % float(r["ratio"])) if r["ratio"] else "", r["note"][:60]])
    if lines:
        table("CONTROL PLANE", ["what", "path", "metric", "param", "value", "", "note"], lines)

    tunnels_table(rows, get)

    for r in rows:
        if r["section"] == "info":
            print()
            print("%s %s: %s %s (%s)" % (r["path"], r["cond"], r["metric"], r["value"], r["note"]))
    nas = [r for r in rows if r["value"] == "NA"]
    if nas:
        print()
        print("N/A (%d figures):" % len(nas))
        seen = set()
        for r in nas:
            k = (r["path"], r["cond"], r["note"])
            if k in seen:
                continue
            seen.add(k)
            print("  %s %s %s %s: %s" % (r["section"], r["path"], r["cond"], r["param"], r["note"][:200]))
    goals(rows, get)


# the tunnels section: (metric, param, column, higher is better)
TUNNEL_COLS = [("conns_per_s", None, "new conn/s", True), ("conn_failures", None, "failed", False),
               ("keepalive_rps", None, "keep-alive req/s", True), ("bulk_gbps", None, "bulk Gbit/s", True),
               ("ttfb_p50_ms", "curl", "ttfb p50 ms", False), ("ttfb_p99_ms", "curl", "ttfb p99 ms", False),
               ("hop_cpu_s_per_gb", None, "hops CPU s/GB", False),
               ("redis_get_rps", None, "redis GET/s", True), ("redis_set_rps", None, "redis SET/s", True)]


def tunnel_row(rows, path, metric, param=None):
    for r in rows:
        if r["section"] == "tunnels" and r["path"] == path and r["metric"] == metric and \
                (param is None or r["param"] == param):
            return r
    return None


def tunnels_table(rows, get):
    paths = ordered_paths(rows, lambda r: r["section"] == "tunnels")
    if not paths:
        return
    cols = [c for c in TUNNEL_COLS if any(tunnel_row(rows, p, c[0], c[1]) for p, _ in paths)]
    lines = [[p] + [cell(tunnel_row(rows, p, m, q), ratio=m != "conn_failures") for m, q, _, _ in cols]
             for p, _ in paths]
    table("TUNNELS (two NATs; HB -> server on HA): ratio to portfwd = a port forward on the same NAT; "
          "tunnel = natsplice agents + relay, tunnel-nopool = pool: 0, haproxy2 = haproxy splice for each hop, "
          "ssh-r = ssh -R through PUB", ["path"] + [c[2] for c in cols], lines)


def tunnel_goals(rows, g):
    r = lambda p, m, q=None: tunnel_row(rows, p, m, q)
    if not any(x["section"] == "tunnels" for x in rows):
        return
    t, f = r("tunnel", "conns_per_s"), r("tunnel", "conn_failures")
    if t and t["ratio"] and f:
        g("tunnels: sustained new tunnels >= 0.5x port forward, zero failures",
          float(t["ratio"]) >= 0.5 and num(f["value"]) == 0,
          "%s/s vs %s/s: %.2fx over %s; %s failures" % (fmt(t["value"]), fmt(t["base_value"]),
                                                        float(t["ratio"]), t["param"], fmt(f["value"])))
    else:
        g("tunnels: sustained new tunnels >= 0.5x port forward, zero failures", None, "missing figure")
    for m, name in (("keepalive_rps", "keep-alive requests/s"), ("bulk_gbps", "1-connection bulk")):
        t = r("tunnel", m)
        if t and t["ratio"]:
            g("tunnels: %s >= 0.8x port forward" % name, float(t["ratio"]) >= 0.8,
              "%s vs %s: %.2fx" % (fmt(t["value"]), fmt(t["base_value"]), float(t["ratio"])))
        else:
            g("tunnels: %s >= 0.8x port forward" % name, None, "missing figure")
    t, n = r("tunnel", "ttfb_p50_ms"), r("tunnel-nopool", "ttfb_p50_ms")
    if t and t["ratio"]:
        g("tunnels: connect-to-first-byte p50 with a pool <= 1.2x port forward", float(t["ratio"]) <= 1.2,
          "%s vs %s ms: %.2fx%s" % (t["value"], t["base_value"], float(t["ratio"]),
                                    "; without pool %s ms (%.2fx)" % (n["value"], float(n["ratio"]))
                                    if n and n["ratio"] else ""))
    else:
        g("tunnels: connect-to-first-byte p50 with a pool <= 1.2x port forward", None, "missing figure")
    ahead, behind, missing = [], [], []
    for m, q, label, higher in TUNNEL_COLS:
        if m == "conn_failures":
            continue
        a, b = r("tunnel", m, q), r("ssh-r", m, q)
        if not a or not b or num(a["value"]) is None or num(b["value"]) is None:
            if b or a:
                missing.append(label)
            continue
        ok = num(a["value"]) > num(b["value"]) if higher else num(a["value"]) < num(b["value"])
        (ahead if ok else behind).append("%s %s vs %s" % (label, fmt(a["value"]), fmt(b["value"])))
    if ahead or behind:
        g("tunnels: every figure ahead of ssh -R", not behind,
          ("behind: " + "; ".join(behind) + ". " if behind else "") + "ahead: " + "; ".join(ahead) +
          (" (missing: %s)" % ", ".join(missing) if missing else ""))
    else:
        g("tunnels: every figure ahead of ssh -R", None, "missing figure")


def goals(rows, get):
    print()
    print("GOALS (reported, not asserted)")
    out = []

    def g(name, ok, detail):
        out.append(("met   " if ok is True else "MISSED" if ok is False else "n/a   ", name, detail))

    conns = sorted({int(r["param"]) for r in rows if r["section"] == "tput"})
    mc = str(conns[-1]) if conns else "100"
    x = get("tput", "xdp", "wire", "gbps", mc)
    nat = get("tput", "nat", "wire", "gbps", mc)
    hap = get("tput", "haproxy", "wire", "gbps", mc)
    xv = num(x["value"]) if x else None
    def loss(r):
        m = re.search(r"A retransmitted (\d+) segments; veths dropped (\d+)", r["note"]) if r else None
        return " [retransmitted/veth drops: %s/%s]" % (m.group(1), m.group(2)) if m else ""

    if xv is not None and nat and num(nat["value"]):
        g("relay xdp x%s >= nftables NAT (wire)" % mc, xv >= num(nat["value"]),
          "xdp %.2f%s vs nat %.2f%s Gbit/s: %.2fx" % (xv, loss(x), num(nat["value"]), loss(nat), xv / num(nat["value"])))
    else:
        g("relay xdp x%s >= nftables NAT (wire)" % mc, None, "missing figure")
    if xv is not None and hap and num(hap["value"]):
        g("relay xdp x%s >= 2x haproxy splice (wire)" % mc, xv >= 2 * num(hap["value"]),
          "xdp %.2f vs haproxy %.2f%s Gbit/s: %.2fx (goal 2x)" % (xv, num(hap["value"]), loss(hap), xv / num(hap["value"])))
    else:
        g("relay xdp x%s >= 2x haproxy splice (wire)" % mc, None, "missing figure")
    for mode in ("xdp", "tc"):
        r = get("rtt", mode, "wire", "rtt_p50_us", "nsperf")
        r99 = get("rtt", mode, "wire", "rtt_p99_us", "nsperf")
        if r and r["ratio"]:
            p99 = ""
            if r99 and r99["ratio"]:
                p99 = "; p99 %+.0f%% (%s vs %s us)" % ((float(r99["ratio"]) - 1) * 100, r99["value"], r99["base_value"])
            g("relay %s RTT within 10%% of forwarding (wire, p50)" % mode, float(r["ratio"]) <= 1.10,
              "p50 %+.0f%% (%s vs %s us raw; normalised by the interleaved reference)%s" %
              ((float(r["ratio"]) - 1) * 100, r["value"], r["base_value"], p99))
        else:
            g("relay %s RTT within 10%% of forwarding (wire, p50)" % mode, None, "missing figure")
    for hook in ("xdp", "tc"):
        r = get("fastpath", hook, "-", "ns_per_packet", "tcp4_hit_net")
        raw = get("fastpath", hook, "-", "ns_per_packet", "tcp4_hit")
        if r:
            g("fast path %s <= 60 ns/packet" % hook, num(r["value"]) <= 60,
              "tcp4 hit %s ns net of the test-run loop (%s ns raw): %.1fx the goal" %
              (r["value"], raw["value"] if raw else "?", num(r["value"]) / 60))
        else:
            g("fast path %s <= 60 ns/packet" % hook, None, "missing figure")
    # UDP: zero loss at 1 KiB wherever forwarding has zero (one line per path)
    for base, paths in (("forward-nsperf", ["userspace-udp", "xdp-udp", "tc-udp"]),):
        zero = [r["param"] for r in rows if r["section"] == "udp" and r["path"] == base and r["cond"] == "wire"
                and r["param"].startswith("rate=") and num(r["value"]) == 0]
        if not zero:
            continue
        for p in paths:
            got = [(q, get("udp", p, "wire", "loss_pct", q)) for q in zero]
            got = [(q, num(o["value"])) for q, o in got if o is not None]
            if not got:
                continue
            bad = ["%s: %s%%" % (q.split("=")[1], fmt(v)) for q, v in got if v != 0]
            g("zero UDP loss at 1 KiB where %s has none: %s" % (base, p), not bad,
              ("0 at %s" % " ".join(q.split("=")[1] for q, _ in got)) if not bad else "loss at " + ", ".join(bad))
    d, rl = get("ttfb", "plain", "-", "ttfb_p50_ms", "curl"), get("ttfb", "relay-path", "-", "ttfb_p50_ms", "curl")
    if d and rl and num(d["value"]) and num(rl["value"]) is not None:
        ratio = num(rl["value"]) / num(d["value"])
        d99, r99 = get("ttfb", "plain", "-", "ttfb_p99_ms", "curl"), get("ttfb", "relay-path", "-", "ttfb_p99_ms", "curl")
        g("connect-to-first-byte via broker+relay <= 3x direct (p50)", ratio <= 3,
          "%s vs %s ms: %.2fx; p99 %s vs %s ms" % (rl["value"], d["value"], ratio,
                                                   r99["value"] if r99 else "?", d99["value"] if d99 else "?"))
    else:
        g("connect-to-first-byte via broker+relay <= 3x direct", None, "missing figure")
    # as deployed: over TLS (the plain-text figure for comparison)
    r, rp = get("broker", "tls", "-", "rss_mb", "agents=10000"), get("broker", "plain", "-", "rss_mb", "agents=10000")
    if r and num(r["value"]) is not None:
        g("10,000 agents under 200 MB broker RSS (TLS)", num(r["value"]) < 200,
          "%s MB; plain text %s MB" % (r["value"], rp["value"] if rp else "?"))
    else:
        g("10,000 agents under 200 MB broker RSS", None, "missing figure")
    tunnel_goals(rows, g)
    for st, name, detail in out:
        print("  %s  %s: %s" % (st, name, detail))


def plots(rows, outdir, stamp):
    if not shutil_which("gnuplot"):
        print("(gnuplot missing: no plots)")
        return []
    made = []
    import tempfile
    d = tempfile.mkdtemp(prefix="nsbench-plot.")

    def series(section, metric, pred, xkey):
        s = OrderedDict()
        for r in rows:
            if r["section"] == section and r["metric"] == metric and pred(r) and num(r["value"]) is not None:
                s.setdefault("%s-%s" % (r["path"], r["cond"]), []).append((xkey(r["param"]), num(r["value"])))
        return s

    def lineplot(name, title, xlabel, ylabel, s, logx=False, logy=False, xtics=None):
        if not s:
            return
        files = []
        for k, pts in s.items():
            fn = os.path.join(d, "%s-%s.dat" % (name, k))
            with open(fn, "w") as f:
                for x, y in sorted(pts):
                    f.write("%g %g\n" % (x, y))
            files.append((k, fn))
        png = os.path.join(outdir, "%s-%s.png" % (stamp, name))
        conds = []
        for k, _ in files:
            c = k.rsplit("-", 1)[1]
            if c not in conds:
                conds.append(c)
        gp = ["set terminal pngcairo size %d,600 noenhanced" % (700 * len(conds)), "set output '%s'" % png,
              "set xlabel '%s'" % xlabel, "set ylabel '%s'" % ylabel, "set key below", "set grid"]
        if logx:
            gp.append("set logscale x 2" if name != "tput_vs_conns" else "set logscale x 10")
        if logy:
            gp.append("set logscale y")
        gp.append("set multiplot layout 1,%d title '%s'" % (len(conds), title))
        for c in conds:
            sel = [(k, fn) for k, fn in files if k.rsplit("-", 1)[1] == c]
            gp.append("set title '%s veth settings'" % c)
            gp.append("plot " + ", ".join(
                "'%s' using 1:2 with linespoints %s title '%s'" % (fn, style(k.rsplit("-", 1)[0]), k.rsplit("-", 1)[0])
                for k, fn in sel))
        gp.append("unset multiplot")
        run_gp(gp, png, made)

    lineplot("tput_vs_conns", "TCP throughput vs connections", "connections", "Gbit/s",
             series("tput", "gbps", lambda r: True, lambda p: int(p)), logx=True)
    lineplot("loss_vs_rate", "UDP loss vs offered rate, 1 KiB datagrams", "offered rate (Mbit/s)", "loss %",
             series("udp", "loss_pct", lambda r: r["param"].startswith("rate="), lambda p: rate_mbps(p)), logx=True)
    lineplot("loss_vs_size", "UDP loss vs datagram size at a fixed rate", "datagram bytes", "loss %",
             series("udp", "loss_pct", lambda r: r["param"].startswith("size="), lambda p: int(p.split("=")[1])),
             logx=True)
    # RTT: bars per path, p50 and p99 (nsperf)
    rp = [(r["path"], r["cond"]) for r in rows if r["section"] == "rtt" and r["metric"] == "rtt_p50_us"
          and r["param"] == "nsperf"]
    if rp:
        fn = os.path.join(d, "rtt.dat")
        with open(fn, "w") as f:
            for p, c in rp:
                a = [x for x in rows if x["section"] == "rtt" and x["path"] == p and x["cond"] == c and x["param"] == "nsperf"]
                v = {x["metric"]: num(x["value"]) for x in a}
                f.write('"%s %s" %s %s\n' % (p, c, v.get("rtt_p50_us") or 0, v.get("rtt_p99_us") or 0))
        png = os.path.join(outdir, "%s-rtt.png" % stamp)
        gp = ["set terminal pngcairo size 1100,600 noenhanced", "set output '%s'" % png,
              "set title 'TCP ping-pong round trip, 64 B (nsperf)'", "set ylabel 'microseconds'",
              "set style data histograms", "set style histogram clustered gap 1", "set style fill solid 0.8",
              "set xtics rotate by -45", "set grid ytics", "set key top left",
              "plot '%s' using 2:xtic(1) title 'p50', '' using 3 title 'p99'" % fn]
        run_gp(gp, png, made)
    import shutil
    shutil.rmtree(d, ignore_errors=True)
    return made


def rate_mbps(p):
    v = p.split("=")[1]
    m = 1000 if v.endswith("G") else 1 if v.endswith("M") else 1e-6
    return float(v.rstrip("GMK")) * m


def run_gp(gp, png, made):
    r = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, capture_output=True)
    if r.returncode == 0 and os.path.exists(png):
        made.append(png)
    else:
        print("(gnuplot failed for %s: %s)" % (png, r.stderr.strip()[:200]))


def shutil_which(c):
    import shutil
    return shutil.which(c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--plots", required=True)
    ap.add_argument("--stamp", required=True)
    ap.add_argument("--profile", default="")
    ap.add_argument("--elapsed", default="")
    a = ap.parse_args()
    rows = enrich(load(a.raw))
    write_csv(rows, a.out)
    report(rows)
    made = plots(rows, a.plots, a.stamp)
    print()
    print("CSV: %s" % a.out)
    for m in made:
        print("plot: %s" % m)
    if a.elapsed:
        print("bench %s took %s s" % (a.profile, a.elapsed))


if __name__ == "__main__":
    sys.exit(main())
