//! The shapes a run uses: `small` (seconds on the simulator, the test suite's run),
//! `deepseek-v3` (the model's real shapes), or a TOML file with the same fields.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The shapes of every operator family. A TOML preset gives every field, e.g.
///
/// ```toml
/// name = "mine"
/// swiglu = [1, 4097]
/// matmul = [[1, 1, 1], [17, 33, 65]]
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Name in reports.
    pub name: String,
    /// SwiGLU element counts.
    pub swiglu: Vec<usize>,
    /// Matmul `[m, n, k]`.
    pub matmul: Vec<[usize; 3]>,
}

impl Preset {
    /// `small`, `deepseek-v3`, or the path of a TOML preset.
    pub fn load(name: &str) -> Result<Preset, String> {
        match name {
            "small" => Ok(Preset::small()),
            "deepseek-v3" => Ok(Preset::deepseek_v3()),
            path => {
                let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
                    format!(
                        "preset {path:?} cannot be read ({e}); expected `small`, `deepseek-v3` \
                         or the path of a TOML preset"
                    )
                })?;
                toml::from_str(&text).map_err(|e| format!("preset {path:?} is not valid: {e}"))
            }
        }
    }

    /// Odd and edge sizes that finish in seconds on the simulator in a debug build.
    pub fn small() -> Preset {
        Preset {
            name: "small".to_string(),
            swiglu: vec![1, 31, 4097],
            matmul: vec![[1, 1, 1], [3, 17, 40], [17, 33, 65]],
        }
    }

    /// DeepSeek-V3's shapes (hidden 7168, MoE intermediate 2048, dense intermediate 18432), at
    /// a decode batch of 16 tokens.
    pub fn deepseek_v3() -> Preset {
        Preset {
            name: "deepseek-v3".to_string(),
            swiglu: vec![16 * 2048, 16 * 18432],
            matmul: vec![[16, 2048, 7168], [16, 7168, 2048]],
        }
    }
}
