/**
 * The msgpack reader for what the broker sends (docs/PROTOCOL.md section 5.1).
 *
 * It keeps every map key, `__proto__` and `constructor` included, as an own
 * property of a plain object (a key that JavaScript would take for the
 * prototype is defined, not assigned), and it holds the body to 5.1's limits
 * as it goes, before allocating what a header claims: 16 containers deep,
 * 65,536 entries per container, a total of entries (262,144; 525,312 for a
 * REPLY), 1 MiB per str, bin or ext, string map keys only, no 0xc1, no
 * trailing bytes.
 *
 * Values: nil is `null`; integers are numbers (64-bit ones beyond 2^53 lose
 * precision, as with @msgpack/msgpack's default); bin is a `Uint8Array`
 * (a copy); the timestamp ext (-1) is a `Date`, any other ext an `ExtData`.
 */
import { ExtData, decodeTimestampExtension } from '@msgpack/msgpack';

/** Entries (array items and map entries) in one body (section 5.1). */
export const MAX_ENTRIES = 262144;
/** Entries in one REPLY: a job map carries both `input` and `output` (section 5.1). */
export const MAX_REPLY_ENTRIES = 2 * 262144 + 1024;
const MAX_DEPTH = 16;
const MAX_CONTAINER = 65536;
const MAX_BYTES = 1024 * 1024;

