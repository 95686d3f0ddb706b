//! A Stratum V2 Noise connection over any tokio byte stream: the NX handshake (as responder with
//! an authority key, or as initiator pinning one), then encrypted frames both ways.
//!
//! SRI's `codec_sv2` does the handshake steps, the ciphers and the framing; this module moves its
//! bytes. The decoder asks for at most one 64 KiB chunk at a time, so memory grows only with what
//! the peer really sends; on top of that a frame larger than the reader's `max_frame` is refused
//! before it is whole, so a peer cannot make us buffer the 16 MiB a frame header may declare.
//!
//! The halves are separate ([`NoiseReader`], [`NoiseWriter`]) so a server can read in one task
//! and write in another: neither read nor write is cancellation-safe (a cancelled read loses the
//! bytes it took), so each half belongs to one loop that never abandons a call half-way.

use std::time::Duration;

use super::AuthorityPublicKey;
use codec_sv2::{
    Decoded, Decrypted, Handshake, HandshakeMessage, NoiseDecoder, NoiseEncoder,
    TransportDecryptState, TransportEncryptState,
};
use framing_sv2::framing::MessageFrame;
use noise_sv2::{
    Initiator, Responder, ELLSWIFT_ENCODING_SIZE, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE,
};
use parsers_sv2::{AnyMessage, AnyMessageOwned};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Why a connection failed. After any of these the connection is unusable: a failed decryption
/// leaves the cipher out of step with the peer (SRI's decoder consumes its state on error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Noise handshake took longer than {0:?}")]
    HandshakeTimeout(Duration),
    #[error("Noise handshake failed: {0}")]
    Handshake(String),
    /// The certificate is signed by the pinned key but outside its validity window.
    #[error("{0}")]
    CertificateTime(String),
    #[error("the peer sent a frame of more than {limit} bytes; refused before reading it all")]
    FrameTooLarge { limit: usize },
    #[error("undecodable or unauthentic frame: {0}")]
    Frame(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
}

/// A decrypted frame: its header fields and payload, parsed with [`Frame::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The extension type, without the channel-message bit.
    pub extension: u16,
    /// Whether the channel-message bit is set.
    pub channel_msg: bool,
    pub msg_type: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The message, as SRI's parser reads it, borrowing the payload.
    pub fn parse(&mut self) -> Result<AnyMessage<'_>, parsers_sv2::ParserError> {
        use parsers_sv2::{CommonMessages, Mining, TemplateDistribution};
        let payload = self.payload.as_mut_slice();
        // Message types are unique across the protocols a role speaks: common 0x00..=0x04,
        // mining 0x10..=0x2f, template distribution 0x70.. (SV2 spec, "Message Types"); job
        // declaration (0x50..) is not parsed here.
        match self.msg_type {
            0x00..=0x04 => {
                CommonMessages::try_from((self.msg_type, payload)).map(AnyMessage::Common)
            }
            0x10..=0x2f => Mining::try_from((self.msg_type, payload)).map(AnyMessage::Mining),
            _ => TemplateDistribution::try_from((self.msg_type, payload))
                .map(AnyMessage::TemplateDistribution),
        }
    }
}

/// The reading half: decrypts frames.
pub struct NoiseReader<R> {
    io: R,
    decoder: NoiseDecoder,
    state: Option<TransportDecryptState>,
    max_frame: usize,
}

/// The writing half: encrypts frames.
pub struct NoiseWriter<W> {
    io: W,
    encoder: NoiseEncoder,
    state: TransportEncryptState,
}

