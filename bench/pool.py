"""bench/pool.py SYSTEM MODE FILE...: pool the raw samples of several short
idle runs of one system (see bench/bench.h: a "#" line naming the
processes, then "ack_us dispatch_us sent_us" lines) and print the two CSV
rows bench/run.sh collects, enqueue-ack and idle-dispatch, with
p50/p99/p99.9 read as the C tools read them (sorted[n * q])."""
import sys


def main(system, mode, paths):
    acks, lats = [], []
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.startswith("#"):
                    continue
                a, d = line.split()[:2]
                acks.append(int(a))
                lats.append(int(d))
    if not lats:
        sys.exit("pool.py: no samples for %s %s" % (system, mode))
    for scenario, v in (("enqueue-ack", acks), ("idle-dispatch", lats)):
        v.sort()
        n = len(v)
        print("%s,%s,%s,,%d,%d,%d," % (system, mode, scenario, v[n // 2],
                                       v[n * 99 // 100], v[n * 999 // 1000]))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: pool.py SYSTEM MODE FILE...")
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
