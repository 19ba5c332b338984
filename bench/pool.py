"""bench/pool.py: the raw samples of several short idle runs (see
bench/bench.h: a "#" line naming the processes, then "ack_us dispatch_us
sent_us" lines), pooled.

pool.py SYSTEM MODE FILE...
    Print the two CSV rows bench/run.sh collects, enqueue-ack and
    idle-dispatch, with p50/p99/p99.9 read as the C tools read them
    (sorted[n * q]).

pool.py ratio NAME_A NAME_B FILE_A... -- FILE_B...
    The idle-dispatch p99 of A's runs pooled over B's, and how far that
    ratio moves when the runs themselves are drawn again: each side's runs
    are resampled with replacement, whole (a run's samples share its
    minutes on the machine), 1,000 times with a fixed seed, and the middle
    95% of the ratios is printed. An interval that spans 1 says this set of
    runs cannot tell the two p99s apart.

pool.py series DIR
    The blocks bench/idle_series.sh left in DIR (block-N, each holding
    jobq-R, bsf0-R and floor-R raw files): a line per block with its
    pooled idle-dispatch p99 of jobq, beanstalkd -f 0 and the ZeroMQ relay
    floor and their ratios, how many blocks jobq and the floor each met
    the target in, then every run of the series pooled, with the
    resampled range of the p99 ratio as above."""
import glob
import os
import random
import sys

RESAMPLES = 1000


def read(path):
    """(acks, dispatch latencies) of one raw file, in µs."""
    acks, lats = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                continue
            a, d = line.split()[:2]
            acks.append(int(a))
            lats.append(int(d))
    return acks, lats


def pct(v, q):
    """v sorted in place, then the sample at n * q (q in 1/1000)."""
    v.sort()
    return v[len(v) * q // 1000]


def pool(system, mode, paths):
    acks, lats = [], []
    for path in paths:
        a, d = read(path)
        acks += a
        lats += d
    if not lats:
        sys.exit("pool.py: no samples for %s %s" % (system, mode))
    for scenario, v in (("enqueue-ack", acks), ("idle-dispatch", lats)):
        print("%s,%s,%s,,%d,%d,%d," % (system, mode, scenario, pct(v, 500),
                                       pct(v, 990), pct(v, 999)))


def runs_of(paths):
    """The dispatch latencies of each raw file that has any."""
    runs = [read(p)[1] for p in paths]
    return [r for r in runs if r]


def flat(runs):
    """The samples of runs, taken together."""
    return [x for r in runs for x in r]


def p99(runs):
    return pct(flat(runs), 990)


def ratio_range(runs_a, runs_b):
    """A's pooled p99 over B's, and the middle 95% of that ratio with each
    side's runs drawn again, whole."""
    point = p99(runs_a) / p99(runs_b)
    rng = random.Random(1)
    rs = sorted(p99([rng.choice(runs_a) for _ in runs_a]) /
                p99([rng.choice(runs_b) for _ in runs_b])
                for _ in range(RESAMPLES))
    return point, rs[RESAMPLES * 25 // 1000], rs[RESAMPLES * 975 // 1000 - 1]


def ratio(name_a, name_b, paths_a, paths_b):
    runs_a, runs_b = runs_of(paths_a), runs_of(paths_b)
    if not runs_a or not runs_b:
        sys.exit("pool.py ratio: no samples on one side")
    point, lo, hi = ratio_range(runs_a, runs_b)
    print("idle dispatch p99 %s / %s = %.2fx; with their %d and %d runs\n"
          "drawn again %d times, 95%% of the ratios fall in %.2fx to %.2fx" % (
              name_a, name_b, point, len(runs_a), len(runs_b), RESAMPLES,
              lo, hi))


def series(top):
    def number(path):
        tail = path.rsplit("-", 1)[1]
        return int(tail) if tail.isdigit() else -1

    blocks = sorted((d for d in glob.glob(os.path.join(top, "block-*"))
                     if number(d) >= 0), key=number)
    every = {"jobq": [], "bsf0": [], "floor": []}
    won = {"jobq": 0, "floor": 0}
    counted = 0
    print("block  started   p99 jobq  beanstalkd -f 0  floor   jobq/bs  "
          "floor/bs")
    for d in blocks:
        runs = {k: runs_of(glob.glob(os.path.join(d, k + "-*")))
                for k in every}
        for k in every:
            every[k] += runs[k]
        if not runs["jobq"] or not runs["bsf0"]:
            print("%5d  (a side has no samples)" % number(d))
            continue
        started = "?"
        if os.path.exists(os.path.join(d, "started")):
            with open(os.path.join(d, "started")) as f:
                started = f.read().strip() or "?"
        j, b = p99(runs["jobq"]), p99(runs["bsf0"])
        f = p99(runs["floor"]) if runs["floor"] else 0
        counted += 1
        won["jobq"] += j <= b
        won["floor"] += bool(f) and f <= b
        print("%5d  %-8s  %8d  %15d  %5d  %6.2fx  %7s" % (
            number(d), started, j, b, f, j / b,
            "%.2fx" % (f / b) if f else "-"))
    if not every["jobq"] or not every["bsf0"]:
        sys.exit("pool.py series: no block in %s has samples of both jobq "
                 "and beanstalkd" % top)
    print("p99 no worse than beanstalkd -f 0: jobq in %d of %d blocks, the "
          "floor in %d" % (won["jobq"], counted, won["floor"]))
    for k, name in (("jobq", "jobq"), ("bsf0", "beanstalkd -f 0"),
                    ("floor", "zeromq floor")):
        if every[k]:
            v = flat(every[k])
            print("all %d runs of %s: p50 %d, p99 %d, p99.9 %d us" % (
                len(every[k]), name, pct(v, 500), pct(v, 990), pct(v, 999)))
    point, lo, hi = ratio_range(every["jobq"], every["bsf0"])
    print("pooled p99 jobq / beanstalkd -f 0 = %.2fx; runs drawn again %d "
          "times: 95%% in %.2fx to %.2fx" % (point, RESAMPLES, lo, hi))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 5 and args[0] == "ratio" and "--" in args[3:]:
        cut = args.index("--", 3)
        if cut > 3 and cut < len(args) - 1:
            ratio(args[1], args[2], args[3:cut], args[cut + 1:])
            sys.exit(0)
    if len(args) == 2 and args[0] == "series":
        series(args[1])
        sys.exit(0)
    if len(args) < 3 or args[0] in ("ratio", "series"):
        sys.exit("usage: pool.py SYSTEM MODE FILE...\n"
                 "       pool.py ratio NAME_A NAME_B FILE_A... -- FILE_B...\n"
                 "       pool.py series DIR")
    pool(args[0], args[1], args[2:])
