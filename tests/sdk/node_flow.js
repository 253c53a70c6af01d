// Drives walletd with Sila's Node SDK (sila-sdk 0.2.28) exactly as published.
//
// The SDK has no setting for its base URL (only three fixed Sila hosts), so
// the one change is where its HTTP client sends: each request's URL keeps
// its path under /0.2/ and gets walletd's address. Bodies, headers and
// signatures are the SDK's own.
//
//   node_flow.js keygen   prints "app-key <private key> <address>"
//   node_flow.js run      the flow; needs WALLETD_URL, SILA_APP_HANDLE,
//                         SILA_APP_KEY (that app registered in walletd)
//
// Every step asserts what walletd answered (status, message, addresses,
// nicknames, defaults, KYC state), not only that nothing threw.

'use strict';

const assert = require('assert');
const crypto = require('crypto');
const request = require('request');
const sila = require('sila-sdk').default;
const { version } = require('sila-sdk/package.json');

function pointSdkAt(base) {
  const post = request.post;
  request.post = (options, callback) => {
    const [, path] = options.uri.split('/0.2/');
    assert.ok(path, `unexpected SDK URL ${options.uri}`);
    return post.call(request, { ...options, uri: `${base}/0.2/${path}` }, callback);
  };
}

const sameAddress = (a, b) =>
  typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();

/** 200, success, SUCCESS, a reference echoed; returns the body. */
function ok(res, what) {
  const body = res.data;
  const shown = JSON.stringify(body);
  assert.strictEqual(res.statusCode, 200, `${what}: status ${res.statusCode}: ${shown}`);
  assert.strictEqual(body.success, true, `${what}: success: ${shown}`);
  assert.strictEqual(body.status, 'SUCCESS', `${what}: ${shown}`);
  assert.ok(body.reference, `${what}: reference echoed: ${shown}`);
  return body;
}

function check(cond, what, body) {
  assert.ok(cond, `${what}: ${JSON.stringify(body)}`);
}

