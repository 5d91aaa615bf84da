//! Accounts: what a valid e-mail, password and role are.
//!
//! E-mail addresses are compared case-insensitively by storing them normalised (trimmed and
//! lower-cased); that keeps the unique index portable across SQLite and PostgreSQL.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Shortest password accepted at sign-up and by admins creating users.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted: argon2 would take any length, but a bound stops abuse.
pub const MAX_PASSWORD_LEN: usize = 128;
/// The most bytes of a password that are ever hashed: a set password has at most
/// `MAX_PASSWORD_LEN` characters of at most 4 bytes, so anything longer is wrong unchecked.
pub const MAX_PASSWORD_BYTES: usize = 4 * MAX_PASSWORD_LEN;
/// RFC 5321 limit on the length of an address.
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest name of a personal API token.
pub const MAX_TOKEN_NAME_LEN: usize = 64;

/// What a user may do. Stored as the lower-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::User, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// The allowed values, for error messages: "user, admin".
    pub fn allowed() -> String {
        Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role must be one of: {} (got {})",
                Role::allowed(),
                crate::domain::text::quoted(other)
            )),
        }
    }
}

/// Where an account stands with the admins. On a server whose sign-up asks for approval a new
/// account is `Pending` (it cannot sign in) until an admin approves or rejects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Approval {
    Pending,
    Approved,
    Rejected,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::Pending => "pending",
            Approval::Approved => "approved",
            Approval::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Approval> {
        match text {
            "pending" => Some(Approval::Pending),
            "approved" => Some(Approval::Approved),
            "rejected" => Some(Approval::Rejected),
            _ => None,
        }
    }
}

/// Trims and lower-cases an address, then checks its shape: one `@`, a non-empty local part and
/// a domain without spaces. Deliverability is not our business; typos like a missing `@` are.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    // The length first: nothing else is done with a 2 MB "address".
    let trimmed = raw.trim();
    if trimmed.len() > MAX_EMAIL_LEN {
        return Err(format!("email must be at most {MAX_EMAIL_LEN} characters"));
    }
    let email = trimmed.to_lowercase();
    if email.is_empty() {
        return Err("email is required".into());
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("email must be at most {MAX_EMAIL_LEN} characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("email must look like name@example.com".into());
    };
    let domain_ok = !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    if local.is_empty() || !domain_ok || email.chars().any(char::is_whitespace) {
        return Err("email must look like name@example.com".into());
    }
    Ok(email)
}

/// Checks a new password's length (counted in characters, not bytes).
pub fn validate_password(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

/// Trims a token name and checks it is 1..=64 characters.
pub fn normalize_token_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err("name is required".into());
    }
    if len > MAX_TOKEN_NAME_LEN {
        return Err(format!(
            "name must be at most {MAX_TOKEN_NAME_LEN} characters"
        ));
    }
    Ok(name.to_string())
}

/// Where to go after logging in: `next` when it is a path on this site, else the profile.
/// Anything that could leave the site (`//host`, `https://...`, a backslash) is ignored.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local {
        next
    } else {
        "/profile"
    }
}

/// Percent-encodes a path for use as the `next` query parameter.
pub fn encode_next(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("alice@example.com", Ok("alice@example.com")),
            ("  Alice@Example.COM ", Ok("alice@example.com")),
            ("admin@localhost", Ok("admin@localhost")),
            ("", Err(())),
            ("   ", Err(())),
            ("alice", Err(())),
            ("@example.com", Err(())),
            ("alice@", Err(())),
            ("alice@@example.com", Err(())),
            ("al ice@example.com", Err(())),
            ("alice@.example.com", Err(())),
            ("alice@example.com.", Err(())),
        ];
        for (input, want) in cases {
            let got = normalize_email(input);
            match want {
                Ok(expected) => assert_eq!(got.as_deref(), Ok(*expected), "input {input:?}"),
                Err(()) => assert!(
                    got.is_err(),
                    "input {input:?} should be refused, got {got:?}"
                ),
            }
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn password_length_bounds() {
        let cases = [
            ("", false),
            ("1234567", false),
            ("12345678", true),
            ("ééééééé", false),
            ("éééééééé", true),
        ];
        for (pw, ok) in cases {
            assert_eq!(validate_password(pw).is_ok(), ok, "password {pw:?}");
        }
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_LEN)).is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
    }

    #[test]
    fn roles_round_trip_and_name_the_allowed_values() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.contains("user, admin"), "{err}");
        assert!("Admin".parse::<Role>().is_err(), "roles are case-sensitive");
    }

    #[test]
    fn token_names() {
        assert_eq!(normalize_token_name("  ci  ").as_deref(), Ok("ci"));
        assert!(normalize_token_name(" ").is_err());
        assert!(normalize_token_name(&"n".repeat(MAX_TOKEN_NAME_LEN)).is_ok());
        assert!(normalize_token_name(&"n".repeat(MAX_TOKEN_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn only_local_paths_are_followed_after_log_in() {
        let cases = [
            ("/admin/users", "/admin/users"),
            ("/profile/tokens", "/profile/tokens"),
            ("", "/profile"),
            ("admin", "/profile"),
            ("//evil.example", "/profile"),
            ("https://evil.example", "/profile"),
            ("/\\evil.example", "/profile"),
            ("/a\nb", "/profile"),
        ];
        for (input, want) in cases {
            assert_eq!(safe_next(input), want, "next {input:?}");
        }
        assert_eq!(encode_next("/admin/users"), "/admin/users");
        assert_eq!(encode_next("/a b&c"), "/a%20b%26c");
    }
}
