//! What happens to a mall, for code that wants to act on it (alerting on `needs_reauth`,
//! cleaning up after an uninstall). Events are also stored (`mall_events`) so another process
//! — a forwarder, a dashboard — can read them.

use cafe24_core::MallId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleEvent {
    Installed {
        mall: MallId,
    },
    Refreshed {
        mall: MallId,
    },
    /// The grant is dead (refresh token rejected): the merchant must install again.
    NeedsReauth {
        mall: MallId,
        reason: String,
    },
    /// Revoked by us, or the app was deleted or expired on Cafe24's side.
    Revoked {
        mall: MallId,
        reason: String,
    },
}

impl LifecycleEvent {
    pub fn mall(&self) -> &MallId {
        match self {
            LifecycleEvent::Installed { mall }
            | LifecycleEvent::Refreshed { mall }
            | LifecycleEvent::NeedsReauth { mall, .. }
            | LifecycleEvent::Revoked { mall, .. } => mall,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            LifecycleEvent::Installed { .. } => "installed",
            LifecycleEvent::Refreshed { .. } => "refreshed",
            LifecycleEvent::NeedsReauth { .. } => "needs_reauth",
            LifecycleEvent::Revoked { .. } => "revoked",
        }
    }
}

/// Called synchronously, in the process where the event happened. Keep it quick.
pub trait LifecycleHook: Send + Sync + 'static {
    fn on_event(&self, event: &LifecycleEvent);
}
