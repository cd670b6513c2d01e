//! The closed model's fast path over stdio: the load loop's thread blocks in `read` on the
//! server's stdout itself, as the smallest pipelined client does, instead of in `epoll_wait`
//! with a read and the runtime's wake-up machinery after it: one system call and one pass
//! through the scheduler less per answer (`scripts/bench-generator` measures what it saves).
//!
//! A blocked read sees no deadline, side request or stop, so the thread is interrupted every
//! [`TICK`] by a POSIX timer that signals it alone (SIGURG, whose default is to be ignored,
//! with a handler that does nothing and no `SA_RESTART`): the read returns `EINTR` and the
//! loop looks at the clock. Timeouts are recorded at their deadline whenever they are noticed,
//! so the tick bounds how late a stalled server's calls are *reported*, not what they measure.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify, Signal, sigaction};
use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
use nix::time::ClockId;
use tokio::time::Instant;

use super::{Ends, Pipes};
use crate::client::Completion;

/// How often a blocked read is interrupted to look at deadlines, side requests and stops.
pub const TICK: Duration = Duration::from_millis(10);

const SIGNAL: Signal = Signal::SIGURG;

/// Interrupts the thread that started it every [`TICK`] until dropped.
pub struct Tick {
    _timer: Timer,
}

impl Tick {
    fn start() -> io::Result<Tick> {
        // Installed once for the process; a failure is remembered, not retried into silence.
        static HANDLER: OnceLock<Result<(), Errno>> = OnceLock::new();
        HANDLER
            .get_or_init(|| {
                extern "C" fn interrupted(_: nix::libc::c_int) {}
                let action = SigAction::new(SigHandler::Handler(interrupted), SaFlags::empty(), SigSet::empty());
                // SAFETY: the handler does nothing, so it is async-signal-safe.
                unsafe { sigaction(SIGNAL, &action) }.map(drop)
            })
            .map_err(io::Error::from)?;
        let thread_id = nix::unistd::gettid().as_raw();
        let event = SigEvent::new(SigevNotify::SigevThreadId { signal: SIGNAL, thread_id, si_value: 0 });
        let mut timer = Timer::new(ClockId::CLOCK_MONOTONIC, event)?;
        let every = nix::sys::time::TimeSpec::from_duration(TICK);
        timer.set(Expiration::Interval(every), TimerSetTimeFlags::empty())?;
        Ok(Tick { _timer: timer })
    }
}

impl Pipes {
    /// Takes the pipes off the reactor for [`Pipes::exchange_blocking`] on this thread. The
    /// tick returned interrupts this thread's blocked reads; keep it while exchanging, and
    /// [`Pipes::rebind`] before anyone else drives the pipes.
    pub fn block(&mut self) -> io::Result<Tick> {
        let tick = Tick::start()?;
        if let Some(Ends::Reactor { .. }) = &self.ends {
            let Some(Ends::Reactor { stdin, stdout }) = self.ends.take() else { unreachable!() };
            self.ends =
                Some(Ends::Blocking { stdin: stdin.into_nonblocking_fd()?, stdout: stdout.into_blocking_fd()? });
        }
        Ok(tick)
    }

    fn blocking_ends(&self) -> (BorrowedFd<'_>, BorrowedFd<'_>) {
        match &self.ends {
            Some(Ends::Blocking { stdin, stdout }) => (stdin.as_fd(), stdout.as_fd()),
            _ => panic!("the pipes are on a reactor: block them first"),
        }
    }

    /// Whether the pipes are off the reactor ([`Pipes::block`]).
    pub fn is_blocking(&self) -> bool {
        matches!(self.ends, Some(Ends::Blocking { .. }))
    }

    /// What [`Pipes::exchange`] does, blocking this thread: writes what is queued, reads and
    /// handles what the server sent, until at least one call completed (into `done`), `wake`
    /// passed, the tick interrupted the wait, or the connection closed.
    pub fn exchange_blocking(&mut self, wake: Option<Instant>, done: &mut Vec<Completion>) {
        loop {
            let Some(now) = self.catch_up(done) else { return };
            if wake.is_some_and(|at| at <= now) {
                return;
            }
            if self.filled == self.input.len() {
                self.input.resize(self.input.len() * 2, 0);
            }
            if self.out_pos < self.out.len() {
                let written = nix::unistd::write(self.blocking_ends().0, &self.out[self.out_pos..]);
                match written {
                    Ok(0) => {
                        self.close("cannot write to the server's stdin: write returned 0".into(), done);
                        continue;
                    }
                    Ok(n) => self.wrote(n),
                    Err(Errno::EAGAIN) => {}
                    Err(Errno::EINTR) => return,
                    Err(e) => {
                        self.close(format!("cannot write to the server's stdin: {e}"), done);
                        continue;
                    }
                }
            }
            // The server is not reading all we sent: wait for either pipe, so that its answers
            // still come in.
            if self.out_pos < self.out.len() {
                let (stdin, stdout) = self.blocking_ends();
                let mut fds = [PollFd::new(stdout, PollFlags::POLLIN), PollFd::new(stdin, PollFlags::POLLOUT)];
                let readable = poll(&mut fds, PollTimeout::NONE).map(|_| fds[0].any().unwrap_or(false));
                match readable {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(Errno::EINTR) => return,
                    Err(e) => {
                        self.close(format!("cannot wait for the server's pipes: {e}"), done);
                        continue;
                    }
                }
            }
            let stdout = self.blocking_ends().1.as_raw_fd();
            match nix::unistd::read(stdout, &mut self.input[self.filled..]) {
                Ok(0) => self.close("the server closed its stdout".to_string(), done),
                Ok(n) => {
                    self.shared.counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                    self.filled += n;
                    self.handle_lines(done);
                }
                Err(Errno::EINTR) => return,
                Err(e) => self.close(format!("cannot read the server's stdout: {e}"), done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;
    use crate::client::{CallError, StdioClient};

    /// A "server" that neither reads its stdin nor writes its stdout: every call must still
    /// time out at its deadline, though the pipe to it fills up and the writes stall.
    #[tokio::test]
    async fn calls_to_a_server_that_stopped_reading_time_out_while_the_writes_stall() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("sleep starts");
        let client = StdioClient::connect(child.stdin.take().unwrap(), child.stdout.take().unwrap()).unwrap();
        let mut pipes = client.pipes().await;
        let _tick = pipes.block().unwrap();
        assert!(pipes.is_blocking());
        // More than a pipe's 64 KiB buffer holds.
        let params = format!("{{\"name\":\"echo\",\"arguments\":{{\"message\":\"{}\"}}}}", "x".repeat(4096));
        let deadline = Instant::now() + Duration::from_millis(300);
        let calls = 64;
        for slot in 0..calls {
            pipes.send_call(slot, "tools/call", &params, deadline);
        }
        let mut done = Vec::new();
        // Every exchange returns by the next tick; a bounded number of them covers the deadline.
        let mut exchanges = 0;
        while done.len() < calls && exchanges < 1000 {
            pipes.exchange_blocking(None, &mut done);
            exchanges += 1;
        }
        assert_eq!(done.len(), calls, "every call completed within {exchanges} exchanges");
        assert!(done.iter().all(|c| matches!(c.outcome, Err(CallError::Timeout))));
        assert!(Instant::now() >= deadline);
        assert!(pipes.out_pos < pipes.out.len(), "the writes stalled: part of the queue is still to go");
        pipes.rebind().unwrap();
        assert!(!pipes.is_blocking());
        child.kill().await.unwrap();
    }
}
