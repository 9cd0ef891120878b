//! `bootstrap`: the Lambda custom runtime. Builds the function chosen by `CAFE24_LAMBDA_HANDLER`
//! from the environment and serves invocations (see docs/lambda.md). Exit codes: 2 for a
//! configuration error, 1 for any other failure — both reported to `/init/error` first.

use std::process::ExitCode;

fn main() -> ExitCode {
    // One thread: a Lambda sandbox handles one invocation at a time, and starts faster so.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cafe24_lambda::main()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
