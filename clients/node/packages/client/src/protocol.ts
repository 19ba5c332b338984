/**
 * JOBQ/1 frames and bodies (docs/PROTOCOL.md sections 3 to 5 and 11).
 */
import { Encoder } from '@msgpack/msgpack';
import { MAX_ENTRIES, MAX_REPLY_ENTRIES, decodeMsgpack, scanTopLevel } from './decode';

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
  /** The same for an `input` inside ENQUEUE_BATCH (it sits two levels deeper). */
  batchMapDepth: 13,
  inputBytes: 256 * 1024,
  typeBytes: 64,
  shopBytes: 128,
  keyBytes: 255,
  stringBytes: 1024 * 1024,
  containerEntries: 65536,
  bodyEntries: 262144,
  priority: 1000,
  delayMs: 31_622_400_000,
  maxAttempts: 100,
  timeoutMs: 604_800_000,
  listLimit: 1000,
  /** `jobs` entries in READY and HEARTBEAT. */
  heldJobs: 1024,
} as const;

/** A msgpack map body, decoded. */
export type Body = Record<string, unknown>;

/** One decoded message from a ROUTER: its command and body. */
export interface Message {
  cmd: number;
  /**
   * The body; when it could not be decoded (`problem`), only the scalar
   * `rid`, `id` and `attempt` found at its top level.
   */
  body: Body;
  /** Why the body could not be decoded (section 5.1), if it could not. */
  problem?: string;
}

const encoder = new Encoder({ ignoreUndefined: true });

/** Encode a body; keys whose value is `undefined` are left out (optional fields). */
export function encodeBody(body: Body): Buffer {
  const bytes = encoder.encode(body);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The three frames of a message to the broker. */
export function frames(cmd: number, body: Buffer): Buffer[] {
  return [SIGNATURE, Buffer.from([cmd]), body];
}

/** Decode one msgpack value within section 5.1's limits, or undefined when it is not one. */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return decodeMsgpack(bytes, MAX_ENTRIES);
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
 * for anything that is not a JOBQ/1 message. A body that is not one msgpack
 * map within section 5.1's limits (a REPLY may hold 525,312 entries) comes
 * with `problem`, and with what could be found of its `rid`, `id` and
 * `attempt`, so that the request or job it answers gets a definite answer.
 */
export function parseMessage(parts: Buffer[]): Message | undefined {
  if (parts.length !== 3) return undefined;
  const [sig, cmdFrame, body] = parts as [Buffer, Buffer, Buffer];
  if (!sig.equals(SIGNATURE) || cmdFrame.length !== 1) return undefined;
  const cmd = cmdFrame[0]!;
  let problem: string;
  try {
    const map = asMap(decodeMsgpack(body, cmd === Cmd.REPLY ? MAX_REPLY_ENTRIES : MAX_ENTRIES));
    if (map) return { cmd, body: map };
    problem = 'body: expected a map';
  } catch (err) {
    problem = `body: ${err instanceof Error ? err.message : String(err)}`;
  }
  return { cmd, body: scanTopLevel(body, ['rid', 'id', 'attempt']), problem };
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

/** Why a value cannot be sent: the JOBQ/1 error code the broker would answer (or a local one), and why. */
export interface Problem {
  code: 'bad_request' | 'too_large';
  message: string;
}

/**
 * Why value cannot be sent as an `input` or `output` map within the limits of
 * section 5.1 (at most maxDepth containers deep, the map counting 1; 65,536
 * entries per container, 262,144 in all; 1 MiB per string or bin), or
 * cannot be encoded at all (a cycle, a BigInt, a function, a symbol, a Map or
 * Set); undefined when it can. `field` names it in the message.
 */
export function dataProblem(value: unknown, field: string, maxDepth: number = Limits.mapDepth): Problem | undefined {
  const bad = (message: string): Problem => ({ code: 'bad_request', message: `field '${field}': ${message}` });
  const large = (message: string): Problem => ({ code: 'too_large', message: `field '${field}': ${message}` });
  if (!isPlainData(value)) return bad('expected a map');
  let entries = 0;
  const path = new Set<object>();
  const walk = (item: unknown, level: number): Problem | undefined => {
    switch (typeof item) {
      case 'bigint':
        return bad('a BigInt cannot be sent (use a number or a string)');
      case 'function':
      case 'symbol':
        return bad(`a ${typeof item} cannot be sent`);
      case 'string':
        return item.length > Limits.stringBytes / 3 && Buffer.byteLength(item) > Limits.stringBytes
          ? large('string too long')
          : undefined;
      case 'object':
        break;
      default:
        return undefined; // undefined, boolean, number
    }
    if (item === null || item instanceof Date) return undefined;
    if (ArrayBuffer.isView(item)) return item.byteLength > Limits.stringBytes ? large('bin too long') : undefined;
    if (item instanceof Map || item instanceof Set) return bad('a Map or Set cannot be sent (use an object or array)');
    if (path.has(item)) return bad('contains a cycle');
    if (level > maxDepth) return large(`nested deeper than ${maxDepth} levels`);
    const children = Array.isArray(item) ? item : Object.values(item);
    if (children.length > Limits.containerEntries) return large('a container holds more than 65,536 entries');
    entries += children.length;
    if (entries > Limits.bodyEntries) return large('more than 262,144 entries in all');
    path.add(item);
    for (const child of children) {
      const problem = walk(child, level + 1);
      if (problem) return problem;
    }
    path.delete(item);
    return undefined;
  };
  return walk(value, 1);
}

/** True for a value sent as a msgpack map: an object that is not an array, bin, Date, Map or Set. */
function isPlainData(value: unknown): boolean {
  return (
    asMap(value) !== undefined &&
    !(value instanceof Date) &&
    !ArrayBuffer.isView(value) &&
    !(value instanceof Map) &&
    !(value instanceof Set)
  );
}

/** Encode a map that dataProblem passed; a problem if the encoder still refuses it or it is over maxBytes. */
export function encodeData(value: Body, field: string, maxBytes: number): Buffer | Problem {
  let bytes: Buffer;
  try {
    bytes = encodeBody(value);
  } catch (err) {
    return { code: 'bad_request', message: `field '${field}': cannot be encoded: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (bytes.length > maxBytes) {
    return { code: 'too_large', message: `field '${field}': larger than ${maxBytes} bytes encoded` };
  }
  return bytes;
}
