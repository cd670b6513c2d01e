//! A lean JSON-RPC client over a server's stdin/stdout with many requests in flight on the one
//! pipe, owned by one loop at a time.
//!
//! [`Pipes`] holds both pipe ends and their buffers. Whoever holds it drives the connection
//! ([`Pipes::exchange`]): it writes everything queued in one write, reads everything available
//! into one buffer, parses every complete line once by its fields, answers what the server asks
//! of us (`ping`; refusals for the rest, so the server never waits on us), and times requests
//! out from a FIFO of deadlines (a scenario's calls share one timeout, so deadlines come in send
//! order and no timer per call is needed). The load loop holds it for a whole window and sends
//! calls by slot: a call's JSON-RPC id encodes its slot and the slot's generation, so an answer
//! finds its call without a map and a late answer is told from a bogus one.
//!
//! Requests outside the load (the handshake, `tools/list`, a resource read while the load runs)
//! go through a side queue that the holder serves; with no holder, the caller drives.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use super::jsonrpc::{
    Counters, MODERN_META, Message, after_meta, initialize_params, modern_server_info, parse, parse_answer,
    parse_initialize, tool_outcome,
};
use super::{CallError, ClientStats, Completion, ServerInfo, ToolOutcome};

mod blocking;

pub use blocking::Tick;

/// Load calls' ids are `generation × SLOTS + slot + 1`; side requests' ids start at
/// [`SIDE_IDS`]. Both stay below 2^53, so a JavaScript server reads them exactly.
const SLOTS: u64 = 1 << 20;
const SIDE_IDS: u64 = 1 << 52;
/// The longest line read from a server before the connection is given up as broken.
const MAX_LINE: usize = 64 << 20;
const READ_CHUNK: usize = 64 << 10;
/// How long a `server/discover` probe is waited for alone before `initialize` goes out too.
const DISCOVER_PROBE: Duration = Duration::from_secs(2);

/// Who waits for a side request's answer.
type Waiter = oneshot::Sender<Result<Box<RawValue>, CallError>>;

/// A request from outside the load loop.
struct Side {
    line: Vec<u8>,
    /// `None` for a notification.
    reply: Option<(Instant, Waiter)>,
}

struct Shared {
    closed: Mutex<Option<String>>,
    /// The server speaks the stateless revision: every request carries `_meta`.
    modern: AtomicBool,
    counters: Counters,
    /// Wakes the holder of the pipes: a side request arrived, or the connection was closed.
    wake: Notify,
    side: mpsc::UnboundedSender<Side>,
}

impl Shared {
    fn closed_reason(&self) -> Option<String> {
        self.closed.lock().expect("closed lock").clone()
    }
}

/// A JSON-RPC connection to a server over its stdio pipes.
pub struct StdioClient {
    shared: Arc<Shared>,
    pipes: tokio::sync::Mutex<Pipes>,
}

