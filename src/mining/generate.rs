//! `generatetoaddress` for the embedded node core: mine a given number of blocks paying one
//! script, with real devices, through the same runner and source as `wgminer` itself, then stop.

use std::sync::Arc;

use bitcoin::{BlockHash, ScriptBuf};

use super::{instance_extranonce1, CoreSource, EventSink, Manager, RunConfig, SoloConfig};
use crate::backend::Backend;
use crate::node::NodeCore;

/// Why blocks were not generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    #[error("cannot start the devices: {0}")]
    Devices(String),
    #[error("mining stopped after {mined} of {wanted} blocks: {why}")]
    Stopped {
        mined: usize,
        wanted: u32,
        why: String,
    },
}

/// Mine `count` blocks on `core` paying `payout` with `backends`; the hashes of the blocks this
/// call mined, in chain order (a block another miner submitted meanwhile is not among them).
pub async fn generate(
    core: Arc<NodeCore>,
    backends: Vec<Box<dyn Backend>>,
    count: u32,
    payout: ScriptBuf,
    blocks_dir: std::path::PathBuf,
) -> Result<Vec<BlockHash>, GenerateError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let manager = Manager::start(backends, EventSink::discard())
        .map_err(|e| GenerateError::Devices(e.to_string()))?;
    let (start, _) = core.tip();
    let config = SoloConfig {
        payout: payout.clone(),
        extranonce1: instance_extranonce1(),
    };
    let source = CoreSource::new(Arc::clone(&core), config).with_block_limit(count);
    let mut tips = core.subscribe();
    let ours = {
        let core = Arc::clone(&core);
        let payout = payout.clone();
        move || mined_by(&core, start, &payout)
    };
    let enough = {
        let ours = ours.clone();
        async move {
            // Every new tip: count this call's blocks (others may mine on the same core).
            while tips.changed().await.is_ok() {
                let c = ours.clone();
                let mined = tokio::task::spawn_blocking(c).await.map_or(0, |m| m.len());
                if mined >= count as usize {
                    return;
                }
            }
        }
    };
    let run = RunConfig {
        blocks_dir,
        ..RunConfig::default()
    };
    let outcome = super::run(source, manager, enough, run).await;
    let mut mined = tokio::task::spawn_blocking(ours).await.unwrap_or_default();
    if mined.len() < count as usize {
        let why = match outcome.result {
            Err(e) => e.to_string(),
            Ok(()) => "the work source ended".into(),
        };
        return Err(GenerateError::Stopped {
            mined: mined.len(),
            wanted: count,
            why,
        });
    }
    // Another miner on the same core may have paid the same script meanwhile.
    mined.truncate(count as usize);
    Ok(mined)
}

/// The blocks above `start` whose coinbase pays `payout`, in chain order.
fn mined_by(core: &NodeCore, start: u32, payout: &ScriptBuf) -> Vec<BlockHash> {
    core.with_chain(|chain| {
        (start + 1..=chain.height())
            .filter_map(|h| chain.block_hash_at(h))
            .filter(|hash| {
                chain.block(hash).ok().flatten().is_some_and(|block| {
                    block
                        .txdata
                        .first()
                        .is_some_and(|cb| cb.output.iter().any(|o| &o.script_pubkey == payout))
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuBackend;
    use crate::node::{chain_dir, Chain, ChainParams};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generates_exactly_the_blocks_asked_for_paying_the_script() {
        let dir = std::env::temp_dir().join(format!("wgminer-generate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let chain = Chain::open(&chain_dir(&dir), ChainParams::regtest()).expect("chain");
        let core = NodeCore::new(chain);
        let payout = ScriptBuf::new_op_return([0x42]);
        let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
        let hashes = generate(
            Arc::clone(&core),
            vec![cpu],
            7,
            payout.clone(),
            dir.join("u"),
        )
        .await
        .expect("generated");
        assert_eq!(hashes.len(), 7);
        assert_eq!(mined_by(&core, 0, &payout)[..7], hashes[..]);
        // Exactly the blocks asked for: nothing found while the devices stopped was submitted.
        assert_eq!(core.tip().0, 7);
        let none = generate(Arc::clone(&core), Vec::new(), 0, payout, dir.join("u")).await;
        assert!(none.expect("nothing to do").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