/// Run the responder's side of the handshake on `io`: read the initiator's ephemeral key, answer
/// with ours and a certificate `responder` signs with its authority key. `timeout` bounds the
/// whole handshake; `max_frame` bounds every frame read afterwards.
pub async fn accept<IO>(
    mut io: IO,
    responder: Box<Responder>,
    timeout: Duration,
    max_frame: usize,
) -> Result<(NoiseReader<ReadHalf<IO>>, NoiseWriter<WriteHalf<IO>>), NoiseError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = NoiseDecoder::new();
    let mut encoder = NoiseEncoder::new();
    let handshake = Handshake::responder(responder);
    let run = async {
        let first = read_handshake::<_, Responder>(&mut io, &mut decoder).await?;
        let first: [u8; ELLSWIFT_ENCODING_SIZE] = first
            .payload()
            .try_into()
            .map_err(|_| NoiseError::Handshake("wrong size of the first message".into()))?;
        let (second, transport) = handshake
            .step_1(first)
            .map_err(|e| NoiseError::Handshake(e.to_string()))?;
        io.write_all(encoder.encode_handshake(second).as_ref())
            .await?;
        io.flush().await?;
        Ok::<_, NoiseError>(transport)
    };
    let transport = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| NoiseError::HandshakeTimeout(timeout))??;
    Ok(split(io, decoder, encoder, transport, max_frame))
}

/// An initiator that trusts only servers certified by `authority` (or, with `None`, any server:
/// encryption without authentication, as SV2 allows on a trusted link).
pub fn initiator(authority: Option<AuthorityPublicKey>) -> Result<Box<Initiator>, NoiseError> {
    match authority {
        Some(key) => Initiator::from_raw_k(key.to_bytes())
            .map_err(|e| NoiseError::Handshake(format!("{e:?}"))),
        None => Initiator::without_pk().map_err(|e| NoiseError::Handshake(format!("{e:?}"))),
    }
}

/// Run the initiator's side of the handshake on `io`, trusting only a server whose certificate
/// `initiator`'s pinned authority key signed.
pub async fn connect<IO>(
    mut io: IO,
    initiator: Box<Initiator>,
    timeout: Duration,
    max_frame: usize,
) -> Result<(NoiseReader<ReadHalf<IO>>, NoiseWriter<WriteHalf<IO>>), NoiseError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = NoiseDecoder::new();
    let mut encoder = NoiseEncoder::new();
    let run = async {
        let (first, handshake) = Handshake::initiator(initiator)
            .step_0()
            .map_err(|e| NoiseError::Handshake(e.to_string()))?;
        io.write_all(encoder.encode_handshake(first).as_ref())
            .await?;
        io.flush().await?;
        let second = read_handshake::<_, codec_sv2::InitiatorSent>(&mut io, &mut decoder).await?;
        let second: [u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE] =
            second
                .payload()
                .try_into()
                .map_err(|_| NoiseError::Handshake("wrong size of the second message".into()))?;
        handshake.step_2(second).map_err(|e| match e {
            codec_sv2::Error::NoiseSv2Error(noise_sv2::Error::InvalidCertificate(cert)) => {
                certificate_error(cert.valid_from, cert.not_valid_after, unix_now())
            }
            e => NoiseError::Handshake(e.to_string()),
        })
    };
    let transport = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| NoiseError::HandshakeTimeout(timeout))??;
    Ok(split(io, decoder, encoder, transport, max_frame))
}

/// Why a server's certificate was refused: outside its validity window (noise_sv2 allows 10 s
/// either way) is a clock matter worth saying so; inside it, the signature did not verify.
fn certificate_error(valid_from: u32, not_valid_after: u32, now: u32) -> NoiseError {
    const LEEWAY: u32 = 10;
    if now > not_valid_after.saturating_add(LEEWAY) {
        NoiseError::CertificateTime(format!(
            "its certificate expired {} s ago (valid until unix time {not_valid_after}, our clock says {now}): the server's certificate is stale or one of the clocks is wrong",
            now - not_valid_after
        ))
    } else if now < valid_from.saturating_sub(LEEWAY) {
        NoiseError::CertificateTime(format!(
            "its certificate is valid only from unix time {valid_from} ({} s from now by our clock): one of the clocks is wrong",
            valid_from - now
        ))
    } else {
        NoiseError::Handshake("its certificate is not signed by the authority key".into())
    }
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32)
}

fn split<IO: AsyncRead + AsyncWrite>(
    io: IO,
    decoder: NoiseDecoder,
    encoder: NoiseEncoder,
    transport: codec_sv2::Transport,
    max_frame: usize,
) -> (NoiseReader<ReadHalf<IO>>, NoiseWriter<WriteHalf<IO>>) {
    let (encrypt, decrypt) = transport.split();
    let (r, w) = tokio::io::split(io);
    (
        NoiseReader {
            io: r,
            decoder,
            state: Some(decrypt),
            max_frame,
        },
        NoiseWriter {
            io: w,
            encoder,
            state: encrypt,
        },
    )
}

