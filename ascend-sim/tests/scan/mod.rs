//! A small scanner of Rust sources for the tests that check a rule across a crate's files
//! (`layers.rs` here, `tests/checked_calls.rs` of the root crate): it tells code from comments
//! and from string and char literals, keeping lines, so a rule can look at one of them only.
//! A scanner rather than `syn`: the rules need tokens, not a syntax tree, and it costs no
//! dependency or build time. Each user tests it on the forms its rule depends on.

// Each test crate that includes this file uses only part of it.
#![allow(dead_code)]

/// What a byte of a source file is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Code, including the quotes of a literal.
    Code,
    /// A line, block or doc comment.
    Comment,
    /// The contents of a string or char literal.
    Literal,
}

/// The part of every byte of `src`.
pub fn classify(src: &str) -> Vec<Part> {
    let b = src.as_bytes();
    let mut parts = Vec::with_capacity(b.len());
    let mut i = 0;
    let take = |parts: &mut Vec<Part>, n: usize, part: Part| {
        parts.extend(std::iter::repeat_n(part, n));
    };
    while i < b.len() {
        let start = i;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            take(&mut parts, i - start, Part::Comment);
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            take(&mut parts, i.min(b.len()) - start, Part::Comment);
            i = i.min(b.len());
        } else if b[i] == b'r'
            && (b[i + 1..].starts_with(b"\"") || b[i + 1..].starts_with(b"#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // Raw string r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j >= b.len() || b[j] != b'"' {
                take(&mut parts, 1, Part::Code);
                i += 1;
                continue;
            }
            let mut end = vec![b'"'];
            end.extend(std::iter::repeat_n(b'#', hashes));
            let mut k = j + 1;
            while k < b.len() && !b[k..].starts_with(&end) {
                k += 1;
            }
            let stop = (k + end.len()).min(b.len());
            take(&mut parts, j + 1 - i, Part::Code);
            take(&mut parts, k.min(b.len()) - (j + 1), Part::Literal);
            take(&mut parts, stop - k.min(b.len()), Part::Code);
            i = stop;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let j = j.min(b.len());
            take(&mut parts, 1, Part::Code);
            take(&mut parts, j - (i + 1), Part::Literal);
            take(&mut parts, (j + 1).min(b.len()) - j, Part::Code);
            i = (j + 1).min(b.len());
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('a', '\n', '\''), not a lifetime.
            let mut j = i + 1;
            j += if b[j] == b'\\' { 2 } else { 1 };
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            let stop = (j + 1).min(b.len());
            take(&mut parts, 1, Part::Code);
            take(&mut parts, stop.saturating_sub(1) - (i + 1), Part::Literal);
            take(
                &mut parts,
                stop - stop.saturating_sub(1).max(i + 1),
                Part::Code,
            );
            i = stop;
        } else {
            take(&mut parts, 1, Part::Code);
            i += 1;
        }
    }
    parts
}

/// `src` with every byte outside `keep` replaced by a space (newlines kept, so offsets and
/// line numbers match the source).
pub fn only(src: &str, keep: Part) -> String {
    let parts = classify(src);
    let out: Vec<u8> = src
        .bytes()
        .zip(parts)
        .map(|(c, part)| if c == b'\n' || part == keep { c } else { b' ' })
        .collect();
    String::from_utf8_lossy(&out).into_owned()
}

/// The code of `src`: comments and literals blanked.
pub fn strip(src: &str) -> String {
    only(src, Part::Code)
}

/// The 1-based line of byte offset `at`.
pub fn line_of(src: &str, at: usize) -> usize {
    src[..at].matches('\n').count() + 1
}
