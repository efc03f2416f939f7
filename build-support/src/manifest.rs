//! The kernel manifest: every kernel of a set of Ascend C sources, read from the kernels' own
//! `extern "C" __global__ __aicore__` signatures after preprocessing (so kernels stamped out by
//! macros are found too).
//!
//! Kind convention: a kernel's kind is the argument of the first `KERNEL_TASK_TYPE_DEFAULT(...)`
//! in its body (`KERNEL_TYPE_AIV_ONLY`, `KERNEL_TYPE_AIC_ONLY`, `KERNEL_TYPE_MIX_AIC_1_2`); a
//! kernel without one is vector-only (AIV), which is what a plain vector kernel is on 910B.

use std::fmt;
use std::path::{Path, PathBuf};

/// The marker `__global__` expands to when the shim headers are preprocessed with
/// `ASCEND_SHIM_SCAN` defined (see `shim/include/ascend_shim/core.h`).
pub(crate) const GLOBAL_MARK: &str = "__ascend_shim_global__";
/// The marker `KERNEL_TASK_TYPE_DEFAULT` expands to in the scan.
pub(crate) const KIND_MARK: &str = "__ascend_shim_kernel_type__";
/// The marker `GM_ADDR` expands to in the scan.
pub(crate) const GM_ADDR_MARK: &str = "__ascend_shim_gm_addr__";

/// Which cores a kernel runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// `KERNEL_TYPE_AIV_ONLY`: vector cores only.
    Aiv,
    /// `KERNEL_TYPE_AIC_ONLY`: cube cores only.
    Aic,
    /// `KERNEL_TYPE_MIX_AIC_1_2`: groups of one cube and two vector cores.
    Mix12,
}

impl KernelKind {
    /// The Ascend C macro naming this kind.
    pub fn macro_name(self) -> &'static str {
        match self {
            KernelKind::Aiv => "KERNEL_TYPE_AIV_ONLY",
            KernelKind::Aic => "KERNEL_TYPE_AIC_ONLY",
            KernelKind::Mix12 => "KERNEL_TYPE_MIX_AIC_1_2",
        }
    }
}

/// The type of one kernel parameter as the launch ABI sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// A global-memory address (`GM_ADDR` or any `__gm__ T*`), 8 bytes.
    Ptr,
    /// `uint32_t`.
    U32,
    /// `int32_t`.
    I32,
    /// `uint64_t`.
    U64,
    /// `int64_t`.
    I64,
    /// `float`.
    F32,
}

impl ParamType {
    /// The variant name, as `ascend_npu::runtime::Param` spells it.
    pub fn variant(self) -> &'static str {
        match self {
            ParamType::Ptr => "Ptr",
            ParamType::U32 => "U32",
            ParamType::I32 => "I32",
            ParamType::U64 => "U64",
            ParamType::I64 => "I64",
            ParamType::F32 => "F32",
        }
    }
}

/// One parameter of a kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelParam {
    /// The parameter's name in the source.
    pub name: String,
    /// Its C++ type after preprocessing with the shim (`GM_ADDR` kept as written).
    pub c_type: String,
    /// Its launch type.
    pub ty: ParamType,
}

/// One kernel of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDecl {
    /// The kernel's (unmangled) name.
    pub name: String,
    /// Which cores it runs on.
    pub kind: KernelKind,
    /// Its parameters, in order.
    pub params: Vec<KernelParam>,
    /// The source file that defines it.
    pub source: PathBuf,
}

/// What is wrong with a kernel source, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanError(pub String);

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanError {}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Str,
    Punct(char),
}

/// Splits preprocessed C++ into identifiers, string/char literals and punctuation. Numbers are
/// identifiers here; comments and `#` lines are gone after preprocessing except line markers,
/// which are skipped.
fn tokens(text: &str) -> Vec<Tok<'_>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' && line_start {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        line_start = false;
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(Tok::Str);
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(&text[start..i]));
        } else {
            out.push(Tok::Punct(c as char));
            i += 1;
        }
    }
    out
}

