//! The `getblocktemplate` codec (BIP22/23, Bitcoin Core's field names), one for both ends: the
//! node client (`crate::rpc`) reads a node's answer with [`BlockTemplate::from_gbt_on`], the
//! embedded node core's JSON-RPC server (`crate::node`) writes its own with
//! [`BlockTemplate::to_gbt`].
//!
//! Reading checks everything a block built on the template depends on, so a corrupt or hostile
//! template is refused before any hashing: sizes (before anything is decoded), bits against the
//! chain's proof-of-work limit, `target` against bits, `coinbasevalue` against the money supply,
//! every transaction's txid and wtxid against its data, and the node's
//! `default_witness_commitment` against the transactions.

use bitcoin::block::Version;
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::params::Params;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{Amount, BlockHash, Network, ScriptBuf};

use super::merkle::witness_commitment_script;
use super::template::{BlockTemplate, TemplateError, TemplateTx};

/// Most bytes a template's transactions may take together: a whole block's serialization is at
/// most 4,000,000 bytes (Bitcoin Core's `MAX_BLOCK_SERIALIZED_SIZE`, witness data included), so
/// more can never be mined. Checked on the hex lengths before anything is decoded.
pub const MAX_TEMPLATE_TX_BYTES: usize = 4_000_000;

/// Most transactions a template may list: a block's serialization without witnesses is at most
/// 1,000,000 bytes (`MAX_BLOCK_WEIGHT / WITNESS_SCALE_FACTOR`, Core's `CheckBlock`) and no
/// transaction is smaller than 60 bytes without its witness (one input spending nothing with an
/// empty script, one empty output), so no block holds more than 16,666, its coinbase among
/// them (a template lists the others).
pub const MAX_TEMPLATE_TRANSACTIONS: usize = 1_000_000 / 60;

impl BlockTemplate {
    /// Parse a `getblocktemplate` result from a node of any chain: bits are held to regtest's
    /// proof-of-work limit, the easiest of all. [`Self::from_gbt_on`] holds them to the node's.
    pub fn from_gbt(v: &serde_json::Value) -> Result<Self, TemplateError> {
        Self::from_gbt_on(v, Network::Regtest)
    }

