//! Checks on config text before the YAML loader builds a tree from it.
//!
//! The loader and the deserializer behind it recurse once per level of
//! nesting, and so does dropping the tree they build: a small file of ten
//! thousand nested sequences (`x: - - - … 1`) overflows the stack and aborts
//! the process, on reload as in `check-config`. The nesting depth is therefore
//! measured first on the parser's flat event stream, which needs no recursion,
//! and a file nested deeper than [`MAX_NESTING`] is refused with its line.
//!
//! The same pass refuses what YAML does not allow at all and some parsers
//! take in silence: a NUL byte ends the stream early, so a NUL in a comment
//! used to cut a config short without a word. Other control characters and a
//! byte-order mark anywhere but the start go the same way. A byte-order mark
//! at the start is removed, as editors on some systems write one.
//!
//! The size cap comes first, so that nothing else ever looks at more than
//! [`MAX_CONFIG_BYTES`]; every check here is one linear pass.

use yaml_rust2::parser::{Event, Parser};

/// The largest config file the agent reads: 1 MiB, about eight thousand
/// journeys, far above any real one.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The deepest nesting of mappings and sequences accepted. A real config
/// nests about seven levels (targets, a target, its login steps, a step, its
/// extractions, one extraction); a `json:` body adds its own.
pub const MAX_NESTING: usize = 64;

const BOM: char = '\u{feff}';

/// Why config text was refused before parsing, and on which line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub message: String,
}

/// Checks `text` and returns it without a leading byte-order mark.
pub fn check(text: &str) -> Result<&str, Refusal> {
    check_size(text.len())?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    check_characters(text)?;
    check_nesting(text)?;
    Ok(text)
}

/// Refuses a file of `len` bytes when it is over the cap.
pub fn check_size(len: usize) -> Result<(), Refusal> {
    if len > MAX_CONFIG_BYTES {
        return Err(Refusal {
            line: 1,
            message: format!(
                "the config is {len} bytes, over the {MAX_CONFIG_BYTES}-byte (1 MiB) limit"
            ),
        });
    }
    Ok(())
}

/// Whether YAML allows `c` in a stream (YAML 1.2 `c-printable`, less the
/// byte-order mark, which is allowed only at the start).
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{7e}' | '\u{85}')
        || (('\u{a0}'..='\u{fffd}').contains(&c) && c != BOM)
        || c >= '\u{10000}'
}

fn check_characters(text: &str) -> Result<(), Refusal> {
    let Some(at) = text.find(|c: char| !allowed(c)) else {
        return Ok(());
    };
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let c = text[at..].chars().next().unwrap_or('\0');
    let what = match c {
        '\0' => "a NUL byte (U+0000)".to_string(),
        BOM => "a byte-order mark (U+FEFF) after the start of the file".to_string(),
        other => format!("the control character U+{:04X}", u32::from(other)),
    };
    Err(Refusal {
        line,
        message: format!("{what} at column {column}: YAML does not allow it"),
    })
}

fn check_nesting(text: &str) -> Result<(), Refusal> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        // A syntax error is left to the loader, which reports it with the
        // same line and its own wording.
        let Ok((event, mark)) = parser.next_token() else {
            return Ok(());
        };
        match event {
            Event::StreamEnd => return Ok(()),
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal {
                        line: mark.line(),
                        message: format!(
                            "mappings and sequences nested more than {MAX_NESTING} deep"
                        ),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x:` followed by `levels` nested compact sequences, as in the report.
    fn compact_sequences(levels: usize) -> String {
        format!("x:\n{}1\n", "- ".repeat(levels))
    }

    #[test]
    fn deep_compact_sequences_are_refused_at_their_line() {
        let text = format!("site: a\n{}", compact_sequences(40_000));
        let refusal = check(&text).unwrap_err();
        assert_eq!(refusal.line, 3);
        assert_eq!(
            refusal.message,
            "mappings and sequences nested more than 64 deep"
        );
    }

    #[test]
    fn deep_flow_collections_are_refused() {
        let text = format!("a:\n  b: {}{}\n", "[{k: ".repeat(40), "1}]".repeat(40));
        assert_eq!(check(&text).unwrap_err().line, 2);
    }

    #[test]
    fn nesting_at_the_limit_is_accepted() {
        // The root mapping is one level; `x` holds 63 more.
        let text = compact_sequences(MAX_NESTING - 1);
        assert_eq!(check(&text), Ok(text.as_str()));
        assert!(check(&compact_sequences(MAX_NESTING)).is_err());
    }

    #[test]
    fn a_nul_is_refused_with_its_line_and_column() {
        let text = "site: a\n# a comment\0 that hides the rest\njourneys: []\n";
        assert_eq!(
            check(text),
            Err(Refusal {
                line: 2,
                message: "a NUL byte (U+0000) at column 12: YAML does not allow it".into()
            })
        );
    }

    #[test]
    fn other_control_characters_are_refused() {
        for c in [
            '\u{7}', '\u{1b}', '\u{7f}', '\u{9b}', '\u{feff}', '\u{ffff}',
        ] {
            let text = format!("site: a{c}b\n");
            assert_eq!(check(&text).map_err(|r| r.line), Err(1), "{c:?}");
        }
        for fine in [
            "tab\there",
            "crlf\r\n",
            "caf\u{e9}",
            "\u{1f600}",
            "nel\u{85}",
        ] {
            let text = format!("site: {fine}\n");
            assert!(check(&text).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn a_leading_bom_is_removed() {
        assert_eq!(check("\u{feff}site: a\n"), Ok("site: a\n"));
    }

    #[test]
    fn the_size_cap_is_one_mebibyte() {
        let at_cap = format!("site: a\n#{}\n", "x".repeat(MAX_CONFIG_BYTES - 10));
        assert_eq!(at_cap.len(), MAX_CONFIG_BYTES);
        assert!(check(&at_cap).is_ok());
        let over = at_cap + "#";
        assert_eq!(
            check(&over).unwrap_err().message,
            "the config is 1048577 bytes, over the 1048576-byte (1 MiB) limit"
        );
    }

    #[test]
    fn syntax_errors_are_left_to_the_loader() {
        assert!(check("a: {b: [1, 2}\n").is_ok());
    }
}
