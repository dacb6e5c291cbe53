//! The layers import one way (the `# Layout` note in src/lib.rs). Each rule
//! below names a module and the modules it must never import; an import
//! that comes back fails here, with its file and line, before it closes a
//! circle again.
//!
//! Every source file of a module (`src/NAME.rs`, `src/NAME/**.rs`) is read
//! as Rust tokens, macro bodies included (the status page is written in
//! maud's `html!`), comments and strings left out. Each path is resolved to
//! the top-level module it reaches: `crate::x::…`, `crate::{x, y}`,
//! `$crate::x`, and `super::` chains that climb out of the module, counting
//! inline `mod tests { … }` blocks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// What a module must not import.
enum Forbidden {
    /// These top-level modules.
    These(&'static [&'static str]),
    /// Anything in the crate outside the module itself.
    Everything,
}

struct Rule {
    module: &'static str,
    forbidden: Forbidden,
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        module: "config",
        forbidden: Forbidden::These(&["journal", "runner"]),
        why: "every layer reads the config, so it reads none of them: \
              JournalOptions lives in config, and secrets are read by config::secret",
    },
    Rule {
        module: "journal",
        forbidden: Forbidden::These(&["status", "report"]),
        why: "the journal stores the outcome vocabulary (outcome::FreezeEpisode and the records); \
              the status page and the report read from it, not the other way",
    },
    Rule {
        module: "status",
        forbidden: Forbidden::These(&["report"]),
        why: "the status page and the report share the time-lost model in loss and \
              the formatting in timefmt; neither imports the other",
    },
    Rule {
        module: "browser",
        forbidden: Forbidden::These(&["report"]),
        why: "browser journeys produce records; time formatting is in timefmt, \
              and the evidence folder is named by journal::folder_beside",
    },
    Rule {
        module: "web",
        forbidden: Forbidden::These(&["agent"]),
        why: "the agent starts the web endpoints; a reload is asked for through \
              web::ReloadRequest, which the agent answers",
    },
    Rule {
        module: "stall",
        forbidden: Forbidden::These(&[
            "agent",
            "observe",
            "journal",
            "status",
            "runner",
            "supervisor",
            "web",
        ]),
        why: "the stall monitor measures whether the process can run; what a stall means \
              for freezes, runs, the journal and the page is decided by detect and observe",
    },
    Rule {
        module: "sim",
        forbidden: Forbidden::Everything,
        why: "the simulator stands in for a real system: tests and the demo reach it \
              over HTTP only, as the agent reaches a real one",
    },
];

/// One path found in a source file: the top-level module (or crate-root
/// item) it reaches, where, and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reach {
    top: String,
    line: usize,
    written: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module path of a file under src/: `config/validate/browser.rs` is
/// `[config, validate, browser]`, `config/mod.rs` is `[config]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `.rs` file of top-level module `name`.
fn files_of(name: &str) -> Vec<PathBuf> {
    let src = src_dir();
    let mut files = Vec::new();
    let single = src.join(format!("{name}.rs"));
    if single.is_file() {
        files.push(single);
    }
    files.extend(crate::harness::files_under(&src.join(name), "rs"));
    files.sort();
    files
}

/// The crate's top-level modules, as lib.rs declares them.
fn top_level_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|l| l.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

