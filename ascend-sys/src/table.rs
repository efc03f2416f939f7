//! The function table: one lazily resolved slot per C function.

use std::sync::OnceLock;

use crate::error::{Attempt, LoadError};
use crate::library::Library;
use crate::search::CannSearch;

/// Maps a generated `PFN_<name>` type (`Option<unsafe extern "C" fn(..)>`) to the bare pointer.
pub trait FnPtr {
    /// The non-nullable function pointer type.
    type Target: Copy;
}

impl<T: Copy> FnPtr for Option<T> {
    type Target = T;
}

/// Where an [`Api`]'s functions come from.
pub(crate) enum Source {
    /// Functions compiled into the process (the simulator).
    Static {
        provider: &'static str,
        symbols: Box<crate::StaticSymbols>,
    },
    /// CANN's shared libraries, opened on first use.
    Dynamic(DynamicLoader),
}

/// The outcome of opening one library file: the library and the path it was opened from, or
/// every path tried.
type OpenedFile = OnceLock<Result<(libloading::Library, String), Vec<Attempt>>>;

/// Opens each CANN library file at most once, keeping it loaded for the life of the process
/// (function pointers handed out must never dangle).
pub(crate) struct DynamicLoader {
    search: CannSearch,
    files: Vec<(&'static str, OpenedFile)>,
}

impl DynamicLoader {
    pub(crate) fn new(search: CannSearch) -> Self {
        let files = Library::all_files()
            .into_iter()
            .map(|f| (f, OnceLock::new()))
            .collect();
        DynamicLoader { search, files }
    }

    fn open(&self, file: &str) -> &Result<(libloading::Library, String), Vec<Attempt>> {
        let (_, slot) = self
            .files
            .iter()
            .find(|(name, _)| *name == file)
            .expect("every candidate file is registered by DynamicLoader::new");
        slot.get_or_init(|| {
            let mut attempts = Vec::new();
            for path in self.search.paths_for(file) {
                match open_library(&path) {
                    Ok(lib) => return Ok((lib, path.display().to_string())),
                    Err(e) => attempts.push(Attempt {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    }),
                }
            }
            if attempts.is_empty() {
                attempts.push(Attempt {
                    path: file.to_string(),
                    message: "not tried: the search has no directories and plain dlopen is off"
                        .to_string(),
                });
            }
            Err(attempts)
        })
    }

    /// Each library file opened so far, with the path it was opened from.
    pub(crate) fn opened(&self) -> Vec<(&'static str, String)> {
        self.files
            .iter()
            .filter_map(|(file, slot)| match slot.get() {
                Some(Ok((_, path))) => Some((*file, path.clone())),
                _ => None,
            })
            .collect()
    }

    /// Finds `symbol` in the first candidate library of `library` that exports it.
    pub(crate) fn resolve<T: Copy>(
        &self,
        symbol: &'static str,
        library: Library,
    ) -> Result<T, LoadError> {
        let mut attempts = Vec::new();
        let mut name = Vec::with_capacity(symbol.len() + 1);
        name.extend_from_slice(symbol.as_bytes());
        name.push(0);
        for file in library.candidates() {
            match self.open(file) {
                Ok((lib, _)) => {
                    // SAFETY: `T` is the `PFN_<symbol>` pointer type bindgen generated from our
                    // header's prototype for `symbol`, which is the prototype CANN documents for
                    // that exported name. The library stays loaded for the life of `self`.
                    match unsafe { lib.get::<T>(&name) } {
                        Ok(f) => return Ok(*f),
                        Err(e) => attempts.push(Attempt {
                            path: file.to_string(),
                            message: format!("opened, but: {e}"),
                        }),
                    }
                }
                Err(tried) => attempts.extend(tried.iter().cloned()),
            }
        }
        Err(LoadError::not_found(
            symbol,
            library,
            attempts,
            self.search.env().to_vec(),
        ))
    }
}

#[cfg(unix)]
fn open_library(path: &std::path::Path) -> Result<libloading::Library, libloading::Error> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: opening a CANN library runs its initialisers, which is the documented way to use
    // it. RTLD_GLOBAL lets the CANN libraries find each other's symbols, as they expect when
    // linked normally.
    unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map(Into::into)
}

#[cfg(not(unix))]
fn open_library(path: &std::path::Path) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: as above; there is no global-scope option on this platform.
    unsafe { libloading::Library::new(path) }
}

