//! The standard channel: header-only jobs from `NewMiningJob`, `SubmitSharesStandard` out, and
//! what a hostile or confused pool may send it.

use std::sync::Arc;

use binary_sv2::Sv2OptionOwned;
use bitcoin::block::Header;
use mining_sv2::*;

use super::*;
use crate::work::{NonceRange, WorkGenerator};

const CHANNEL: u32 = 3;
const ROOT: [u8; 32] = [0x4d; 32];

fn open_standard(s: &mut MiningSession) -> Vec<Output> {
    feed(
        s,
        MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
        OpenStandardMiningChannelSuccessOwned {
            request_id: 1,
            channel_id: CHANNEL,
            target: [0xff; 32].into(),
            extranonce_prefix: vec![0, 0, 0, 1].try_into().unwrap(),
            group_channel_id: 1,
        },
    )
    .unwrap()
}

fn standard_job(
    s: &mut MiningSession,
    channel_id: u32,
    id: u32,
    min_ntime: Option<u32>,
) -> Vec<Output> {
    feed(
        s,
        MESSAGE_TYPE_NEW_MINING_JOB,
        NewMiningJobOwned {
            channel_id,
            job_id: id,
            min_ntime: Sv2OptionOwned::new(min_ntime),
            version: 0x2000_0000,
            merkle_root: ROOT.into(),
        },
    )
    .unwrap()
}

fn new_block(s: &mut MiningSession, channel_id: u32, job_id: u32) -> Vec<Output> {
    feed(
        s,
        MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
        SetNewPrevHashOwned {
            channel_id,
            job_id,
            prev_hash: [9u8; 32].into(),
            min_ntime: 1_700_000_000,
            nbits: 0x207f_ffff,
        },
    )
    .unwrap()
}

fn standard_session() -> MiningSession {
    let mut s = MiningSession::with_kind(ChannelKind::Standard);
    s.on_setup_success(0).unwrap();
    open_standard(&mut s);
    s
}

fn header_share(job_id: u32, nonce: u32, ntime: u32) -> Share {
    Share {
        job_id: job_id.to_string(),
        extranonce2: None,
        ntime,
        nonce,
        version_bits: Some(0x2000),
    }
}

/// The opening asks for standard jobs and a standard channel.
#[test]
fn a_standard_session_asks_for_standard_jobs() {
    assert_eq!(ChannelKind::Standard.setup_flags(), REQUIRES_STANDARD_JOBS);
    assert_eq!(ChannelKind::Extended.setup_flags(), 0);
    assert_eq!("standard".parse(), Ok(ChannelKind::Standard));
    assert!("group".parse::<ChannelKind>().is_err());
    let s = MiningSession::with_kind(ChannelKind::Standard);
    let open = s.open_request("me.rig", 1e9).unwrap();
    let MiningOwned::OpenStandardMiningChannel(m) = open else {
        panic!("{open:?}")
    };
    assert_eq!(m.user_identity.as_utf8_or_hex(), "me.rig");
    assert_eq!(m.nominal_hash_rate, 1e9);
    let extended = MiningSession::new().open_request("me", 1.0).unwrap();
    assert!(matches!(
        extended,
        MiningOwned::OpenExtendedMiningChannel(_)
    ));
    // A pool that opens only extended channels is told plainly.
    let mut s = MiningSession::with_kind(ChannelKind::Standard);
    assert_eq!(
        s.on_setup_success(REQUIRES_EXTENDED_CHANNELS),
        Err(SessionError::StandardChannelsRefused)
    );
}

