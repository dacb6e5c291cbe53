//! `${var}` templates: parsed once at load time, rendered per request.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
}

/// A string with `${var}` placeholders. `$${` writes a literal `${`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed `${{` in template")]
    Unclosed,
    #[error("empty or invalid variable name `${{{0}}}`")]
    BadName(String),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find("${") {
            if rest[..pos].ends_with('$') {
                literal.push_str(&rest[..pos - 1]);
                literal.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            literal.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let end = after.find('}').ok_or(TemplateError::Unclosed)?;
            let name = &after[..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                return Err(TemplateError::BadName(name.to_string()));
            }
            if !literal.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Var(name.to_string()));
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template { segments })
    }

    pub fn literal(text: &str) -> Template {
        Template {
            segments: vec![Segment::Text(text.to_string())],
        }
    }

    /// The variables this template reads.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(v) => Some(v.as_str()),
            Segment::Text(_) => None,
        })
    }

    /// Renders with `vars`; an unknown variable renders empty (validation has
    /// already rejected templates that read variables nothing defines).
    pub fn render(&self, vars: &HashMap<String, String>) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var(v) => out.push_str(vars.get(v).map(String::as_str).unwrap_or("")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_escapes() {
        let t = Template::parse("/cases/${case_id}/notes?x=$${y}").unwrap();
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["case_id"]);
        let vars = HashMap::from([("case_id".to_string(), "C-1".to_string())]);
        assert_eq!(t.render(&vars), "/cases/C-1/notes?x=${y}");
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        assert_eq!(Template::parse("a${b"), Err(TemplateError::Unclosed));
        assert_eq!(
            Template::parse("${a b}"),
            Err(TemplateError::BadName("a b".into()))
        );
    }
}