/// One handshake message of the size the role `R` waits for.
async fn read_handshake<IO, R>(
    io: &mut IO,
    decoder: &mut NoiseDecoder,
) -> Result<HandshakeMessage, NoiseError>
where
    IO: AsyncRead + Unpin,
    R: codec_sv2::ExpectsHandshakeMessage,
{
    loop {
        match decoder.next_handshake_frame::<R>() {
            Ok(Decoded::Frame(frame)) => return Ok(frame),
            Ok(Decoded::Incomplete(_)) => fill(io, decoder.writable()).await?,
            Err(e) => return Err(NoiseError::Handshake(e.to_string())),
        }
    }
}

/// Fill `buf` from `io` exactly; end of stream is [`NoiseError::Closed`].
async fn fill<IO: AsyncRead + Unpin>(io: &mut IO, buf: &mut [u8]) -> Result<(), NoiseError> {
    match io.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(NoiseError::Closed),
        Err(e) => Err(NoiseError::Io(e)),
    }
}

impl<R: AsyncRead + Unpin> NoiseReader<R> {
    /// The next frame. Not cancellation-safe: drop the reader rather than abandon a call.
    pub async fn read_frame(&mut self) -> Result<Frame, NoiseError> {
        let mut taken = 0usize;
        loop {
            let state = self
                .state
                .take()
                .ok_or_else(|| NoiseError::Frame("the connection failed earlier".into()))?;
            let result = self
                .decoder
                .next_transport_frame(state)
                .map_err(|e| NoiseError::Frame(e.to_string()))?;
            match result {
                Decrypted::Frame(mut frame, state) => {
                    self.state = Some(state);
                    let header = frame.header();
                    return Ok(Frame {
                        extension: header.ext_type_without_channel_msg(),
                        channel_msg: header.channel_msg(),
                        msg_type: header.msg_type(),
                        payload: frame.payload().to_vec(),
                    });
                }
                Decrypted::Incomplete(_, state) => {
                    self.state = Some(state);
                    let want = self.decoder.writable_len();
                    taken = taken.saturating_add(want);
                    if taken > self.max_frame {
                        // The decoder's buffers hold a partial frame now: the reader is done.
                        self.state = None;
                        return Err(NoiseError::FrameTooLarge {
                            limit: self.max_frame,
                        });
                    }
                    if want > 0 {
                        fill(&mut self.io, self.decoder.writable()).await?;
                    }
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> NoiseWriter<W> {
    /// Frame, encrypt and send `message` (SRI's encoding of each message).
    pub async fn send(&mut self, message: AnyMessageOwned) -> Result<(), NoiseError> {
        let frame = MessageFrame::<AnyMessageOwned>::try_from(message)
            .map_err(|e| NoiseError::Encode(format!("{e:?}")))?;
        let bytes = self
            .encoder
            .encode_transport(frame, &mut self.state)
            .map_err(|e| NoiseError::Encode(e.to_string()))?;
        self.io.write_all(bytes.as_ref()).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Send raw bytes as they are, outside the cipher: for tests of what a server does with
    /// garbage on an established connection.
    #[doc(hidden)]
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), NoiseError> {
        self.io.write_all(bytes).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Close the writing direction.
    pub async fn shutdown(&mut self) -> Result<(), NoiseError> {
        self.io.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_outside_its_window_is_a_clock_matter() {
        let expired = certificate_error(1_000, 4_600, 5_000).to_string();
        assert!(expired.contains("expired 400 s ago"), "{expired}");
        let early = certificate_error(9_000, 12_600, 5_000).to_string();
        assert!(early.contains("4000 s from now"), "{early}");
        // Within the window (and within noise_sv2's 10 s leeway): the signature is what failed.
        for now in [1_000, 4_610, 990] {
            let e = certificate_error(1_000, 4_600, now);
            assert!(matches!(e, NoiseError::Handshake(_)), "{now}: {e}");
        }
    }
}
