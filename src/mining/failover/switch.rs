//! The `switchpool` request: from the APIs to the failover supervisor.

/// Asks a running [`super::FailoverSource`] to move to another of its pools (the cgminer API's
/// `switchpool`), which becomes the one it prefers (it goes back there after a failover, as it
/// would to the first). Clones share the request.
#[derive(Clone, Debug, Default)]
pub struct PoolSwitch(std::sync::Arc<SwitchInner>);

#[derive(Debug, Default)]
struct SwitchInner {
    wanted: std::sync::Mutex<Option<usize>>,
    notify: tokio::sync::Notify,
}

impl PoolSwitch {
    /// Mine on pool `index` (0-based, in the order of the pool list) from now on.
    pub fn request(&self, index: usize) {
        *self.0.wanted.lock().unwrap_or_else(|e| e.into_inner()) = Some(index);
        self.0.notify.notify_one();
    }

    /// The pool asked for since the last take, if any.
    pub(crate) fn take(&self) -> Option<usize> {
        self.0
            .wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Resolves when a request may have come (then [`Self::take`] it).
    pub(crate) async fn requested(&self) {
        self.0.notify.notified().await;
    }
}
