"""bench/table.py CSV: the table of one bench/run.sh run, with ratios, and
the performance targets, each marked met or missed with the figures of that
same run.

Every cycle row shows jobq (plain, batched and pipelined) over that row's
jobs/s for the same shape; every latency row shows jobq's p50 and p99 over
that row's. The clients' rows (bench/clients/: Python, TypeScript, their
workers, and Celery beside them) have a section of their own, each over
the C client's same scenario.
"""
import csv
import sys

# Rows of the clients' section, not of the main table.
CLIENTS = ("python", "python-worker", "node", "node-worker", "celery")


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def main(path):
    rows = list(csv.DictReader(open(path)))
    by = {(r["system"], r["mode"], r["scenario"]): r for r in rows}

    def get(system, mode, scenario, field):
        r = by.get((system, mode, scenario))
        return num(r[field]) if r else None

    print("%-11s %-16s %-14s %9s %8s %8s %11s %12s %14s" % (
        "system", "mode", "scenario", "jobs/s", "p50 us", "p99 us",
        "jobq/this", "batched/this", "pipelined/this"))
    for r in rows:
        sc = r["scenario"]
        if r["system"] in CLIENTS or sc == "delay":
            continue
        head = "%-11s %-16s %-14s" % (r["system"], r["mode"], sc)
        if sc.startswith("fanout"):
            print("%s   events/s %s  delay p50 %s us p99 %s us  %s bytes a "
                  "stream" % (head, r["jobs_per_s"] or "-", r["p50_us"] or "-",
                              r["p99_us"] or "-", r["rss_kb"] or "-"))
            continue
        if sc.startswith("restart"):
            t = num(r["p50_us"])
            print("%s   restart %s   resident %s kB" % (
                head, "%.0f ms" % (t / 1000) if t else "-",
                r["rss_kb"] or "-"))
            continue
        v = num(r["jobs_per_s"])
        head += " %9s %8s %8s" % ("%.0f" % v if v else "-",
                                  r["p50_us"] or "-", r["p99_us"] or "-")
        if not sc.startswith("cycle"):
            print("%s   jobq latency / this: p50 %s p99 %s" % (
                head, ratio(get("jobq", "sync", sc, "p50_us"),
                            num(r["p50_us"])),
                ratio(get("jobq", "sync", sc, "p99_us"), num(r["p99_us"]))))
            continue
        print("%s %11s %12s %14s" % (head, *(
            ratio(get("jobq", m, sc, "jobs_per_s"), v)
            for m in ("sync", "sync-batched", "sync-pipelined"))))

    clients(rows, get)
    print("\nTargets, from this run:")

    def verdict(ok):
        return "met   " if ok else "MISSED"

    shapes = sorted({r["scenario"] for r in rows
                     if r["scenario"].startswith("cycle-")},
                    key=lambda s: [int(x) for x in s[6:].split("x")])
    # The target names beanstalkd's default binlog, driven one request at a
    # time; against it driven with 64 puts in flight (binlog-pipelined) only
    # jobq's modes that also keep many jobs in flight are compared.
    every = ("sync", "sync-batched", "sync-pipelined")
    for peer, mode, want, modes in (
            ("beanstalkd", "binlog-default", 2.0, every),
            ("beanstalkd", "binlog-pipelined", 2.0, every[1:]),
            ("bullmq", "aof-always", 5.0, every)):
        if mode == "binlog-pipelined" and not any(
                get(peer, mode, sc, "jobs_per_s") for sc in shapes):
            continue  # an extra, not a target: left out when not measured
        for sc in shapes:
            p = get(peer, mode, sc, "jobs_per_s")
            for jm in modes:
                j = get("jobq", jm, sc, "jobs_per_s")
                if not p or not j:
                    print("  -      cycle %s jobq %s vs %s %s: no figure" % (
                        sc[6:], jm, peer, mode))
                    continue
                print("  %s cycle %-5s jobq %-14s %7.0f vs %s %s %7.0f "
                      "= %.2fx (want >= %.0fx)" % (
                          verdict(j / p >= want), sc[6:], jm, j, peer, mode,
                          p, j / p, want))
    for q, want in (("p50", 1.5), ("p99", 1.0)):
        j = get("jobq", "sync", "idle-dispatch", q + "_us")
        b = get("beanstalkd", "binlog-f0", "idle-dispatch", q + "_us")
        if j and b:
            print("  %s idle dispatch %s %.0f us vs beanstalkd -f 0 %.0f us "
                  "= %.2fx (want <= %gx)" % (verdict(j <= want * b), q, j, b,
                                             j / b, want))
    rj = [r for r in rows if r["system"] == "jobq"
          and r["scenario"].startswith("restart")]
    rb = [r for r in rows if r["system"] == "beanstalkd"
          and r["scenario"].startswith("restart")]
    if rj and rb:
        tj, tb = num(rj[0]["p50_us"]), num(rb[0]["p50_us"])
        mj, mb = num(rj[0]["rss_kb"]), num(rb[0]["rss_kb"])
        n = rj[0]["scenario"][8:]
        if tj and tb:
            print("  %s restart with %s jobs: jobq %.0f ms vs beanstalkd "
                  "%.0f ms (want sooner, and under 2000 ms)" % (
                      verdict(tj < tb and tj < 2e6), n, tj / 1000,
                      tb / 1000))
        if mj and mb:
            print("  %s memory with %s jobs: jobq anonymous %.0f kB vs "
                  "beanstalkd resident %.0f kB = %.3fx (want < 0.5x)" % (
                      verdict(mj < 0.5 * mb), n, mj, mb, mj / mb))
    # What CURVE costs: the same cells with a key file (every connection
    # encrypted, every message's key looked up), from the same run.
    lines = []
    for sc in shapes:
        a = get("jobq", "sync-batched", sc, "jobs_per_s")
        b = get("jobq", "sync-batched-curve", sc, "jobs_per_s")
        if a and b:
            lines.append("  cycle %-5s sync-batched %7.0f jobs/s, with CURVE "
                         "%7.0f (%+.0f%%)" % (sc[6:], a, b, 100 * (b / a - 1)))
    for q in ("p50", "p99"):
        a = get("jobq", "sync", "idle-dispatch", q + "_us")
        b = get("jobq", "sync-curve", "idle-dispatch", q + "_us")
        if a and b:
            lines.append("  idle dispatch %s %.0f us, with CURVE %.0f us "
                         "(%+.0f us)" % (q, a, b, b - a))
    if lines:
        print("\nCURVE's cost, from this run:")
        print("\n".join(lines))
    # The gateway against the native client, the same cycle.
    h = get("jobq", "http", "cycle-16x16", "jobs_per_s")
    n = get("jobq", "sync", "cycle-16x16", "jobs_per_s")
    if h and n:
        print("  %s cycle 16x16 POST /v1/jobs %7.0f vs native sync %7.0f "
              "= %.2fx (want >= 0.8x)" % (verdict(h >= 0.8 * n), h, n, h / n))
    # Event streams: 10,000 held, p99 delay under 100 ms, under 64 KiB each.
    p99 = get("jobq", "sse", "fanout-10000", "p99_us")
    mem = get("jobq", "sse", "fanout-10000", "rss_kb")
    if p99 and mem:
        print("  %s 10,000 event streams: p99 delay %.0f ms (want < 100), "
              "%.1f KiB a stream (want < 64)" % (
                  verdict(p99 < 100000 and mem < 65536), p99 / 1000,
                  mem / 1024))
    # The JetStream backend (docs/STORAGE.md section 10), beside BullMQ
    # everysec from the same run; and service after its stream leader dies.
    b = get("bullmq", "aof-everysec", "cycle-16x16", "jobs_per_s")
    for sy in ("jobq-nats", "jobq-nats2"):
        for jm in ("sync", "sync-batched"):
            j = get(sy, jm, "cycle-16x16", "jobs_per_s")
            if j and b:
                print("  %s cycle 16x16 %-10s %-12s %7.0f vs bullmq "
                      "aof-everysec %7.0f = %.2fx (want >= 1x%s)" % (
                          verdict(j >= b), sy, jm, j, b, j / b,
                          "" if sy == "jobq-nats" else ", not a target"))
    f = get("jobq-nats", "failover", "leader-kill", "p50_us")
    f99 = get("jobq-nats", "failover", "leader-kill", "p99_us")
    if f:
        print("  %s JetStream leader killed: answered again after %.1f s "
              "(median), %.1f s (worst) (want within 10 s)" % (
                  verdict(f99 < 10e6), f / 1e6, f99 / 1e6))
    # The disk's own floor (bench/commit_floor.c): what one producer that
    # waits for every acknowledgement can make at most.
    c50 = get("lmdb", "commit-floor", "enqueue-ack", "p50_us")
    bd = get("beanstalkd", "binlog-default", "cycle-1x1", "jobs_per_s")
    if c50:
        print("         floor: one full-sync LMDB commit p50 %.0f us, so one "
              "producer that waits for each\n"
              "         acknowledgement makes at most %.0f jobs/s%s" % (
                  c50, 1e6 / c50,
                  " (2x beanstalkd's 1x1 needs %.0f)" % (2 * bd) if bd
                  else ""))


