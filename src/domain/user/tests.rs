//! Given / when / then for every user command and rejection.

use cqrs_es::test::TestFramework;

use super::*;
use crate::domain::{Address, Handle, Nickname, Timestamp, UserId, WalletId};

fn handle() -> Handle {
    Handle::parse("user.silamoney.eth").unwrap()
}

fn app() -> Handle {
    Handle::parse("handle.silamoney.eth").unwrap()
}

fn addr(n: u8) -> Address {
    Address::from_bytes([n; 20])
}

fn wid(n: u8) -> WalletId {
    WalletId::for_address(&addr(n))
}

fn nick(s: &str) -> Nickname {
    Nickname::parse(s).unwrap()
}

fn t() -> Timestamp {
    Timestamp::from_datetime(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap())
}

fn new_wallet(n: u8, nickname: Option<&str>, default: bool) -> NewUserWallet {
    NewUserWallet {
        wallet_id: wid(n),
        address: addr(n),
        nickname: nickname.map(nick),
        default,
        statements_enabled: false,
    }
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        handle: handle(),
        user_id: UserId::for_handle(&handle()),
        app: app(),
        registered_at: t(),
    }
}

fn attached(n: u8, nickname: &str, default: bool) -> UserEvent {
    UserEvent::WalletAttached {
        handle: handle(),
        wallet_id: wid(n),
        address: addr(n),
        nickname: nick(nickname),
        default,
        statements_enabled: false,
        at: t(),
    }
}

/// A user with wallet 1 ("main", default) and wallet 2 ("spare").
fn two_wallets() -> Vec<UserEvent> {
    vec![
        registered(),
        attached(1, "main", true),
        attached(2, "spare", false),
    ]
}

fn fw() -> TestFramework<SilaUser> {
    TestFramework::<SilaUser>::with(())
}

#[test]
fn register_creates_the_user_with_a_default_wallet() {
    fw().given_no_previous_events()
        .when(UserCommand::Register {
            handle: handle(),
            app: app(),
            wallet: new_wallet(1, Some("main"), false),
            at: t(),
        })
        .then_expect_events(vec![registered(), attached(1, "main", true)]);
}

#[test]
fn register_twice_is_rejected() {
    fw().given(vec![registered(), attached(1, "main", true)])
        .when(UserCommand::Register {
            handle: handle(),
            app: app(),
            wallet: new_wallet(2, None, false),
            at: t(),
        })
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn attach_with_generated_nickname() {
    let generated = Nickname::generated(wid(3));
    fw().given(two_wallets())
        .when(UserCommand::AttachWallet {
            signer: Some(addr(1)),
            wallet: new_wallet(3, None, false),
            at: t(),
        })
        .then_expect_events(vec![attached(3, generated.as_str(), false)]);
}

#[test]
fn attach_as_default_moves_the_default() {
    let mut user = SilaUser::default();
    for e in two_wallets() {
        cqrs_es::Aggregate::apply(&mut user, e);
    }
    cqrs_es::Aggregate::apply(&mut user, attached(3, "third", true));
    let defaults: Vec<_> = user.wallets().iter().filter(|w| w.default).collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].wallet_id, wid(3));
}

#[test]
fn attach_by_token_needs_no_signer() {
    fw().given(two_wallets())
        .when(UserCommand::AttachWallet {
            signer: None,
            wallet: new_wallet(3, Some("third"), true),
            at: t(),
        })
        .then_expect_events(vec![attached(3, "third", true)]);
}

#[test]
fn attach_rejections() {
    let attach = |signer: u8, n: u8, nickname: &str| UserCommand::AttachWallet {
        signer: Some(addr(signer)),
        wallet: new_wallet(n, Some(nickname), false),
        at: t(),
    };
    fw().given_no_previous_events()
        .when(attach(1, 3, "x"))
        .then_expect_error(UserError::NotFound);
    fw().given(two_wallets())
        .when(attach(9, 3, "x"))
        .then_expect_error(UserError::SignerNotAWallet);
    fw().given(two_wallets())
        .when(attach(1, 3, "SPARE"))
        .then_expect_error(UserError::NicknameTaken("SPARE".into()));
    fw().given(two_wallets())
        .when(attach(1, 2, "other"))
        .then_expect_error(UserError::AddressAlreadyAttached(addr(2)));
}

