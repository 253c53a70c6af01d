"""Drives walletd with Sila's Python SDK (silasdk 1.1.3) exactly as published.

The only change is where the SDK sends its requests: its endpoint table
names Sila's hosts, so the two URL templates in it are pointed at walletd.

    python_flow.py keygen   prints "app-key <private key> <address>"
    python_flow.py run      the flow; needs WALLETD_URL, SILA_APP_HANDLE,
                            SILA_APP_KEY (that app registered in walletd)

Every step asserts what walletd answered (status, message, addresses,
nicknames, defaults, KYC state), not only that no exception was raised.
"""

import os
import secrets
import sys
import time

import silasdk
from silasdk import App, EthWallet, User, Wallet
from silasdk.transactions import Transaction
from silasdk.endpoints import endPoints
from silasdk.schema import Schema

STEPS = []


def step(name):
    def wrap(fn):
        STEPS.append((name, fn))
        return fn

    return wrap


def expect(cond, what, response=None):
    if not cond:
        raise AssertionError(f"{what}: {response!r}")


def ok(response, what):
    """200, success, SUCCESS, a reference echoed."""
    expect(isinstance(response, dict), f"{what}: a JSON answer", response)
    expect(response.get("status_code") == 200, f"{what}: status 200", response)
    expect(response.get("success") is True, f"{what}: success", response)
    expect(response.get("status") == "SUCCESS", f"{what}: status SUCCESS", response)
    expect(bool(response.get("reference")), f"{what}: reference echoed", response)
    return response


def same_address(a, b):
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def point_sdk_at(base):
    # The SDK formats the tier ("sandbox") into the API host; walletd has
    # one address, so the tier is formatted away ("%.0s" prints nothing).
    endPoints["schemaUrl"] = base + "/0.2/getmessage?emptymessage=%sTestMessage"
    endPoints["apiUrl"] = base + "/0.2%.0s"


