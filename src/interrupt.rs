//! Ctrl-C: the first press stops the run gracefully (faults healed, servers stopped, history
//! checked); a second press exits at once.
//!
//! On an immediate exit the servers still die with slotcheck (they are started with
//! `PR_SET_PDEATHSIG`), and iptables chains left by a dead run are removed by the next run.

use tokio_util::sync::CancellationToken;

/// Exit code after a second Ctrl-C, as a shell reports a death by SIGINT.
const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handler; the returned token is cancelled on the first Ctrl-C.
pub fn install() -> CancellationToken {
    let token = CancellationToken::new();
    let fired = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("[WARNING] interrupted: healing faults and stopping (Ctrl-C again to exit now)");
        fired.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("[ERR] interrupted twice: exiting now");
            std::process::exit(EXIT_INTERRUPTED);
        }
    });
    token
}