    /// Parse a `getblocktemplate` result from a node on `network`. Bits easier than that
    /// chain's proof-of-work limit are refused (no block with them is valid there), and so is a
    /// template with more transactions or bytes than a block can hold, before any of them is
    /// decoded. Checks every transaction's txid (and wtxid, when the node gives `hash`) against
    /// its data, so a corrupt template is refused before mining.
    pub fn from_gbt_on(v: &serde_json::Value, network: Network) -> Result<Self, TemplateError> {
        // Bitcoin Core writes the version as a signed 32-bit number (negative from 2^31 up);
        // other nodes write it unsigned. Both are the same 32 bits.
        let version = field(v, "version")?;
        let version = version
            .as_i64()
            .and_then(|n| {
                i32::try_from(n)
                    .ok()
                    .or_else(|| u32::try_from(n).ok().map(|u| u as i32))
            })
            .map(Version::from_consensus)
            .ok_or_else(|| invalid("version", "not a 32-bit integer"))?;
        let prev_hash: BlockHash = field_str(v, "previousblockhash")?
            .parse()
            .map_err(|e| invalid("previousblockhash", e))?;
        let height =
            u32::try_from(field_u64(v, "height")?).map_err(|_| invalid("height", "above 2^32"))?;
        let bits_hex = field_str(v, "bits")?;
        let bits = u32::from_str_radix(bits_hex, 16)
            .ok()
            .filter(|_| bits_hex.len() == 8)
            .map(CompactTarget::from_consensus)
            .ok_or_else(|| invalid("bits", format!("{bits_hex:?} is not 8 hex digits")))?;
        // The block must meet `bits`, whatever else the template says: a `target` that
        // disagrees is refused rather than trusted.
        let target = target_of_bits(bits)?;
        let limit = Params::new(network).max_attainable_target;
        if target > limit {
            return Err(invalid(
                "bits",
                format!(
                    "{bits_hex} is easier than the proof-of-work limit of {network} ({:08x}): no block with it is valid there (is the node on another chain?)",
                    limit.to_compact_lossy().to_consensus()
                ),
            ));
        }
        if let Some(t) = v.get("target").and_then(|t| t.as_str()) {
            let bytes = <[u8; 32]>::from_hex(t).map_err(|e| invalid("target", e))?;
            if Target::from_be_bytes(bytes) != target {
                return Err(invalid(
                    "target",
                    format!("{t} is not the target of bits {bits_hex}, which a block must meet"),
                ));
            }
        }
        let cur_time = u32::try_from(field_u64(v, "curtime")?)
            .map_err(|_| invalid("curtime", "above 2^32"))?;
        let min_time = match v.get("mintime") {
            Some(m) => m
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| invalid("mintime", "not a u32"))?,
            None => 0,
        };
        let coinbase_value = Amount::from_sat(field_u64(v, "coinbasevalue")?);
        if coinbase_value > Amount::MAX_MONEY {
            return Err(invalid(
                "coinbasevalue",
                format!("{coinbase_value} is more than the 21 million BTC that can ever exist"),
            ));
        }
        let coinbase_aux = match v.pointer("/coinbaseaux/flags").and_then(|f| f.as_str()) {
            Some(f) => Vec::from_hex(f).map_err(|e| invalid("coinbaseaux.flags", e))?,
            None => Vec::new(),
        };
        let segwit = v.get("rules").and_then(|r| r.as_array()).is_some_and(|r| {
            r.iter()
                .any(|x| matches!(x.as_str(), Some("segwit" | "!segwit")))
        });
        let default_witness_commitment = match v.get("default_witness_commitment") {
            Some(c) => {
                let s = c
                    .as_str()
                    .ok_or_else(|| invalid("default_witness_commitment", "not a string"))?;
                Some(ScriptBuf::from_bytes(
                    Vec::from_hex(s).map_err(|e| invalid("default_witness_commitment", e))?,
                ))
            }
            None => None,
        };
        let list = v
            .get("transactions")
            .and_then(|t| t.as_array())
            .ok_or(TemplateError::Missing("transactions"))?;
        check_template_size(list)?;
        let mut transactions = Vec::with_capacity(list.len());
        for (index, t) in list.iter().enumerate() {
            transactions.push(parse_template_tx(index, t)?);
        }
        if segwit {
            check_witness_commitment(default_witness_commitment.as_ref(), &transactions)?;
        }
        let longpoll_id = v
            .get("longpollid")
            .and_then(|l| l.as_str())
            .map(str::to_owned);
        Ok(BlockTemplate {
            version,
            prev_hash,
            height,
            bits,
            target,
            cur_time,
            min_time,
            coinbase_value,
            coinbase_aux,
            transactions,
            segwit,
            default_witness_commitment,
            longpoll_id,
        })
    }

    /// The template as `getblocktemplate` answers (BIP22/23, Bitcoin Core's field names), for the
    /// embedded node core's JSON-RPC. [`Self::from_gbt`] reads it back.
    pub fn to_gbt(&self) -> serde_json::Value {
        let mut rules = vec!["csv"];
        if self.segwit {
            rules.push("segwit");
        }
        let transactions: Vec<serde_json::Value> = self
            .transactions
            .iter()
            .map(|t| {
                serde_json::json!({
                    "data": t.data.to_lower_hex_string(),
                    "txid": t.txid.to_string(),
                    "hash": t.wtxid.to_string(),
                    "depends": [],
                    "fee": t.fee,
                })
            })
            .collect();
        let mut v = serde_json::json!({
            "capabilities": ["proposal"],
            "version": self.version.to_consensus(),
            "rules": rules,
            "vbavailable": {},
            "vbrequired": 0,
            "previousblockhash": self.prev_hash.to_string(),
            "transactions": transactions,
            "coinbaseaux": {"flags": self.coinbase_aux.to_lower_hex_string()},
            "coinbasevalue": self.coinbase_value.to_sat(),
            "target": self.target.to_be_bytes().to_lower_hex_string(),
            "mintime": self.min_time,
            "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": 80_000,
            "sizelimit": 4_000_000,
            "weightlimit": 4_000_000,
            "curtime": self.cur_time,
            "bits": format!("{:08x}", self.bits.to_consensus()),
            "height": self.height,
        });
        if let Some(id) = &self.longpoll_id {
            v["longpollid"] = id.clone().into();
        }
        if let Some(c) = self.witness_commitment() {
            v["default_witness_commitment"] = c.as_bytes().to_lower_hex_string().into();
        }
        v
    }
}