async function run() {
  const base = process.env.WALLETD_URL.replace(/\/$/, '');
  pointSdkAt(base);
  sila.configure({ key: process.env.SILA_APP_KEY, handle: process.env.SILA_APP_HANDLE });

  // The SDK appends .silamoney.eth to handles that lack it.
  const handle = `node-${crypto.randomBytes(6).toString('hex')}`;
  const full = `${handle}.silamoney.eth`;
  const first = sila.generateWallet();
  const second = sila.generateWallet();
  let secondId;

  const s = {};
  const payee = `node-${crypto.randomBytes(6).toString('hex')}`;
  const fullPayee = `${payee}.silamoney.eth`;
  const payeeKey = sila.generateWallet();
  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
  const waitWhitelisted = async (user, key) => {
    const deadline = Date.now() + 30000;
    for (;;) {
      const r = await sila.getWallet(user, key);
      if (r.data.is_whitelisted === true) return;
      check(Date.now() < deadline, `${user} whitelisted in time`, r.data);
      await sleep(200);
    }
  };
  const balanceOf = async (address) => {
    // Public: no header, so no reference to echo.
    const res = await sila.getSilaBalance(address);
    const r = res.data;
    check(res.statusCode === 200 && r.success === true && r.status === 'SUCCESS', 'get_sila_balance', r);
    check(sameAddress(r.address, address), 'address echoed', r);
    return r.sila_balance;
  };
  const waitBalance = async (address, expected) => {
    const deadline = Date.now() + 40000;
    while ((await balanceOf(address)) !== expected) {
      check(Date.now() < deadline, `balance of ${address} reaches ${expected}`, {});
      await sleep(200);
    }
  };
  const steps = [
    ['check_handle (available)', async () => {
      const r = ok(await sila.checkHandle(handle), 'check_handle');
      check(r.message === `${full} is available.`, 'available', r);
    }],
    ['register', async () => {
      const user = new sila.User();
      user.handle = handle;
      user.firstName = 'Ada';
      user.lastName = 'Lovelace';
      user.entity_name = 'Ada Lovelace';
      user.dateOfBirth = '1990-05-19';
      user.email = `${handle}@example.com`;
      user.phone = '1234567890';
      user.address = '1 Main Street';
      user.city = 'Portland';
      user.state = 'OR';
      user.zip = '97204';
      // cryptoAlias left at the SDK's default (''): a generated nickname.
      user.cryptoAddress = first.address;
      const r = ok(await sila.register(user), 'register');
      check(r.message === `${full} was successfully registered.`, 'registered', r);
      const again = await sila.checkHandle(handle);
      check(again.statusCode === 200 && again.data.success === false, 'taken', again.data);
      check(again.data.message === `${full} is already taken.`, 'taken message', again.data);
    }],
    ['request_kyc', async () => {
      const r = ok(await sila.requestKYC(handle, first.privateKey), 'request_kyc');
      check(r.message === `${full} submitted for KYC review.`, 'submitted', r);
      check(Boolean(r.verification_uuid), 'verification_uuid', r);
    }],
    ['check_kyc', async () => {
      const r = ok(await sila.checkKYC(handle, first.privateKey), 'check_kyc');
      check(r.verification_status === 'passed', 'sandbox KYC passed', r);
      check(r.message === `${full} has passed ID verification!`, 'passed message', r);
    }],
    ['register_wallet', async () => {
      const r = ok(
        await sila.registerWallet(handle, first.privateKey, second, 'node second', false),
        'register_wallet',
      );
      check(r.message === `Blockchain address ${second.address} registered.`, 'message', r);
      check(r.wallet_nickname === 'node second', 'nickname', r);
      check(r.statements_enabled === false, 'statements_enabled', r);
      check(r.queued_for_whitelist === true, 'queued: KYC has passed', r);
      secondId = r.wallet_id;
    }],
    ['get_wallets', async () => {
      const filters = new sila.WalletFilters();
      filters.page = 1;
      filters.per_page = 20;
      filters.sort_ascending = true;
      const r = ok(await sila.getWallets(handle, first.privateKey, filters), 'get_wallets');
      check(r.total_count === 2 && r.returned_count === 2 && r.page === 1, 'two wallets', r);
      const [a, b] = r.wallets;
      check(sameAddress(a.blockchain_address, first.address), 'first address', r);
      check(sameAddress(b.blockchain_address, second.address), 'second address', r);
      check(a.nickname === `wallet-${a.wallet_id.slice(0, 8)}`, 'generated nickname', r);
      check(b.nickname === 'node second', 'nickname', r);
      check(a.default === true && b.default === false, 'defaults', r);
      check(b.wallet_id === secondId, 'wallet id', r);
      const byAddress = new sila.WalletFilters();
      byAddress.blockchain_address = second.address;
      byAddress.blockchain_network = 'ETH';
      const one = ok(await sila.getWallets(handle, first.privateKey, byAddress), 'get_wallets by address');
      check(one.total_count === 1 && one.wallets[0].nickname === 'node second', 'one match', one);
    }],
    ['get_wallet', async () => {
      const r = ok(await sila.getWallet(handle, second.privateKey), 'get_wallet');
      const w = r.wallet;
      check(sameAddress(w.blockchain_address, second.address), 'the signing wallet', r);
      check(w.nickname === 'node second' && w.default === false, 'nickname, default', r);
      check(w.wallet_id === secondId && w.blockchain_network === 'ETH', 'id, network', r);
      check(typeof r.is_whitelisted === 'boolean', 'is_whitelisted', r);
    }],
    ['update_wallet', async () => {
      const r = ok(
        await sila.updateWallet(handle, second.privateKey, { nickname: 'node renamed', default: true }),
        'update_wallet',
      );
      check(r.message === 'Wallet updated.', 'message', r);
      check(r.wallet.nickname === 'node renamed' && r.wallet.default === true, 'updated', r);
      const nickname = r.changes.find((c) => c.attribute === 'nickname');
      check(nickname && nickname.old_value === 'node second', 'old nickname', r);
      check(nickname.new_value === 'node renamed', 'new nickname', r);
      check(r.changes.some((c) => c.attribute === 'default'), 'default changed', r);
      const firstNow = ok(await sila.getWallet(handle, first.privateKey), 'get_wallet (first)');
      check(firstNow.wallet.default === false, 'the default moved', firstNow);
    }],
    ['delete_wallet', async () => {
      const r = ok(await sila.deleteWallet(handle, first.privateKey), 'delete_wallet');
      check(sameAddress(r.message.split(' ')[2], first.address), 'address', r);
      check(r.message.endsWith(' removed.'), 'message', r);
      const left = ok(await sila.getWallets(handle, second.privateKey), 'get_wallets after delete');
      check(left.total_count === 1, 'one wallet left', left);
      check(sameAddress(left.wallets[0].blockchain_address, second.address), 'the second', left);
      const gone = await sila.getWallet(handle, first.privateKey);
      check(gone.statusCode === 403 && gone.data.success === false, 'deleted key refused', gone.data);
    }],
    ['register and KYC a payee', async () => {
      const user = new sila.User();
      user.handle = payee;
      user.firstName = 'Bo';
      user.lastName = 'Payee';
      user.cryptoAddress = payeeKey.address;
      user.cryptoAlias = 'payee main';
      ok(await sila.register(user), 'register payee');
      ok(await sila.requestKYC(payee, payeeKey.privateKey), 'request_kyc payee');
    }],
    ['issue_sila', async () => {
      await waitWhitelisted(handle, second.privateKey);
      const r = ok(await sila.issueSila(1000, handle, second.privateKey), 'issue_sila');
      check(typeof r.transaction_id === 'string' && r.transaction_id.length === 36, 'transaction_id', r);
      s.issueRef = r.reference;
      s.issueId = r.transaction_id;
    }],
    ['get_sila_balance', async () => {
      check((await balanceOf(second.address)) === 1000, '1000 issued');
      check((await balanceOf(payeeKey.address)) === 0, 'payee has nothing yet');
    }],
    ['transfer_sila', async () => {
      await waitWhitelisted(payee, payeeKey.privateKey);
      const r = ok(
        await sila.transferSila(300, handle, second.privateKey, payee, undefined, undefined, 'node pay'),
        'transfer_sila',
      );
      check(sameAddress(r.destination_address, payeeKey.address), "to the payee's default", r);
      check(r.descriptor === 'node pay', 'descriptor', r);
      s.transferId = r.transaction_id;
      await waitBalance(payeeKey.address, 300);
      check((await balanceOf(second.address)) === 700, '700 left');
    }],
    ['redeem_sila', async () => {
      const r = ok(await sila.redeemSila(100, handle, second.privateKey), 'redeem_sila');
      check(typeof r.transaction_id === 'string', 'transaction_id', r);
      check((await balanceOf(second.address)) === 600, '600 left');
    }],
    ['get_transactions', async () => {
      let r = ok(await sila.getTransactions(handle, second.privateKey), 'get_transactions');
      check(r.total_count === 3 && r.returned_count === 3, 'three transactions', r);
      check(
        r.transactions.map((t) => t.transaction_type).join() === 'redeem,transfer,issue',
        'newest first',
        r,
      );
      const filters = new sila.TransactionFilters();
      filters.transaction_types = ['transfer'];
      r = ok(await sila.getTransactions(handle, second.privateKey, filters), 'get_transactions (transfers)');
      check(r.transactions.length === 1 && r.transactions[0].transaction_id === s.transferId, 'the transfer', r);
      const [t] = r.transactions;
      check(t.sila_amount === 300 && t.status === 'success', 'amount, status', r);
      check(t.destination_handle === fullPayee && t.descriptor === 'node pay', 'destination, descriptor', r);
      const byRef = new sila.TransactionFilters();
      byRef.reference_id = s.issueRef;
      r = ok(await sila.getTransactions(handle, undefined, byRef), 'get_transactions (by reference)');
      check(r.transactions.length === 1 && r.transactions[0].transaction_id === s.issueId, 'the issue', r);
    }],
  ];

  for (const [name, fn] of steps) {
    const started = Date.now();
    await fn();
    console.log(`node sdk ${version}: ${name}: ok (${Date.now() - started} ms)`);
  }
  console.log(`node sdk ${version}: ${steps.length} steps passed for ${full}`);
}

function main() {
  const command = process.argv.slice(2).join(' ');
  if (command === 'keygen') {
    const key = sila.generateWallet();
    console.log(`app-key ${key.privateKey} ${key.address}`);
  } else if (command === 'run') {
    run().catch((e) => {
      console.error(`node sdk flow FAILED: ${e.message}`);
      process.exit(1);
    });
  } else {
    console.error('usage: node_flow.js keygen|run');
    process.exit(2);
  }
}

main();
