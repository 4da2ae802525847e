//! systemd's notify protocol (`sd_notify(3)`): tell the service manager when the system is
//! starting, ready, reloading or stopping, and ping its watchdog while the runtime is alive.
//! What is sent when is documented in the crate docs (section *systemd*).
//!
//! The variables are read once, at `build()`. The supervisor of the outermost system sends each
//! notice itself, before its next step; each message is one datagram of `KEY=VALUE` lines on a
//! socket of its own, as `sd_notify` does. It is sent at once when the manager's queue has room
//! (so `STOPPING=1` is on its way before the first component stops, with no wait on the
//! runtime's I/O driver); when the queue is full it retries on tokio's timer for up to [`PATIENCE`],
//! then is dropped. A socket that cannot be reached never fails the system: the first failure is logged
//! as a warning, the rest at debug level.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::builder::Problem;
use crate::report::ExitReason;
use crate::settings::Env;

/// Where the service manager listens.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// The watchdog interval in microseconds; a ping is due every half of it.
const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// The process the watchdog is meant for; a child that inherited the variables does not ping.
const WATCHDOG_PID: &str = "WATCHDOG_PID";

/// How long a message waits for room in a full queue before it is dropped: a stalled manager
/// must not stall the shutdown.
const PATIENCE: Duration = Duration::from_secs(1);

/// A `STATUS=` text longer than this is cut: systemd ignores a whole message over 4 KiB.
const MAX_STATUS: usize = 1024;

#[cfg(unix)]
type Address = std::os::unix::net::SocketAddr;
/// No datagram sockets to notify through: `NOTIFY_SOCKET` is ignored.
#[cfg(not(unix))]
type Address = Infallible;

/// Where to notify and how often to ping: what the environment asks for.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    address: Address,
    /// Half of `WATCHDOG_USEC`, when the watchdog is meant for this process.
    ping_every: Option<Duration>,
}

