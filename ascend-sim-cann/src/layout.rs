//! Lays out a drop-in CANN library directory: the simulator library once, and every file name
//! of `ascend_sys::Library`'s groups as a symbolic link to it.

use std::io;
use std::path::{Path, PathBuf};

use ascend_sys::Library;

/// The file name of the one library, as cargo builds it.
pub const BUILT_NAME: &str = "libascend_sim_cann.so";

/// Copies `built` into `dir` and links every CANN file name to the copy; returns `dir`.
///
/// The copy is replaced by a rename, so a process still running the previous library keeps its
/// file. Links are relative, so the directory can be moved as a whole.
pub fn install(built: &Path, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let staged = dir.join(format!(".{BUILT_NAME}.new"));
    std::fs::copy(built, &staged)?;
    std::fs::rename(&staged, dir.join(BUILT_NAME))?;
    for name in Library::all_files() {
        let link = dir.join(name);
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::os::unix::fs::symlink(BUILT_NAME, &link)?;
    }
    Ok(dir.to_path_buf())
}
