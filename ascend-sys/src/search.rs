//! Where the CANN libraries are looked for.

use std::path::{Path, PathBuf};

/// Our own override: a CANN root (holding `lib64/`) or a directory holding the libraries.
pub const OVERRIDE_VAR: &str = "ASCEND_NPU_CANN_PATH";

/// The variables CANN's `set_env.sh` exports for its install root, in the order they are read.
pub const ROOT_VARS: [&str; 2] = ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"];

/// Default install roots: CANN 9.x, then CANN 8.x.
const DEFAULT_ROOTS: [&str; 2] = [
    "/usr/local/Ascend/cann",
    "/usr/local/Ascend/ascend-toolkit/latest",
];

/// The ordered list of places a CANN library is looked for, and the environment read to build it.
///
/// Order: [`OVERRIDE_VAR`], then [`ROOT_VARS`], then `/usr/local/Ascend/cann`, then
/// `/usr/local/Ascend/ascend-toolkit/latest`, then (optionally) a plain `dlopen` of the file name,
/// which follows `LD_LIBRARY_PATH` and the system's cache.
#[derive(Clone, Debug)]
pub struct CannSearch {
    dirs: Vec<PathBuf>,
    plain_dlopen: bool,
    env: Vec<(String, Option<String>)>,
}

impl CannSearch {
    /// The search described by the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The search described by an environment given as a lookup function.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut dirs = Vec::new();
        let mut env = Vec::new();
        let value = get(OVERRIDE_VAR).filter(|v| !v.is_empty());
        if let Some(dir) = &value {
            // The override may name the library directory itself or a CANN root.
            dirs.push(PathBuf::from(dir));
            dirs.extend(root_lib_dirs(Path::new(dir)));
        }
        env.push((OVERRIDE_VAR.to_string(), value));
        for var in ROOT_VARS {
            let value = get(var).filter(|v| !v.is_empty());
            if let Some(root) = &value {
                dirs.extend(root_lib_dirs(Path::new(root)));
            }
            env.push((var.to_string(), value));
        }
        for root in DEFAULT_ROOTS {
            dirs.extend(root_lib_dirs(Path::new(root)));
        }
        dedup_keep_first(&mut dirs);
        CannSearch {
            dirs,
            plain_dlopen: true,
            env,
        }
    }

    /// A search of exactly these directories, reading no environment.
    pub fn in_dirs<P: Into<PathBuf>>(
        dirs: impl IntoIterator<Item = P>,
        plain_dlopen: bool,
    ) -> Self {
        let mut dirs: Vec<PathBuf> = dirs.into_iter().map(Into::into).collect();
        dedup_keep_first(&mut dirs);
        CannSearch {
            dirs,
            plain_dlopen,
            env: Vec::new(),
        }
    }

    /// The directories searched, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Whether a plain `dlopen` of the bare file name is tried last.
    pub fn plain_dlopen(&self) -> bool {
        self.plain_dlopen
    }

    /// The environment variables read to build this search, with their values (`None` = unset).
    pub fn env(&self) -> &[(String, Option<String>)] {
        &self.env
    }

    /// Every path to try for one library file, in order; the last may be the bare file name.
    pub fn paths_for(&self, file: &str) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.dirs.iter().map(|dir| dir.join(file)).collect();
        if self.plain_dlopen {
            paths.push(PathBuf::from(file));
        }
        paths
    }
}

/// The library directories of a CANN root: `lib64`, then the architecture mirror.
fn root_lib_dirs(root: &Path) -> [PathBuf; 2] {
    [
        root.join("lib64"),
        root.join(format!("{}-linux", std::env::consts::ARCH))
            .join("lib64"),
    ]
}

fn dedup_keep_first(dirs: &mut Vec<PathBuf>) {
    let mut seen = Vec::new();
    dirs.retain(|d| {
        if seen.contains(d) {
            false
        } else {
            seen.push(d.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn order_is_override_then_env_roots_then_defaults_then_plain() {
        let search = CannSearch::from_vars(vars(&[
            (OVERRIDE_VAR, "/opt/mine"),
            ("ASCEND_HOME_PATH", "/opt/home"),
            ("ASCEND_TOOLKIT_HOME", "/opt/home"),
        ]));
        let paths = search.paths_for("libacl_rt.so");
        let arch = std::env::consts::ARCH;
        let expected = [
            "/opt/mine/libacl_rt.so".to_string(),
            "/opt/mine/lib64/libacl_rt.so".to_string(),
            format!("/opt/mine/{arch}-linux/lib64/libacl_rt.so"),
            "/opt/home/lib64/libacl_rt.so".to_string(),
            format!("/opt/home/{arch}-linux/lib64/libacl_rt.so"),
            "/usr/local/Ascend/cann/lib64/libacl_rt.so".to_string(),
            format!("/usr/local/Ascend/cann/{arch}-linux/lib64/libacl_rt.so"),
            "/usr/local/Ascend/ascend-toolkit/latest/lib64/libacl_rt.so".to_string(),
            format!("/usr/local/Ascend/ascend-toolkit/latest/{arch}-linux/lib64/libacl_rt.so"),
            "libacl_rt.so".to_string(),
        ];
        let got: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn every_variable_read_is_recorded_even_when_unset() {
        let search = CannSearch::from_vars(vars(&[("ASCEND_TOOLKIT_HOME", "/t")]));
        let env: Vec<(&str, Option<&str>)> = search
            .env()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            env,
            [
                (OVERRIDE_VAR, None),
                ("ASCEND_HOME_PATH", None),
                ("ASCEND_TOOLKIT_HOME", Some("/t"))
            ]
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let search = CannSearch::from_vars(vars(&[(OVERRIDE_VAR, "")]));
        assert_eq!(search.env()[0].1, None);
        assert!(search.dirs()[0].starts_with("/usr/local/Ascend/cann"));
    }
}