impl StdioClient {
    /// Takes over the server's pipes (registered with the current runtime).
    pub fn connect(stdin: ChildStdin, stdout: ChildStdout) -> std::io::Result<StdioClient> {
        let ends = Ends::Reactor {
            stdin: pipe::Sender::from_owned_fd(stdin.into_owned_fd()?)?,
            stdout: pipe::Receiver::from_owned_fd(stdout.into_owned_fd()?)?,
        };
        let (side, side_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            closed: Mutex::new(None),
            modern: AtomicBool::new(false),
            counters: Counters::default(),
            wake: Notify::new(),
            side,
        });
        let pipes = Pipes {
            ends: Some(ends),
            out: Vec::with_capacity(READ_CHUNK),
            out_pos: 0,
            input: vec![0; READ_CHUNK],
            filled: 0,
            calls: Vec::new(),
            in_flight: 0,
            deadlines: VecDeque::new(),
            side_rx,
            side: Vec::new(),
            next_side: SIDE_IDS,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
            closed: None,
            shared: shared.clone(),
        };
        Ok(StdioClient { shared, pipes: tokio::sync::Mutex::new(pipes) })
    }

    /// Settles the protocol era, as the stdio transport asks of a client that speaks both: a
    /// `server/discover` probe; a server that lists the stateless revision is spoken to in it
    /// from then on (`_meta` in every request, no handshake); any other answer falls back to
    /// `initialize` and `notifications/initialized`. A server that has not answered the probe
    /// within [`DISCOVER_PROBE`] may be a handshake-era server ignoring it, or a slow starter:
    /// `initialize` goes out then, the probe stays pending, and whichever settles the era
    /// first wins (a stateless server refuses `initialize` once it has answered the probe).
    pub async fn connect_session(&self, timeout: Duration) -> Result<ServerInfo, CallError> {
        let deadline = Instant::now() + timeout;
        let (probe, handshake) = (format!("{{{MODERN_META}}}"), initialize_params());
        let discover = self.request("server/discover", &probe, timeout);
        tokio::pin!(discover);
        let modern = |answer: Result<Box<RawValue>, CallError>| answer.ok().and_then(|raw| modern_server_info(&raw));
        let initialize = match tokio::time::timeout(timeout.min(DISCOVER_PROBE), &mut discover).await {
            Ok(Err(e @ CallError::Transport(_))) => return Err(e),
            Ok(answer) => match modern(answer) {
                Some(info) => return Ok(self.speak_modern(info)),
                None => self.request("initialize", &handshake, deadline - Instant::now()).await,
            },
            Err(_) => {
                let initialize = self.request("initialize", &handshake, deadline - Instant::now());
                tokio::pin!(initialize);
                tokio::select! {
                    biased;
                    answer = &mut discover => match modern(answer) {
                        Some(info) => return Ok(self.speak_modern(info)),
                        None => initialize.await,
                    },
                    answer = &mut initialize => match answer {
                        Ok(raw) => Ok(raw),
                        // Refused: perhaps because the probe was answered meanwhile.
                        Err(refused) => match modern(discover.await) {
                            Some(info) => return Ok(self.speak_modern(info)),
                            None => Err(refused),
                        },
                    },
                }
            }
        };
        let info = parse_initialize(&initialize?)?;
        self.notify("notifications/initialized", "{}")?;
        Ok(info)
    }

    fn speak_modern(&self, info: ServerInfo) -> ServerInfo {
        self.shared.modern.store(true, Ordering::Relaxed);
        info
    }

    /// The era settled by [`StdioClient::connect_session`]: stateless (2026-07-28) or not.
    pub fn is_modern(&self) -> bool {
        self.shared.modern.load(Ordering::Relaxed)
    }

    /// Sends any request; a `tools/call` result is also checked for `isError`.
    pub async fn call(&self, method: &str, params: &str, timeout: Duration) -> Result<ToolOutcome, CallError> {
        let raw = self.request(method, params, timeout).await?;
        if method == "tools/call" { tool_outcome(&raw) } else { Ok(ToolOutcome::default()) }
    }

    /// Sends a request and waits for its answer. `params` must be a JSON value. The line is
    /// given its id by whoever writes it.
    pub async fn request(&self, method: &str, params: &str, timeout: Duration) -> Result<Box<RawValue>, CallError> {
        let (tx, mut rx) = oneshot::channel();
        let mut line = Vec::with_capacity(params.len() + 64);
        let _ = write!(line, ",\"method\":\"{method}\",\"params\":");
        write_params(&mut line, params, self.is_modern());
        line.extend_from_slice(b"}\n");
        self.submit(Side { line, reply: Some((Instant::now() + timeout, tx)) })?;
        let closed = |shared: &Shared| CallError::Transport(shared.closed_reason().unwrap_or_default());
        tokio::select! {
            biased;
            reply = &mut rx => reply.unwrap_or_else(|_| Err(closed(&self.shared))),
            mut pipes = self.pipes.lock() => {
                // Nobody is driving the connection: drive it until the answer is in.
                let mut none = Vec::new();
                loop {
                    tokio::select! {
                        biased;
                        reply = &mut rx => return reply.unwrap_or_else(|_| Err(closed(&self.shared))),
                        _ = pipes.exchange(std::future::pending(), &mut none) => none.clear(),
                    }
                }
            }
        }
    }

    /// Sends a notification (no answer expected).
    pub fn notify(&self, method: &str, params: &str) -> Result<(), CallError> {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{method}\",\"params\":{params}}}\n").into_bytes();
        self.submit(Side { line, reply: None })
    }

    fn submit(&self, side: Side) -> Result<(), CallError> {
        if let Some(reason) = self.shared.closed_reason() {
            return Err(CallError::Transport(reason));
        }
        self.shared.side.send(side).map_err(|_| CallError::Transport("connection closed".into()))?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The pipes, for a loop that drives them (the load): other requests wait for it.
    pub async fn pipes(&self) -> tokio::sync::MutexGuard<'_, Pipes> {
        self.pipes.lock().await
    }

    /// What happened on the connection that belongs to no request.
    pub fn stats(&self) -> ClientStats {
        self.shared.counters.snapshot(1)
    }

    /// Closes the connection: pending and later requests fail with a transport error giving
    /// `reason`. Used when the server process exits while a descendant still holds its pipe.
    pub fn close(&self, reason: String) {
        let mut closed = self.shared.closed.lock().expect("closed lock");
        if closed.is_none() {
            *closed = Some(reason);
        }
        drop(closed);
        self.shared.wake.notify_one();
    }

    /// Whether the connection has closed (the server closed its stdout or stopped reading).
    pub fn closed(&self) -> Option<String> {
        self.shared.closed_reason()
    }
}

