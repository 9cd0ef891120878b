//! The generator's task file: any text is a valid task or a list of errors without panicking,
//! and a valid task's output_dir never leaves the project.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match cafe24_generate::task::parse(&text) {
        Ok(task) => {
            assert!(!task.output_dir.starts_with('/'));
            assert!(!task.output_dir.split('/').any(|p| p == ".."));
            assert!(!task.required_scopes.is_empty());
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
