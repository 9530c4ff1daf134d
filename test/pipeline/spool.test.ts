import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createSpool } from '../../src/pipeline/spool.js';
import { tempDir } from '../helpers/gateway.js';

test('a small message stays in memory; nothing touches the disk', async () => {
  const spool = createSpool(tempDir());
  const chunks = [Buffer.from('Subject: a\r\n\r\n'), Buffer.from('body\r\n')];
  const s = await spool.receive(Readable.from(chunks), 100);
  assert.equal(s.file, null);
  assert.deepEqual(await spool.read(s), Buffer.concat(chunks));
  assert.deepEqual(fs.readdirSync(spool.dir), []);
});

test('a message past the memory limit is spooled whole to a private file', async () => {
  const spool = createSpool(tempDir(), { memoryLimit: 16 });
  const chunks = [Buffer.from('Subject: a\r\n\r\n'), Buffer.from('body\r\n')];
  const s = await spool.receive(Readable.from(chunks), 100);
  assert.equal(s.oversize, false);
  assert.equal(s.size, 20);
  assert.deepEqual(await spool.read(s), Buffer.concat(chunks));
  assert.equal(fs.statSync(s.file!).mode & 0o777, 0o600);
  await spool.remove(s);
  await spool.remove(s);
  assert.deepEqual(fs.readdirSync(spool.dir), []);
});

test('past the limit the stream is read to its end but no more is written', async () => {
  const spool = createSpool(tempDir(), { memoryLimit: 2000 });
  const chunks = Array.from({ length: 50 }, () => Buffer.alloc(1000, 0x61));
  const s = await spool.receive(Readable.from(chunks), 10_000);
  assert.equal(s.oversize, true);
  assert.equal(s.size, 50_000, 'every byte was counted');
  assert.ok(fs.statSync(s.file!).size <= 10_000);
  await spool.remove(s);
});

test('a stream that breaks (client gone mid-DATA) leaves no file behind', async () => {
  const spool = createSpool(tempDir(), { memoryLimit: 0 });
  const stream = new PassThrough();
  const p = spool.receive(stream, 1000);
  stream.write(Buffer.from('partial'));
  setTimeout(() => stream.destroy(Object.assign(new Error('gone'), { code: 'ECONNECTION' })), 20);
  await assert.rejects(p, /gone/);
  assert.deepEqual(fs.readdirSync(spool.dir), []);
});

test('sweep removes only stale files', async () => {
  const spool = createSpool(tempDir());
  const old = path.join(spool.dir, 'old.eml');
  const fresh = path.join(spool.dir, 'fresh.eml');
  fs.writeFileSync(old, 'x');
  fs.writeFileSync(fresh, 'x');
  const past = new Date(Date.now() - 2 * 3_600_000);
  fs.utimesSync(old, past, past);
  assert.equal(spool.sweep(3_600_000), 1);
  assert.deepEqual(fs.readdirSync(spool.dir), ['fresh.eml']);
});