/// A call slot: its generation (bumped on every use) and whether a call is in it.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    generation: u64,
    busy: bool,
    tool_call: bool,
}

/// The server's stdin and stdout.
enum Ends {
    /// Registered with one runtime's reactor, for [`Pipes::exchange`].
    Reactor { stdin: pipe::Sender, stdout: pipe::Receiver },
    /// Off the reactor, for one thread's blocking reads ([`Pipes::exchange_blocking`]); stdin
    /// stays non-blocking.
    Blocking { stdin: OwnedFd, stdout: OwnedFd },
}

/// Both ends of the pipe and everything in flight on it.
pub struct Pipes {
    /// Always there, but for the moment of [`Pipes::rebind`].
    ends: Option<Ends>,
    /// Queued for writing; `out[out_pos..]` is still to go.
    out: Vec<u8>,
    out_pos: usize,
    /// Read and not yet parsed: `input[..filled]`.
    input: Vec<u8>,
    filled: usize,
    calls: Vec<Slot>,
    in_flight: usize,
    /// Every call's deadline in send order, with its slot and generation.
    deadlines: VecDeque<(Instant, usize, u64)>,
    side_rx: mpsc::UnboundedReceiver<Side>,
    /// Side requests awaiting their answers: id, deadline, waiter.
    side: Vec<(u64, Instant, Waiter)>,
    next_side: u64,
    /// Armed at the earliest deadline or before it (a timer that fires early just re-arms).
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    closed: Option<String>,
    shared: Arc<Shared>,
}

