import { test } from 'node:test';
import assert from 'node:assert/strict';
import iconv from 'iconv-lite';
import { decodeEncodedWords, readControls } from '../../src/pipeline/control-headers.js';
import { splitMessage } from '../../src/pipeline/headers.js';

const fields = (head: string) => splitMessage(Buffer.from(`${head}\r\n\r\nbody\r\n`)).fields;

test('encoded-words are decoded: Q, B, joined across folds, split multi-byte characters', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?Q?=7B=22k=22=3A=22v=22=7D?=', 'h'), '{"k":"v"}');
  assert.equal(decodeEncodedWords('=?utf-8?B?eyJrIjoidiJ9?=', 'h'), '{"k":"v"}');
  // "é" (C3 A9) split across two words, separated by folding whitespace.
  assert.equal(decodeEncodedWords('=?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9_ok?=', 'h'), 'café ok');
  assert.equal(decodeEncodedWords(`=?GB2312?B?${iconv.encode('你好', 'gb2312').toString('base64')}?=`, 'h'), '你好');
  assert.equal(decodeEncodedWords('plain =?UTF-8?Q?x?= text', 'h'), 'plain x text');
  assert.equal(decodeEncodedWords('no words here', 'h'), 'no words here');
  assert.throws(() => decodeEncodedWords('=?x-unknown-cs?Q?a?=', 'X-Relaygate-Meta'), /Invalid X-Relaygate-Meta header: unknown charset/);
});

test('control headers as nodemailer writes them (encoded, folded) are read', () => {
  const c = readControls(
    fields(
      'X-Relaygate-Meta: =?UTF-8?Q?=7B=22user=5Fid=22=3A=2242=22=2C=22name=22=3A=22J?=\r\n =?UTF-8?Q?=C3=BCrgen=22=7D?=\r\nX-Relaygate-Tag: =?UTF-8?Q?welcome=2C_spring?=',
    ),
    Date.now(),
  );
  assert.deepEqual(c.metadata, { user_id: '42', name: 'Jürgen' });
  assert.deepEqual(c.tags, ['welcome', 'spring']);
});
