//! Why a symbol could not be resolved.

use std::fmt;
use std::sync::Arc;

/// One place a library was looked for, and what the loader said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The path given to the loader (a bare file name for a plain `dlopen`).
    pub path: String,
    /// The loader's message, or why the opened library did not serve the symbol.
    pub message: String,
}

/// A function could not be resolved. Cheap to clone: resolution results are cached per symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError(Arc<LoadErrorKind>);

#[derive(Debug, PartialEq, Eq)]
enum LoadErrorKind {
    NotFound {
        symbol: &'static str,
        library: &'static str,
        candidates: &'static [&'static str],
        attempts: Vec<Attempt>,
        env: Vec<(String, Option<String>)>,
    },
    NotProvided {
        symbol: &'static str,
        provider: &'static str,
    },
}

impl LoadError {
    pub(crate) fn not_found(
        symbol: &'static str,
        library: crate::Library,
        attempts: Vec<Attempt>,
        env: Vec<(String, Option<String>)>,
    ) -> Self {
        LoadError(Arc::new(LoadErrorKind::NotFound {
            symbol,
            library: library.name(),
            candidates: library.candidates(),
            attempts,
            env,
        }))
    }

    pub(crate) fn not_provided(symbol: &'static str, provider: &'static str) -> Self {
        LoadError(Arc::new(LoadErrorKind::NotProvided { symbol, provider }))
    }

    /// The C name of the function that could not be resolved.
    pub fn symbol(&self) -> &'static str {
        match &*self.0 {
            LoadErrorKind::NotFound { symbol, .. } | LoadErrorKind::NotProvided { symbol, .. } => {
                symbol
            }
        }
    }

    /// Every place tried, with the loader's message (empty for a built-in provider).
    pub fn attempts(&self) -> &[Attempt] {
        match &*self.0 {
            LoadErrorKind::NotFound { attempts, .. } => attempts,
            LoadErrorKind::NotProvided { .. } => &[],
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            LoadErrorKind::NotProvided { symbol, provider } => write!(
                f,
                "`{symbol}` is not implemented by the {provider} provider; \
                 use the cann provider on a machine with an NPU for this call"
            ),
            LoadErrorKind::NotFound {
                symbol,
                library,
                candidates,
                attempts,
                env,
            } => {
                write!(
                    f,
                    "cannot resolve `{symbol}` ({library}): none of {} could be opened \
                     and export it",
                    candidates.join(", ")
                )?;
                for attempt in attempts {
                    write!(f, "\n  tried {}: {}", attempt.path, attempt.message)?;
                }
                if !env.is_empty() {
                    let vars: Vec<String> = env
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("<unset>")))
                        .collect();
                    write!(f, "\n  environment read: {}", vars.join(", "))?;
                }
                write!(
                    f,
                    "\n  hint: install CANN and source its set_env.sh, or set {} to the \
                     directory holding the libraries",
                    crate::OVERRIDE_VAR
                )
            }
        }
    }
}

impl std::error::Error for LoadError {}
