//! Examples as fixtures: find the binary `cargo test` built, and refuse a stale one. Shared by
//! the integration tests of every crate whose examples are fixtures (others include this file
//! with `#[path]`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `target/<profile>/examples/<example>`, next to the `deps` folder the running test binary is
/// in. It must be newer than every file in `sources` (files or folders); `package` is the crate
/// whose tests build it, for the message.
pub(crate) fn example(package: &str, example: &str, sources: &[PathBuf]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary runs from target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{example}{}", std::env::consts::EXE_SUFFIX));
    let rebuild = format!(
        "run these tests with `cargo test -p {package}`, which builds the examples \
         (`cargo test --test it` alone does not)"
    );
    let built = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {rebuild}", path.display()));
    let newest = sources.iter().map(|source| newest_change(source)).max();
    assert!(
        newest.is_none_or(|newest| built >= newest),
        "{} is older than its sources: {rebuild}",
        path.display()
    );
    path
}

/// The latest modification time of a file, or of any file below a folder.
fn newest_change(path: &Path) -> SystemTime {
    let Ok(meta) = std::fs::metadata(path) else {
        return SystemTime::UNIX_EPOCH;
    };
    if !meta.is_dir() {
        return meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| newest_change(&entry.path()))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}