def run():
    base = os.environ["WALLETD_URL"].rstrip("/")
    app_handle = os.environ["SILA_APP_HANDLE"]
    app_key = os.environ["SILA_APP_KEY"]
    point_sdk_at(base)

    # App() fetches the five message templates from walletd.
    app = App("sandbox", app_key, app_handle)
    fetched = {name for entry in Schema for name in entry}
    for message in ["header_msg", "entity_msg", "identity_msg", "crypto_msg", "link_account_msg"]:
        expect(message in fetched, f"template {message} fetched", sorted(fetched))

    handle = "py-" + secrets.token_hex(6)
    first = EthWallet.create()
    second = EthWallet.create()
    s = {}

    @step("check_handle (available)")
    def _():
        r = ok(User.checkHandle(app, {"user_handle": handle}), "check_handle")
        expect(r["message"] == f"{handle} is available.", "available", r)

    @step("register")
    def _():
        r = ok(
            User.register(
                app,
                {
                    "user_handle": handle,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "entity_name": "Ada Lovelace",
                    "birthdate": "1990-05-19",
                    "email": f"{handle}@example.com",
                    "phone": "1234567890",
                    "street_address_1": "1 Main Street",
                    "city": "Portland",
                    "state": "OR",
                    "postal_code": "97204",
                    "country": "US",
                    "crypto_address": first["eth_address"],
                    "crypto_alias": "py main",
                },
            ),
            "register",
        )
        expect(r["message"] == f"{handle} was successfully registered.", "registered", r)
        again = User.checkHandle(app, {"user_handle": handle})
        expect(again.get("status_code") == 200 and again.get("success") is False, "taken", again)
        expect(again.get("message") == f"{handle} is already taken.", "taken message", again)

    @step("request_kyc")
    def _():
        r = ok(User.requestKyc(app, {"user_handle": handle}, first["eth_private_key"]), "request_kyc")
        expect(r["message"] == f"{handle} submitted for KYC review.", "submitted", r)
        expect(bool(r.get("verification_uuid")), "verification_uuid", r)

    @step("check_kyc")
    def _():
        r = ok(User.checkKyc(app, {"user_handle": handle}, first["eth_private_key"]), "check_kyc")
        expect(r["verification_status"] == "passed", "sandbox KYC passed", r)
        expect(r["message"] == f"{handle} has passed ID verification!", "passed message", r)

    @step("register_wallet (wallet_address / network, as the SDK's template names them)")
    def _():
        proof = EthWallet.signMessage(second["eth_address"], second["eth_private_key"])
        r = ok(
            Wallet.registerWallet(
                app,
                {
                    "user_handle": handle,
                    "wallet_verification_signature": proof,
                    "wallet": {
                        "wallet_address": second["eth_address"],
                        "network": "ETH",
                        "nickname": "py second",
                        "default": False,
                        "statements_enabled": True,
                    },
                },
                first["eth_private_key"],
            ),
            "register_wallet",
        )
        expect(r["message"] == f"Blockchain address {second['eth_address']} registered.", "message", r)
        expect(r["wallet_nickname"] == "py second", "nickname", r)
        expect(r["statements_enabled"] is True, "statements_enabled", r)
        expect(r["queued_for_whitelist"] is True, "queued: KYC has passed", r)
        s["second_id"] = r["wallet_id"]

    @step("get_wallets")
    def _():
        r = ok(
            Wallet.getWallets(
                app,
                {"user_handle": handle, "search_filters": {"page": 1, "per_page": 20, "sort_ascending": True}},
                first["eth_private_key"],
            ),
            "get_wallets",
        )
        expect(r["total_count"] == 2 and r["returned_count"] == 2 and r["page"] == 1, "two wallets", r)
        wallets = r["wallets"]
        expect(same_address(wallets[0]["blockchain_address"], first["eth_address"]), "first address", r)
        expect(same_address(wallets[1]["blockchain_address"], second["eth_address"]), "second address", r)
        expect([w["nickname"] for w in wallets] == ["py main", "py second"], "nicknames", r)
        expect([w["default"] for w in wallets] == [True, False], "defaults", r)
        expect(wallets[1]["wallet_id"] == s["second_id"], "wallet id", r)
        expect(all(w["blockchain_network"] == "ETH" for w in wallets), "network", r)
        # The SDK template's filter names.
        r = ok(
            Wallet.getWallets(
                app,
                {"user_handle": handle, "search_filters": {"wallet_address": second["eth_address"], "network": "ETH"}},
                first["eth_private_key"],
            ),
            "get_wallets by wallet_address",
        )
        expect(r["total_count"] == 1, "one match", r)
        expect(r["wallets"][0]["nickname"] == "py second", "the second wallet", r)

    @step("get_wallet")
    def _():
        r = ok(Wallet.getWallet(app, {"user_handle": handle}, second["eth_private_key"]), "get_wallet")
        w = r["wallet"]
        expect(same_address(w["blockchain_address"], second["eth_address"]), "the signing wallet", r)
        expect(w["nickname"] == "py second" and w["default"] is False, "nickname, default", r)
        expect(w["statements_enabled"] is True and w["wallet_id"] == s["second_id"], "statements, id", r)
        expect(isinstance(r["is_whitelisted"], bool), "is_whitelisted", r)

    @step("update_wallet")
    def _():
        r = ok(
            Wallet.update_wallet(
                app,
                {"user_handle": handle, "nickname": "py renamed", "default": True},
                second["eth_private_key"],
            ),
            "update_wallet",
        )
        expect(r["message"] == "Wallet updated.", "message", r)
        expect(r["wallet"]["nickname"] == "py renamed" and r["wallet"]["default"] is True, "updated", r)
        changes = {c["attribute"]: c for c in r["changes"]}
        expect(changes["nickname"]["old_value"] == "py second", "old nickname", r)
        expect(changes["nickname"]["new_value"] == "py renamed", "new nickname", r)
        expect("default" in changes and "statements_enabled" not in changes, "changed attributes", r)
        r = ok(Wallet.getWallet(app, {"user_handle": handle}, first["eth_private_key"]), "get_wallet (first)")
        expect(r["wallet"]["default"] is False, "the default moved", r)

    @step("delete_wallet")
    def _():
        r = ok(Wallet.deleteWallet(app, {"user_handle": handle}, first["eth_private_key"]), "delete_wallet")
        expect(same_address(r["message"].split(" ")[2], first["eth_address"]), "address", r)
        expect(r["message"].endswith(" removed."), "message", r)
        r = ok(
            Wallet.getWallets(app, {"user_handle": handle}, second["eth_private_key"]),
            "get_wallets after delete",
        )
        expect(r["total_count"] == 1, "one wallet left", r)
        expect(same_address(r["wallets"][0]["blockchain_address"], second["eth_address"]), "the second", r)
        gone = Wallet.getWallet(app, {"user_handle": handle}, first["eth_private_key"])
        expect(gone.get("status_code") == 403 and gone.get("success") is False, "deleted key refused", gone)

    payee = "py-" + secrets.token_hex(6)
    payee_key = EthWallet.create()

    def wait_whitelisted(user, key):
        deadline = time.monotonic() + 30
        while True:
            r = Wallet.getWallet(app, {"user_handle": user}, key)
            if r.get("is_whitelisted") is True:
                return
            expect(time.monotonic() < deadline, f"{user} whitelisted in time", r)
            time.sleep(0.2)

    def balance_of(address):
        # Public: no header, so no reference to echo.
        r = User.getSilaBalance(app, address)
        expect(r.get("status_code") == 200 and r.get("success") is True, "get_sila_balance", r)
        expect(same_address(r["address"], address), "address echoed", r)
        return r["sila_balance"]

    def wait_balance(address, expected):
        deadline = time.monotonic() + 40
        while balance_of(address) != expected:
            expect(time.monotonic() < deadline, f"balance of {address} reaches {expected}")
            time.sleep(0.2)

    @step("register and KYC a payee")
    def _():
        ok(User.register(app, {"user_handle": payee, "first_name": "Bo", "last_name": "Payee",
                               "entity_name": "Bo Payee", "crypto_address": payee_key["eth_address"],
                               "crypto_alias": "payee main"}), "register payee")
        ok(User.requestKyc(app, {"user_handle": payee}, payee_key["eth_private_key"]), "request_kyc payee")

    @step("issue_sila")
    def _():
        wait_whitelisted(handle, second["eth_private_key"])
        r = ok(Transaction.issue_sila(app, {"user_handle": handle, "amount": 1000, "account_name": "default"},
                                      second["eth_private_key"]), "issue_sila")
        expect(isinstance(r.get("transaction_id"), str) and len(r["transaction_id"]) == 36, "transaction_id", r)
        s["issue_ref"] = r["reference"]
        s["issue_id"] = r["transaction_id"]

    @step("get_sila_balance")
    def _():
        expect(balance_of(second["eth_address"]) == 1000, "1000 issued")
        expect(balance_of(payee_key["eth_address"]) == 0, "payee has nothing yet")

    @step("transfer_sila")
    def _():
        wait_whitelisted(payee, payee_key["eth_private_key"])
        r = ok(Transaction.transferSila(app, {"user_handle": handle, "amount": 300, "destination_handle": payee,
                                              "descriptor": "py pay"}, second["eth_private_key"]), "transfer_sila")
        expect(same_address(r["destination_address"], payee_key["eth_address"]), "to the payee's default", r)
        expect(r["descriptor"] == "py pay", "descriptor", r)
        s["transfer_id"] = r["transaction_id"]
        wait_balance(payee_key["eth_address"], 300)
        expect(balance_of(second["eth_address"]) == 700, "700 left")

    @step("redeem_sila")
    def _():
        r = ok(Transaction.redeemSila(app, {"user_handle": handle, "amount": 100, "account_name": "default"},
                                      second["eth_private_key"]), "redeem_sila")
        expect(isinstance(r.get("transaction_id"), str), "transaction_id", r)
        expect(balance_of(second["eth_address"]) == 600, "600 left")

    @step("get_transactions")
    def _():
        r = ok(User.get_transactions(app, {"user_handle": handle}), "get_transactions")
        expect(r["total_count"] == 3 and r["returned_count"] == 3, "three transactions", r)
        types = [t["transaction_type"] for t in r["transactions"]]
        expect(types == ["redeem", "transfer", "issue"], "newest first", r)
        r = ok(User.get_transactions(app, {"user_handle": handle, "search_filters": {"transaction_types": ["transfer"]}}),
               "get_transactions (transfers)")
        t = r["transactions"]
        expect(len(t) == 1 and t[0]["transaction_id"] == s["transfer_id"], "the transfer", r)
        expect(t[0]["sila_amount"] == 300 and t[0]["status"] == "success", "amount, status", r)
        expect(t[0]["destination_handle"] == payee and t[0]["descriptor"] == "py pay", "destination, descriptor", r)
        r = ok(User.get_transactions(app, {"user_handle": handle, "search_filters": {"reference_id": s["issue_ref"]}}),
               "get_transactions (by reference)")
        expect([x["transaction_id"] for x in r["transactions"]] == [s["issue_id"]], "the issue", r)

    for name, fn in STEPS:
        started = time.monotonic()
        fn()
        print(f"python sdk {silasdk.__version__}: {name}: ok ({(time.monotonic() - started) * 1000:.0f} ms)")
    print(f"python sdk {silasdk.__version__}: {len(STEPS)} steps passed for {handle}")


def main():
    if sys.argv[1:] == ["keygen"]:
        key = EthWallet.create()
        print("app-key", key["eth_private_key"], key["eth_address"])
    elif sys.argv[1:] == ["run"]:
        run()
    else:
        sys.exit("usage: python_flow.py keygen|run")


if __name__ == "__main__":
    main()