/// A future standard job starts on its SetNewPrevHash as a header-only job on the pool's root;
/// a job with min_ntime starts at once; the share goes out as SubmitSharesStandard with every
/// field the pool needs to rebuild the header.
#[test]
fn standard_jobs_become_header_only_work_and_shares_go_out_standard() {
    let mut s = MiningSession::with_kind(ChannelKind::Standard);
    s.on_setup_success(0).unwrap();
    let out = open_standard(&mut s);
    assert!(matches!(
        out[0],
        Output::Opened {
            channel_id: CHANNEL
        }
    ));
    assert!(matches!(out[1], Output::Target(t) if t == Target::from_le_bytes([0xff; 32])));
    assert!(jobs(&standard_job(&mut s, CHANNEL, 1, None)).is_empty());
    let out = new_block(&mut s, CHANNEL, 1);
    let [(job, true)] = &jobs(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(
        job.fixed_merkle_root,
        Some(TxMerkleNode::from_byte_array(ROOT))
    );
    assert!(job.is_header_only() && job.coinbase.is_empty() && job.merkle_branch.is_empty());
    assert_eq!(job.version_mask, VERSION_ROLLING_MASK);
    assert_eq!(
        (job.ntime, job.prev_hash),
        (1_700_000_000, BlockHash::from_byte_array([9; 32]))
    );
    job.validate().unwrap();

    let version = job.rolled_version(0x2000).unwrap();
    let sent = s
        .submit(header_share(1, 0xdead_beef, 1_700_000_007), version)
        .unwrap();
    let Submission::Standard(m) = &sent else {
        panic!("{sent:?}")
    };
    assert_eq!((m.channel_id, m.sequence_number, m.job_id), (CHANNEL, 0, 1));
    assert_eq!(
        (m.nonce, m.ntime, m.version),
        (0xdead_beef, 1_700_000_007, 0x2000_2000)
    );
    assert!(matches!(
        MiningOwned::from(sent),
        MiningOwned::SubmitSharesStandard(_)
    ));

    let out = standard_job(&mut s, CHANNEL, 2, Some(1_700_000_010));
    let [(job2, false)] = &jobs(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(job2.ntime, 1_700_000_010);
    // Both jobs are on the current block: both earn credit.
    let Ok(Submission::Standard(m)) = s.submit(header_share(2, 1, 1_700_000_010), version) else {
        panic!("job 2 is live")
    };
    assert_eq!((m.job_id, m.sequence_number), (2, 1));
    assert!(s.submit(header_share(1, 2, 1_700_000_000), version).is_ok());
    assert_eq!(s.pending(), 3);
}

/// One success acknowledges every share up to its sequence number, an error refuses one; a
/// share on a job from before the last SetNewPrevHash is not sent at all.
#[test]
fn standard_shares_get_verdicts_and_stale_jobs_are_not_sent() {
    let mut s = standard_session();
    standard_job(&mut s, CHANNEL, 1, None);
    new_block(&mut s, CHANNEL, 1);
    let version = Version::from_consensus(0x2000_2000);
    for n in 0..3 {
        s.submit(header_share(1, n, 1_700_000_000), version)
            .unwrap();
    }
    let out = feed(
        &mut s,
        MESSAGE_TYPE_SUBMIT_SHARES_ERROR,
        SubmitSharesErrorOwned {
            channel_id: CHANNEL,
            sequence_number: 0,
            error_code: "invalid-share".to_owned().try_into().unwrap(),
        },
    )
    .unwrap();
    assert!(
        matches!(&out[..], [Output::Rejected { share, reason }] if share.nonce == 0 && reason == "invalid-share"),
        "{out:?}"
    );
    let accepted = accepted_by_success(&mut s, CHANNEL, 2, 2);
    assert_eq!(accepted, [1, 2]);
    assert_eq!(s.pending(), 0);
    standard_job(&mut s, CHANNEL, 2, None);
    new_block(&mut s, CHANNEL, 2);
    let (share, why) = s
        .submit(header_share(1, 9, 1_700_000_000), version)
        .unwrap_err();
    assert!(why.0.contains("earlier block"), "{why:?}");
    assert_eq!(share.nonce, 9);
    assert_eq!(s.pending(), 0);
}

/// With REQUIRES_FIXED_VERSION the job's mask is 0, and every unit the generator cuts from it
/// carries the pool's version, however much work is drawn.
#[test]
fn a_pool_that_fixes_the_version_never_sees_it_rolled() {
    let mut s = MiningSession::with_kind(ChannelKind::Standard);
    s.on_setup_success(REQUIRES_FIXED_VERSION).unwrap();
    open_standard(&mut s);
    standard_job(&mut s, CHANNEL, 1, None);
    let out = new_block(&mut s, CHANNEL, 1);
    let [(job, true)] = &jobs(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(job.version_mask, 0);
    let mut g = WorkGenerator::new(Arc::new(job.clone().prepare().unwrap())).unwrap();
    let units = g.take(40 << 32, 0).unwrap();
    assert_eq!(units.len(), 40);
    for u in &units {
        assert_eq!(u.roll.version_bits, 0);
        assert_eq!(u.unit.header[..4], 0x2000_0000u32.to_le_bytes());
    }
    // Forty headers, one per second: nTime ran ahead of the clock, each header distinct.
    assert_eq!(units[39].roll.ntime, 1_700_000_039);
}

/// A share found on a standard job by scanning its work unit is the header rust-bitcoin
/// builds from the pool's own fields (version, prev hash, root, nTime, nBits, nonce), and it
/// verifies with `check_share`.
#[test]
fn a_share_on_a_standard_job_is_the_pools_header() {
    let mut s = standard_session();
    standard_job(&mut s, CHANNEL, 4, None);
    let out = new_block(&mut s, CHANNEL, 4);
    let [(job, _)] = &jobs(&out)[..] else {
        panic!("{out:?}")
    };
    let job = Arc::new(job.clone().prepare().unwrap());
    let mut g = WorkGenerator::new(Arc::clone(&job)).unwrap();
    // Past the first header, so the version bits are rolled.
    let units = g.take((1 << 32) + (1 << 16), 2).unwrap();
    let rolled = &units[1];
    assert_ne!(rolled.roll.version_bits, 0);
    let unit = rolled.unit.with_nonces(NonceRange::new(0, 1 << 16));
    let nonce = (0..1u32 << 16)
        .find(|&n| unit.verify(n).is_ok())
        .expect("easy target");
    let share = job.share(&rolled.roll, nonce);
    assert_eq!(share.extranonce2, None);
    let hash = job.check_share(&share).unwrap();
    let version = job.job().rolled_version(rolled.roll.version_bits).unwrap();
    let Submission::Standard(m) = s.submit(share, version).unwrap() else {
        panic!("standard channel")
    };
    let pools = Header {
        version: Version::from_consensus(m.version as i32),
        prev_blockhash: BlockHash::from_byte_array([9; 32]),
        merkle_root: TxMerkleNode::from_byte_array(ROOT),
        time: m.ntime,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: m.nonce,
    };
    assert_eq!(pools.block_hash(), hash);
    assert_eq!(
        crate::pow::header_bytes(&pools),
        unit.header_with_nonce(nonce)
    );
}

/// Nothing a confused or hostile pool sends a standard channel panics or becomes work: jobs
/// and blocks for channels we do not have, jobs before the channel, extended messages on a
/// standard session, verdicts for shares never sent, and shares of the wrong shape.
#[test]
fn strangers_messages_never_become_work() {
    let mut s = MiningSession::with_kind(ChannelKind::Standard);
    // Before the channel is open.
    let out = standard_job(&mut s, CHANNEL, 1, Some(1_700_000_000));
    assert!(
        jobs(&out).is_empty() && matches!(&out[..], [Output::Note(_)]),
        "{out:?}"
    );
    open_standard(&mut s);
    let out = standard_job(&mut s, 99, 1, Some(1_700_000_000));
    assert!(
        matches!(&out[..], [Output::Note(n)] if n.contains("channel 99")),
        "{out:?}"
    );
    let out = standard_job(&mut s, 99, 2, None);
    assert!(jobs(&out).is_empty());
    let out = new_block(&mut s, 99, 2);
    assert!(
        matches!(&out[..], [Output::Note(n)] if n.contains("channel 99")),
        "{out:?}"
    );
    // An extended channel's opening on a standard session is not taken for ours.
    let out = feed(
        &mut s,
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
        OpenExtendedMiningChannelSuccessOwned {
            request_id: 1,
            channel_id: 50,
            target: [0xff; 32].into(),
            extranonce_size: 8,
            extranonce_prefix: vec![1].try_into().unwrap(),
            group_channel_id: 1,
        },
    )
    .unwrap();
    assert!(matches!(&out[..], [Output::Note(_)]), "{out:?}");
    // A new block naming a job we never got: a note, no work, no panic.
    let out = new_block(&mut s, CHANNEL, 77);
    assert!(jobs(&out).is_empty());
    // Verdicts for shares never sent.
    let out = feed(
        &mut s,
        MESSAGE_TYPE_SUBMIT_SHARES_ERROR,
        SubmitSharesErrorOwned {
            channel_id: CHANNEL,
            sequence_number: 12_345,
            error_code: "stale-share".to_owned().try_into().unwrap(),
        },
    )
    .unwrap();
    assert!(
        matches!(&out[..], [Output::Note(n)] if n.contains("12345")),
        "{out:?}"
    );
    let out = feed(
        &mut s,
        MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
        SubmitSharesSuccess {
            channel_id: CHANNEL,
            last_sequence_number: u32::MAX,
            new_submits_accepted_count: 9,
            new_shares_sum: 9,
        },
    )
    .unwrap();
    assert!(out.is_empty(), "{out:?}");
    // A share with an extranonce2 does not fit a standard channel; a share for a job id that
    // is not a number is not ours.
    standard_job(&mut s, CHANNEL, 3, None);
    new_block(&mut s, CHANNEL, 3);
    let version = Version::from_consensus(0x2000_0000);
    let mut with_e2 = header_share(3, 1, 1_700_000_000);
    with_e2.extranonce2 = Some(crate::work::Extranonce2::new(1, 4).unwrap());
    let (_, why) = s.submit(with_e2, version).unwrap_err();
    assert!(why.0.contains("standard channel"), "{why:?}");
    let mut foreign = header_share(3, 1, 1_700_000_000);
    foreign.job_id = "x".into();
    assert!(s.submit(foreign, version).is_err());
    assert_eq!(s.pending(), 0);
    // An extended session refuses a share without extranonce2.
    let mut e = MiningSession::new();
    assert!(e.submit(header_share(3, 1, 1), version).is_err());
}
