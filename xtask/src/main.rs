//! Project tasks: `cargo xtask import-specs [<kafka checkout>] --release X`
//! (without a path, the release's kafka-clients jar is fetched from Maven
//! Central), `cargo xtask codegen [--check]`.

mod codegen;
mod import;
mod merge;
mod spec;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  cargo xtask import-specs [<kafka checkout or message folder>] --release <version>\n  cargo xtask codegen [--check]"
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
        ["import-specs", "--release", release] => import::fetch_release(release).and_then(|dir| {
            let done = import::run(&dir, release, &root().join("protocol-specs"));
            // The unpacked jar: dir is <tmp>/common/message.
            if let Some(tmp) = dir.parent().and_then(Path::parent) {
                let _ = std::fs::remove_dir_all(tmp);
            }
            done
        }),
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
