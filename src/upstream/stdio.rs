//! stdio transport: a spawned backend process speaking newline-delimited JSON-RPC on stdin/stdout.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tracing::{Instrument, debug, info, warn};

use super::{AbortOnDrop, UpstreamError, UpstreamEvent, truncate_for_log};
use crate::config::{BackendConfig, TransportConfig};
use crate::protocol::Message;

/// Longest stdout line (one JSON-RPC message) accepted; longer lines are skipped unbuffered.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Longest part of a stderr line kept for the log.
const MAX_STDERR_LOG: usize = 1024;
/// Longest part of a malformed stdout line shown in the log.
const MAX_BAD_LINE_LOG: usize = 200;
/// Messages queued for stdin before `send` waits.
const STDIN_QUEUE: usize = 64;
/// The only gateway environment variables a backend sees (besides its configured `env`).
const INHERITED_ENV: [&str; 4] = ["PATH", "HOME", "LANG", "TMPDIR"];
/// After stdin is closed, how long the process gets to exit on its own.
const STDIN_GRACE: Duration = Duration::from_secs(2);
/// After SIGTERM, how long the process group gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(1);
/// After the process exits, how long stdout may take to drain.
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Upper bound of `close()`.
const CLOSE_BOUND: Duration = Duration::from_secs(8);

/// A running backend process in its own process group.
pub struct StdioUpstream {
    name: Arc<str>,
    pid: u32,
    pgid: Pid,
    /// Taken by `close()`: dropping it closes the process's stdin.
    stdin: Option<mpsc::Sender<Bytes>>,
    /// Taken by `close()`: tells the lifecycle task to stop the process.
    shutdown: Option<oneshot::Sender<()>>,
    /// Set once no process of the group is left to kill.
    group_gone: Arc<AtomicBool>,
    lifecycle: AbortOnDrop,
    _writer: AbortOnDrop,
    _stderr: AbortOnDrop,
}

/// The task that owns the child: waits for its exit, stops it on `close()`, cleans up its
/// group, and sends the final `Closed` event.
struct Lifecycle {
    name: Arc<str>,
    child: Child,
    pgid: Pid,
    /// Aborted with the lifecycle task: a pipe held open outside the group must not leak it.
    reader: AbortOnDrop,
    events: mpsc::Sender<UpstreamEvent>,
    shutdown: oneshot::Receiver<()>,
    group_gone: Arc<AtomicBool>,
}

/// What one bounded line read produced.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A whole line (without its newline) is in the buffer.
    Complete,
    /// The line was longer than the limit: the buffer holds its first `max` bytes.
    TooLong,
    Eof,
}

