//! The stdio transport: newline-delimited JSON-RPC on stdin/stdout, with every line judged by
//! [`jsonrpc::classify`] before rmcp sees it, so that bad input is answered by the book instead of
//! dropped (rmcp's own `AsyncRwTransport` ignores what it cannot parse).
//!
//! Lines are bounded: a longer one is cut at the limit (its head kept, to read its id from),
//! the rest of it skipped, and it is answered `-32600`. Reading and writing are cancel-safe, as
//! rmcp polls `receive` inside a `select!`: a partial line stays in the buffer, and an error
//! answer is queued in the sink and flushed on the next poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use futures_util::SinkExt;
use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::sync::Mutex;
use tokio_util::codec::{Encoder, FramedWrite};

use super::jsonrpc::{self, Verdict};

/// The default size limit of one message, on stdio and over HTTP.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Messages out: rmcp's, or our own error answers (which need `"id": null`, which rmcp's
/// error type cannot write).
enum Outgoing {
    Message(Box<ServerJsonRpcMessage>),
    Raw(Vec<u8>),
}

struct LineCodec;

impl Encoder<Outgoing> for LineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Outgoing, dst: &mut BytesMut) -> Result<(), Self::Error> {
        match item {
            Outgoing::Message(m) => serde_json::to_writer(dst.writer(), &m)?,
            Outgoing::Raw(bytes) => dst.extend_from_slice(&bytes),
        }
        dst.put_u8(b'\n');
        Ok(())
    }
}

type Sink<W> = Arc<Mutex<Option<FramedWrite<W, LineCodec>>>>;

enum Pending {
    Queue(Vec<u8>),
    Flush,
}

enum LineRead {
    Line,
    Oversized,
    Eof,
    Io(std::io::Error),
}

/// rmcp's server transport over a reader and a writer (stdin and stdout, as MCP clients launch
/// servers).
pub struct StrictTransport<R, W> {
    read: BufReader<R>,
    line: Vec<u8>,
    limit: usize,
    /// The current line is past the limit: its head is in `line`, the rest is being skipped.
    over: bool,
    write: Sink<W>,
    pending: Option<Pending>,
    rejected: Arc<AtomicU64>,
}

impl<R, W> StrictTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new(read: R, write: W, limit: usize) -> Self {
        StrictTransport {
            read: BufReader::new(read),
            line: Vec::new(),
            limit,
            over: false,
            write: Arc::new(Mutex::new(Some(FramedWrite::new(write, LineCodec)))),
            pending: None,
            rejected: Arc::default(),
        }
    }

    /// Reads up to the next newline into `self.line`, keeping at most `limit` bytes of it.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let (consumed, done) = {
                let available = match self.read.fill_buf().await {
                    Ok(available) => available,
                    Err(e) => return LineRead::Io(e),
                };
                if available.is_empty() {
                    return LineRead::Eof;
                }
                let newline = available.iter().position(|b| *b == b'\n');
                let take = newline.map_or(available.len(), |i| i + 1);
                let room = self.limit.saturating_sub(self.line.len());
                if take > room {
                    self.over = true;
                }
                self.line.extend_from_slice(&available[..take.min(room)]);
                (take, newline.is_some())
            };
            self.read.consume(consumed);
            if done {
                return if std::mem::take(&mut self.over) { LineRead::Oversized } else { LineRead::Line };
            }
        }
    }

    /// Sends a queued error answer; resumable after cancellation.
    async fn flush_pending(&mut self) -> Option<()> {
        let Some(state) = self.pending.as_mut() else { return Some(()) };
        let mut write = self.write.lock().await;
        let sink = write.as_mut()?;
        if let Pending::Queue(bytes) = state {
            sink.feed(Outgoing::Raw(std::mem::take(bytes))).await.ok()?;
            *state = Pending::Flush;
        }
        sink.flush().await.ok()?;
        self.pending = None;
        Some(())
    }

    fn note(&self, what: &str) {
        // Bounded: a stream of garbage must not become a stream of logs.
        let n = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= 20 || n.is_power_of_two() {
            eprintln!("mcp-perfcheck serve: bad input #{n}: {}", jsonrpc::bounded(what));
        }
    }
}

impl<R, W> Transport<RoleServer> for StrictTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = Arc::clone(&self.write);
        async move {
            match write.lock().await.as_mut() {
                Some(sink) => sink.send(Outgoing::Message(Box::new(item))).await,
                None => Err(std::io::Error::new(std::io::ErrorKind::NotConnected, "the transport is closed")),
            }
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            self.flush_pending().await?;
            let oversized = match self.read_line().await {
                LineRead::Line => false,
                LineRead::Oversized => true,
                LineRead::Eof => return None,
                LineRead::Io(e) => {
                    eprintln!("mcp-perfcheck serve: reading stdin: {e}");
                    return None;
                }
            };
            let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let verdict = if oversized {
                Verdict::Reply(jsonrpc::oversized(line, self.limit))
            } else if line.iter().all(u8::is_ascii_whitespace) {
                Verdict::Ignore(String::new())
            } else {
                jsonrpc::classify(line)
            };
            self.line.clear();
            match verdict {
                Verdict::Message(message) => return Some(*message),
                Verdict::Reply(rejection) => {
                    self.note(&rejection.message);
                    self.pending = Some(Pending::Queue(rejection.to_bytes()));
                }
                Verdict::Ignore(why) if why.is_empty() => {}
                Verdict::Ignore(why) => self.note(&format!("not answered: {why}")),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        drop(self.write.lock().await.take());
        Ok(())
    }
}
