//! Project tasks: `cargo xtask import-specs <kafka checkout> [--release X]`,
//! `cargo xtask codegen [--check]`.

mod codegen;
mod import;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  cargo xtask import-specs <kafka checkout or message folder> --release <version>\n  cargo xtask codegen [--check]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["import-specs", path, "--release", release] => import::run(
            &PathBuf::from(path),
            release,
            &root().join("protocol-specs"),
        ),
        ["codegen"] => codegen::run(&root(), false),
        ["codegen", "--check"] => codegen::run(&root(), true),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
