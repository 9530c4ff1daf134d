// Delivery outcomes and webhook results are committed without an fsync
// (Committer.runNow). The webhook claim is what hands events to the outside
// world, so while such commits are not yet covered by an fsync it must pay one
// itself; otherwise a power cut could take back an event that was already
// POSTed and give its id to another. `pick` runs inside the claim's
// transaction, where PRAGMA synchronous shows which kind of commit it will be.
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
