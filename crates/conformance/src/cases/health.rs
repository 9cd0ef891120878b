//! Liveness and readiness on every process.

use crate::check::Outcome;
use crate::world::World;

pub async fn healthz_and_readyz(w: &World<'_>) -> Outcome {
    for server in &w.servers {
        for path in ["/healthz", "/readyz"] {
            let answer = w.get(&format!("{server}{path}")).await?;
            crate::ensure!(
                answer.status == 200,
                "GET {server}{path} answered {}, expected 200",
                answer.summary()
            );
        }
    }
    Ok(format!("{} process(es) live and ready", w.servers.len()))
}
