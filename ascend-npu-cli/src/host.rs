//! The machine a report was made on: wall times on a shared host vary with its load, so every
//! report records the host, its cores and its load average beside the time and revision.

use serde::{Deserialize, Serialize};

/// Where and when a report was made.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host name (`/proc/sys/kernel/hostname`, `unknown` elsewhere).
    pub name: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// The 1, 5 and 15 minute load averages (`/proc/loadavg`), when the system has them.
    pub load_average: Option<[f64; 3]>,
    /// UTC time the run started, RFC 3339.
    pub time: String,
    /// `git describe --always --dirty` of the library when the tool was built, or `unknown`.
    pub git_revision: String,
    /// The tool's version.
    pub tool_version: String,
}

impl HostInfo {
    /// The facts of this process's host, now.
    pub fn now() -> HostInfo {
        HostInfo {
            name: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".to_string()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            load_average: load_average(),
            time: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            git_revision: env!("GIT_REVISION").to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}
