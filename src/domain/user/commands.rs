use crate::domain::{Address, Handle, Nickname, Timestamp, WalletId};

/// A wallet joining a user; the wallet aggregate itself is written in the same
/// transaction.
#[derive(Clone, Debug)]
pub struct NewUserWallet {
    pub wallet_id: WalletId,
    pub address: Address,
    /// `None`: generated from the wallet id.
    pub nickname: Option<Nickname>,
    pub default: bool,
    pub statements_enabled: bool,
}

#[derive(Clone, Debug)]
pub enum UserCommand {
    /// Creates the user with its first wallet, which becomes the default.
    Register {
        handle: Handle,
        app: Handle,
        wallet: NewUserWallet,
        at: Timestamp,
    },
    /// `signer`: the user's wallet that signed the request (ECDSA mode);
    /// `None` when the app authenticated with a token.
    AttachWallet {
        signer: Option<Address>,
        wallet: NewUserWallet,
        at: Timestamp,
    },
    /// Changes the signing wallet; `None` leaves an attribute as it is.
    UpdateWallet {
        signer: Address,
        nickname: Option<Nickname>,
        default: Option<bool>,
        statements_enabled: Option<bool>,
        at: Timestamp,
    },
    DetachWallet {
        signer: Address,
        at: Timestamp,
    },
    RequestKyc {
        verification_id: uuid::Uuid,
        at: Timestamp,
    },
    DecideKyc {
        passed: bool,
        at: Timestamp,
    },
}

impl crate::domain::CommandName for UserCommand {
    fn name(&self) -> &'static str {
        match self {
            UserCommand::Register { .. } => "register",
            UserCommand::AttachWallet { .. } => "attach_wallet",
            UserCommand::UpdateWallet { .. } => "update_wallet",
            UserCommand::DetachWallet { .. } => "detach_wallet",
            UserCommand::RequestKyc { .. } => "request_kyc",
            UserCommand::DecideKyc { .. } => "decide_kyc",
        }
    }
}
