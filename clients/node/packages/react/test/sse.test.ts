import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SseParser, type SseEvent } from '../src';

function parse(chunks: string[]): { events: SseEvent[]; retries: number[] } {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const parser = new SseParser(
    (e) => events.push(e),
    (ms) => retries.push(ms),
  );
  for (const chunk of chunks) parser.push(chunk);
  return { events, retries };
}

describe('SseParser', () => {
  const stream = 'id: 2\nevent: job\ndata: {"a":1}\n\n: keep-alive\n\nid: 3\nevent: job\ndata: {"a":2}\n\n';

  test('reads events, their type, data and id; skips comments', () => {
    assert.deepEqual(parse([stream]).events, [
      { type: 'job', data: '{"a":1}', lastEventId: '2' },
      { type: 'job', data: '{"a":2}', lastEventId: '3' },
    ]);
  });

  test('gives the same events whatever the chunks', () => {
    const whole = parse([stream]).events;
    for (let size = 1; size < 12; size++) {
      const chunks = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.slice(i, i + size));
      assert.deepEqual(parse(chunks).events, whole, `chunks of ${size}`);
    }
  });

  test('takes CRLF, CR and LF line ends, a CRLF split across chunks included', () => {
    const { events } = parse(['data: one\r', '\n\r', '\ndata: two\rdata: three\r\r', 'data:four\n\n']);
    assert.deepEqual(
      events.map((e) => e.data),
      ['one', 'two\nthree', 'four'],
    );
  });

  test('joins data lines, defaults the type to message, keeps the id, reads retry', () => {
    const { events, retries } = parse(['\ufeffretry: 2500\nid: 7\ndata\ndata:  x\n\nretry: soon\ndata: y\n\n']);
    assert.deepEqual(events, [
      { type: 'message', data: '\n x', lastEventId: '7' },
      { type: 'message', data: 'y', lastEventId: '7' },
    ]);
    assert.deepEqual(retries, [2500]);
  });

  test('an event without data is not dispatched; an unfinished one waits', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push('event: job\nid: 1\n\ndata: half');
    assert.deepEqual(events, []);
    parser.push('\n\n');
    assert.deepEqual(events, [{ type: 'message', data: 'half', lastEventId: '1' }]);
  });
});
