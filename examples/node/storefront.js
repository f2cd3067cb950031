#!/usr/bin/env node
// A storefront talking to recd and Redis with node-redis (the `redis` npm
// package, v4). The same steps as examples/python/storefront.py:
//
//   1. "recommended for you": RECOMMEND <user> COUNT n WITHSCORES;
//   2. a purchase: FEEDBACK through recd, or ZINCRBY recd:hist:<user> 1 <item>
//      straight into Redis; either way the item is gone from the next answer;
//   3. a stated preference: HSET recd:pref:<user> cat:kitchen 0.5;
//   4. out of stock: SADD recd:unavailable <item>, gone within recd's
//      unavailable-refresh-ms;
//   5. RANK a page of candidates, SIMILAR for "customers also bought";
//   6. errors: an error reply rejects with an ErrorReply; an unreachable recd
//      falls back to bestsellers.
//
// Every step asserts what it shows (CI runs it against the demo data, see
// tests/cli/test_examples.sh) and the customer's keys are restored at the end.
//
// usage: (cd examples/node && npm ci) &&
//        node examples/node/storefront.js [--recd-port 7070] [--redis-port 6379]
//             [--prefix recd:] [--customer 13047] [--refresh-ms 2000]
'use strict';
const assert = require('node:assert/strict');
const net = require('node:net');
const { parseArgs } = require('node:util');
const { createClient, ErrorReply } = require('redis');

// Shown when recd cannot be reached: a real shop would cache its bestsellers.
const BESTSELLERS = ['85123A', '22423', '85099B'];

const { values: opt } = parseArgs({
  options: {
    'recd-host': { type: 'string', default: '127.0.0.1' },
    'recd-port': { type: 'string', default: '7070' },
    'redis-host': { type: 'string', default: '127.0.0.1' },
    'redis-port': { type: 'string', default: '6379' },
    prefix: { type: 'string', default: 'recd:' },
    customer: { type: 'string', default: '13047' },
    'refresh-ms': { type: 'string', default: '2000' },
  },
});
const refreshMs = Number(opt['refresh-ms']);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// recd speaks RESP2; node-redis's CLIENT SETINFO handshake is accepted
// (CLIENT LIST then shows the library) but skipped here to save a round
// trip, and do not retry forever when recd is down: the page must render
// anyway.
function recdClient(host, port) {
  const c = createClient({
    socket: { host, port: Number(port), connectTimeout: 2000, reconnectStrategy: false },
    disableClientInfo: true,
  });
  c.on('error', () => {}); // reported by the command that fails
  return c;
}

// [id, score, id, score, ...] -> [[id, score], ...]
const pairs = (flat) => flat.reduce((acc, v, i) => (i % 2 ? acc[acc.length - 1].push(Number(v)) : acc.push([v]), acc), []);

