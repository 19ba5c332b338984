/**
 * The STATS reply (docs/PROTOCOL.md section 8.7) with camelCase field names.
 * Maps keyed by job type, state or cause keep the broker's keys.
 */
import { asMap, type Body } from './protocol';

export interface WorkerInfo {
  name: string;
  /** How long ago the broker last heard from the worker, in ms. */
  seenMs: number;
  types: string[];
  capacity: number;
  active: number;
}

export interface Stats {
  /** Job type -> state -> count (states with a count of zero left out). */
  counts: Record<string, Record<string, number>>;
  /** State -> count, all five states. */
  totals: Record<string, number>;
  /** Up to 100 registered workers. */
  workers: WorkerInfo[];
  capacity: number;
  busy: number;
  /** Job type -> number of registered workers that run it. */
  served: Record<string, number>;
  /** Refused messages by cause since the broker started. */
  refused: Record<string, number>;
  /** enqueued, dispatched, completed, failed, retried, cancelled, lost since the broker started. */
  counters: Record<string, number>;
  /** Commit durations: bucket upper bounds in microseconds, counts per bucket, and the sum. */
  commitUs: { le: number[]; counts: number[]; sum: number } | null;
  /** Job type -> ms the oldest ready job of that type has waited. */
  oldest: Record<string, number>;
  /** For a key of some shops only: shop -> counts by state, and bytes. */
  shops: Record<string, Record<string, number>> | null;
}

function numbers(v: unknown): Record<string, number> {
  const m = asMap(v) ?? {};
  return Object.fromEntries(Object.entries(m).filter((e): e is [string, number] => typeof e[1] === 'number'));
}

function nested(v: unknown): Record<string, Record<string, number>> {
  return Object.fromEntries(Object.entries(asMap(v) ?? {}).map(([k, inner]) => [k, numbers(inner)]));
}

function numberArray(v: unknown): number[] {
  return Array.isArray(v) ? v.filter((n): n is number => typeof n === 'number') : [];
}

function worker(v: unknown): WorkerInfo[] {
  const w = asMap(v);
  if (!w || typeof w.name !== 'string') return [];
  return [
    {
      name: w.name,
      seenMs: typeof w.seen_ms === 'number' ? w.seen_ms : 0,
      types: Array.isArray(w.types) ? w.types.filter((t): t is string => typeof t === 'string') : [],
      capacity: typeof w.capacity === 'number' ? w.capacity : 0,
      active: typeof w.active === 'number' ? w.active : 0,
    },
  ];
}

export function toStats(reply: Body): Stats {
  const commit = asMap(reply.commit_us);
  return {
    counts: nested(reply.counts),
    totals: numbers(reply.totals),
    workers: Array.isArray(reply.workers) ? reply.workers.flatMap(worker) : [],
    capacity: typeof reply.capacity === 'number' ? reply.capacity : 0,
    busy: typeof reply.busy === 'number' ? reply.busy : 0,
    served: numbers(reply.served),
    refused: numbers(reply.refused),
    counters: numbers(reply.counters),
    commitUs: commit
      ? { le: numberArray(commit.le), counts: numberArray(commit.counts), sum: Number(commit.sum ?? 0) }
      : null,
    oldest: numbers(reply.oldest),
    shops: reply.shops === undefined ? null : nested(reply.shops),
  };
}