/// Defines [`StaticSymbols`] and [`Api`] from the generated symbol list (`symbols.rs`).
macro_rules! function_table {
    ($($name:ident: $pfn:ident in $library:ident,)*) => {
        /// A table of functions compiled into the process; a provider such as the simulator
        /// fills the fields it implements and leaves the rest `None`.
        ///
        /// Each field has the exact pointer type of its C prototype, so a provider whose
        /// function has the wrong signature does not compile.
        #[derive(Clone, Copy, Default)]
        pub struct StaticSymbols {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub $name: $crate::bindings::$pfn,
            )*
        }

        impl StaticSymbols {
            /// Leaves the function `name` out of the table, as a CANN release without it would
            /// (a provider simulating such a release, or a test of the fallback the library
            /// takes then). `false` when the table has no function of that name.
            pub fn remove(&mut self, name: &str) -> bool {
                match name {
                    $(stringify!($name) => {
                        self.$name = None;
                        true
                    })*
                    _ => false,
                }
            }
        }

        /// The C interface of one provider: one method per C function, named as in C.
        ///
        /// Each method returns the function pointer, resolving it on first use, or a
        /// [`LoadError`]($crate::LoadError) that says why it is unavailable. Calling the pointer is
        /// `unsafe`: the caller upholds the C function's documented contract.
        pub struct Api {
            source: $crate::table::Source,
            slots: ApiSlots,
        }

        struct ApiSlots {
            $(
                $name: ::std::sync::OnceLock<
                    Result<<$crate::bindings::$pfn as $crate::FnPtr>::Target, $crate::LoadError>,
                >,
            )*
        }

        impl Api {
            /// An API served by the CANN libraries found by `search`. Nothing is opened until a
            /// function is first asked for.
            pub fn cann(search: $crate::CannSearch) -> Self {
                Self::with_source($crate::table::Source::Dynamic(
                    $crate::table::DynamicLoader::new(search),
                ))
            }

            /// An API served by functions compiled into the process, under a provider name used
            /// in messages (e.g. `"sim"`).
            pub fn from_static(provider: &'static str, symbols: StaticSymbols) -> Self {
                Self::with_source($crate::table::Source::Static {
                    provider,
                    symbols: Box::new(symbols),
                })
            }

            fn with_source(source: $crate::table::Source) -> Self {
                Api { source, slots: ApiSlots { $($name: ::std::sync::OnceLock::new(),)* } }
            }

            /// The provider's name: `"cann"` or the name given to [`Api::from_static`].
            pub fn provider(&self) -> &'static str {
                match &self.source {
                    $crate::table::Source::Static { provider, .. } => provider,
                    $crate::table::Source::Dynamic(_) => "cann",
                }
            }

            /// The CANN library files this API has opened so far, each with the path the loader
            /// opened it from (a bare file name when the plain `dlopen` found it); empty for a
            /// built-in provider. Resolve functions first ([`Api::missing`] resolves them all).
            pub fn opened_libraries(&self) -> Vec<(&'static str, String)> {
                match &self.source {
                    $crate::table::Source::Static { .. } => Vec::new(),
                    $crate::table::Source::Dynamic(loader) => loader.opened(),
                }
            }

            /// The names of every function in the table, in header order.
            pub const SYMBOLS: &'static [&'static str] = &[$(stringify!($name),)*];

            /// Resolves every function now and reports each one that is unavailable.
            pub fn missing(&self) -> Vec<$crate::LoadError> {
                let mut missing = Vec::new();
                $(
                    if let Err(e) = self.$name() {
                        missing.push(e);
                    }
                )*
                missing
            }

            $(
                #[doc = concat!("Resolves `", stringify!($name), "` (", stringify!($library), ").")]
                #[inline]
                pub fn $name(
                    &self,
                ) -> Result<<$crate::bindings::$pfn as $crate::FnPtr>::Target, $crate::LoadError> {
                    self.slots
                        .$name
                        .get_or_init(|| match &self.source {
                            $crate::table::Source::Static { provider, symbols } => symbols
                                .$name
                                .ok_or_else(|| {
                                    $crate::LoadError::not_provided(stringify!($name), provider)
                                }),
                            $crate::table::Source::Dynamic(loader) => {
                                loader.resolve(stringify!($name), $crate::Library::$library)
                            }
                        })
                        .clone()
                }
            )*
        }
    };
}

pub(crate) use function_table;

#[cfg(test)]
mod tests {
    use crate::{Api, StaticSymbols, aclError};

    unsafe extern "C" fn init(_config_path: *const std::ffi::c_char) -> aclError {
        0
    }

    #[test]
    fn a_removed_function_is_not_provided_and_an_unknown_name_is_refused() {
        let mut symbols = StaticSymbols {
            aclInit: Some(init),
            ..StaticSymbols::default()
        };
        assert!(Api::from_static("test", symbols).aclInit().is_ok());
        assert!(symbols.remove("aclInit"));
        assert!(!symbols.remove("aclNoSuchFunction"));
        let message = Api::from_static("test", symbols)
            .aclInit()
            .unwrap_err()
            .to_string();
        assert!(message.contains("aclInit"), "{message}");
    }
}