#[test]
fn update_records_only_what_changed() {
    fw().given(two_wallets())
        .when(UserCommand::UpdateWallet {
            signer: addr(2),
            nickname: Some(nick("spare")),
            default: Some(true),
            statements_enabled: Some(false),
            at: t(),
        })
        .then_expect_events(vec![UserEvent::WalletUpdated {
            handle: handle(),
            wallet_id: wid(2),
            nickname: None,
            default: Some(true),
            statements_enabled: None,
            at: t(),
        }]);
    fw().given(two_wallets())
        .when(UserCommand::UpdateWallet {
            signer: addr(1),
            nickname: Some(nick("MAIN")),
            default: None,
            statements_enabled: None,
            at: t(),
        })
        .then_expect_events(vec![UserEvent::WalletUpdated {
            handle: handle(),
            wallet_id: wid(1),
            nickname: Some(nick("MAIN")),
            default: None,
            statements_enabled: None,
            at: t(),
        }]);
    fw().given(two_wallets())
        .when(UserCommand::UpdateWallet {
            signer: addr(1),
            nickname: None,
            default: Some(true),
            statements_enabled: None,
            at: t(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn update_rejections() {
    let update = |signer: u8, nickname: &str| UserCommand::UpdateWallet {
        signer: addr(signer),
        nickname: Some(nick(nickname)),
        default: None,
        statements_enabled: None,
        at: t(),
    };
    fw().given(two_wallets())
        .when(update(2, "Main"))
        .then_expect_error(UserError::NicknameTaken("Main".into()));
    fw().given(two_wallets())
        .when(update(7, "x"))
        .then_expect_error(UserError::SignerNotAWallet);
}

#[test]
fn detach_keeps_at_least_one_wallet() {
    fw().given(two_wallets())
        .when(UserCommand::DetachWallet {
            signer: addr(2),
            at: t(),
        })
        .then_expect_events(vec![UserEvent::WalletDetached {
            handle: handle(),
            wallet_id: wid(2),
            address: addr(2),
            at: t(),
        }]);
    fw().given(vec![registered(), attached(1, "main", true)])
        .when(UserCommand::DetachWallet {
            signer: addr(1),
            at: t(),
        })
        .then_expect_error(UserError::LastWallet);
}

#[test]
fn kyc_flow() {
    let id = uuid::Uuid::from_u128(7);
    let requested = UserEvent::KycRequested {
        handle: handle(),
        verification_id: id,
        at: t(),
    };
    let request = || UserCommand::RequestKyc {
        verification_id: id,
        at: t(),
    };
    let decide = |passed| UserCommand::DecideKyc { passed, at: t() };
    fw().given(two_wallets())
        .when(request())
        .then_expect_events(vec![requested.clone()]);
    let mut pending = two_wallets();
    pending.push(requested.clone());
    fw().given(pending.clone())
        .when(request())
        .then_expect_events(vec![]);
    fw().given(pending.clone())
        .when(decide(true))
        .then_expect_events(vec![UserEvent::KycPassed {
            handle: handle(),
            at: t(),
        }]);
    let failed = UserEvent::KycFailed {
        handle: handle(),
        at: t(),
    };
    fw().given(pending.clone())
        .when(decide(false))
        .then_expect_events(vec![failed.clone()]);
    let mut after_fail = pending.clone();
    after_fail.push(failed);
    fw().given(after_fail.clone())
        .when(decide(false))
        .then_expect_error(UserError::KycAlreadyFailed);
    fw().given(after_fail)
        .when(request())
        .then_expect_events(vec![requested]);
    pending.push(UserEvent::KycPassed {
        handle: handle(),
        at: t(),
    });
    fw().given(pending.clone())
        .when(decide(true))
        .then_expect_error(UserError::KycAlreadyPassed);
    fw().given(pending)
        .when(request())
        .then_expect_error(UserError::KycAlreadyPassed);
    fw().given_no_previous_events()
        .when(decide(true))
        .then_expect_error(UserError::NotFound);
}
