//! The real mainnet headers in tests/data/headers.json (copied from ../shared/vectors/headers.json;
//! each entry names its public source).

use bitcoin::block::Header;
use bitcoin::consensus::encode::deserialize;

pub struct RealHeader {
    /// None for the one header whose height its source does not give.
    pub height: Option<u32>,
    pub hash: String,
    pub bytes: [u8; 80],
    pub header: Header,
}

impl RealHeader {
    pub fn nonce(&self) -> u32 {
        self.header.nonce
    }
    pub fn version(&self) -> u32 {
        self.header.version.to_consensus() as u32
    }
}

pub fn real_headers() -> Vec<RealHeader> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/headers.json"
    ))
    .expect("tests/data/headers.json is part of the repository");
    let json: serde_json::Value = serde_json::from_str(&text).expect("headers.json is valid JSON");
    json.as_array()
        .expect("headers.json is an array")
        .iter()
        .map(|e| {
            let hex_str = e["header_hex"].as_str().expect("header_hex");
            let raw = hex::decode(hex_str).expect("header_hex is hex");
            let mut bytes = [0u8; 80];
            bytes.copy_from_slice(&raw);
            RealHeader {
                height: e["height"].as_u64().map(|h| h as u32),
                hash: e["hash"].as_str().expect("hash").to_string(),
                bytes,
                header: deserialize(&raw).expect("80-byte header"),
            }
        })
        .collect()
}

/// Headers spread over every era: all version-rolled (top bits 0x2…/0x3… with low bits set) and
/// BIP9 headers, and every `v1_stride`-th v1 header.
pub fn across_eras(all: &[RealHeader], v1_stride: usize) -> Vec<&RealHeader> {
    let mut v1 = 0usize;
    all.iter()
        .filter(|h| {
            if h.version() >> 29 == 0 {
                v1 += 1;
                (v1 - 1).is_multiple_of(v1_stride)
            } else {
                true
            }
        })
        .collect()
}
