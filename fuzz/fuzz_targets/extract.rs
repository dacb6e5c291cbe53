//! The extraction rules over hostile input: the first byte gives the length
//! of a rule (used as regex, CSS selector, JSONPath, JSON pointer, header
//! name and `${var}` template alike), the rest is a response body whose
//! "name: value" lines also become response headers. Nothing may panic.
#![no_main]

use std::collections::HashMap;

use casewatch::config::{Assertions, Extractor, Template};
use casewatch::runner::{check_assertions, extract};
use libfuzzer_sys::fuzz_target;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(len).min(rest.len());
    let rule = String::from_utf8_lossy(&rest[..split]).into_owned();
    let body = String::from_utf8_lossy(&rest[split..]).into_owned();

    let mut headers = HeaderMap::new();
    for line in body.lines().take(16) {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                headers.append(name, value);
            }
        }
    }

    let mut extractors = vec![
        Extractor::JsonPointer(rule.clone()),
        Extractor::Header(rule.to_ascii_lowercase()),
    ];
    // Built as validation builds them: only rules that parse reach the runner.
    let regex = regex::RegexBuilder::new(&rule)
        .size_limit(1 << 20)
        .build()
        .ok();
    if let Some(re) = &regex {
        extractors.push(Extractor::Regex(re.clone()));
    }
    if let Ok(selector) = scraper::Selector::parse(&rule) {
        extractors.push(Extractor::Css {
            selector: selector.clone(),
            attr: None,
        });
        extractors.push(Extractor::Css {
            selector,
            attr: Some("value".into()),
        });
    }
    if let Ok(path) = serde_json_path::JsonPath::parse(&rule) {
        extractors.push(Extractor::JsonPath(path));
    }
    for content_type in ["", "application/json"] {
        for extractor in &extractors {
            let _ = extract(extractor, &body, content_type, &headers);
        }
    }

    let assertions = Assertions {
        status: Vec::new(),
        body_contains: vec![rule.clone()],
        body_not_contains: vec![rule.clone()],
        body_matches: regex.iter().cloned().collect(),
        headers: regex
            .iter()
            .map(|re| (rule.to_ascii_lowercase(), re.clone()))
            .collect(),
    };
    let _ = check_assertions(&assertions, &body, &headers);

    if let Ok(template) = Template::parse(&rule) {
        let vars: HashMap<String, String> = template
            .vars()
            .map(|v| (v.to_string(), body.clone()))
            .collect();
        let _ = template.render(&vars);
        let _ = template.render(&HashMap::new());
    }
});