impl Pipes {
    /// Queues a call in `slot` (a `tools/call` result is also read for `isError`); it times
    /// out at `deadline`, which must not precede the deadlines already queued by much.
    pub fn send_call(&mut self, slot: usize, method: &str, params: &str, deadline: Instant) {
        if slot >= SLOTS as usize {
            panic!("at most {SLOTS} calls in flight on one pipe");
        }
        if self.calls.len() <= slot {
            self.calls.resize(slot + 1, Slot::default());
        }
        let s = &mut self.calls[slot];
        s.generation += 1;
        s.busy = true;
        s.tool_call = method == "tools/call";
        let id = s.generation * SLOTS + slot as u64 + 1;
        let generation = s.generation;
        self.in_flight += 1;
        // Written piece by piece: `write!` goes through the formatting machinery per call.
        self.out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        self.out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        self.out.extend_from_slice(b",\"method\":\"");
        self.out.extend_from_slice(method.as_bytes());
        self.out.extend_from_slice(b"\",\"params\":");
        write_params(&mut self.out, params, self.shared.modern.load(Ordering::Relaxed));
        self.out.extend_from_slice(b"}\n");
        self.deadlines.push_back((deadline, slot, generation));
        // Entries of calls answered in time are skipped when they reach the front; keep their
        // number proportional to what is in flight even when one slow call holds the front.
        if self.deadlines.len() > 4 * self.in_flight + 64 {
            let calls = &self.calls;
            self.deadlines.retain(|&(_, slot, g)| calls[slot].busy && calls[slot].generation == g);
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    fn is_tool_call(&self, id: u64) -> bool {
        let slot = (id.wrapping_sub(1) % SLOTS) as usize;
        self.calls.get(slot).is_some_and(|s| s.tool_call)
    }

    /// Registers the pipes (and the timer) with the current runtime, so that a loop on a
    /// runtime of its own, on its own thread, is woken by its own reactor. Call it again in the
    /// first runtime's context before that loop's runtime ends, and after [`Pipes::block`]
    /// before anyone else drives the pipes.
    pub fn rebind(&mut self) -> std::io::Result<()> {
        let (stdin, stdout) = match self.ends.take().expect("pipes are bound") {
            Ends::Reactor { stdin, stdout } => (stdin.into_nonblocking_fd()?, stdout.into_nonblocking_fd()?),
            // `from_owned_fd` makes the read end non-blocking again.
            Ends::Blocking { stdin, stdout } => (stdin, stdout),
        };
        self.ends = Some(Ends::Reactor {
            stdin: pipe::Sender::from_owned_fd(stdin)?,
            stdout: pipe::Receiver::from_owned_fd(stdout)?,
        });
        self.timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        self.timer_at = None;
        Ok(())
    }

    /// Writes what is queued, reads and handles what the server sent, until at least one call
    /// completed (into `done`), `wake` resolved, or the connection closed.
    pub async fn exchange<W: Future<Output = ()> + Send>(&mut self, wake: W, done: &mut Vec<Completion>) {
        tokio::pin!(wake);
        loop {
            if self.catch_up(done).is_none() {
                return;
            }
            self.arm_timer();
            let Pipes { ends, out, out_pos, input, filled, timer, timer_at, shared, side_rx, .. } = &mut *self;
            let Some(Ends::Reactor { stdin, stdout }) = ends.as_mut() else {
                panic!("the pipes are off the reactor: rebind them first")
            };
            let pending_out = *out_pos < out.len();
            if *filled == input.len() {
                input.resize(input.len() * 2, 0);
            }
            enum Event {
                Wrote(std::io::Result<usize>),
                Read(std::io::Result<usize>),
                Side(Option<Side>),
                Nudged,
                Timer,
                Wake,
            }
            let event = tokio::select! {
                biased;
                r = stdin.write(&out[*out_pos..]), if pending_out => Event::Wrote(r),
                r = stdout.read(&mut input[*filled..]) => Event::Read(r),
                s = side_rx.recv() => Event::Side(s),
                _ = shared.wake.notified() => Event::Nudged,
                _ = timer.as_mut(), if timer_at.is_some() => Event::Timer,
                _ = &mut wake => Event::Wake,
            };
            match event {
                Event::Wrote(Ok(n)) if n > 0 => self.wrote(n),
                Event::Wrote(r) => {
                    let why = r.err().map_or_else(|| "write returned 0".to_string(), |e| e.to_string());
                    self.close(format!("cannot write to the server's stdin: {why}"), done);
                }
                Event::Read(Ok(0)) => self.close("the server closed its stdout".to_string(), done),
                Event::Read(Ok(n)) => {
                    self.shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    self.filled += n;
                    self.handle_lines(done);
                }
                Event::Read(Err(e)) => self.close(format!("cannot read the server's stdout: {e}"), done),
                Event::Side(Some(side)) => self.queue_side(side),
                Event::Side(None) | Event::Nudged => {}
                Event::Timer => self.timer_at = None,
                Event::Wake => return,
            }
        }
    }

    /// Each time round a driving loop: side requests queued, a close from elsewhere applied,
    /// calls past their deadline expired. The time it looked, or `None` when something
    /// completed or the connection closed: time to return.
    fn catch_up(&mut self, done: &mut Vec<Completion>) -> Option<Instant> {
        self.take_side_requests();
        if self.closed.is_none()
            && let Some(reason) = self.shared.closed_reason()
        {
            self.close(reason, done);
        }
        let now = Instant::now();
        self.expire(now, done);
        (done.is_empty() && self.closed.is_none()).then_some(now)
    }

    /// `n` more bytes of what was queued went out.
    fn wrote(&mut self, n: usize) {
        self.shared.counters.bytes_sent.fetch_add(n as u64, Ordering::Relaxed);
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    fn take_side_requests(&mut self) {
        while let Ok(side) = self.side_rx.try_recv() {
            self.queue_side(side);
        }
    }

    fn queue_side(&mut self, side: Side) {
        match side.reply {
            None => self.out.extend_from_slice(&side.line),
            Some((deadline, tx)) => {
                let id = self.next_side;
                self.next_side += 1;
                let _ = write!(self.out, "{{\"jsonrpc\":\"2.0\",\"id\":{id}");
                self.out.extend_from_slice(&side.line);
                self.side.push((id, deadline, tx));
            }
        }
    }

    /// Arms the timer at the earliest deadline, unless it is already armed no later.
    fn arm_timer(&mut self) {
        let front = self.deadlines.front().map(|d| d.0);
        let side = self.side.iter().map(|s| s.1).min();
        let Some(next) = front.into_iter().chain(side).min() else { return };
        if self.timer_at.is_none_or(|armed| next < armed) {
            self.timer.as_mut().reset(next);
            self.timer_at = Some(next);
        }
    }

    /// Calls and side requests past their deadline fail as timeouts; the server is told.
    fn expire(&mut self, now: Instant, done: &mut Vec<Completion>) {
        while let Some(&(deadline, slot, generation)) = self.deadlines.front() {
            let s = &mut self.calls[slot];
            let live = s.busy && s.generation == generation;
            if live && deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if live {
                s.busy = false;
                self.in_flight -= 1;
                done.push(Completion { slot, outcome: Err(CallError::Timeout) });
                self.cancel(generation * SLOTS + slot as u64 + 1);
            }
        }
        let mut i = 0;
        while i < self.side.len() {
            if self.side[i].1 <= now {
                let (id, _, tx) = self.side.swap_remove(i);
                let _ = tx.send(Err(CallError::Timeout));
                self.cancel(id);
            } else {
                i += 1;
            }
        }
    }

    /// Tells the server we gave up on `id`, so it can stop working on it (MCP cancellation).
    fn cancel(&mut self, id: u64) {
        let _ = writeln!(
            self.out,
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":{id},\"reason\":\"timeout\"}}}}"
        );
    }

    /// Handles every complete line read so far and keeps the partial one.
    fn handle_lines(&mut self, done: &mut Vec<Completion>) {
        // Lines are parsed in place; the buffer is lent out while what they cause is handled.
        let input = std::mem::take(&mut self.input);
        let mut start = 0;
        while let Some(len) = memchr::memchr(b'\n', &input[start..self.filled]) {
            let end = start + len;
            handle_line(&input[start..end], self, done);
            start = end + 1;
        }
        self.input = input;
        self.input.copy_within(start..self.filled, 0);
        self.filled -= start;
        if self.filled > MAX_LINE {
            self.close(format!("the server sent a line of more than {} MiB without a newline", MAX_LINE >> 20), done);
        }
    }

    /// Ends the connection: every call in flight and every side request fails with `reason`.
    fn close(&mut self, reason: String, done: &mut Vec<Completion>) {
        {
            let mut closed = self.shared.closed.lock().expect("closed lock");
            if closed.is_none() {
                *closed = Some(reason);
            }
        }
        let reason = self.shared.closed_reason().unwrap_or_default();
        for (slot, s) in self.calls.iter_mut().enumerate() {
            if s.busy {
                s.busy = false;
                done.push(Completion { slot, outcome: Err(CallError::Transport(reason.clone())) });
            }
        }
        self.in_flight = 0;
        self.deadlines.clear();
        for (_, _, tx) in self.side.drain(..) {
            let _ = tx.send(Err(CallError::Transport(reason.clone())));
        }
        self.side_rx.close();
        while let Ok(side) = self.side_rx.try_recv() {
            if let Some((_, tx)) = side.reply {
                let _ = tx.send(Err(CallError::Transport(reason.clone())));
            }
        }
        self.closed = Some(reason);
    }
}

/// Writes a request's params; in the stateless era with `_meta` in front of its members.
fn write_params(out: &mut Vec<u8>, params: &str, modern: bool) {
    if modern {
        let (sep, inner) = after_meta(params);
        out.push(b'{');
        out.extend_from_slice(MODERN_META.as_bytes());
        out.extend_from_slice(sep.as_bytes());
        out.extend_from_slice(inner.as_bytes());
    } else {
        out.extend_from_slice(params.as_bytes());
    }
}

/// Handles one line from the server (the borrow of the input buffer kept apart from `pipes`).
fn handle_line(line: &[u8], pipes: &mut Pipes, done: &mut Vec<Completion>) {
    let text = line.trim_ascii();
    if text.is_empty() {
        return;
    }
    let counters = &pipes.shared.counters;
    // Nearly every line is the answer to a call: read it in one pass.
    if let Some((id, outcome)) = parse_answer(text)
        && id < SIDE_IDS
    {
        return complete(pipes, id, Ok(outcome), text, done);
    }
    match parse(text) {
        Message::Request { answer } => {
            counters.server_requests.fetch_add(1, Ordering::Relaxed);
            pipes.out.extend_from_slice(answer.as_bytes());
            pipes.out.push(b'\n');
        }
        Message::Notification => {
            counters.notifications.fetch_add(1, Ordering::Relaxed);
        }
        Message::Response { id, result } if id >= SIDE_IDS => match pipes.side.iter().position(|s| s.0 == id) {
            Some(i) => {
                let (_, _, tx) = pipes.side.swap_remove(i);
                let _ = tx.send(result.map(|raw| raw.to_owned()));
            }
            None if id < pipes.next_side => {
                counters.late_responses.fetch_add(1, Ordering::Relaxed);
            }
            None => counters.protocol_error(text),
        },
        Message::Response { id, result } => {
            // A result that `parse_answer` could not read (not an object) is malformed for a
            // tool call, and fine for anything else.
            let outcome = result.and_then(|raw| match tool_outcome(raw) {
                Err(_) if !pipes.is_tool_call(id) => Ok(ToolOutcome::default()),
                other => other,
            });
            complete(pipes, id, outcome, text, done)
        }
        Message::Invalid => counters.protocol_error(text),
    }
}

/// Completes the load call answered as `id`; a late or unknown id is counted.
fn complete(
    pipes: &mut Pipes,
    id: u64,
    outcome: Result<ToolOutcome, CallError>,
    text: &[u8],
    done: &mut Vec<Completion>,
) {
    let (generation, slot) = (id.wrapping_sub(1) / SLOTS, (id.wrapping_sub(1) % SLOTS) as usize);
    let counters = &pipes.shared.counters;
    match pipes.calls.get_mut(slot) {
        Some(s) if id > 0 && s.busy && s.generation == generation => {
            s.busy = false;
            pipes.in_flight -= 1;
            // Only a tool call's result says whether it failed.
            let outcome = if s.tool_call { outcome } else { outcome.map(|_| ToolOutcome::default()) };
            done.push(Completion { slot, outcome });
        }
        // An id we sent whose call gave up (timeout) is late; any other id is bogus.
        Some(s) if id > 0 && generation <= s.generation => {
            counters.late_responses.fetch_add(1, Ordering::Relaxed);
        }
        _ => counters.protocol_error(text),
    }
}