fn is_path_separator(tokens: &[TokenTree], at: usize) -> bool {
    matches!(
        (tokens.get(at), tokens.get(at + 1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
    )
}

fn is_ident(tokens: &[TokenTree], at: usize, name: &str) -> bool {
    matches!(tokens.get(at), Some(TokenTree::Ident(i)) if i == name)
}

/// The first name of each item of a use-tree group: `{a::b, c, self}`.
fn group_heads(group: &proc_macro2::Group) -> Vec<String> {
    let mut heads = Vec::new();
    let mut at_start = true;
    for token in group.stream() {
        match &token {
            TokenTree::Punct(p) if p.as_char() == ',' => at_start = true,
            TokenTree::Ident(i) if at_start => {
                heads.push(i.to_string());
                at_start = false;
            }
            TokenTree::Punct(p) if at_start && p.as_char() == '*' => {
                heads.push("*".to_string());
                at_start = false;
            }
            _ => at_start = false,
        }
    }
    heads
}

fn written(tokens: &[TokenTree]) -> String {
    tokens
        .iter()
        .map(|t| t.to_string())
        .collect::<String>()
        .replace(' ', "")
}

/// Every crate path in `tokens`, read in module `path`.
fn walk(tokens: &[TokenTree], path: &[String], found: &mut Vec<Reach>) {
    let mut i = 0;
    while i < tokens.len() {
        // An inline module: its paths are read one level deeper.
        if is_ident(tokens, i, "mod") {
            if let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(body))) =
                (tokens.get(i + 1), tokens.get(i + 2))
            {
                if body.delimiter() == Delimiter::Brace {
                    let mut inner = path.to_vec();
                    inner.push(name.to_string());
                    let body: Vec<TokenTree> = body.stream().into_iter().collect();
                    walk(&body, &inner, found);
                    i += 3;
                    continue;
                }
            }
        }
        let starts_path = (is_ident(tokens, i, "crate") || is_ident(tokens, i, "super"))
            && is_path_separator(tokens, i + 1)
            && !(i >= 2 && is_path_separator(tokens, i - 2));
        if starts_path {
            let line = tokens[i].span().start().line;
            let mut base: Vec<String> = Vec::new();
            let mut j = i;
            if is_ident(tokens, i, "crate") {
                j += 3;
            } else {
                base = path.to_vec();
                while is_ident(tokens, j, "super") && is_path_separator(tokens, j + 1) {
                    if base.pop().is_none() {
                        base.push("<above the crate>".to_string());
                        break;
                    }
                    j += 3;
                }
            }
            let tops = match (base.first(), tokens.get(j)) {
                (Some(module), _) => vec![module.clone()],
                (None, Some(TokenTree::Ident(name))) => vec![name.to_string()],
                (None, Some(TokenTree::Group(g))) if g.delimiter() == Delimiter::Brace => {
                    group_heads(g)
                }
                (None, Some(TokenTree::Punct(p))) if p.as_char() == '*' => vec!["*".into()],
                _ => Vec::new(),
            };
            let end = (j + 1).min(tokens.len());
            for top in tops.into_iter().filter(|t| t != "self") {
                found.push(Reach {
                    top,
                    line,
                    written: written(&tokens[i..end]),
                });
            }
            i = end;
            continue;
        }
        if let TokenTree::Group(g) = &tokens[i] {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            walk(&inner, path, found);
        }
        i += 1;
    }
}

/// Every crate path in `source`, a file whose module path is `path`.
fn reaches(source: &str, path: &[String]) -> Vec<Reach> {
    let tokens: Vec<TokenTree> = TokenStream::from_str(source)
        .unwrap_or_else(|e| panic!("{}: cannot read as Rust tokens: {e}", path.join("::")))
        .into_iter()
        .collect();
    let mut found = Vec::new();
    walk(&tokens, path, &mut found);
    found
}

fn breaks(rule: &Rule, top: &str) -> bool {
    if top == rule.module {
        return false;
    }
    match rule.forbidden {
        Forbidden::These(names) => names.contains(&top) || top == "*" || top.starts_with('<'),
        Forbidden::Everything => true,
    }
}

