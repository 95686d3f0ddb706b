//! One Template Distribution client's state, sans I/O: what each message it sends calls for, and
//! what a new tip makes us send. The connection task ([`super`]) moves the bytes, asks the chain
//! for templates and hands solutions to it.
//!
//! The order is the protocol's (SV2 spec, section 7): `SetupConnection` for the template
//! distribution protocol, then `CoinbaseOutputConstraints`, after which every tip gets a future
//! `NewTemplate` and the `SetNewPrevHash` that makes it current. A later
//! `CoinbaseOutputConstraints` gets a fresh template for the current tip (`future_template =
//! false`). Only the last [`KEPT_TEMPLATES`] templates are kept: a solution or a transaction
//! request for an older one is answered as unknown (it would be stale anyway).

use std::collections::VecDeque;
use std::sync::Arc;

use bitcoin::{Block, BlockHash};
use common_messages_sv2::{
    Protocol, SetupConnection, SetupConnectionErrorOwned, SetupConnectionSuccessOwned,
};
use parsers_sv2::{AnyMessage, AnyMessageOwned, CommonMessagesOwned, TemplateDistribution};
use parsers_sv2::{CommonMessages, TemplateDistributionOwned};
use template_distribution_sv2::{
    RequestTransactionDataErrorOwned, RequestTransactionDataSuccessOwned, SubmitSolution,
};

use super::messages::{self, SolutionError, TemplateEncodeError};
use crate::work::BlockTemplate;

/// The Stratum V2 protocol version spoken (the only one there is).
pub const PROTOCOL_VERSION: u16 = 2;

/// Templates kept per client for solutions and transaction requests: the current one, the ones
/// before it on the same tip, and a few from previous tips so a late solution is reported stale
/// by the chain rather than unknown.
pub const KEPT_TEMPLATES: usize = 8;

/// What the connection must do next.
#[derive(Debug)]
pub enum Step {
    /// Send this message.
    Send(AnyMessageOwned),
    /// Get a template for the current tip from the chain and pass it to
    /// [`Session::on_template`].
    FetchTemplate,
    /// Hand this block to the chain, exactly like `submitblock`.
    Submit { template_id: u64, block: Box<Block> },
    /// A message refused without closing the connection (logged by the caller).
    Refused(Refusal),
    /// Close the connection, for this reason.
    Close(String),
}

