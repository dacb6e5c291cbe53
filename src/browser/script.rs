//! What the agent puts into every page it drives, and the small scripts it
//! evaluates there. Values (selectors, texts) go into scripts as JSON
//! strings, never pasted in, so no page or config text becomes code.

/// The binding the page reports long tasks and paints through.
pub const BINDING: &str = "__casewatchReport";

/// Installed before any of the page's own scripts: observers for long tasks
/// and the largest contentful paint, reported through [`BINDING`] with
/// wall-clock times (the page's `timeOrigin` plus its own clock), so they
/// survive the page being navigated away from.
pub const OBSERVERS: &str = r#"(() => {
  const send = globalThis.__casewatchReport;
  if (typeof send !== "function" || globalThis.__casewatchObserving) return;
  globalThis.__casewatchObserving = true;
  const origin = performance.timeOrigin;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        send(JSON.stringify({ k: "longtask", s: origin + e.startTime, d: e.duration }));
      }
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {}
  try {
    new PerformanceObserver((list) => {
      const all = list.getEntries();
      const last = all[all.length - 1];
      if (last) send(JSON.stringify({ k: "lcp", s: origin + last.startTime, d: 0 }));
    }).observe({ type: "largest-contentful-paint", buffered: true });
  } catch (e) {}
})();"#;

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// `true` when an element matches `selector`.
pub fn exists(selector: &str) -> String {
    format!("!!document.querySelector({})", quoted(selector))
}

/// `true` when the page's visible text contains `text`.
pub fn shows(text: &str) -> String {
    format!(
        "(document.body ? document.body.innerText : '').includes({})",
        quoted(text)
    )
}

/// The point to click the first element matching `selector` at (scrolled
/// into view), `{x, y, w, h}`; `null` when none matches.
pub fn click_point(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); if (!e) return null; \
         e.scrollIntoView({{ block: 'center', inline: 'center' }}); \
         const r = e.getBoundingClientRect(); \
         return {{ x: r.left + r.width / 2, y: r.top + r.height / 2, w: r.width, h: r.height }}; }})()",
        quoted(selector)
    )
}

/// Focuses the first element matching `selector` and empties it; `false`
/// when none matches. The value is then typed with `Input.insertText`, so
/// it never appears in a script.
pub fn focus_and_clear(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); if (!e) return false; \
         e.focus(); if ('value' in e) e.value = ''; \
         e.dispatchEvent(new Event('input', {{ bubbles: true }})); return true; }})()",
        quoted(selector)
    )
}

/// Tells the focused element its value changed, as leaving a field does.
pub const CHANGED: &str =
    "(() => { const e = document.activeElement; if (e) e.dispatchEvent(new Event('change', { bubbles: true })); return true; })()";

/// The first matching element's text (trimmed) or attribute; `null` when
/// none matches.
pub fn read(selector: &str, attr: Option<&str>) -> String {
    match attr {
        Some(attr) => format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.getAttribute({}) : null; }})()",
            quoted(selector),
            quoted(attr)
        ),
        None => format!(
            "(() => {{ const e = document.querySelector({}); return e ? (e.innerText || e.textContent || '').trim() : null; }})()",
            quoted(selector)
        ),
    }
}

/// The page's markup, for `session_rules.body_matches`.
pub const MARKUP: &str = "document.documentElement ? document.documentElement.outerHTML : ''";

/// Whether the page holds a login form: a password field, and the login's
/// first field (`selector`) when there is one.
pub fn login_form(selector: Option<&str>) -> String {
    let field = match selector {
        Some(s) => format!(" && !!document.querySelector({})", quoted(s)),
        None => String::new(),
    };
    format!("!!document.querySelector('input[type=\"password\" i]'){field}")
}

/// Empties every password field, and every field a secret was typed into
/// (`fields`, selectors), in the page and in the frames it can reach.
/// Returns `{cleared, left, opaque}`: fields emptied, password fields still
/// holding a value, and frames it could not look into. A screenshot is
/// taken only when `left` and `opaque` are both 0.
pub fn mask_secrets(fields: &[String]) -> String {
    let list = serde_json::to_string(fields).unwrap_or_else(|_| "[]".to_string());
    format!(
        r#"(() => {{
  const fields = {list};
  let cleared = 0, left = 0, opaque = 0;
  const visit = (doc) => {{
    const found = new Set(doc.querySelectorAll('input[type="password" i]'));
    for (const s of fields) {{ try {{ for (const e of doc.querySelectorAll(s)) found.add(e); }} catch (e) {{}} }}
    for (const e of found) {{ if ('value' in e && e.value !== '') {{ e.value = ''; cleared++; }} }}
    for (const e of doc.querySelectorAll('input[type="password" i]')) {{ if (e.value !== '') left++; }}
    for (const f of doc.querySelectorAll('iframe, frame')) {{
      let inner = null;
      try {{ inner = f.contentDocument; }} catch (e) {{}}
      if (inner) visit(inner); else opaque++;
    }}
  }};
  visit(document);
  return {{ cleared, left, opaque }};
}})()"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_enter_scripts_as_json_strings() {
        let hostile = r#"'); alert(1); ("#;
        let js = exists(hostile);
        assert_eq!(js, r#"!!document.querySelector("'); alert(1); (")"#);
        assert!(shows("a\"b").contains(r#""a\"b""#));
        assert!(mask_secrets(&["#pw".to_string()]).contains(r##"const fields = ["#pw"];"##));
    }
}
