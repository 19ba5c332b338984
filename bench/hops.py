"""bench/hops.py TRACE RAW [--broker PID] [--csv]: where the time of an idle
run went, hop by hop.

TRACE is the text of `perf script -F comm,pid,tid,cpu,time,event,trace`
on a `perf record -k mono -a -e sched:sched_switch -e sched:sched_waking`
taken around one idle run; RAW is that run's --raw file (jobq_latency,
floors relay or beanstalk_bench --idle; format in bench/bench.h). Both
clocks are CLOCK_MONOTONIC, so each sample's send time places it in the
trace. bench/trace_idle.sh runs all of it.

A sample's path is the chain of threads that had to run, in order, for
the job to get from the producer to the consumer: for a process with a
ZeroMQ I/O thread (comm ZMQbg/IO/N) the I/O thread, then the main thread
(the broker's I/O thread again to send), then, in the worker, the one
other thread if it has one (a jobq slot). Each hop ends when its thread
is next seen on a CPU: switched in, or, where the trace lacks that
switch-in (it does, now and then, for a CPU leaving idle), its first
event; the last hop ends at the consumer's stamp. A thread already on a
CPU when the hop begins ends it at once (column "running"), as does one
not seen before the stamp (column "unseen"); either way its time goes to
the next hop, and the total stays exact.

Prints per hop the p50, p90 and p99 over all samples and the mean over
the slowest 2%; then, per thread on the path and over the whole trace,
the wait from being woken (sched_waking, on the waker's CPU) to running,
and how often it ran on another CPU than its waker's.
"""
import bisect
import re
import sys

LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+"
                  r"sched:(sched_switch|sched_waking):\s*(.*)$")
PREV = re.compile(r"prev_pid=(\d+)")
NEXT = re.compile(r"next_pid=(\d+)")
WOKEN = re.compile(r"\bpid=(\d+)")


def usage(why):
    sys.exit("hops.py: %s\nusage: hops.py TRACE RAW [--broker PID] [--csv]"
             % why)


def read_raw(path):
    procs, samples = {}, []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                for word in line[1:].split():
                    role, eq, pid = word.partition("=")
                    if eq and pid.isdigit():
                        procs[role] = int(pid)
                continue
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 3 or not all(x.lstrip("-").isdigit()
                                          for x in fields[:3]):
                sys.exit("hops.py: %s: not \"ack_us dispatch_us sent_us\" "
                         "lines (an older --raw file?)" % path)
            samples.append((int(fields[2]), int(fields[1])))
    return procs, samples


class Trace:
    """Per thread: its process and last name; when it was seen on a CPU
    (switched in, or the current task of an event) and when it was
    switched out; and when something woke it, on which CPU."""

    def __init__(self, path):
        self.threads, self.on, self.outs, self.wakes = {}, {}, {}, []
        with open(path) as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    continue
                comm, pid, tid, cpu, t, event, rest = m.groups()
                t, cpu, tid = round(float(t) * 1e6), int(cpu), int(tid)
                self.threads[tid] = (int(pid), comm)
                if event == "sched_switch":
                    p, n = PREV.search(rest), NEXT.search(rest)
                    if p:
                        self.outs.setdefault(int(p.group(1)), []).append(t)
                    if n:
                        self.on.setdefault(int(n.group(1)),
                                           []).append((t, cpu))
                    continue
                #  The waker is on its CPU.
                self.on.setdefault(tid, []).append((t, cpu))
                w = WOKEN.search(rest)
                if w:
                    self.wakes.append((t, int(w.group(1)), cpu))
        #  A switch-out shows the thread was on its CPU until then: the
        #  trace can lack the switch-in (seen on this machine's idle
        #  CPUs), and the switch-out is then the first sign of it.
        for v in self.outs.values():
            v.sort()
        self.seen = {tid: sorted(self.on.get(tid, []) +
                                 [(t, -1) for t in self.outs.get(tid, [])])
                     for tid in set(self.on) | set(self.outs)}
        self.on_times = {k: sorted(t for t, _ in v)
                         for k, v in self.on.items()}
        self.seen_times = {k: [t for t, _ in v] for k, v in self.seen.items()}

    def running_at(self, tid, t):
        """On a CPU at t: seen on one last, before t, and not out since."""
        on, outs = self.on_times.get(tid, []), self.outs.get(tid, [])
        i = bisect.bisect_left(on, t) - 1
        o = bisect.bisect_left(outs, t) - 1
        return i >= 0 and (o < 0 or outs[o] < on[i])

    def next_in(self, tid, after, until):
        """First sign of tid on a CPU in [after, until], as (time, cpu);
        cpu is -1 when that sign is its switch-out."""
        times = self.seen_times.get(tid, [])
        i = bisect.bisect_left(times, after)
        if i < len(times) and times[i] <= until:
            return self.seen[tid][i]
        return None