impl Target {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`; `None` when `NOTIFY_SOCKET`
    /// is unset or empty. Each invalid variable is added to `problems`.
    pub(crate) fn from_env(env: &Env, problems: &mut Vec<Problem>) -> Option<Self> {
        let address = read(env, NOTIFY_SOCKET, address, problems).flatten();
        let interval = read(env, WATCHDOG_USEC, watchdog_usec, problems);
        let pid = read(env, WATCHDOG_PID, watchdog_pid, problems);
        let for_us = pid.is_none_or(|pid| pid == std::process::id());
        Some(Self {
            address: address?,
            ping_every: interval.filter(|_| for_us).map(|interval| interval / 2),
        })
    }
}

/// `variable`, parsed; `None` when it is unset or invalid (then added to `problems`).
fn read<T>(
    env: &Env,
    variable: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let value = env.get(variable)?;
    parse(&value)
        .map_err(|reason| problems.push(Problem::InvalidVariable { variable, reason }))
        .ok()
}

/// Parses `NOTIFY_SOCKET`; `None` when it is empty (as good as unset).
#[cfg(unix)]
fn address(value: &str) -> Result<Option<Address>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let address = if let Some(name) = value.strip_prefix('@') {
        abstract_address(name)
    } else if value.starts_with('/') {
        Address::from_pathname(value)
    } else {
        return Err(format!(
            "expected an absolute path or @name, found '{value}'{}",
            if value.starts_with("vsock:") {
                " (vsock addresses are not supported)"
            } else {
                ""
            }
        ));
    };
    address
        .map(Some)
        .map_err(|error| format!("'{value}' is not a socket address: {error}"))
}

#[cfg(not(unix))]
fn address(_value: &str) -> Result<Option<Address>, String> {
    Ok(None)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &str) -> io::Result<Address> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    Address::from_abstract_name(name)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn abstract_address(_name: &str) -> io::Result<Address> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets exist on Linux only",
    ))
}

/// Parses `WATCHDOG_USEC`: a positive number of microseconds.
fn watchdog_usec(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err("expected a positive number of microseconds, found 0".into()),
        Ok(usec) => Ok(Duration::from_micros(usec)),
        Err(_) => Err(format!(
            "expected a positive number of microseconds, found '{value}'"
        )),
    }
}

/// Parses `WATCHDOG_PID`: a process id.
fn watchdog_pid(value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|&pid| pid > 0)
        .ok_or_else(|| format!("expected a process id, found '{value}'"))
}

/// A change of state worth telling the service manager.
#[derive(Debug)]
pub(crate) enum Notice<'a> {
    /// A start (or the start after a restart) begins.
    Starting,
    /// Every mandatory component started.
    Ready,
    /// Shutdown begins, for this reason.
    Stopping(&'a ExitReason),
    /// A restart begins: the components stop, then start again.
    Reloading,
    /// The runtime is alive.
    Watchdog,
}

impl Notice<'_> {
    /// The datagram: `KEY=VALUE` lines.
    fn message(&self) -> String {
        match self {
            Notice::Starting => "STATUS=starting".into(),
            Notice::Ready => "READY=1\nSTATUS=running".into(),
            Notice::Stopping(reason) => format!(
                "STOPPING=1\nSTATUS={}",
                status(&format!("stopping: {reason}"))
            ),
            Notice::Reloading => match monotonic_usec() {
                Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=restarting"),
                None => "RELOADING=1\nSTATUS=restarting".into(),
            },
            Notice::Watchdog => "WATCHDOG=1".into(),
        }
    }
}

/// `text` as one `STATUS=` value: a line break would start another assignment (an error
/// message must not be able to say `READY=1`), and a long text is cut.
fn status(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_STATUS {
        let mut end = MAX_STATUS;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares reloads on.
#[cfg(unix)]
fn monotonic_usec() -> Option<u128> {
    use nix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    Some(Duration::from(now).as_micros())
}

#[cfg(not(unix))]
fn monotonic_usec() -> Option<u128> {
    None
}

/// Sends notices to the service manager for one run of the outermost system.
#[derive(Debug)]
pub(crate) struct Notifier {
    system: Arc<str>,
    target: Target,
    /// Whether a failure was already logged as a warning.
    warned: AtomicBool,
}

impl Notifier {
    pub(crate) fn new(system: Arc<str>, target: Target) -> Self {
        Self {
            system,
            target,
            warned: AtomicBool::new(false),
        }
    }

    /// Sends `notice`. Returns once the datagram is in the manager's queue, or was dropped
    /// (the queue stayed full for [`PATIENCE`], or the socket cannot be reached: logged).
    pub(crate) async fn send(&self, notice: Notice<'_>) {
        let message = notice.message();
        match deliver(&self.target.address, message.as_bytes()).await {
            Ok(()) => tracing::trace!(system = &*self.system, message, "notified"),
            Err(error) if self.warned.swap(true, Ordering::Relaxed) => {
                tracing::debug!(system = &*self.system, %error, message, "cannot notify");
            }
            Err(error) => tracing::warn!(
                system = &*self.system,
                socket = ?self.target.address,
                %error,
                "cannot notify the service manager through NOTIFY_SOCKET; carrying on \
                 (further failures are logged at debug level)"
            ),
        }
    }

    /// Runs `future` to its end, pinging the watchdog (when `WATCHDOG_USEC` asks for it) every
    /// half interval meanwhile, first at once. The pings come from the task that polls
    /// `future`, so a runtime that stops polling stops pinging.
    pub(crate) async fn keep_alive<F: Future>(&self, future: F) -> F::Output {
        let Some(every) = self.target.ping_every else {
            return future.await;
        };
        tokio::select! {
            biased;
            output = future => output,
            never = self.ping(every) => match never {},
        }
    }

    async fn ping(&self, every: Duration) -> Infallible {
        // The first ping goes out now, not at the timer's next turn: a process can stop sooner.
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            self.send(Notice::Watchdog).await;
            tick.tick().await;
        }
    }
}

/// Sends one datagram to `address`, on a socket of its own (as `sd_notify` does), connected so
/// that a full queue can be waited on.
#[cfg(unix)]
async fn deliver(address: &Address, message: &[u8]) -> io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.connect_addr(address)?;
    socket.set_nonblocking(true)?;
    // A full queue is waited on by retrying on tokio's timer, not by registering the socket
    // with the runtime's I/O driver: a runtime built without I/O must not panic here.
    let deadline = Instant::now() + PATIENCE;
    let mut pause = Duration::from_millis(1);
    loop {
        match socket.send(message) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the queue stayed full for {PATIENCE:?}"),
                    ));
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            sent => return sent.map(drop),
        }
    }
}

#[cfg(not(unix))]
async fn deliver(address: &Address, _message: &[u8]) -> io::Result<()> {
    match *address {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pairs: &[(&str, &str)]) -> (Option<Target>, Vec<Problem>) {
        let mut problems = Vec::new();
        let target = Target::from_env(&Env::from_pairs(pairs.iter().copied()), &mut problems);
        (target, problems)
    }

    fn invalid(problems: &[Problem]) -> Vec<&'static str> {
        problems
            .iter()
            .filter_map(|p| match p {
                Problem::InvalidVariable { variable, .. } => Some(*variable),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn unset_or_empty_socket_means_no_notifications() {
        assert!(target(&[]).0.is_none());
        let (none, problems) = target(&[(NOTIFY_SOCKET, ""), (WATCHDOG_USEC, "1000")]);
        assert!(none.is_none());
        assert!(problems.is_empty());
    }

    #[test]
    fn the_watchdog_pings_at_half_the_interval_for_this_process_only() {
        let socket = (NOTIFY_SOCKET, "/run/systemd/notify");
        let (t, _) = target(&[socket, (WATCHDOG_USEC, "2000000")]);
        assert_eq!(t.unwrap().ping_every, Some(Duration::from_secs(1)));

        let ours = std::process::id().to_string();
        let (t, _) = target(&[socket, (WATCHDOG_USEC, "2000000"), (WATCHDOG_PID, &ours)]);
        assert_eq!(t.unwrap().ping_every, Some(Duration::from_secs(1)));

        let theirs = (std::process::id() + 1).to_string();
        let (t, problems) = target(&[socket, (WATCHDOG_USEC, "2000000"), (WATCHDOG_PID, &theirs)]);
        assert_eq!(t.unwrap().ping_every, None);
        assert!(problems.is_empty());

        assert_eq!(target(&[socket]).0.unwrap().ping_every, None);
    }

    #[test]
    fn invalid_variables_are_each_named() {
        let (_, problems) = target(&[
            (NOTIFY_SOCKET, "run/notify"),
            (WATCHDOG_USEC, "5s"),
            (WATCHDOG_PID, "me"),
        ]);
        assert_eq!(
            invalid(&problems),
            [NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID]
        );
        let (_, problems) = target(&[(WATCHDOG_USEC, "0")]);
        assert_eq!(invalid(&problems), [WATCHDOG_USEC]);
        let (_, problems) = target(&[(NOTIFY_SOCKET, "vsock:2:1234")]);
        assert!(problems[0].to_string().contains("vsock"), "{}", problems[0]);
        let long = format!("/{}", "x".repeat(200));
        let (_, problems) = target(&[(NOTIFY_SOCKET, &long)]);
        assert_eq!(invalid(&problems), [NOTIFY_SOCKET]);
    }

    #[test]
    fn a_status_is_one_bounded_line() {
        let reason = ExitReason::Failed {
            component: "db".into(),
            failure: crate::error::Failure::error("refused\nREADY=1".into()),
        };
        let message = Notice::Stopping(&reason).message();
        assert_eq!(
            message,
            "STOPPING=1\nSTATUS=stopping: component 'db' failed: refused READY=1"
        );
        let long = status(&"é".repeat(MAX_STATUS));
        assert!(long.len() <= MAX_STATUS + '…'.len_utf8());
        assert!(long.ends_with('…'));
    }

    #[cfg(unix)]
    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let message = Notice::Reloading.message();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines[0], "RELOADING=1");
        let usec: u128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .and_then(|usec| usec.parse().ok())
            .unwrap_or_else(|| panic!("MONOTONIC_USEC in {message:?}"));
        assert!(usec > 0 && usec <= monotonic_usec().unwrap());
    }
}
