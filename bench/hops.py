"""bench/hops.py TRACE RAW [--broker PID] [--csv]: where the time of an idle
run went, hop by hop, for every sample.

TRACE is the text of `perf script -F comm,pid,tid,cpu,time,event,trace`
on a `perf record -k mono -a -e sched:sched_switch,sched:sched_wakeup`
taken around one idle run; RAW is that run's --raw file (jobq_latency,
floors relay or beanstalk_bench --idle; format in bench/bench.h). Both
clocks are CLOCK_MONOTONIC, so each sample's send time places it in the
trace. bench/trace_idle.sh runs all of it.

A sample's path is the chain of threads that had to run, in order, for
the job to get from the producer to the consumer: for a process with a
ZeroMQ I/O thread (comm ZMQbg/IO/N) the I/O thread, then the main thread
(the broker's I/O thread again to send), then, in the worker, the one
other thread if it has one (a jobq slot). Each hop ends when its thread
is next switched in; the last ends at the consumer's stamp. A thread that
was already running when its turn came, or whose switch-in the trace
lacks, has none: its hop counts 0 (column "unseen") and the time goes to
the next one.

Prints per hop the p50, p90 and p99 over all samples and the mean over
the slowest 2%, then per thread how long it waited from being woken to
running, and how often it was woken onto another CPU than the waker's.
"""
import re
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+"
                  r"sched:(sched_switch|sched_wakeup):\s*(.*)$")
NEXT = re.compile(r"next_pid=(\d+)")
WOKEN = re.compile(r"\bpid=(\d+).*target_cpu=(\d+)")


def read_raw(path):
    procs, samples = {}, []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                for word in line[1:].split():
                    role, _, pid = word.partition("=")
                    procs[role] = int(pid)
                continue
            fields = line.split()
            if len(fields) < 3:
                sys.exit("hops.py: %s: no send times (an older --raw file)"
                         % path)
            samples.append((int(fields[2]), int(fields[1])))
    return procs, samples


def read_trace(path):
    """Per thread: its process, comm, switch-in times; and wake waits."""
    threads, ins, wakes = {}, {}, []
    with open(path) as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            comm, pid, tid, cpu, t, event, rest = m.groups()
            t = round(float(t) * 1e6)
            threads.setdefault(int(tid), (int(pid), comm))
            if event == "sched_switch":
                n = NEXT.search(rest)
                if n:
                    ins.setdefault(int(n.group(1)), []).append(t)
            else:
                w = WOKEN.search(rest)
                if w:
                    wakes.append((t, int(w.group(1)), int(cpu),
                                  int(w.group(2))))
    for v in ins.values():
        v.sort()
    return threads, ins, wakes


def path_of(procs, threads):
    def parts(pid):
        io = [t for t, (p, c) in threads.items()
              if p == pid and c.startswith("ZMQbg/IO")]
        other = [t for t, (p, c) in threads.items()
                 if p == pid and t != pid and not c.startswith("ZMQbg/")]
        return (io[0] if len(io) == 1 else None), other

    path = []
    if "producer" in procs:
        io, _ = parts(procs["producer"])
        if io:
            path.append(("producer io", io))
    if "broker" in procs:
        pid = procs["broker"]
        io, _ = parts(pid)
        if io:
            path += [("broker io", io), ("broker main", pid),
                     ("broker io", io)]
        else:
            path.append(("broker", pid))
    if "worker" in procs:
        pid = procs["worker"]
        io, other = parts(pid)
        if io:
            path += [("worker io", io), ("worker main", pid)]
        else:
            path.append(("worker", pid))
        if len(other) == 1:
            path.append(("worker slot", other[0]))
    return path


def first_in(times, after, until):
    lo, hi = 0, len(times)
    while lo < hi:
        mid = (lo + hi) // 2
        if times[mid] < after:
            lo = mid + 1
        else:
            hi = mid
    return times[lo] if lo < len(times) and times[lo] <= until else None


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


def main(argv):
    args, broker, csv = [], None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--broker" and i + 1 < len(argv):
            broker = int(argv[i + 1])
            i += 2
        elif argv[i] == "--csv":
            csv = True
            i += 1
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 2:
        sys.exit("usage: hops.py TRACE RAW [--broker PID] [--csv]")
    procs, samples = read_raw(args[1])
    if broker:
        procs["broker"] = broker
    if not samples:
        sys.exit("hops.py: %s holds no samples" % args[1])
    threads, ins, wakes = read_trace(args[0])
    path = path_of(procs, threads)
    if not path:
        sys.exit("hops.py: none of the run's processes is in the trace")
    names = ["to " + name for name, _ in path] + ["to stamp"]
    rows = []
    unseen = [0] * len(path)
    for sent, lat in samples:
        at, hops = sent, []
        for k, (_, tid) in enumerate(path):
            t = first_in(ins.get(tid, []), at, sent + lat)
            if t is None:
                unseen[k] += 1
                t = at
            hops.append(t - at)
            at = t
        hops.append(sent + lat - at)
        rows.append((lat, hops))
    rows.sort()
    tail = rows[len(rows) * 98 // 100:]
    if csv:
        print("hop,p50_us,p90_us,p99_us,slowest2_mean_us,unseen")
    else:
        print("%d samples; the slowest 2%% (%d) took %d us and more"
              % (len(rows), len(tail), tail[0][0]))
        print("%-18s %7s %7s %7s %13s %7s" % ("hop", "p50", "p90", "p99",
                                              "slowest 2%", "unseen"))
    for k, name in enumerate(names + ["total"]):
        if name == "total":
            v = [lat for lat, _ in rows]
            tv = [lat for lat, _ in tail]
            miss = ""
        else:
            v = [h[k] for _, h in rows]
            tv = [h[k] for _, h in tail]
            miss = unseen[k] if k < len(unseen) else ""
        mean = sum(tv) / len(tv)
        if csv:
            print("%s,%d,%d,%d,%.0f,%s" % (name, pct(v, 0.5), pct(v, 0.9),
                                           pct(v, 0.99), mean, miss))
        else:
            print("%-18s %7d %7d %7d %13.0f %7s" % (name, pct(v, 0.5),
                                                    pct(v, 0.9),
                                                    pct(v, 0.99), mean, miss))
    if csv:
        return
    #  Wake to run, for the path's threads, over the whole trace.
    tids = {tid: name for name, tid in path}
    waits = {}
    for t, tid, cpu, target in wakes:
        if tid not in tids:
            continue
        t_in = first_in(ins.get(tid, []), t, t + 1000000)
        if t_in is not None:
            waits.setdefault(tid, []).append((t_in - t, cpu != target))
    print("\n%-18s %7s %7s %7s %14s" % ("woken to running", "wakes", "p50",
                                        "p99", "other CPU"))
    for tid, name in tids.items():
        w = waits.get(tid)
        if w:
            print("%-18s %7d %7d %7d %13.0f%%" % (
                name, len(w), pct([x for x, _ in w], 0.5),
                pct([x for x, _ in w], 0.99),
                100.0 * sum(1 for _, c in w if c) / len(w)))


if __name__ == "__main__":
    main(sys.argv[1:])