def path_of(procs, threads):
    seen = {pid for pid, _ in threads.values()}

    def parts(pid):
        io = [t for t, (p, c) in threads.items()
              if p == pid and c.startswith("ZMQbg/IO")]
        other = [t for t, (p, c) in threads.items()
                 if p == pid and t != pid and not c.startswith("ZMQbg/")]
        return (io[0] if len(io) == 1 else None), other

    path = []
    if procs.get("producer") in seen:
        io, _ = parts(procs["producer"])
        if io:
            path.append(("producer io", io))
    if procs.get("broker") in seen:
        pid = procs["broker"]
        io, _ = parts(pid)
        if io:
            path += [("broker io", io), ("broker main", pid),
                     ("broker io", io)]
        else:
            path.append(("broker", pid))
    if procs.get("worker") in seen:
        pid = procs["worker"]
        io, other = parts(pid)
        if io:
            path += [("worker io", io), ("worker main", pid)]
        else:
            path.append(("worker", pid))
        if len(other) == 1:
            path.append(("worker slot", other[0]))
    return path


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


def hops(trace, path, samples):
    """Per sample (dispatch, [hop times]); per hop, how many were running
    already and how many unseen."""
    rows, running, unseen = [], [0] * len(path), [0] * len(path)
    for sent, lat in samples:
        at, split = sent, []
        for k, (_, tid) in enumerate(path):
            if trace.running_at(tid, at):
                running[k] += 1
                split.append(0)
                continue
            hit = trace.next_in(tid, at, sent + lat)
            if hit is None:
                unseen[k] += 1
                split.append(0)
                continue
            split.append(hit[0] - at)
            at = hit[0]
        split.append(sent + lat - at)
        rows.append((lat, split))
    rows.sort()
    return rows, running, unseen


def main(argv):
    args, broker, csv = [], None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--broker":
            if i + 1 >= len(argv) or not argv[i + 1].isdigit():
                usage("--broker takes a process id")
            broker = int(argv[i + 1])
            i += 2
        elif argv[i] == "--csv":
            csv = True
            i += 1
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 2:
        usage("a trace and a raw file, in that order")
    procs, samples = read_raw(args[1])
    if broker:
        procs["broker"] = broker
    if not samples:
        sys.exit("hops.py: %s holds no samples" % args[1])
    trace = Trace(args[0])
    path = path_of(procs, trace.threads)
    if not path:
        sys.exit("hops.py: none of the run's processes (%s) is in the trace"
                 % (" ".join("%s=%d" % kv for kv in sorted(procs.items()))
                    or "none named in the raw file"))
    rows, running, unseen = hops(trace, path, samples)
    tail = rows[len(rows) * 98 // 100:]
    names = ["to " + name for name, _ in path] + ["to stamp", "total"]
    if csv:
        print("hop,p50_us,p90_us,p99_us,slowest2_mean_us,running,unseen")
    else:
        print("%d samples; the slowest 2%% (%d) took %d us and more"
              % (len(rows), len(tail), tail[0][0]))
        print("%-16s %7s %7s %7s %11s %8s %7s" % (
            "hop", "p50", "p90", "p99", "slowest 2%", "running", "unseen"))
    for k, name in enumerate(names):
        if name == "total":
            v, tv = [r[0] for r in rows], [r[0] for r in tail]
        else:
            v, tv = [r[1][k] for r in rows], [r[1][k] for r in tail]
        run = running[k] if k < len(path) else ""
        miss = unseen[k] if k < len(path) else ""
        mean = sum(tv) / len(tv)
        if csv:
            print("%s,%d,%d,%d,%.0f,%s,%s" % (name, pct(v, 0.5), pct(v, 0.9),
                                              pct(v, 0.99), mean, run, miss))
        else:
            print("%-16s %7d %7d %7d %11.0f %8s %7s" % (
                name, pct(v, 0.5), pct(v, 0.9), pct(v, 0.99), mean, run,
                miss))
    if csv:
        return
    print("\n%-16s %7s %7s %7s %10s" % ("woken to running", "wakes", "p50",
                                        "p99", "other CPU"))
    thread = {}
    for name, tid in path:
        thread.setdefault(tid, name)
    waits = {}
    for t, tid, cpu in trace.wakes:
        if tid not in thread or trace.running_at(tid, t):
            continue
        hit = trace.next_in(tid, t, t + 1000000)
        if hit:
            waits.setdefault(tid, []).append((hit[0] - t, hit[1]
                                              not in (cpu, -1)))
    for tid, name in thread.items():
        w = waits.get(tid)
        if w:
            d = [x for x, _ in w]
            print("%-16s %7d %7d %7d %9.0f%%" % (
                name, len(w), pct(d, 0.5), pct(d, 0.99),
                100.0 * sum(1 for _, c in w if c) / len(w)))


if __name__ == "__main__":
    main(sys.argv[1:])