#[test]
fn each_layer_imports_only_downward() {
    let modules = top_level_modules();
    let mut broken = Vec::new();
    for rule in RULES {
        assert!(
            modules.contains(rule.module),
            "the import rule for `{}` names a module lib.rs does not declare",
            rule.module
        );
        if let Forbidden::These(names) = rule.forbidden {
            for name in names {
                assert!(
                    modules.contains(*name),
                    "the import rule for `{}` forbids `{name}`, which lib.rs does not declare",
                    rule.module
                );
            }
        }
        let files = files_of(rule.module);
        assert!(!files.is_empty(), "no source files for `{}`", rule.module);
        for file in files {
            let relative = file.strip_prefix(src_dir()).unwrap();
            let source = std::fs::read_to_string(&file).unwrap();
            for reach in reaches(&source, &module_path(relative)) {
                if breaks(rule, &reach.top) {
                    broken.push(format!(
                        "  src/{}:{}: `{}` imports `{}` through `{}`: {}",
                        relative.display(),
                        reach.line,
                        rule.module,
                        reach.top,
                        reach.written,
                        rule.why
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} import(s) against the layering of src/lib.rs:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_way_of_reaching_a_module() {
    let path = |p: &str| p.split("::").map(str::to_string).collect::<Vec<_>>();
    let tops = |source: &str, at: &str| -> Vec<String> {
        reaches(source, &path(at))
            .into_iter()
            .map(|r| r.top)
            .collect()
    };
    let source = r#"
        //! crate::report in a comment is not an import.
        use crate::journal::JournalOptions;
        use crate::{outcome, report::model};
        use super::model::Config;
        use super::super::runner::Session;
        const TEXT: &str = "crate::status::StatusBoard";
        pub(crate) fn f() -> Markup {
            html! { p { (crate::report::time_lost::assumptions(x)) } }
        }
        mod tests {
            use super::*;
            use super::super::super::agent::Agent;
        }
    "#;
    assert_eq!(
        tops(source, "config::validate"),
        ["journal", "outcome", "report", "config", "runner", "report", "config", "agent"]
    );
    let found = reaches("use super::super::x;", &path("sim"));
    assert_eq!(found[0].top, "<above the crate>");
    assert_eq!(found[0].written, "super::super");
    let found = reaches("\n\nfn f() { super::web::serve(); }", &path("agent"));
    assert_eq!(
        found,
        [Reach {
            top: "web".into(),
            line: 3,
            written: "super::web".into()
        }]
    );
    assert_eq!(
        module_path(Path::new("config/validate/browser.rs")),
        path("config::validate::browser")
    );
    assert_eq!(module_path(Path::new("config/mod.rs")), path("config"));
}

/// The types a file defines at module level (its inline `mod` blocks
/// included; impl and function bodies, whose associated types are not
/// types of their own, left out), as (name, line).
fn defined_types(tokens: TokenStream) -> Vec<(String, usize)> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match (token, tokens.get(i + 1), tokens.get(i + 2)) {
            (TokenTree::Ident(kind), Some(TokenTree::Ident(name)), _)
                if ["struct", "enum", "trait", "type", "union"]
                    .contains(&kind.to_string().as_str()) =>
            {
                found.push((name.to_string(), name.span().start().line));
            }
            (TokenTree::Ident(kw), Some(TokenTree::Ident(_)), Some(TokenTree::Group(body)))
                if kw == "mod" && body.delimiter() == Delimiter::Brace =>
            {
                found.extend(defined_types(body.stream()));
            }
            _ => {}
        }
    }
    found
}

/// No two types in src/ share a name, so a name read anywhere says which
/// type it is.
#[test]
fn no_two_types_in_src_share_a_name() {
    let files = crate::harness::files_under(&src_dir(), "rs");
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let tokens = TokenStream::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not lex: {e}", file.display()));
        let relative = file.strip_prefix(src_dir()).unwrap().display().to_string();
        for (name, line) in defined_types(tokens) {
            seen.entry(name)
                .or_default()
                .push(format!("{relative}:{line}"));
        }
    }
    let shared: Vec<String> = seen
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(name, places)| format!("{name}: {}", places.join(", ")))
        .collect();
    assert!(seen.len() > 100, "only {} types found", seen.len());
    assert!(
        shared.is_empty(),
        "types sharing a name:\n{}",
        shared.join("\n")
    );
}
