//! Where a solo block's coinbase pays: a `--coinbase-addr` checked against the node's network
//! and whether it enforces segwit.

use bitcoin::{Network, ScriptBuf};

/// Why a `--coinbase-addr` cannot be paid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayoutError {
    #[error("coinbase address {addr:?} is not a Bitcoin address ({why}); give a base58 or bech32 address of the node's network")]
    Unparseable { addr: String, why: String },
    #[error("coinbase address {addr} is a {found} address but the node runs {network}: coins paid to it would be lost there; give a {network} address")]
    WrongNetwork {
        addr: String,
        found: String,
        network: bitcoin::Network,
    },
    #[error("coinbase address {addr} is a segwit address but the node does not enforce segwit (no \"segwit\" rule in its templates): coins paid to it could be taken by anyone; give a legacy (base58) address")]
    SegwitWithoutSegwit { addr: String },
}

/// The output script paying `addr`, checked against the node's network and whether it enforces
/// segwit, so a block never pays an address that is not safely spendable there.
pub fn payout_script(
    addr: &str,
    network: bitcoin::Network,
    segwit: bool,
) -> Result<ScriptBuf, PayoutError> {
    use bitcoin::address::NetworkUnchecked;
    use bitcoin::Address;
    let unchecked: Address<NetworkUnchecked> =
        addr.trim().parse().map_err(|e| PayoutError::Unparseable {
            addr: addr.to_owned(),
            why: format!("{e}"),
        })?;
    if !unchecked.is_valid_for_network(network) {
        let found = [
            Network::Bitcoin,
            Network::Testnet,
            Network::Signet,
            Network::Regtest,
        ]
        .into_iter()
        .filter(|n| unchecked.is_valid_for_network(*n))
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("/");
        return Err(PayoutError::WrongNetwork {
            addr: addr.to_owned(),
            found,
            network,
        });
    }
    let checked = unchecked.assume_checked();
    if !segwit && checked.witness_program().is_some() {
        return Err(PayoutError::SegwitWithoutSegwit {
            addr: addr.to_owned(),
        });
    }
    Ok(checked.script_pubkey())
}
