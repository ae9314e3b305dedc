"""Summarises the receivers' logs: deliveries, duplicates, rate, p50/p99 latency."""
import sys, glob
from datetime import datetime
rows = []
for f in glob.glob(sys.argv[1] + "/recv-*.log"):
    for line in open(f):
        wid, ts, got = line.rstrip("\n").split("\t")
        t = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        rows.append((f, wid, t, float(got)))
n = len(rows)
dups = n - len({(f, w) for f, w, _, _ in rows})
lat = sorted(g - t for _, _, t, g in rows)
span = max(g for *_, g in rows) - min(t for _, _, t, _ in rows)
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
print(f"deliveries: {n} (duplicates: {dups}) in {span:.2f} s = {n / span:.0f} deliveries/s")
print(f"commit→delivery latency: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {lat[-1]*1000:.1f} ms")
