import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ExtData, encode } from '@msgpack/msgpack';
import { DecodeError, MAX_REPLY_ENTRIES, decodeMsgpack, scanTopLevel } from '../src/decode';
import { Cmd, SIGNATURE, parseMessage } from '../src/protocol';

function fails(bytes: Uint8Array, code: string, message: RegExp, maxEntries?: number): void {
  assert.throws(
    () => decodeMsgpack(bytes, maxEntries),
    (err: unknown) => err instanceof DecodeError && err.code === code && message.test(err.message),
  );
}

/** A map nested depth containers deep, the outermost counting 1. */
function nested(depth: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

describe('decodeMsgpack', () => {
  test('decodes what @msgpack/msgpack encodes', () => {
    const value = {
      nil: null,
      t: true,
      f: false,
      ints: [0, 127, 128, 255, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 52, -1, -32, -33, -128, -32768, -(2 ** 31), -(2 ** 40)],
      floats: [1.5, -0.25, 1e300],
      strs: ['', 'a', 'é'.repeat(40), 'x'.repeat(300), 'y'.repeat(70000)],
      bin: new Uint8Array([1, 2, 3]),
      date: new Date(1700000000123),
      nested: { a: [{ b: { c: [] } }] },
    };
    assert.deepStrictEqual(decodeMsgpack(encode(value)), value);
    const ext = decodeMsgpack(encode({ e: new ExtData(7, new Uint8Array([9])) })) as { e: ExtData };
    assert.ok(ext.e instanceof ExtData);
    assert.equal(ext.e.type, 7);
  });

  test('keeps __proto__ and constructor as own keys of a plain object', () => {
    const sent = JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1, "toString": "x", "n": 2}');
    const got = decodeMsgpack(encode(sent)) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(got), Object.prototype);
    assert.deepEqual(Object.keys(got), ['__proto__', 'constructor', 'toString', 'n']);
    assert.deepEqual(Object.getOwnPropertyDescriptor(got, '__proto__')?.value, { polluted: true });
    assert.equal(got.constructor, 1);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype touched');
  });

  test('holds the body to the limits of section 5.1', () => {
    assert.doesNotThrow(() => decodeMsgpack(encode(nested(16))));
    fails(encode(nested(17)), 'too_large', /nested too deep/);
    fails(encode({ a: new Array(65537).fill(0) }), 'too_large', /container too large/);
    const wide = { a: new Array(60000).fill(0), b: new Array(60000).fill(0), c: new Array(60000).fill(0) };
    const big = encode({ ...wide, d: new Array(60000).fill(0), e: new Array(60000).fill(0) });
    fails(big, 'too_large', /too many elements/);
    assert.doesNotThrow(() => decodeMsgpack(big, MAX_REPLY_ENTRIES), 'a REPLY may hold twice as many');
    fails(encode({ s: 'x'.repeat(1024 * 1024 + 1) }), 'too_large', /string too long/);
    // A header that claims more than the limit is too_large, even cut short.
    fails(Buffer.from([0x81, 0xa1, 0x73, 0xdb, 0x00, 0x20, 0x00, 0x00]), 'too_large', /string too long/);
    fails(Buffer.from([0x81, 0xa1, 0x73, 0xdc, 0x00, 0x10]), 'bad_request', /truncated/);
    fails(Buffer.from([0x81, 0xa1, 0x73]), 'bad_request', /truncated/);
    fails(Buffer.from([0x80, 0x00]), 'bad_request', /trailing bytes/);
    fails(Buffer.from([0x81, 0xa1, 0x73, 0xc1]), 'bad_request', /0xc1/);
    fails(Buffer.from([0x81, 0x01, 0x01]), 'bad_request', /map key is not a string/);
  });

  test('scanTopLevel finds rid, id and attempt before the first entry it cannot read', () => {
    const body = Buffer.concat([
      Buffer.from([0x84]),
      encode('rid'),
      encode(2 ** 45 + 3),
      encode('job'),
      encode({ deep: [1, 'two', { three: 3 }] }),
      encode('id'),
      encode('0123456789abcdef'),
      Buffer.from([0x01, 0x01]), // a key that is not a string
    ]);
    assert.deepEqual(scanTopLevel(body, ['rid', 'id', 'attempt']), { rid: 2 ** 45 + 3, id: '0123456789abcdef' });
    assert.deepEqual(scanTopLevel(body.subarray(0, 16), ['rid', 'id']), { rid: 2 ** 45 + 3 });
    assert.deepEqual(scanTopLevel(Buffer.from([0x91, 0x01]), ['rid']), {});
  });

  test('parseMessage gives an undecodable body with its problem and rid', () => {
    const body = Buffer.concat([Buffer.from([0x82]), encode('rid'), encode(7), encode('job'), Buffer.from([0x81, 0x01, 0x01])]);
    const msg = parseMessage([SIGNATURE, Buffer.from([Cmd.REPLY]), body]);
    assert.deepEqual(msg, { cmd: Cmd.REPLY, body: { rid: 7 }, problem: 'body: map key is not a string' });
    const ok = parseMessage([SIGNATURE, Buffer.from([Cmd.REPLY]), Buffer.from(encode({ rid: 7, x: 1 }))]);
    assert.deepEqual(ok, { cmd: Cmd.REPLY, body: { rid: 7, x: 1 } });
    assert.equal(parseMessage([Buffer.from('nope'), Buffer.from([Cmd.REPLY]), body]), undefined);
  });
});