impl std::fmt::Debug for StdioUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioUpstream")
            .field("backend", &self.name)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl StdioUpstream {
    /// Starts the process with a cleared environment (PATH, HOME, LANG, TMPDIR and the
    /// configured `env` only) in a new process group.
    pub async fn spawn(
        cfg: &BackendConfig,
        events: mpsc::Sender<UpstreamEvent>,
    ) -> Result<Self, UpstreamError> {
        let TransportConfig::Stdio {
            command,
            args,
            env,
            cwd,
        } = &cfg.transport
        else {
            return Err(UpstreamError::Connect(format!(
                "backend {} is not a stdio backend",
                cfg.name
            )));
        };
        let mut cmd = Command::new(command);
        cmd.args(args).env_clear();
        for key in INHERITED_ENV {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in env {
            cmd.env(k, v.expose());
        }
        if let Some(dir) = cwd {
            if !dir.is_dir() {
                return Err(UpstreamError::Connect(format!(
                    "working directory `{}` does not exist",
                    dir.display()
                )));
            }
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            UpstreamError::Connect(format!("cannot start `{}`: {e}", command.display()))
        })?;
        let name: Arc<str> = cfg.name.as_str().into();
        let pid = child.id();
        let (Some(pid), Some(stdin), Some(stdout), Some(stderr)) = (
            pid,
            child.stdin.take(),
            child.stdout.take(),
            child.stderr.take(),
        ) else {
            return Err(UpstreamError::Connect(
                "backend process has no pid or pipes".into(),
            ));
        };
        let pgid = Pid::from_raw(
            i32::try_from(pid)
                .map_err(|_| UpstreamError::Connect("backend process id out of range".into()))?,
        );
        info!(backend = %name, pid, "Backend process started");

        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        let (shutdown_tx, shutdown) = oneshot::channel();
        let group_gone = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_stdin(name.clone(), stdin, stdin_rx).in_current_span());
        let stderr = tokio::spawn(log_stderr(name.clone(), stderr).in_current_span());
        let reader =
            tokio::spawn(read_stdout(name.clone(), stdout, events.clone()).in_current_span());
        let lifecycle = Lifecycle {
            name: name.clone(),
            child,
            pgid,
            reader: AbortOnDrop(reader),
            events,
            shutdown,
            group_gone: group_gone.clone(),
        };
        Ok(Self {
            name,
            pid,
            pgid,
            stdin: Some(stdin_tx),
            shutdown: Some(shutdown_tx),
            group_gone,
            lifecycle: AbortOnDrop(tokio::spawn(lifecycle.run().in_current_span())),
            _writer: AbortOnDrop(writer),
            _stderr: AbortOnDrop(stderr),
        })
    }

    /// The process id, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Queues one message as a JSON line for stdin; waits only if the queue is full.
    pub async fn send(&self, msg: Message) -> Result<(), UpstreamError> {
        let closed = || UpstreamError::Closed("backend process stdin is closed".into());
        let stdin = self.stdin.as_ref().ok_or_else(closed)?;
        let json = msg.to_bytes();
        let mut line = BytesMut::with_capacity(json.len() + 1);
        line.put_slice(&json);
        line.put_u8(b'\n');
        stdin.send(line.freeze()).await.map_err(|_| closed())
    }

    /// Closes stdin, gives the process 2 s to exit, then SIGTERMs and (1 s later) SIGKILLs
    /// its whole process group. Returns once the group is gone (bounded).
    pub async fn close(mut self) {
        self.stdin = None;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if timeout(CLOSE_BOUND, &mut self.lifecycle.0).await.is_err() {
            warn!(backend = %self.name, "Backend process did not stop in time; killing its group");
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for StdioUpstream {
    fn drop(&mut self) {
        // The lifecycle task is aborted with us and only kills the leader (kill_on_drop);
        // grandchildren in the group must not outlive the connection.
        if !self.group_gone.load(Ordering::Acquire) {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

impl Lifecycle {
    async fn run(mut self) {
        let status = tokio::select! {
            status = self.child.wait() => status,
            _ = &mut self.shutdown => self.stop_leader().await,
        };
        // The leader is gone; leftovers of its group (e.g. an `npx` launcher's children) go too.
        reap_group(self.pgid).await;
        self.group_gone.store(true, Ordering::Release);
        // Deliver what the process wrote before it died, then report the end.
        let _ = timeout(DRAIN_GRACE, &mut self.reader.0).await;
        let error = match status {
            Ok(status) => {
                info!(backend = %self.name, %status, "Backend process exited");
                UpstreamError::Closed(exit_text(status))
            }
            Err(e) => UpstreamError::Io(format!("waiting for the backend process: {e}")),
        };
        let _ = self.events.send(UpstreamEvent::Closed { error }).await;
    }

    /// stdin is already closed: wait, then SIGTERM, then SIGKILL the group.
    async fn stop_leader(&mut self) -> io::Result<ExitStatus> {
        if let Ok(status) = timeout(STDIN_GRACE, self.child.wait()).await {
            return status;
        }
        debug!(backend = %self.name, "Backend ignored stdin close; sending SIGTERM to its group");
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if let Ok(status) = timeout(TERM_GRACE, self.child.wait()).await {
            return status;
        }
        debug!(backend = %self.name, "Backend ignored SIGTERM; sending SIGKILL to its group");
        let _ = killpg(self.pgid, Signal::SIGKILL);
        self.child.wait().await
    }
}

/// Ends whatever is left in the group: SIGTERM, up to 1 s for it to empty, then SIGKILL.
async fn reap_group(pgid: Pid) {
    if killpg(pgid, None).is_err() {
        return; // nobody left
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + TERM_GRACE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if killpg(pgid, None).is_err() {
            return;
        }
    }
    let _ = killpg(pgid, Signal::SIGKILL);
}

fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("backend process exited with status {code}"),
        (None, Some(sig)) => format!("backend process was killed by signal {sig}"),
        _ => format!("backend process ended: {status}"),
    }
}

/// Owns stdin: writes queued lines until the queue closes or the pipe breaks.
async fn write_stdin(name: Arc<str>, mut stdin: ChildStdin, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(line) = rx.recv().await {
        if let Err(error) = stdin.write_all(&line).await {
            debug!(backend = %name, %error, "Backend stdin closed");
            return;
        }
    }
    // Dropping stdin here signals EOF to the process.
}

/// Turns stdout lines into message events; malformed or oversized lines are logged and skipped.
async fn read_stdout(name: Arc<str>, stdout: ChildStdout, events: mpsc::Sender<UpstreamEvent>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut buf = Vec::new();
    loop {
        match read_line_limited(&mut reader, &mut buf, MAX_LINE_BYTES).await {
            Ok(Line::Complete) => {}
            Ok(Line::TooLong) => {
                warn!(backend = %name, max_bytes = MAX_LINE_BYTES, "Skipping an oversized line from backend stdout");
                continue;
            }
            Ok(Line::Eof) => return,
            Err(error) => {
                debug!(backend = %name, %error, "Reading backend stdout failed");
                return;
            }
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Message::parse(&buf) {
            Ok(msg) => {
                let ev = UpstreamEvent::Message { msg, related: None };
                if events.send(ev).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let text = String::from_utf8_lossy(&buf);
                let line = truncate_for_log(&text, MAX_BAD_LINE_LOG);
                warn!(backend = %name, %error, line, "Skipping a malformed line from backend stdout");
            }
        }
    }
}

/// Logs stderr lines (truncated) under the backend's name.
async fn log_stderr(name: Arc<str>, stderr: ChildStderr) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    while let Ok(Line::Complete | Line::TooLong) =
        read_line_limited(&mut reader, &mut buf, MAX_STDERR_LOG).await
    {
        let text = String::from_utf8_lossy(&buf);
        let line = text.trim_end();
        if line.is_empty() {
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if ["error", "fatal", "panic", "exception"]
            .iter()
            .any(|w| lower.contains(w))
        {
            warn!(backend = %name, line, "Backend stderr");
        } else {
            info!(backend = %name, line, "Backend stderr");
        }
    }
}

/// Reads one `\n`-terminated line into `buf` (newline and a trailing `\r` removed), keeping
/// at most `max` bytes: the rest of a longer line is consumed and dropped, never buffered.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Complete,
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        let room = max.saturating_sub(buf.len());
        if chunk.len() > room {
            too_long = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = newline.map_or(available.len(), |i| i + 1);
        r.consume(used);
        if newline.is_some() {
            if !too_long && buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<(Line, Vec<u8>)> {
        let mut r = BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let l = read_line_limited(&mut r, &mut buf, max)
                .await
                .expect("in-memory read");
            if l == Line::Eof {
                return out;
            }
            out.push((l, buf.clone()));
        }
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_reading_resumes_after_them() {
        let got = lines(b"ab\r\n0123456789\nxyz", 5).await;
        assert_eq!(
            got,
            vec![
                (Line::Complete, b"ab".to_vec()),
                (Line::TooLong, b"01234".to_vec()),
                (Line::Complete, b"xyz".to_vec()),
            ]
        );
    }
}
