// Delivery outcomes and webhook results are committed without an fsync
// (Committer.runNow). The webhook claim is what hands events to the outside
// world, so while such commits are not yet covered by an fsync it must pay one
// itself; otherwise a power cut could take back an event that was already
// POSTed and give its id to another. `pick` runs inside the claim's
// transaction, where PRAGMA synchronous shows which kind of commit it will be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { durableBeforeSharing } from '../../src/store/db.js';
import { openStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/gateway.js';

const NORMAL = 1;
const FULL = 2;

test('the webhook claim fsyncs exactly while unsynced commits exist', () => {
  const store = openStore(tempDir('relaygate-unsynced-'));
  try {
    const level = () => {
      let seen = -1;
      store.webhooks.claimDue(Date.now(), 10, [], 60_000, (due) => {
        seen = store.db.pragma('synchronous', { simple: true }) as number;
        return due;
      });
      return seen;
    };
    assert.equal(level(), NORMAL, 'nothing unsynced: the claim skips the fsync');
    store.committer.runNow(() => store.db.prepare('SELECT 1').get());
    assert.equal(level(), FULL, 'after a commit without fsync the claim pays one');
    assert.equal(level(), FULL, 'a claim that leased nothing synced nothing, so the next one still does');
    store.committer.run(() => store.db.prepare('SELECT 1').get());
    store.committer.flush();
    assert.equal(level(), FULL, 'a group commit that wrote nothing had no fsync either');
    store.committer.run(() => store.idempotency.put('k', 'unsynced-test', 202, '{}', Date.now()));
    store.committer.flush();
    assert.equal(level(), NORMAL, 'a group commit that wrote (fsynced) covered the earlier commits');
    assert.equal(store.db.pragma('synchronous', { simple: true }), FULL, 'the connection is back at FULL afterwards');
  } finally {
    store.close();
  }
});

test('a commit without fsync by another connection between the check and the claim: the claim syncs the WAL before handing rows out', () => {
  const dir = tempDir('relaygate-unsynced-');
  const store = openStore(dir);
  const other = openStore(dir, { sync: store.syncShared });
  const fsyncs: number[] = [];
  const realFsync = fs.fsyncSync;
  fs.fsyncSync = (fd: number) => {
    fsyncs.push(fd);
    realFsync(fd);
  };
  try {
    const claim = (during?: () => void) =>
      durableBeforeSharing(store.db, () => {
        during?.();
        return ['event'];
      });
    claim();
    assert.equal(fsyncs.length, 0, 'nothing unsynced: no fsync');
    // The other connection commits without an fsync after the check (here: inside the claim,
    // standing in for the moment before its BEGIN).
    claim(() => other.committer.runNow(() => other.idempotency.put('k', 'race', 202, '{}', Date.now())));
    assert.equal(fsyncs.length, 1, 'the WAL was synced before the rows were returned');
    claim();
    assert.equal(fsyncs.length, 1, 'and that covered it: the next claim needs none');
  } finally {
    fs.fsyncSync = realFsync;
    other.close();
    store.close();
  }
});
