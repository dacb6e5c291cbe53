//! The login page as a sign of logout, with no configuration.
//!
//! A restart that flushes the session store, or an expiry, most often
//! answers a logged-in request with the system's own login page: a redirect
//! to it (plain, or with a return-to parameter such as `?next=`) or the
//! login form served with 200. The target's own login steps say what that
//! page is, so these rules need nothing configured.
//!
//! On the journey's own logout a redirect to the login page is the normal
//! answer, so there only a redirect that sends the logout itself back
//! through the login page (`/login?next=/logout`) counts: that is how a
//! server answers a logout for a session it no longer knows.
//!
//! Pure: URLs and text in, verdicts out.

use url::Url;

/// Whether `next` (a redirect's resolved Location) is the login page at
/// `login`: same origin and path, whatever its query. A trailing slash is
/// not a difference.
pub fn is_login_page(next: &Url, login: &Url) -> bool {
    next.origin() == login.origin() && same_path(next.path(), login.path())
}

/// Whether a redirect to the login page names `path` as where to return
/// after signing in, in any query value (`?next=/logout`,
/// `?ReturnUrl=%2Flogout`, or a full URL ending in that path).
pub fn returns_to(next: &Url, path: &str) -> bool {
    next.query_pairs().any(|(_, value)| {
        let value = value.as_ref();
        let value_path = match Url::parse(value) {
            Ok(url) => url.path().to_string(),
            Err(_) => value.split(['?', '#']).next().unwrap_or("").to_string(),
        };
        same_path(&value_path, path)
    })
}

/// Whether a redirect to the login page names a page to return to after
/// signing in (`?next=/admin/`, `?ReturnUrl=%2Fcases`, a full URL): the
/// mark of a page that refused a request for want of a session.
pub fn returns_somewhere(next: &Url) -> bool {
    next.query_pairs().any(|(_, value)| {
        value.starts_with('/')
            || Url::parse(&value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    })
}

/// Whether an HTML page has a password field: the mark of a login form,
/// which no page of a logged-in session shows. A cheap text check comes
/// first so most pages are never parsed.
pub fn has_password_field(body: &str) -> bool {
    if !body
        .as_bytes()
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"password"))
    {
        return false;
    }
    static SELECTOR: std::sync::OnceLock<scraper::Selector> = std::sync::OnceLock::new();
    let selector = SELECTOR.get_or_init(|| {
        scraper::Selector::parse(r#"input[type="password" i]"#).expect("static selector")
    });
    scraper::Html::parse_document(body)
        .select(selector)
        .next()
        .is_some()
}

fn same_path(a: &str, b: &str) -> bool {
    let trim = |p: &str| p.trim_end_matches('/').to_string();
    !b.is_empty() && trim(a) == trim(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_return_to_names_a_page_or_a_url() {
        for yes in [
            "https://h/admin/login/?next=/admin/",
            "https://h/Account/Login?ReturnUrl=%2Fcases%2F1",
            "https://h/login?continue=https%3A%2F%2Fh%2Fhome",
        ] {
            assert!(returns_somewhere(&url(yes)), "{yes}");
        }
        for no in [
            "https://h/login",
            "https://h/login?logged_out=1",
            "https://h/login?expired=1&lang=en",
        ] {
            assert!(!returns_somewhere(&url(no)), "{no}");
        }
    }

    #[test]
    fn a_redirect_to_the_login_path_is_the_login_page_whatever_its_query() {
        let login = url("https://ics.example/login");
        for next in [
            "https://ics.example/login",
            "https://ics.example/login/",
            "https://ics.example/login?next=/cases/7",
            "https://ics.example/login?expired=1",
        ] {
            assert!(is_login_page(&url(next), &login), "{next}");
        }
        for next in [
            "https://ics.example/home",
            "https://ics.example/login-help",
            "https://other.example/login",
            "http://ics.example/login",
        ] {
            assert!(!is_login_page(&url(next), &login), "{next}");
        }
    }

    #[test]
    fn a_return_to_the_logout_names_its_path() {
        for next in [
            "https://ics.example/login?next=/logout",
            "https://ics.example/login?ReturnUrl=%2Flogout",
            "https://ics.example/login?next=https%3A%2F%2Fics.example%2Flogout%3Fa%3D1",
            "https://ics.example/login?next=/logout/",
        ] {
            assert!(returns_to(&url(next), "/logout"), "{next}");
        }
        for next in [
            "https://ics.example/login?logged_out=1",
            "https://ics.example/login",
            "https://ics.example/login?next=/home",
        ] {
            assert!(!returns_to(&url(next), "/logout"), "{next}");
        }
    }

    #[test]
    fn a_login_form_has_a_password_field_and_a_record_page_does_not() {
        let login = r#"<form method="post" action="/login"><input type="hidden" name="csrf_token" value="x">
            <input name="username"><input type="PASSWORD" name="password"></form>"#;
        let record = r#"<h1 class="case-name">Smith</h1><form id="note-form"><input type="hidden" name="csrf_token" value="y">
            <p>Ask the family about the password for the door entry.</p></form>"#;
        assert!(has_password_field(login));
        assert!(!has_password_field(record));
        assert!(!has_password_field(r#"{"results":[{"id":"c-1"}]}"#));
    }
}
