//! Tiling structs of kernel headers (`typedef struct Name { uint32_t a, b; uint32_t r[2]; } Name;`)
//! and compile-time checks that their Rust `#[repr(C)]` mirrors have the same layout, so a field
//! added, dropped or reordered on one side fails the build instead of the kernel.

use std::fmt::Write;

/// One field: its name and element count (1, or N for `name[N]`), all `uint32_t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilingField {
    /// The field's name.
    pub name: String,
    /// How many `uint32_t` it holds.
    pub count: usize,
}

/// One tiling struct of a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TilingStruct {
    /// The C struct name.
    pub name: String,
    /// Its fields, in order.
    pub fields: Vec<TilingField>,
}

pub(crate) fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |e| &r[e + 2..]);
            out.push(' ');
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |e| &r[e..]);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The `typedef struct` tiling structs of a header; every field must be `uint32_t` (the rule of
/// `kernels-ascendc/tiling/`).
pub fn tiling_structs(header: &str) -> Result<Vec<TilingStruct>, String> {
    let text = strip_comments(header);
    let mut structs = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("typedef struct") {
        let after = &rest[at + "typedef struct".len()..];
        let open = after.find('{').ok_or("typedef struct without a body")?;
        let name = after[..open].trim().to_string();
        let close = after.find('}').ok_or("unterminated typedef struct")?;
        let mut fields = Vec::new();
        for decl in after[open + 1..close].split(';') {
            let decl = decl.trim();
            if decl.is_empty() {
                continue;
            }
            let Some(names) = decl.strip_prefix("uint32_t") else {
                return Err(format!("{name}: field `{decl}` is not uint32_t"));
            };
            for field in names.split(',') {
                let field = field.trim();
                let (fname, count) = match field.split_once('[') {
                    Some((n, c)) => {
                        let c = c.trim_end_matches(']').trim();
                        let count = c
                            .parse()
                            .map_err(|_| format!("{name}: array length `{c}` is not a number"))?;
                        (n.trim(), count)
                    }
                    None => (field, 1),
                };
                fields.push(TilingField {
                    name: fname.to_string(),
                    count,
                });
            }
        }
        structs.push(TilingStruct { name, fields });
        rest = &after[close..];
    }
    Ok(structs)
}

/// Rust items asserting at compile time that `rust_path` (a `#[repr(C)]` mirror with the same
/// field names) has the layout of `c`.
pub fn rust_layout_check(c: &TilingStruct, rust_path: &str) -> String {
    let mut s = format!("// {} mirrors `{}`.\nconst _: () = {{\n", rust_path, c.name);
    let mut offset = 0;
    for f in &c.fields {
        let _ = writeln!(
            s,
            "    assert!(::core::mem::offset_of!({rust_path}, {}) == {offset});",
            f.name
        );
        offset += 4 * f.count;
    }
    let _ = writeln!(
        s,
        "    assert!(::core::mem::size_of::<{rust_path}>() == {offset});\n}};"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_arrays() {
        let h =
            "/* x */\ntypedef struct T {\n  uint32_t a, b; /* c */\n  uint32_t r[2]; // d\n} T;\n";
        let t = tiling_structs(h).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].name, "T");
        let f: Vec<(&str, usize)> = t[0]
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.count))
            .collect();
        assert_eq!(f, [("a", 1), ("b", 1), ("r", 2)]);
        let check = rust_layout_check(&t[0], "crate::T");
        assert!(check.contains("offset_of!(crate::T, r) == 8"), "{check}");
        assert!(check.contains("size_of::<crate::T>() == 16"), "{check}");
        assert!(
            tiling_structs("typedef struct U { float x; } U;")
                .unwrap_err()
                .contains("not uint32_t")
        );
    }
}
