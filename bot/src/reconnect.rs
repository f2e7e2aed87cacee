//! Keeping a long-lived chat connection (Slack Socket Mode, the Discord Gateway) up.

use std::time::Duration;

use tokio::sync::watch;

/// Runs `session` until `shutdown`, starting it again when it ends: at once after a clean end
/// (the platform asked to reconnect), after an exponential backoff up to `cap` after a failure.
pub async fn forever<F, Fut>(what: &str, cap: Duration, mut shutdown: watch::Receiver<bool>, mut session: F)
where
    F: FnMut(watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match session(shutdown.clone()).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!("{what} connection failed, retrying in {backoff:?}: {e:#}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(cap);
            }
        }
    }
}
