//! E-mail templates from `templates/` (compiled in): a plain-text body whose
//! first line is `Subject: …`, and an HTML body placed in `layout.html`.
//! `{{name}}` placeholders are filled in; values are HTML-escaped in HTML.

/// The messages Voxplane sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// Verify the address of a new account.
    VerifyEmail,
    /// Reset a forgotten password.
    ResetPassword,
    /// Join a project.
    Invitation,
    /// Confirm a new address of an account.
    ChangeEmail,
    /// Tell the owner of an address that another account asked for it.
    AddressInUse,
}

impl Template {
    /// The name used for files and `outbound_emails.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::VerifyEmail => "verify_email",
            Template::ResetPassword => "reset_password",
            Template::Invitation => "invitation",
            Template::ChangeEmail => "change_email",
            Template::AddressInUse => "address_in_use",
        }
    }

    fn sources(self) -> (&'static str, &'static str) {
        match self {
            Template::VerifyEmail => (
                include_str!("../../templates/verify_email.txt"),
                include_str!("../../templates/verify_email.html"),
            ),
            Template::ResetPassword => (
                include_str!("../../templates/reset_password.txt"),
                include_str!("../../templates/reset_password.html"),
            ),
            Template::Invitation => (
                include_str!("../../templates/invitation.txt"),
                include_str!("../../templates/invitation.html"),
            ),
            Template::ChangeEmail => (
                include_str!("../../templates/change_email.txt"),
                include_str!("../../templates/change_email.html"),
            ),
            Template::AddressInUse => (
                include_str!("../../templates/address_in_use.txt"),
                include_str!("../../templates/address_in_use.html"),
            ),
        }
    }
}

const LAYOUT: &str = include_str!("../../templates/layout.html");

/// A rendered message.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text alternative.
    pub text: String,
    /// HTML alternative.
    pub html: String,
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fill(template: &str, vars: &[(&str, &str)], html: bool) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        let value = if html {
            escape_html(value)
        } else {
            (*value).to_owned()
        };
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

/// Renders a template with `vars` (one of them usually `link`).
pub fn render(t: Template, vars: &[(&str, &str)]) -> Rendered {
    let (text_src, html_src) = t.sources();
    // Newlines in values must not start new header or body lines.
    let vars: Vec<(&str, String)> = vars
        .iter()
        .map(|(k, v)| (*k, v.replace(['\r', '\n'], " ")))
        .collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let text = fill(text_src, &vars, false);
    let (subject, body) = match text.split_once('\n') {
        Some((first, rest)) => (
            first
                .strip_prefix("Subject: ")
                .unwrap_or(first)
                .trim()
                .to_owned(),
            rest.to_owned(),
        ),
        None => (String::new(), text.clone()),
    };
    let content = fill(html_src, &vars, true);
    let mut layout_vars = vars.clone();
    layout_vars.push(("subject", &subject));
    let html = fill(LAYOUT, &layout_vars, true).replace("{{content}}", &content);
    Rendered {
        subject,
        text: body,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_and_escapes_html() {
        for t in [
            Template::VerifyEmail,
            Template::ResetPassword,
            Template::Invitation,
            Template::ChangeEmail,
            Template::AddressInUse,
        ] {
            let r = render(
                t,
                &[
                    ("product", "Voxplane"),
                    ("name", "<Ann>"),
                    ("email", "ann@example.com"),
                    ("link", "https://app.example.com/x?token=abc"),
                    ("project", "Acme"),
                    ("inviter", "Bob"),
                    ("role", "admin"),
                ],
            );
            assert!(
                !r.subject.is_empty() && r.subject.contains("Voxplane"),
                "{t:?}"
            );
            for body in [&r.text, &r.html] {
                assert!(!body.contains("{{"), "{t:?}: {body}");
                assert!(
                    body.contains("https://app.example.com/x?token=abc"),
                    "{t:?}"
                );
            }
            assert!(!r.html.contains("<Ann>"), "{t:?}");
        }
    }
}
