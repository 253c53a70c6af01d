//! Given / when / then for every app command and rejection.

use cqrs_es::test::TestFramework;

use super::*;

fn handle() -> Handle {
    Handle::parse("handle.silamoney.eth").unwrap()
}

fn addr(n: u8) -> Address {
    Address::from_bytes([n; 20])
}

fn t() -> Timestamp {
    Timestamp::from_datetime(chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap())
}

fn registered() -> AppEvent {
    AppEvent::AppRegistered {
        handle: handle(),
        address: addr(1),
        registered_at: t(),
    }
}

fn add(n: u8) -> AppCommand {
    AppCommand::AddAddress {
        handle: handle(),
        address: addr(n),
        at: t(),
    }
}

#[test]
fn first_address_registers_the_app() {
    TestFramework::<ClientApp>::with(())
        .given_no_previous_events()
        .when(add(1))
        .then_expect_events(vec![registered()]);
}

#[test]
fn another_address_is_added() {
    TestFramework::<ClientApp>::with(())
        .given(vec![registered()])
        .when(add(2))
        .then_expect_events(vec![AppEvent::AppAddressAdded {
            handle: handle(),
            address: addr(2),
            at: t(),
        }]);
}

#[test]
fn same_address_twice_is_rejected() {
    TestFramework::<ClientApp>::with(())
        .given(vec![registered()])
        .when(add(1))
        .then_expect_error(AppError::AddressAlreadyRegistered(addr(1)));
}

#[test]
fn other_handle_is_rejected() {
    TestFramework::<ClientApp>::with(())
        .given(vec![registered()])
        .when(AppCommand::AddAddress {
            handle: Handle::parse("other.eth").unwrap(),
            address: addr(2),
            at: t(),
        })
        .then_expect_error(AppError::HandleMismatch);
}

#[test]
fn remove_address() {
    let added = AppEvent::AppAddressAdded {
        handle: handle(),
        address: addr(2),
        at: t(),
    };
    TestFramework::<ClientApp>::with(())
        .given(vec![registered(), added])
        .when(AppCommand::RemoveAddress {
            address: addr(1),
            at: t(),
        })
        .then_expect_events(vec![AppEvent::AppAddressRemoved {
            handle: handle(),
            address: addr(1),
            at: t(),
        }]);
}

#[test]
fn remove_rejections() {
    TestFramework::<ClientApp>::with(())
        .given_no_previous_events()
        .when(AppCommand::RemoveAddress {
            address: addr(1),
            at: t(),
        })
        .then_expect_error(AppError::NotFound(String::new()));
    TestFramework::<ClientApp>::with(())
        .given(vec![registered()])
        .when(AppCommand::RemoveAddress {
            address: addr(9),
            at: t(),
        })
        .then_expect_error(AppError::UnknownAddress(addr(9)));
    TestFramework::<ClientApp>::with(())
        .given(vec![registered()])
        .when(AppCommand::RemoveAddress {
            address: addr(1),
            at: t(),
        })
        .then_expect_error(AppError::LastAddress);
}