async function recommendOrBestsellers(makeClient, user, count) {
  const c = makeClient();
  try {
    await c.connect();
    return { items: await c.sendCommand(['RECOMMEND', user, 'COUNT', String(count)]), source: 'recd' };
  } catch (e) {
    if (e instanceof ErrorReply) throw e; // recd answered: a bug on our side
    console.log(`   recd unreachable (${e.code || e.message}): showing bestsellers`);
    return { items: BESTSELLERS.slice(0, count), source: 'fallback' };
  } finally {
    if (c.isOpen) await c.quit();
  }
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  const recd = recdClient(opt['recd-host'], opt['recd-port']);
  const db = createClient({ socket: { host: opt['redis-host'], port: Number(opt['redis-port']) } });
  db.on('error', (e) => console.error('redis:', e.message));
  await recd.connect();
  await db.connect();
  const user = opt.customer;
  const hist = `${opt.prefix}hist:${user}`;
  const pref = `${opt.prefix}pref:${user}`;
  const unavailable = `${opt.prefix}unavailable`;
  const title = async (item) => (await db.hGet(`${opt.prefix}item:${item}`, 'title')) || '?';
  const category = async (item) => (await db.hGet(`${opt.prefix}item:${item}`, 'category')) || '';
  const recommend = (count, ...more) => recd.sendCommand(['RECOMMEND', user, 'COUNT', String(count), ...more]);
  const similar = (item, count, ...more) => recd.sendCommand(['SIMILAR', item, 'COUNT', String(count), ...more]);
  const undo = []; // how to put the customer's keys back as they were

  try {
    // 1. Recommendations with scores, best first.
    const recs = pairs(await recommend(5, 'WITHSCORES'));
    assert.equal(recs.length, 5);
    for (let i = 0; i + 1 < recs.length; i++) assert.ok(recs[i][1] >= recs[i + 1][1], 'not best first');
    console.log(`RECOMMEND ${user} COUNT 5 WITHSCORES`);
    for (const [item, score] of recs) console.log(`   ${item.padEnd(8)} ${score.toFixed(4)}  ${await title(item)}`);

    // 2. Two purchases: through recd, and straight into Redis.
    const [boughtFb, boughtRaw] = [recs[0][0], recs[1][0]];
    for (const item of [boughtFb, boughtRaw]) undo.push(['hist', item, await db.zScore(hist, item)]);
    const weight = await recd.sendCommand(['FEEDBACK', user, boughtFb]);
    console.log(`FEEDBACK ${user} ${boughtFb}  -> accumulated weight ${weight}`);
    await db.zIncrBy(hist, 1, boughtRaw);
    console.log(`ZINCRBY ${hist} 1 ${boughtRaw}  (straight into Redis)`);
    const after = await recommend(50);
    assert.ok(!after.includes(boughtFb) && !after.includes(boughtRaw), `bought items recommended: ${after}`);
    console.log(`   both bought items are gone from the next RECOMMEND: ${after.slice(0, 5).join(' ')}`);

    // 3. A stated preference. A bonus for one category only moves its items
    //    up, so the top 10 cannot hold fewer of them than before.
    undo.push(['pref', 'cat:kitchen', await db.hGet(pref, 'cat:kitchen')]);
    const top = await recommend(10);
    await db.hSet(pref, 'cat:kitchen', '0.5');
    const topPref = await recommend(10);
    const kitchenCount = async (list) => (await Promise.all(list.map(category))).filter((c) => c === 'kitchen').length;
    const [n0, n1] = [await kitchenCount(top), await kitchenCount(topPref)];
    console.log(`HSET ${pref} cat:kitchen 0.5  -> kitchen items in the top 10: ${n0} -> ${n1}`);
    assert.ok(n1 >= n0, `${top} -> ${topPref}`);
    const kitchen = await recommend(3, 'CATEGORY', 'kitchen');
    for (const item of kitchen) assert.equal(await category(item), 'kitchen');
    console.log(`RECOMMEND ${user} COUNT 3 CATEGORY kitchen -> ${kitchen.join(' ')}`);

    // 4. Out of stock: the current favourite. recd re-reads the set every
    //    refresh-ms on a timer (never on the request path); wait for it.
    const gone = topPref[0];
    const [neighbour] = await similar(gone, 1);
    const wasSimilar = (await similar(neighbour, 100)).includes(gone);
    undo.push(['unavailable', gone, await db.sIsMember(unavailable, gone)]);
    await db.sAdd(unavailable, gone);
    console.log(`SADD ${unavailable} ${gone}  (${await title(gone)})`);
    const deadline = Date.now() + 2 * refreshMs + 2000;
    while ((await recommend(100)).includes(gone)) {
      assert.ok(Date.now() < deadline, `${gone} still recommended`);
      await sleep(50);
    }
    for (let i = 0; i < 5; i++) { // and it stays out, from every command
      assert.ok(!(await recommend(100)).includes(gone));
      assert.ok(!(await similar(neighbour, 100)).includes(gone));
      await sleep(refreshMs / 4);
    }
    console.log(`   ${gone} no longer appears in RECOMMEND${wasSimilar ? ' or SIMILAR' : ''}`);

    // 5. RANK the shop's own candidates; unknown ids go last.
    const page = [top[5], top[2], 'NO-SUCH-ITEM', top[8]];
    const ranked = await recd.sendCommand(['RANK', user, ...page]);
    assert.deepEqual([...ranked].sort(), [...page].sort());
    assert.equal(ranked[ranked.length - 1], 'NO-SUCH-ITEM');
    console.log(`RANK ${user} ${page.join(' ')} -> ${ranked.join(' ')}`);
    const product = '85123A';
    const sim = pairs(await similar(product, 3, 'WITHSCORES'));
    assert.equal(sim.length, 3);
    assert.ok(!sim.some(([item]) => item === product));
    console.log(`SIMILAR ${product} COUNT 3 WITHSCORES  (${await title(product)})`);
    for (const [item, score] of sim) console.log(`   ${item.padEnd(8)} ${score.toFixed(3)}  ${await title(item)}`);
    assert.deepEqual(await similar('NO-SUCH-ITEM', 10), []);

    // 6. Errors: an error reply rejects with ErrorReply and the connection
    //    stays usable; an unreachable recd degrades to bestsellers.
    await assert.rejects(recommend(100000), (e) => {
      assert.ok(e instanceof ErrorReply);
      assert.match(e.message, /COUNT must be/);
      console.log(`RECOMMEND ${user} COUNT 100000 -> error: ${e.message}`);
      return true;
    });
    assert.equal(await recd.ping(), 'PONG');
    let r = await recommendOrBestsellers(() => recdClient(opt['recd-host'], opt['recd-port']), user, 3);
    assert.equal(r.source, 'recd');
    assert.equal(r.items.length, 3);
    const closedPort = await freePort();
    r = await recommendOrBestsellers(() => recdClient('127.0.0.1', closedPort), user, 3);
    assert.equal(r.source, 'fallback');
    assert.deepEqual(r.items, BESTSELLERS.slice(0, 3));
  } finally {
    // Put the customer's keys back: this is a demo, not a real purchase.
    for (const [kind, field, old] of undo.reverse()) {
      if (kind === 'hist') {
        if (old === null || old === undefined) await db.zRem(hist, field);
        else await db.zAdd(hist, { score: old, value: field });
      } else if (kind === 'pref') {
        if (old === null || old === undefined) await db.hDel(pref, field);
        else await db.hSet(pref, field, old);
      } else if (kind === 'unavailable' && !old) {
        await db.sRem(unavailable, field);
      }
    }
    await recd.quit();
    await db.quit();
  }
  console.log('node storefront example: all assertions passed');
}

main().catch((e) => {
  console.error('node storefront example FAILED:', e);
  process.exitCode = 1;
});
