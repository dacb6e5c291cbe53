//! Value extraction (regex, CSS selector, JSON pointer, JSONPath, header) and
//! content assertions. Pure functions over a response, so they can be fuzzed.

use reqwest::header::HeaderMap;

use crate::config::{Assertions, Extractor};

/// Returns the extracted value, or why nothing was found.
pub fn extract(
    from: &Extractor,
    body: &str,
    content_type: &str,
    headers: &HeaderMap,
) -> Result<String, String> {
    match from {
        Extractor::Regex(re) => {
            let captures = re.captures(body).ok_or("regex matched nothing")?;
            let found = captures.get(1).or_else(|| captures.get(0));
            found
                .map(|m| m.as_str().to_string())
                .ok_or_else(|| "regex matched nothing".to_string())
        }
        Extractor::Css { selector, attr } => {
            let document = scraper::Html::parse_document(body);
            let element = document
                .select(selector)
                .next()
                .ok_or("CSS selector matched nothing")?;
            match attr {
                Some(name) => element
                    .value()
                    .attr(name)
                    .map(str::to_string)
                    .ok_or_else(|| format!("element has no attribute {name:?}")),
                None => Ok(element.text().collect::<String>().trim().to_string()),
            }
        }
        Extractor::JsonPointer(pointer) => {
            let json = parse_json(body, content_type)?;
            json.pointer(pointer)
                .map(json_scalar)
                .ok_or_else(|| format!("JSON pointer {pointer} found nothing"))
        }
        Extractor::JsonPath(path) => {
            let json = parse_json(body, content_type)?;
            let found = path.query(&json);
            found
                .first()
                .map(json_scalar)
                .ok_or_else(|| "JSONPath found nothing".to_string())
        }
        Extractor::Header(name) => headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| format!("no {name} header")),
    }
}

fn parse_json(body: &str, content_type: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(body).map_err(|e| {
        let kind = if content_type.is_empty() {
            "no content type".to_string()
        } else {
            content_type.to_string()
        };
        format!("body is not JSON ({kind}): {e}")
    })
}

/// Strings come out without quotes; other JSON values as JSON text.
fn json_scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `None` when every content assertion holds, else the first that fails.
pub fn check_assertions(
    assertions: &Assertions,
    body: &str,
    headers: &HeaderMap,
) -> Option<String> {
    for needle in &assertions.body_contains {
        if !body.contains(needle.as_str()) {
            return Some(format!("body does not contain {needle:?}"));
        }
    }
    for needle in &assertions.body_not_contains {
        if body.contains(needle.as_str()) {
            return Some(format!("body contains {needle:?}"));
        }
    }
    for re in &assertions.body_matches {
        if !re.is_match(body) {
            return Some(format!("body does not match /{}/", re.as_str()));
        }
    }
    for (name, re) in &assertions.headers {
        match headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            Some(value) if re.is_match(value) => {}
            Some(_) => return Some(format!("header {name} does not match /{}/", re.as_str())),
            None => return Some(format!("no {name} header")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn css(selector: &str, attr: Option<&str>) -> Extractor {
        Extractor::Css {
            selector: scraper::Selector::parse(selector).unwrap(),
            attr: attr.map(str::to_string),
        }
    }

    #[test]
    fn css_attribute_and_text() {
        let html = r#"<form><input type="hidden" name="csrf_token" value="abc123"></form><span id="case-id"> C-1 </span>"#;
        let h = HeaderMap::new();
        assert_eq!(
            extract(
                &css(r#"input[name="csrf_token"]"#, Some("value")),
                html,
                "",
                &h
            ),
            Ok("abc123".to_string())
        );
        assert_eq!(
            extract(&css("#case-id", None), html, "", &h),
            Ok("C-1".to_string())
        );
        assert!(extract(&css("#missing", None), html, "", &h).is_err());
    }

    #[test]
    fn regex_group_pointer_and_jsonpath() {
        let h = HeaderMap::new();
        let re = Extractor::Regex(regex::Regex::new(r"token=(\w+)").unwrap());
        assert_eq!(extract(&re, "x token=zz9 y", "", &h), Ok("zz9".to_string()));
        let json = r#"{"results":[{"id":"C-7","n":3}]}"#;
        let pointer = Extractor::JsonPointer("/results/0/n".into());
        assert_eq!(
            extract(&pointer, json, "application/json", &h),
            Ok("3".to_string())
        );
        let path =
            Extractor::JsonPath(serde_json_path::JsonPath::parse("$.results[0].id").unwrap());
        assert_eq!(
            extract(&path, json, "application/json", &h),
            Ok("C-7".to_string())
        );
        assert!(extract(&path, "<html>garbage", "text/html", &h)
            .unwrap_err()
            .contains("not JSON"));
    }
}
