//! A [`Share`]: what a miner sends back for a nonce that meets a job's share target, in the
//! fields Stratum V1's `mining.submit` carries.

use super::rolling::{Extranonce2, Roll};

/// A found nonce, with the rolled fields that make its header reproducible by the pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Share {
    pub job_id: String,
    /// The coinbase's extranonce2; `None` for a header-only job (a fixed merkle root, as on a
    /// Stratum V2 standard channel), where only nTime, version and nonce vary.
    pub extranonce2: Option<Extranonce2>,
    pub ntime: u32,
    pub nonce: u32,
    /// The bits rolled under the job's version mask; `None` when the job does not roll versions.
    pub version_bits: Option<u32>,
}

impl Share {
    /// The rolled fields of the share (version bits 0 when not rolling).
    pub fn roll(&self) -> Roll {
        Roll {
            extranonce2: self.extranonce2,
            ntime: self.ntime,
            version_bits: self.version_bits.unwrap_or(0),
        }
    }

    /// The `mining.submit` parameters: worker, job id, extranonce2 as its coinbase bytes in hex,
    /// nTime and nonce as big-endian hex of the u32 (the header stores them little-endian), and
    /// the version bits as a sixth parameter only when rolling (BIP310).
    pub fn submit_params(&self, worker: &str) -> Vec<String> {
        let mut params = vec![
            worker.to_owned(),
            self.job_id.clone(),
            // Stratum V1 jobs always roll a coinbase; a header-only share has none to name.
            self.extranonce2.map(|e| e.to_hex()).unwrap_or_default(),
            format!("{:08x}", self.ntime),
            format!("{:08x}", self.nonce),
        ];
        if let Some(bits) = self.version_bits {
            params.push(format!("{bits:08x}"));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_params_use_pool_hex_conventions() {
        let share = Share {
            job_id: "875b4b7".into(),
            extranonce2: Some(Extranonce2::from_hex("17000000").unwrap()),
            ntime: 0x685468d7,
            nonce: 0x7552034c,
            version_bits: Some(0x00b44000),
        };
        assert_eq!(
            share.submit_params("w"),
            ["w", "875b4b7", "17000000", "685468d7", "7552034c", "00b44000"]
        );
        let plain = Share {
            version_bits: None,
            nonce: 7,
            ..share
        };
        assert_eq!(plain.submit_params("w").len(), 5);
        assert_eq!(plain.submit_params("w")[4], "00000007");
    }
}
