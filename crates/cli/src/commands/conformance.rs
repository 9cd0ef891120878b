//! `conformance`: the kit (crates/conformance) checking COMMAND against the contract.

use anyhow::bail;

pub async fn run(args: cafe24_conformance::ConformanceArgs) -> anyhow::Result<()> {
    let report = cafe24_conformance::run(args).await?;
    if report.failed() > 0 {
        bail!("{} conformance case(s) failed", report.failed());
    }
    Ok(())
}
