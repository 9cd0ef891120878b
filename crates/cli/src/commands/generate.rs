//! `generate`: the task-file generator (see crates/generate and docs/generate.md).

use cafe24_generate::{Mode, Options};

use super::Exit;
use crate::args::GenerateArgs;

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let root = std::env::current_dir()?;
    let report = if args.agent {
        cafe24_generate::write_agent(&root)
    } else {
        cafe24_generate::generate(&Options {
            root,
            task: args.task.clone(),
            result: args.result.clone(),
            mode: if args.check {
                Mode::Check
            } else if args.dry_run {
                Mode::DryRun { diff: args.diff }
            } else {
                Mode::Apply
            },
            force: args.force,
            fail_after: None,
        })
    };
    print!("{}", report.stdout);
    eprint!("{}", report.stderr);
    match u8::try_from(report.exit_code) {
        Ok(0) => Ok(()),
        Ok(code) => Err(Exit(code).into()),
        Err(_) => Err(Exit(1).into()),
    }
}