/// The target `bits` encode, refusing what no chain accepts: a negative or overflowing compact
/// number, a zero target, or one easier than regtest's proof-of-work limit (`207fffff`, the
/// easiest of all chains).
fn target_of_bits(bits: CompactTarget) -> Result<Target, TemplateError> {
    let raw = bits.to_consensus();
    let why = if raw & 0x0080_0000 != 0 {
        Some("is negative")
    } else if raw >> 24 > 32 {
        Some("has an exponent above 32 (no 256-bit target needs one)")
    } else {
        None
    };
    let target = match why {
        Some(_) => Target::ZERO,
        None => Target::from_compact(bits),
    };
    let why = why.or(if target == Target::ZERO {
        Some("is zero")
    } else if target > Target::MAX_ATTAINABLE_REGTEST {
        Some("is easier than any chain allows (regtest's limit is 207fffff)")
    } else {
        None
    });
    match why {
        Some(why) => Err(invalid("bits", format!("{raw:08x} {why}"))),
        None => Ok(target),
    }
}

/// Refuse a transaction list no block can hold before decoding any of it: a peer's template
/// must not make us allocate for more than one block's worth.
fn check_template_size(list: &[serde_json::Value]) -> Result<(), TemplateError> {
    if list.len() > MAX_TEMPLATE_TRANSACTIONS {
        return Err(TemplateError::TooManyTransactions {
            count: list.len(),
            limit: MAX_TEMPLATE_TRANSACTIONS,
        });
    }
    // Entries whose data is not a string are refused later, one by one, with their index.
    let bytes = list
        .iter()
        .filter_map(|t| t.get("data").and_then(|d| d.as_str()))
        .fold(0usize, |sum, d| sum.saturating_add(d.len() / 2));
    if bytes > MAX_TEMPLATE_TX_BYTES {
        return Err(TemplateError::TooLarge {
            bytes,
            limit: MAX_TEMPLATE_TX_BYTES,
        });
    }
    Ok(())
}

/// A node's `default_witness_commitment` must be BIP141's commitment to the template's
/// transactions: a wrong one would make every block mined on the template invalid (the fuzz
/// target found the decoder trusting it). Bytes after the 38 that BIP141 fixes are allowed.
fn check_witness_commitment(
    given: Option<&ScriptBuf>,
    transactions: &[TemplateTx],
) -> Result<(), TemplateError> {
    let Some(given) = given else {
        return Ok(());
    };
    let expected = witness_commitment_script(transactions.iter().map(|t| t.wtxid));
    let given = given.as_bytes();
    if given.len() >= 38 && given[..38] == expected.as_bytes()[..] {
        return Ok(());
    }
    Err(TemplateError::Invalid {
        field: "default_witness_commitment",
        why: format!(
            "{} is not BIP141's commitment to the template's transactions ({}); refusing a template whose blocks would be invalid",
            given.to_lower_hex_string(),
            expected.as_bytes().to_lower_hex_string()
        ),
    })
}

fn parse_template_tx(index: usize, t: &serde_json::Value) -> Result<TemplateTx, TemplateError> {
    let bad = |why: String| TemplateError::BadTransaction { index, why };
    let data = t
        .get("data")
        .and_then(|d| d.as_str())
        .ok_or_else(|| bad("no \"data\"".into()))?;
    let data = Vec::from_hex(data).map_err(|e| bad(format!("data: {e}")))?;
    let mut tx = TemplateTx::from_bytes(data).map_err(|e| bad(format!("cannot decode: {e}")))?;
    if let Some(txid) = t.get("txid").and_then(|x| x.as_str()) {
        if txid != tx.txid.to_string() {
            return Err(bad(format!(
                "txid {txid} does not match its data ({})",
                tx.txid
            )));
        }
    }
    // Pre-segwit nodes send `hash` as the txid; a segwit node sends the wtxid.
    if let Some(hash) = t.get("hash").and_then(|x| x.as_str()) {
        if hash != tx.wtxid.to_string() && hash != tx.txid.to_string() {
            return Err(bad(format!(
                "hash {hash} does not match its data ({})",
                tx.wtxid
            )));
        }
    }
    tx.fee = t.get("fee").and_then(|f| f.as_u64());
    Ok(tx)
}

fn field<'a>(
    v: &'a serde_json::Value,
    name: &'static str,
) -> Result<&'a serde_json::Value, TemplateError> {
    v.get(name).ok_or(TemplateError::Missing(name))
}

fn field_u64(v: &serde_json::Value, name: &'static str) -> Result<u64, TemplateError> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| invalid(name, "not a non-negative integer"))
}

fn field_str<'a>(v: &'a serde_json::Value, name: &'static str) -> Result<&'a str, TemplateError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| invalid(name, "not a string"))
}

fn invalid(field: &'static str, why: impl std::fmt::Display) -> TemplateError {
    TemplateError::Invalid {
        field,
        why: why.to_string(),
    }
}
