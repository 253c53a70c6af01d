//! A Sila user (`user_handle`): the app that registered it, its KYC state and
//! its wallets with their nicknames and default flag. The user owns the rules
//! that span its wallets (nickname unique per user, at most one default, never
//! zero wallets), so they hold under concurrency through the event store's
//! optimistic lock on this one aggregate.

mod aggregate;
mod commands;
mod events;
#[cfg(test)]
mod tests;

pub use aggregate::{Kyc, SilaUser, UserError, UserWallet};
pub use commands::{NewUserWallet, UserCommand};
pub use events::UserEvent;
