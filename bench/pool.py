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
    runs cannot tell the two p99s apart."""
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


def ratio(name_a, name_b, paths_a, paths_b):
    runs_a = [read(p)[1] for p in paths_a]
    runs_b = [read(p)[1] for p in paths_b]
    runs_a = [r for r in runs_a if r]
    runs_b = [r for r in runs_b if r]
    if not runs_a or not runs_b:
        sys.exit("pool.py ratio: no samples on one side")

    def p99(runs):
        return pct([x for r in runs for x in r], 990)

    point = p99(runs_a) / p99(runs_b)
    rng = random.Random(1)
    rs = sorted(p99([rng.choice(runs_a) for _ in runs_a]) /
                p99([rng.choice(runs_b) for _ in runs_b])
                for _ in range(RESAMPLES))
    lo, hi = rs[RESAMPLES * 25 // 1000], rs[RESAMPLES * 975 // 1000 - 1]
    print("idle dispatch p99 %s / %s = %.2fx; with their %d and %d runs\n"
          "drawn again %d times, 95%% of the ratios fall in %.2fx to %.2fx" % (
              name_a, name_b, point, len(runs_a), len(runs_b), RESAMPLES,
              lo, hi))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 5 and args[0] == "ratio" and "--" in args[3:]:
        cut = args.index("--", 3)
        if cut > 3 and cut < len(args) - 1:
            ratio(args[1], args[2], args[3:cut], args[cut + 1:])
            sys.exit(0)
    if len(args) < 3 or args[0] == "ratio":
        sys.exit("usage: pool.py SYSTEM MODE FILE...\n"
                 "       pool.py ratio NAME_A NAME_B FILE_A... -- FILE_B...")
    pool(args[0], args[1], args[2:])
