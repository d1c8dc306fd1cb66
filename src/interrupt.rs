//! Ctrl-C, SIGTERM and SIGHUP: the first stops the run gracefully (faults healed, servers
//! stopped, history checked, verdict printed); a second exits at once, as a shell reports a death
//! by that signal (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
//!
//! On an immediate exit the servers still die with slotcheck (they are started with
//! `PR_SET_PDEATHSIG`), and iptables chains left by a dead run are removed at the start of the
//! next run on a machine that can partition (`nemesis::net::cleanup_stale`).

use std::io::Write;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The signals that stop a run: their names and numbers.
const STOPPING: [(&str, i32); 3] = [
    ("interrupted (SIGINT)", libc::SIGINT),
    ("terminated (SIGTERM)", libc::SIGTERM),
    ("hung up (SIGHUP)", libc::SIGHUP),
];

/// Installs the handlers; the returned token is cancelled on the first of the signals.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    // Registering fails only when signals cannot be handled at all; then the default stays.
    let mut streams: Vec<Option<Signal>> = STOPPING
        .iter()
        .map(|(_, number)| signal(SignalKind::from_raw(*number)).ok())
        .collect();
    tokio::spawn(async move {
        let Some((name, _)) = next(&mut streams).await else {
            return;
        };
        // After a hang-up stderr may be gone: a failed write must not end the graceful stop.
        let _ = writeln!(
            std::io::stderr(),
            "[WARNING] {name}: healing faults and stopping (again to exit now)"
        );
        fired.cancel();
        if let Some((name, number)) = next(&mut streams).await {
            let _ = writeln!(std::io::stderr(), "[ERR] {name} twice: exiting now");
            std::process::exit(128 + number);
        }
    });
    token
}

/// Waits for the next of the signals (`streams` in the order of [`STOPPING`]); `None` if none
/// can arrive.
async fn next(streams: &mut [Option<Signal>]) -> Option<(&'static str, i32)> {
    async fn recv(stream: &mut Option<Signal>) -> Option<()> {
        match stream {
            Some(s) => s.recv().await,
            None => std::future::pending().await,
        }
    }
    if streams.iter().all(Option::is_none) {
        return None;
    }
    let [int, term, hup] = streams else {
        return None;
    };
    let which = tokio::select! {
        got = recv(int) => got.map(|_| 0),
        got = recv(term) => got.map(|_| 1),
        got = recv(hup) => got.map(|_| 2),
    };
    which.map(|i| STOPPING[i])
}