/** A body that breaks section 5.1; `code` is what the broker would answer. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  readonly code: 'bad_request' | 'too_large';

  constructor(code: 'bad_request' | 'too_large', message: string) {
    super(message);
    this.code = code;
  }
}

const truncated = (): DecodeError => new DecodeError('bad_request', 'truncated');

function setKey(map: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    map[key] = value;
  }
}

class Reader {
  readonly #buf: Buffer;
  readonly #maxEntries: number;
  #pos = 0;
  #entries = 0;

  constructor(bytes: Uint8Array, maxEntries: number) {
    this.#buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#maxEntries = maxEntries;
  }

  get done(): boolean {
    return this.#pos === this.#buf.length;
  }

  #need(n: number): void {
    if (this.#buf.length - this.#pos < n) throw truncated();
  }

  #u8(): number {
    this.#need(1);
    return this.#buf[this.#pos++]!;
  }

  #u16(): number {
    this.#need(2);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  #u32(): number {
    this.#need(4);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** The bytes of a str, bin or ext of length n, its limit checked first. */
  #bytes(n: number, what: string): [number, number] {
    if (n > MAX_BYTES) throw new DecodeError('too_large', `${what} too long`);
    this.#need(n);
    const start = this.#pos;
    this.#pos += n;
    return [start, this.#pos];
  }

  #str(n: number): string {
    const [start, end] = this.#bytes(n, 'string');
    return this.#buf.toString('utf8', start, end);
  }

  #bin(n: number): Uint8Array {
    const [start, end] = this.#bytes(n, 'string');
    const out = new Uint8Array(end - start);
    out.set(this.#buf.subarray(start, end));
    return out;
  }

  #ext(n: number): unknown {
    const type = this.#u8();
    const data = this.#bin(n);
    const signed = type > 127 ? type - 256 : type;
    if (signed !== -1) return new ExtData(signed, data);
    try {
      return decodeTimestampExtension(data);
    } catch (err) {
      throw new DecodeError('bad_request', `bad timestamp: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** A container's count, held against the limits before the bytes left (5.1). */
  #count(n: number, depth: number): void {
    if (depth > MAX_DEPTH) throw new DecodeError('too_large', 'nested too deep');
    if (n > MAX_CONTAINER) throw new DecodeError('too_large', 'container too large');
    if (n > this.#buf.length - this.#pos) throw truncated();
    this.#entries += n;
    if (this.#entries > this.#maxEntries) throw new DecodeError('too_large', 'too many elements');
  }

  #array(n: number, depth: number): unknown[] {
    this.#count(n, depth);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth);
    return out;
  }

  #map(n: number, depth: number): Record<string, unknown> {
    this.#count(n, depth);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.#key();
      setKey(out, key, this.value(depth));
    }
    return out;
  }

  #key(): string {
    const b = this.#u8();
    if (b >= 0xa0 && b <= 0xbf) return this.#str(b & 0x1f);
    if (b === 0xd9) return this.#str(this.#u8());
    if (b === 0xda) return this.#str(this.#u16());
    if (b === 0xdb) return this.#str(this.#u32());
    if (b === 0xc1) throw new DecodeError('bad_request', 'reserved byte 0xc1');
    throw new DecodeError('bad_request', 'map key is not a string');
  }

  /** One value; depth is the number of containers around it. */
  value(depth: number): unknown {
    const b = this.#u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.#map(b & 0x0f, depth + 1);
    if (b <= 0x9f) return this.#array(b & 0x0f, depth + 1);
    if (b <= 0xbf) return this.#str(b & 0x1f);
    const buf = this.#buf;
    let v: number;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.#bin(this.#u8());
      case 0xc5:
        return this.#bin(this.#u16());
      case 0xc6:
        return this.#bin(this.#u32());
      case 0xc7:
        return this.#ext(this.#u8());
      case 0xc8:
        return this.#ext(this.#u16());
      case 0xc9:
        return this.#ext(this.#u32());
      case 0xca:
        this.#need(4);
        v = buf.readFloatBE(this.#pos);
        this.#pos += 4;
        return v;
      case 0xcb:
        this.#need(8);
        v = buf.readDoubleBE(this.#pos);
        this.#pos += 8;
        return v;
      case 0xcc:
        return this.#u8();
      case 0xcd:
        return this.#u16();
      case 0xce:
        return this.#u32();
      case 0xcf:
        this.#need(8);
        v = Number(buf.readBigUInt64BE(this.#pos));
        this.#pos += 8;
        return v;
      case 0xd0:
        this.#need(1);
        return buf.readInt8(this.#pos++);
      case 0xd1:
        this.#need(2);
        v = buf.readInt16BE(this.#pos);
        this.#pos += 2;
        return v;
      case 0xd2:
        this.#need(4);
        v = buf.readInt32BE(this.#pos);
        this.#pos += 4;
        return v;
      case 0xd3:
        this.#need(8);
        v = Number(buf.readBigInt64BE(this.#pos));
        this.#pos += 8;
        return v;
      case 0xd4:
        return this.#ext(1);
      case 0xd5:
        return this.#ext(2);
      case 0xd6:
        return this.#ext(4);
      case 0xd7:
        return this.#ext(8);
      case 0xd8:
        return this.#ext(16);
      case 0xd9:
        return this.#str(this.#u8());
      case 0xda:
        return this.#str(this.#u16());
      case 0xdb:
        return this.#str(this.#u32());
      case 0xdc:
        return this.#array(this.#u16(), depth + 1);
      case 0xdd:
        return this.#array(this.#u32(), depth + 1);
      case 0xde:
        return this.#map(this.#u16(), depth + 1);
      case 0xdf:
        return this.#map(this.#u32(), depth + 1);
      default: // 0xc1
        throw new DecodeError('bad_request', 'reserved byte 0xc1');
    }
  }
}

/**
 * Decode one msgpack value that fills bytes, within section 5.1's limits
 * (maxEntries in all); throws a DecodeError.
 */
export function decodeMsgpack(bytes: Uint8Array, maxEntries: number = MAX_ENTRIES): unknown {
  const reader = new Reader(bytes, maxEntries);
  const value = reader.value(0);
  if (!reader.done) throw new DecodeError('bad_request', 'trailing bytes');
  return value;
}

/**
 * The scalar values (integers, strings, booleans, nil) of the named keys of
 * a top-level map that cannot be decoded as a whole: its entries are read in
 * order up to the first that cannot be read, allocating nothing for the rest
 * (how the broker finds `rid` in a body it refuses, section 8.1). The first
 * occurrence of a key wins.
 */
export function scanTopLevel(bytes: Uint8Array, names: readonly string[]): Record<string, unknown> {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: Record<string, unknown> = {};
  let pos = 0;
  const need = (n: number): void => {
    if (buf.length - pos < n) throw truncated();
  };
  const uint = (n: number): number => {
    need(n);
    const v = n === 1 ? buf[pos]! : n === 2 ? buf.readUInt16BE(pos) : buf.readUInt32BE(pos);
    pos += n;
    return v;
  };
  /** The length of a str at pos (its header read), or -1 if the byte there is not a str. */
  const strLength = (b: number): number => {
    if (b >= 0xa0 && b <= 0xbf) return b & 0x1f;
    if (b === 0xd9) return uint(1);
    if (b === 0xda) return uint(2);
    if (b === 0xdb) return uint(4);
    return -1;
  };
  /** A scalar at pos, or undefined after skipping any other value (iteratively: no recursion). */
  const scalarOrSkip = (): unknown => {
    let pending = 1;
    let first: unknown;
    let isFirst = true;
    while (pending > 0) {
      pending--;
      need(1);
      const b = buf[pos++]!;
      let scalar: unknown;
      let skip = 0;
      if (b <= 0x7f) scalar = b;
      else if (b >= 0xe0) scalar = b - 0x100;
      else if (b <= 0x8f) pending += 2 * (b & 0x0f);
      else if (b <= 0x9f) pending += b & 0x0f;
      else if (b <= 0xbf) {
        const n = b & 0x1f;
        need(n);
        scalar = buf.toString('utf8', pos, pos + n);
        pos += n;
      } else {
        switch (b) {
          case 0xc0:
            scalar = null;
            break;
          case 0xc2:
            scalar = false;
            break;
          case 0xc3:
            scalar = true;
            break;
          case 0xc4:
            skip = uint(1);
            break;
          case 0xc5:
            skip = uint(2);
            break;
          case 0xc6:
            skip = uint(4);
            break;
          case 0xc7:
            skip = uint(1) + 1;
            break;
          case 0xc8:
            skip = uint(2) + 1;
            break;
          case 0xc9:
            skip = uint(4) + 1;
            break;
          case 0xca:
            skip = 4;
            break;
          case 0xcb:
            skip = 8;
            break;
          case 0xcc:
            scalar = uint(1);
            break;
          case 0xcd:
            scalar = uint(2);
            break;
          case 0xce:
            scalar = uint(4);
            break;
          case 0xcf:
            need(8);
            scalar = Number(buf.readBigUInt64BE(pos));
            pos += 8;
            break;
          case 0xd0:
            need(1);
            scalar = buf.readInt8(pos);
            pos += 1;
            break;
          case 0xd1:
            need(2);
            scalar = buf.readInt16BE(pos);
            pos += 2;
            break;
          case 0xd2:
            need(4);
            scalar = buf.readInt32BE(pos);
            pos += 4;
            break;
          case 0xd3:
            need(8);
            scalar = Number(buf.readBigInt64BE(pos));
            pos += 8;
            break;
          case 0xd4:
          case 0xd5:
          case 0xd6:
          case 0xd7:
          case 0xd8:
            skip = 1 + (1 << (b - 0xd4));
            break;
          case 0xd9:
          case 0xda:
          case 0xdb: {
            const n = strLength(b);
            need(n);
            scalar = buf.toString('utf8', pos, pos + n);
            pos += n;
            break;
          }
          case 0xdc:
            pending += uint(2);
            break;
          case 0xdd:
            pending += uint(4);
            break;
          case 0xde:
            pending += 2 * uint(2);
            break;
          case 0xdf:
            pending += 2 * uint(4);
            break;
          default:
            throw new DecodeError('bad_request', 'reserved byte 0xc1');
        }
      }
      if (pending + skip > buf.length - pos) throw truncated();
      pos += skip;
      if (isFirst) {
        first = scalar;
        isFirst = false;
      }
    }
    return first;
  };
  try {
    need(1);
    const b = buf[pos++]!;
    let n: number;
    if (b >= 0x80 && b <= 0x8f) n = b & 0x0f;
    else if (b === 0xde) n = uint(2);
    else if (b === 0xdf) n = uint(4);
    else return found;
    for (let i = 0; i < n; i++) {
      need(1);
      const len = strLength(buf[pos++]!);
      if (len < 0) break;
      need(len);
      const key = buf.toString('utf8', pos, pos + len);
      pos += len;
      const value = scalarOrSkip();
      if (names.includes(key) && !Object.hasOwn(found, key) && value !== undefined) found[key] = value;
    }
  } catch {
    // the first entry that cannot be read ends the scan
  }
  return found;
}