/// The index just past the bracket group opening at `open` (`(`/`{`).
fn skip_group(toks: &[Tok<'_>], open: usize, l: char, r: char) -> Option<usize> {
    let mut depth = 0usize;
    for (j, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct(c) if *c == l => depth += 1,
            Tok::Punct(c) if *c == r => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn param_type(c_type: &str) -> Option<ParamType> {
    let t: Vec<&str> = c_type
        .split_whitespace()
        .filter(|w| *w != "const")
        .collect();
    let t = t.join(" ");
    if t == GM_ADDR_MARK || t.ends_with('*') {
        return Some(ParamType::Ptr);
    }
    Some(match t.as_str() {
        "uint32_t" | "unsigned int" | "unsigned" => ParamType::U32,
        "int32_t" | "int" => ParamType::I32,
        "uint64_t" => ParamType::U64,
        "int64_t" => ParamType::I64,
        "float" => ParamType::F32,
        _ => return None,
    })
}

fn join(toks: &[Tok<'_>]) -> String {
    let mut s = String::new();
    for t in toks {
        match t {
            Tok::Ident(w) => {
                if !s.is_empty() && !s.ends_with('*') {
                    s.push(' ');
                }
                s.push_str(w);
            }
            Tok::Punct(c) => s.push(*c),
            Tok::Str => s.push_str("\"\""),
        }
    }
    s
}

/// The kernels defined in `text`, the output of preprocessing `source` with the shim and
/// `ASCEND_SHIM_SCAN` defined. Declarations without a body are not definitions and are skipped.
pub fn scan_preprocessed(text: &str, source: &Path) -> Result<Vec<KernelDecl>, ScanError> {
    let file = source.display();
    let toks = tokens(text);
    let by_hand = |name: &str| {
        let entry = format!("ascend_shim_entry_{name}");
        toks.iter().any(|t| *t == Tok::Ident(&entry))
    };
    let mut kernels = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] != Tok::Ident(GLOBAL_MARK) {
            i += 1;
            continue;
        }
        let extern_c = i >= 2 && toks[i - 2] == Tok::Ident("extern") && toks[i - 1] == Tok::Str;
        let Some(open) = toks[i..]
            .iter()
            .position(|t| *t == Tok::Punct('('))
            .map(|p| p + i)
        else {
            return Err(ScanError(format!(
                "{file}: a __global__ declaration without a parameter list"
            )));
        };
        let name = match open.checked_sub(1).map(|j| &toks[j]) {
            Some(Tok::Ident(n)) if open > i + 1 => n.to_string(),
            _ => {
                return Err(ScanError(format!(
                    "{file}: cannot read the name of a __global__ function; expected \
                     `extern \"C\" __global__ __aicore__ void name(...)`"
                )));
            }
        };
        if !toks[i + 1..open - 1].contains(&Tok::Ident("void")) {
            return Err(ScanError(format!(
                "{file}: kernel {name} does not return void; a __global__ function must"
            )));
        }
        let close = skip_group(&toks, open, '(', ')').ok_or_else(|| {
            ScanError(format!("{file}: kernel {name}: unbalanced parameter list"))
        })?;
        let params = parse_params(&toks[open + 1..close - 1])
            .map_err(|e| ScanError(format!("{file}: kernel {name}: {e}")))?;
        match toks.get(close) {
            Some(Tok::Punct('{')) => {}
            _ => {
                i = close;
                continue; // a declaration
            }
        }
        if !extern_c {
            return Err(ScanError(format!(
                "{file}: kernel {name} is not declared extern \"C\"; expected \
                 `extern \"C\" __global__ __aicore__ void {name}(...)`"
            )));
        }
        if by_hand(&name) {
            return Err(ScanError(format!(
                "{file}: kernel {name} is registered by hand (ASCEND_SHIM_KERNEL); remove that line: \
                 the registration is generated from the signature"
            )));
        }
        let end = skip_group(&toks, close, '{', '}')
            .ok_or_else(|| ScanError(format!("{file}: kernel {name}: unbalanced body")))?;
        let kind = body_kind(&toks[close..end])
            .map_err(|e| ScanError(format!("{file}: kernel {name}: {e}")))?;
        kernels.push(KernelDecl {
            name,
            kind,
            params,
            source: source.to_path_buf(),
        });
        i = end;
    }
    Ok(kernels)
}

fn parse_params(toks: &[Tok<'_>]) -> Result<Vec<KernelParam>, String> {
    if toks.is_empty() || toks == [Tok::Ident("void")] {
        return Ok(Vec::new());
    }
    let mut params = Vec::new();
    let mut start = 0;
    let mut depth = 0i32;
    for j in 0..=toks.len() {
        let at_end = j == toks.len();
        if !at_end {
            match toks[j] {
                Tok::Punct('(') | Tok::Punct('<') | Tok::Punct('[') => depth += 1,
                Tok::Punct(')') | Tok::Punct('>') | Tok::Punct(']') => depth -= 1,
                _ => {}
            }
        }
        if at_end || (depth == 0 && toks[j] == Tok::Punct(',')) {
            let part = &toks[start..j];
            let Some((Tok::Ident(name), ty)) = part.split_last() else {
                return Err(format!("parameter {} has no name", params.len() + 1));
            };
            if ty.is_empty() {
                return Err(format!("parameter {name} has no type"));
            }
            let c_type = join(ty);
            let ty = param_type(&c_type).ok_or_else(|| {
                format!(
                    "parameter {name} has type `{}`; kernel parameters must be GM_ADDR / __gm__ \
                     pointers, uint32_t, int32_t, uint64_t, int64_t or float",
                    c_type.replace(GM_ADDR_MARK, "GM_ADDR")
                )
            })?;
            params.push(KernelParam {
                name: name.to_string(),
                c_type: c_type.replace(GM_ADDR_MARK, "GM_ADDR"),
                ty,
            });
            start = j + 1;
        }
    }
    Ok(params)
}

fn body_kind(body: &[Tok<'_>]) -> Result<KernelKind, String> {
    let Some(at) = body.iter().position(|t| *t == Tok::Ident(KIND_MARK)) else {
        return Ok(KernelKind::Aiv);
    };
    let end =
        skip_group(body, at + 1, '(', ')').ok_or("unbalanced KERNEL_TASK_TYPE_DEFAULT(...)")?;
    let arg = &body[at + 1..end];
    for (word, kind) in [
        ("Vector", KernelKind::Aiv),
        ("Cube", KernelKind::Aic),
        ("Mix12", KernelKind::Mix12),
    ] {
        if arg.contains(&Tok::Ident(word)) {
            return Ok(kind);
        }
    }
    Err(format!(
        "KERNEL_TASK_TYPE_DEFAULT({}) names no kind the shim knows; expected \
         KERNEL_TYPE_AIV_ONLY, KERNEL_TYPE_AIC_ONLY or KERNEL_TYPE_MIX_AIC_1_2",
        join(&arg[1..arg.len() - 1])
    ))
}

/// Fails when two kernels share a name (the library could export only one of them).
pub fn check_unique(kernels: &[KernelDecl]) -> Result<(), ScanError> {
    for (i, a) in kernels.iter().enumerate() {
        if let Some(b) = kernels[..i].iter().find(|b| b.name == a.name) {
            return Err(ScanError(format!(
                "kernel {} is defined in {} and in {}; kernel names must be unique",
                a.name,
                b.source.display(),
                a.source.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Result<Vec<KernelDecl>, ScanError> {
        scan_preprocessed(text, Path::new("k.cpp"))
    }

    #[test]
    fn reads_names_kinds_and_parameters() {
        let text = r#"
# 1 "k.cpp"
namespace { void helper(int x) { if (x) { } } }
extern "C" __ascend_shim_global__ void add(__ascend_shim_gm_addr__ x, const float* y, uint32_t n) {
    __ascend_shim_kernel_type__(::ascend_shim::KernelKind::Cube);
    { "}" ; }
}
extern "C" __ascend_shim_global__ void decl_only(__ascend_shim_gm_addr__ x);
extern "C" __ascend_shim_global__ void plain(void) { }
"#;
        let k = scan(text).unwrap();
        assert_eq!(k.len(), 2);
        assert_eq!(k[0].name, "add");
        assert_eq!(k[0].kind, KernelKind::Aic);
        let types: Vec<ParamType> = k[0].params.iter().map(|p| p.ty).collect();
        assert_eq!(types, [ParamType::Ptr, ParamType::Ptr, ParamType::U32]);
        assert_eq!(k[0].params[0].c_type, "GM_ADDR");
        assert_eq!(k[0].params[1].c_type, "const float*");
        assert_eq!(k[1].name, "plain");
        assert_eq!(k[1].kind, KernelKind::Aiv);
        assert!(k[1].params.is_empty());
    }

    #[test]
    fn bad_kernels_are_named_errors() {
        let e = scan("__ascend_shim_global__ void f(__ascend_shim_gm_addr__ x) {}").unwrap_err();
        assert!(e.0.contains("not declared extern \"C\""), "{e}");
        let e = scan("extern \"C\" __ascend_shim_global__ void f(double x) {}").unwrap_err();
        assert!(e.0.contains("parameter x has type `double`"), "{e}");
        let e = scan(
            "extern \"C\" __ascend_shim_global__ void f(int x) { __ascend_shim_kernel_type__(7); }",
        )
        .unwrap_err();
        assert!(e.0.contains("names no kind"), "{e}");
        let a = scan("extern \"C\" __ascend_shim_global__ void f() {}").unwrap();
        let mut both = a.clone();
        both.extend(a);
        assert!(
            check_unique(&both)
                .unwrap_err()
                .0
                .contains("kernel f is defined in")
        );
    }
}
