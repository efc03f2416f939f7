//! The facts of the shim's C ABI (`kernels-ascendc/shim/include/ascend_shim_abi.h`) as Rust
//! items, so the simulator that loads kernel libraries takes them from the header instead of a
//! copy kept by hand: every integer `#define ASCEND_SHIM_<NAME> <value>` becomes a constant
//! `<NAME>` ([`shim_abi_constants_rust`]), and the counters struct's `uint64_t` fields become
//! compile-time checks of its Rust `#[repr(C)]` mirror, same names, offsets and size
//! ([`shim_counters_layout_rust`]).

use std::fmt::Write;

use crate::tiling::strip_comments;

/// The header, relative to `kernels-ascendc/`.
pub const ABI_HEADER: &str = "shim/include/ascend_shim_abi.h";

/// One integer constant of the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbiConstant {
    /// The name without the `ASCEND_SHIM_` prefix.
    pub name: String,
    /// Its value.
    pub value: u64,
    /// The comment on its line, if any (becomes the constant's rustdoc).
    pub doc: String,
}

/// The integer `#define ASCEND_SHIM_*` constants of `header`, in order. Defines whose value is
/// not a plain decimal integer (include guards, macros) are left out.
pub fn abi_constants(header: &str) -> Vec<AbiConstant> {
    let mut out = Vec::new();
    for line in header.lines() {
        let Some(rest) = line.trim_start().strip_prefix("#define ASCEND_SHIM_") else {
            continue;
        };
        let (code, doc) = match rest.split_once("/*") {
            Some((c, d)) => (c, d.trim_end().trim_end_matches("*/").trim()),
            None => (rest, ""),
        };
        let mut words = code.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if let Ok(value) = value.parse() {
            out.push(AbiConstant {
                name: name.to_string(),
                value,
                doc: doc.to_string(),
            });
        }
    }
    out
}

/// The field names of `typedef struct <name> { uint64_t ...; } <name>;` in `header`; every
/// field must be `uint64_t`.
pub fn u64_struct_fields(header: &str, name: &str) -> Result<Vec<String>, String> {
    let text = strip_comments(header);
    let start = format!("typedef struct {name}");
    let at = text
        .find(&start)
        .ok_or_else(|| format!("no `{start}` in the header"))?;
    let body = &text[at + start.len()..];
    let open = body
        .find('{')
        .ok_or_else(|| format!("{name} has no body"))?;
    let close = body
        .find('}')
        .ok_or_else(|| format!("{name} is unterminated"))?;
    let mut fields = Vec::new();
    for decl in body[open + 1..close].split(';') {
        let decl = decl.trim();
        if decl.is_empty() {
            continue;
        }
        let Some(names) = decl.strip_prefix("uint64_t") else {
            return Err(format!("{name}: field `{decl}` is not uint64_t"));
        };
        fields.extend(names.split(',').map(|f| f.trim().to_string()));
    }
    Ok(fields)
}

/// Rust constants for `header`: `pub(crate) const <NAME>: u32` per integer constant (versions,
/// codes, kinds and sizes all fit a u32).
pub fn shim_abi_constants_rust(header: &str) -> Result<String, String> {
    let mut s = String::from(
        "// Generated from kernels-ascendc/shim/include/ascend_shim_abi.h; do not edit.\n\n",
    );
    for c in abi_constants(header) {
        let value = u32::try_from(c.value)
            .map_err(|_| format!("ASCEND_SHIM_{} = {} does not fit u32", c.name, c.value))?;
        let doc = if c.doc.is_empty() {
            format!("`ASCEND_SHIM_{}`.", c.name)
        } else {
            format!("`ASCEND_SHIM_{}`: {}", c.name, c.doc)
        };
        let _ = writeln!(
            s,
            "/// {doc}\n#[allow(dead_code)]\npub(crate) const {}: u32 = {value};",
            c.name
        );
    }
    Ok(s)
}

/// Compile-time checks that `counters_path` (a `#[repr(C)]` struct of `u64` fields) has the
/// field names, offsets and size of the header's `AscendShimCounters`.
pub fn shim_counters_layout_rust(header: &str, counters_path: &str) -> Result<String, String> {
    let fields = u64_struct_fields(header, "AscendShimCounters")?;
    let mut s = format!(
        "// Generated from kernels-ascendc/shim/include/ascend_shim_abi.h; do not edit.\n\n\
         // {counters_path} mirrors `AscendShimCounters`.\nconst _: () = {{\n"
    );
    for (i, f) in fields.iter().enumerate() {
        let _ = writeln!(
            s,
            "    assert!(::core::mem::offset_of!({counters_path}, {f}) == {});",
            8 * i
        );
    }
    let _ = writeln!(
        s,
        "    assert!(::core::mem::size_of::<{counters_path}>() == {});\n}};",
        8 * fields.len()
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_and_counter_layout_come_from_the_header() {
        let h = "#ifndef ASCEND_SHIM_ABI_H\n#define ASCEND_SHIM_ABI_H\n\
                 #define ASCEND_SHIM_ABI_VERSION 3\n\
                 #define ASCEND_SHIM_ERR_ARGS 2   /* args do not match */\n\
                 #define ASCEND_SHIM_KERNEL(n, k) x\n\
                 typedef struct AscendShimCounters {\n  uint64_t a; /* x */\n  /* note */\n  uint64_t b, c;\n} AscendShimCounters;\n";
        let c = abi_constants(h);
        let named: Vec<(&str, u64, &str)> = c
            .iter()
            .map(|c| (c.name.as_str(), c.value, c.doc.as_str()))
            .collect();
        assert_eq!(
            named,
            [("ABI_VERSION", 3, ""), ("ERR_ARGS", 2, "args do not match")]
        );
        assert_eq!(
            u64_struct_fields(h, "AscendShimCounters").unwrap(),
            ["a", "b", "c"]
        );
        let consts = shim_abi_constants_rust(h).unwrap();
        assert!(
            consts.contains("pub(crate) const ABI_VERSION: u32 = 3;"),
            "{consts}"
        );
        let layout = shim_counters_layout_rust(h, "crate::K").unwrap();
        assert!(layout.contains("offset_of!(crate::K, c) == 16"), "{layout}");
        assert!(layout.contains("size_of::<crate::K>() == 24"), "{layout}");
        let bad = "typedef struct AscendShimCounters { uint32_t a; } AscendShimCounters;";
        let err = shim_counters_layout_rust(bad, "K").unwrap_err();
        assert!(err.contains("not uint64_t"), "{err}");
    }

    #[test]
    fn the_real_header_parses() {
        let header = std::fs::read_to_string(crate::kernels_root().join(ABI_HEADER)).unwrap();
        let rust = shim_abi_constants_rust(&header).unwrap();
        assert!(shim_counters_layout_rust(&header, "K").is_ok());
        for name in [
            "ABI_VERSION",
            "VECTOR_REPEAT_BYTES",
            "KIND_VECTOR",
            "ERR_KERNEL",
        ] {
            assert!(
                rust.contains(&format!("const {name}: u32")),
                "{name}: {rust}"
            );
        }
    }
}
