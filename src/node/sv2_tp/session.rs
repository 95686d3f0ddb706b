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