def clients(rows, get):
    """The clients' section: each client's rows over the C client's same
    scenario (jobs/s: this / C, so under 1x is slower; delays: this / C, so
    over 1x is later), each worker runtime over the C worker fed the same
    way, and the peers' cycle rows (BullMQ, Celery) beside them."""
    if not any(r["system"] in CLIENTS or r["scenario"] == "delay"
               for r in rows):
        return
    # With them: the C client's rows they are compared with, and BullMQ's.
    mine = [r for r in rows if r["system"] in CLIENTS or
            r["scenario"] == "delay" or (r["scenario"] == "cycle-16x16" and (
                r["system"] == "bullmq" or (r["system"] == "jobq" and r[
                    "mode"] in ("sync", "sync-batched", "sync-pipelined"))))]
    print("\nClients, from this run (C: libjobq, the same scenario):")
    print("%-13s %-16s %-12s %9s %8s %8s   %s" % (
        "system", "mode", "scenario", "jobs/s", "p50 us", "p99 us",
        "compared"))
    order = ("jobq", "python", "python-worker", "node", "node-worker",
             "bullmq", "celery")
    mine.sort(key=lambda r: (r["scenario"] == "delay",
                             order.index(r["system"])
                             if r["system"] in order else 99))
    for r in mine:
        sy, mo, sc = r["system"], r["mode"], r["scenario"]
        v = num(r["jobs_per_s"])
        head = "%-13s %-16s %-12s %9s %8s %8s" % (
            sy, mo, sc, "%.0f" % v if v else "-", r["p50_us"] or "-",
            r["p99_us"] or "-")
        notes = []
        if sy == "jobq":
            notes.append("the C client (libjobq)")
        elif sc == "delay":
            notes.append("p50 %s p99 %s C's" % tuple(
                ratio(num(r[q + "_us"]), get("jobq", "watch", "delay",
                                             q + "_us"))
                for q in ("p50", "p99")))
        elif sy in ("python", "node"):
            notes.append("%s C's (jobq %s)" % (
                ratio(v, get("jobq", mo, sc, "jobs_per_s")), mo))
        elif sy.endswith("-worker"):
            lang = sy[:-len("-worker")]
            notes.append("%s jobq %s (C client, C worker)" % (
                ratio(v, get("jobq", mo, sc, "jobs_per_s")), mo))
            notes.append("%s %s %s (same producers, C worker)" % (
                ratio(v, get(lang, mo, sc, "jobs_per_s")), lang, mo))
        else:  # the peers: the language's own client over them
            lang = "node" if sy == "bullmq" else "python"
            for who in (lang, "jobq"):
                notes.append("%s sync/this %s" % (
                    who, ratio(get(who, "sync", sc, "jobs_per_s"), v)))
        print("%s   %s" % (head, "; ".join(notes)))


if __name__ == "__main__":
    main(sys.argv[1])
