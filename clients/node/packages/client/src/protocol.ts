/**
 * JOBQ/1 frames and bodies (docs/PROTOCOL.md sections 3 to 5 and 11).
 */
import { Decoder, Encoder } from '@msgpack/msgpack';

/** Frame 0 of every message: "JOBQ" and the protocol version 1. */
export const SIGNATURE = Buffer.from([0x4a, 0x4f, 0x42, 0x51, 0x01]);

/** Command codes (section 4.1). */
export const Cmd = {
  ENQUEUE: 0x01,
  STATUS: 0x02,
  LIST: 0x03,
  CANCEL: 0x04,
  STATS: 0x05,
  RETRY: 0x06,
  ENQUEUE_BATCH: 0x07,
  READY: 0x11,
  HEARTBEAT: 0x12,
  PROGRESS: 0x13,
  COMPLETE: 0x14,
  FAIL: 0x15,
  JOB: 0x21,
  CANCEL_JOB: 0x22,
  DISCONNECT: 0x23,
  ACK: 0x24,
  REPLY: 0x41,
  ERROR: 0x42,
} as const;

/** Limits of section 11 that a client or worker checks before sending. */
export const Limits = {
  frameBytes: 2 * 1024 * 1024,
  outputBytes: 1024 * 1024,
  messageBytes: 1024,
  errorBytes: 4096,
  batchJobs: 1000,
  capacity: 1024,
  workerTypes: 64,
  /** Nesting of `input` and `output`, the map itself counting 1. */
  mapDepth: 14,
} as const;

/** A msgpack map body, decoded. */
export type Body = Record<string, unknown>;

/** One decoded message from a ROUTER: its command and body. */
export interface Message {
  cmd: number;
  body: Body;
}

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder({
  maxStrLength: 1024 * 1024,
  maxBinLength: 1024 * 1024,
  maxExtLength: 1024 * 1024,
  maxArrayLength: 65536,
  maxMapLength: 65536,
});

/** Encode a body; keys whose value is `undefined` are left out (optional fields). */
export function encodeBody(body: Body): Buffer {
  const bytes = encoder.encode(body);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The three frames of a message to the broker. */
export function frames(cmd: number, body: Buffer): Buffer[] {
  return [SIGNATURE, Buffer.from([cmd]), body];
}

/** Decode one msgpack value, or undefined when it is not valid msgpack. */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** A decoded map, or undefined for anything else. */
export function asMap(value: unknown): Body | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
    ? (value as Body)
    : undefined;
}

/**
 * Parse the frames of a DEALER message (signature, command, body). Undefined
 * for anything that is not a JOBQ/1 message with a map body: the caller drops
 * it (section 9.1: a message that cannot be decoded is not answered).
 */
export function parseMessage(parts: Buffer[]): Message | undefined {
  if (parts.length !== 3) return undefined;
  const [sig, cmd, body] = parts as [Buffer, Buffer, Buffer];
  if (!sig.equals(SIGNATURE) || cmd.length !== 1) return undefined;
  const map = asMap(decodeValue(body));
  return map && { cmd: cmd[0]!, body: map };
}

const JOB_ID = /^[0-9a-f]{16}$/;

/** True for a job id: exactly 16 lowercase hex digits (section 5.3). */
export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID.test(id);
}

/** The longest prefix of text that fits in maxBytes of UTF-8, cut between characters. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/**
 * Why value cannot be sent as an `input` or `output` map within the limits of
 * section 5.1 (at most maxDepth containers deep, the map counting 1; 65,536
 * entries per container, 262,144 in all), or undefined when it can.
 */
export function mapProblem(value: unknown, maxDepth: number = Limits.mapDepth): string | undefined {
  if (!asMap(value) || value instanceof Date) return 'not a map';
  let entries = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, level] = stack.pop()!;
    const children = Array.isArray(item) ? item : Object.values(item as Body);
    if (level > maxDepth) return `nested deeper than ${maxDepth} levels`;
    if (children.length > 65536) return 'a container holds more than 65,536 entries';
    entries += children.length;
    if (entries > 262144) return 'more than 262,144 entries in all';
    for (const child of children) {
      if (Array.isArray(child) || (asMap(child) && !(child instanceof Date))) stack.push([child, level + 1]);
    }
  }
  return undefined;
}