/// A client message refused; the connection stays up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("SubmitSolution for template {0}, which this provider does not know (never sent, or older than the last {KEPT_TEMPLATES}); nothing submitted")]
    UnknownTemplate(u64),
    #[error("SubmitSolution for template {template_id} refused: {why}; nothing submitted")]
    BadSolution {
        template_id: u64,
        why: SolutionError,
    },
    #[error("{0} from the client, which only a template provider sends; ignored")]
    WrongDirection(&'static str),
    #[error("message type {msg_type:#04x} (extension {extension}) is not part of the template distribution protocol; ignored")]
    Unsupported { extension: u16, msg_type: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `SetupConnection`.
    Setup,
    /// Set up; waiting for the first `CoinbaseOutputConstraints`.
    Constraints,
    /// Templates flow.
    Serving,
}

/// One client's protocol state.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    next_id: u64,
    templates: VecDeque<(u64, Arc<BlockTemplate>)>,
    /// The tip the client's current template builds on.
    tip: Option<BlockHash>,
    /// The client's last `CoinbaseOutputConstraints` (size, sigops): informational, since the
    /// node core's blocks hold only the coinbase.
    pub constraints: Option<(u32, u16)>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    pub fn new() -> Session {
        Session {
            phase: Phase::Setup,
            next_id: 1,
            templates: VecDeque::with_capacity(KEPT_TEMPLATES),
            tip: None,
            constraints: None,
        }
    }

    /// Whether `SetupConnection` went through.
    pub fn set_up(&self) -> bool {
        self.phase != Phase::Setup
    }

    /// Whether templates flow (set up and constraints received): only then do tips matter.
    pub fn serving(&self) -> bool {
        self.phase == Phase::Serving
    }

    /// The tip the client last heard of.
    pub fn tip(&self) -> Option<BlockHash> {
        self.tip
    }

    /// What a client message calls for.
    pub fn on_message(&mut self, message: AnyMessage<'_>) -> Vec<Step> {
        match (self.phase, message) {
            (Phase::Setup, AnyMessage::Common(CommonMessages::SetupConnection(m))) => {
                self.setup(&m)
            }
            (Phase::Setup, _) => vec![Step::Close(
                "the first message must be SetupConnection".into(),
            )],
            (_, AnyMessage::Common(CommonMessages::SetupConnection(_))) => {
                vec![Step::Close("SetupConnection sent twice".into())]
            }
            (_, AnyMessage::TemplateDistribution(m)) => self.template_distribution(m),
            (_, AnyMessage::Common(_)) => vec![Step::Refused(Refusal::WrongDirection(
                "a common message other than SetupConnection",
            ))],
            (_, _) => vec![Step::Refused(Refusal::WrongDirection(
                "a message of another protocol",
            ))],
        }
    }

    fn setup(&mut self, m: &SetupConnection<'_>) -> Vec<Step> {
        let error = |code: &str| {
            let error_code = code
                .to_owned()
                .try_into()
                .expect("our error codes are short ASCII");
            vec![
                Step::Send(AnyMessageOwned::Common(
                    CommonMessagesOwned::SetupConnectionError(SetupConnectionErrorOwned {
                        flags: 0,
                        error_code,
                    }),
                )),
                Step::Close(format!("SetupConnection refused: {code}")),
            ]
        };
        if !matches!(m.protocol, Protocol::TemplateDistributionProtocol) {
            return error("unsupported-protocol");
        }
        let Some(used_version) = m.get_version(PROTOCOL_VERSION, PROTOCOL_VERSION) else {
            return error("protocol-version-mismatch");
        };
        self.phase = Phase::Constraints;
        vec![Step::Send(AnyMessageOwned::Common(
            CommonMessagesOwned::SetupConnectionSuccess(SetupConnectionSuccessOwned {
                used_version,
                flags: 0,
            }),
        ))]
    }

    fn template_distribution(&mut self, m: TemplateDistribution<'_>) -> Vec<Step> {
        match m {
            TemplateDistribution::CoinbaseOutputConstraints(c) => {
                self.constraints = Some((
                    c.coinbase_output_max_additional_size,
                    c.coinbase_output_max_additional_sigops,
                ));
                if self.phase == Phase::Constraints {
                    self.phase = Phase::Serving;
                }
                vec![Step::FetchTemplate]
            }
            TemplateDistribution::RequestTransactionData(r) => {
                vec![Step::Send(self.transaction_data(r.template_id))]
            }
            TemplateDistribution::SubmitSolution(s) => vec![self.solution(&s)],
            TemplateDistribution::NewTemplate(_) => {
                vec![Step::Refused(Refusal::WrongDirection("NewTemplate"))]
            }
            TemplateDistribution::SetNewPrevHash(_) => {
                vec![Step::Refused(Refusal::WrongDirection("SetNewPrevHash"))]
            }
            TemplateDistribution::RequestTransactionDataSuccess(_)
            | TemplateDistribution::RequestTransactionDataError(_) => vec![Step::Refused(
                Refusal::WrongDirection("a RequestTransactionData answer"),
            )],
        }
    }

    fn template(&self, id: u64) -> Option<&Arc<BlockTemplate>> {
        self.templates
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, t)| t)
    }

    /// The template's transactions; an error for an unknown template or one whose tip is gone.
    fn transaction_data(&self, template_id: u64) -> AnyMessageOwned {
        let reply = |m| AnyMessageOwned::TemplateDistribution(m);
        let error = |code: &str| {
            reply(TemplateDistributionOwned::RequestTransactionDataError(
                RequestTransactionDataErrorOwned {
                    template_id,
                    error_code: code
                        .to_owned()
                        .try_into()
                        .expect("our error codes are short ASCII"),
                },
            ))
        };
        let Some(template) = self.template(template_id) else {
            return error("template-id-not-found");
        };
        if Some(template.prev_hash) != self.tip {
            return error("stale-template-id");
        }
        let list: Vec<binary_sv2::B016MOwned> = template
            .transactions
            .iter()
            .filter_map(|t| t.data.clone().try_into().ok())
            .collect();
        match list.try_into() {
            Ok(transaction_list) => {
                reply(TemplateDistributionOwned::RequestTransactionDataSuccess(
                    RequestTransactionDataSuccessOwned {
                        template_id,
                        excess_data: Vec::new().try_into().expect("an empty field fits"),
                        transaction_list,
                    },
                ))
            }
            Err(_) => error("template-too-large"),
        }
    }

    fn solution(&self, s: &SubmitSolution<'_>) -> Step {
        let Some(template) = self.template(s.template_id) else {
            return Step::Refused(Refusal::UnknownTemplate(s.template_id));
        };
        match messages::solution_block(
            template,
            s.version,
            s.header_timestamp,
            s.header_nonce,
            s.coinbase_tx.as_bytes(),
        ) {
            Ok(block) => Step::Submit {
                template_id: s.template_id,
                block: Box::new(block),
            },
            Err(why) => Step::Refused(Refusal::BadSolution {
                template_id: s.template_id,
                why,
            }),
        }
    }

    /// A template for the current tip from the chain: a future template and `SetNewPrevHash` when
    /// the tip moved since the client last heard, else a template replacing the current one.
    pub fn on_template(
        &mut self,
        template: Arc<BlockTemplate>,
    ) -> Result<Vec<Step>, TemplateEncodeError> {
        if !self.serving() {
            return Ok(Vec::new());
        }
        let id = self.next_id;
        let new_tip = self.tip != Some(template.prev_hash);
        let mut steps = vec![Step::Send(AnyMessageOwned::TemplateDistribution(
            TemplateDistributionOwned::NewTemplate(messages::new_template(&template, id, new_tip)?),
        ))];
        if new_tip {
            steps.push(Step::Send(AnyMessageOwned::TemplateDistribution(
                TemplateDistributionOwned::SetNewPrevHash(messages::set_new_prev_hash(
                    &template, id,
                )),
            )));
            self.tip = Some(template.prev_hash);
        }
        self.next_id += 1;
        if self.templates.len() == KEPT_TEMPLATES {
            self.templates.pop_front();
        }
        self.templates.push_back((id, template));
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sv2::Frame;
    use bitcoin::hashes::Hash;
    use common_messages_sv2::SetupConnectionOwned;
    use template_distribution_sv2::{
        CoinbaseOutputConstraintsOwned, SubmitSolutionOwned,
        MESSAGE_TYPE_COINBASE_OUTPUT_CONSTRAINTS, MESSAGE_TYPE_SUBMIT_SOLUTION,
    };

    /// A message as the provider receives it: SRI's encoding, then SRI's parser.
    fn frame<T: binary_sv2::Encodable + binary_sv2::GetSize>(msg_type: u8, m: T) -> Frame {
        Frame {
            extension: 0,
            channel_msg: false,
            msg_type,
            payload: binary_sv2::to_bytes(m).expect("encodes"),
        }
    }

    fn setup(protocol: Protocol) -> Frame {
        let s = |v: &str| v.to_owned().try_into().expect("short");
        frame(
            common_messages_sv2::MESSAGE_TYPE_SETUP_CONNECTION,
            SetupConnectionOwned {
                protocol,
                min_version: 2,
                max_version: 2,
                flags: 0,
                endpoint_host: s("h"),
                endpoint_port: 1,
                vendor: s("v"),
                hardware_version: s(""),
                firmware: s(""),
                device_id: s(""),
            },
        )
    }

    fn constraints() -> Frame {
        frame(
            MESSAGE_TYPE_COINBASE_OUTPUT_CONSTRAINTS,
            CoinbaseOutputConstraintsOwned {
                coinbase_output_max_additional_size: 100,
                coinbase_output_max_additional_sigops: 4,
            },
        )
    }

    fn on(session: &mut Session, mut f: Frame) -> Vec<Step> {
        session.on_message(f.parse().expect("parses"))
    }

    fn template(tip: u8) -> Arc<BlockTemplate> {
        let bits = bitcoin::CompactTarget::from_consensus(0x207f_ffff);
        Arc::new(BlockTemplate {
            version: bitcoin::block::Version::from_consensus(0x2000_0000),
            prev_hash: BlockHash::from_byte_array([tip; 32]),
            height: 1,
            bits,
            target: bitcoin::Target::from_compact(bits),
            cur_time: 1_700_000_000,
            min_time: 1_600_000_000,
            coinbase_value: bitcoin::Amount::from_sat(50),
            coinbase_aux: Vec::new(),
            transactions: Vec::new(),
            segwit: true,
            default_witness_commitment: None,
            longpoll_id: None,
        })
    }

    fn serving() -> Session {
        let mut s = Session::new();
        on(&mut s, setup(Protocol::TemplateDistributionProtocol));
        assert!(matches!(
            on(&mut s, constraints())[..],
            [Step::FetchTemplate]
        ));
        s
    }

    #[test]
    fn setup_comes_first_and_only_for_template_distribution() {
        let mut s = Session::new();
        assert!(matches!(on(&mut s, constraints())[..], [Step::Close(_)]));
        let mut s = Session::new();
        let steps = on(&mut s, setup(Protocol::MiningProtocol));
        assert!(matches!(
            &steps[..],
            [Step::Send(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionError(e))), Step::Close(_)]
                if e.error_code.as_bytes() == b"unsupported-protocol"
        ));
        let mut s = Session::new();
        let steps = on(&mut s, setup(Protocol::TemplateDistributionProtocol));
        assert!(matches!(
            &steps[..],
            [Step::Send(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(ok)))]
                if ok.used_version == PROTOCOL_VERSION
        ));
        assert!(s.set_up() && !s.serving());
        assert!(s.on_template(template(1)).expect("encodes").is_empty());
        let steps = on(&mut s, setup(Protocol::TemplateDistributionProtocol));
        assert!(matches!(steps[..], [Step::Close(_)]));
    }

    #[test]
    fn a_new_tip_gets_a_future_template_and_prev_hash_the_same_tip_a_current_one() {
        let mut s = serving();
        let steps = s.on_template(template(1)).expect("encodes");
        assert!(matches!(
            &steps[..],
            [
                Step::Send(AnyMessageOwned::TemplateDistribution(TemplateDistributionOwned::NewTemplate(t))),
                Step::Send(AnyMessageOwned::TemplateDistribution(TemplateDistributionOwned::SetNewPrevHash(p))),
            ] if t.future_template && p.template_id == t.template_id
        ));
        let steps = s.on_template(template(1)).expect("encodes");
        assert!(matches!(
            &steps[..],
            [Step::Send(AnyMessageOwned::TemplateDistribution(TemplateDistributionOwned::NewTemplate(t)))]
                if !t.future_template
        ));
    }

    #[test]
    fn only_the_last_templates_are_kept() {
        let mut s = serving();
        for tip in 0..(KEPT_TEMPLATES as u8 + 2) {
            s.on_template(template(tip)).expect("encodes");
        }
        let solution = |template_id| {
            frame(
                MESSAGE_TYPE_SUBMIT_SOLUTION,
                SubmitSolutionOwned {
                    template_id,
                    version: 0,
                    header_timestamp: 0,
                    header_nonce: 0,
                    coinbase_tx: b"junk".to_vec().try_into().expect("short"),
                },
            )
        };
        // Templates 1 and 2 are forgotten; 3 is kept (and its junk coinbase refused).
        assert!(matches!(
            on(&mut s, solution(2))[..],
            [Step::Refused(Refusal::UnknownTemplate(2))]
        ));
        assert!(matches!(
            on(&mut s, solution(3))[..],
            [Step::Refused(Refusal::BadSolution { template_id: 3, .. })]
        ));
        assert_eq!(s.templates.len(), KEPT_TEMPLATES);
    }
}
