//! Who may call a server function, declared once: the server's guard (`server::auth::fn_guard`)
//! refuses a call before its input is read, from this alone. The few a visitor needs are named
//! here; every function named `admin_*` is an admin's; every other one needs a signed-in user.
//! A new function is therefore closed to visitors until it is listed, and
//! `tests/server_fns.rs` calls every registered one to check that each answers as declared.

/// Who may use something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anybody, signed in or not.
    Public,
    /// A signed-in user (401 otherwise).
    User,
    /// A signed-in admin (401 when signed out, 403 for everybody else).
    Admin,
}

/// The server functions a visitor may call (by endpoint name).
pub const PUBLIC_SERVER_FNS: [&str; 5] = ["signup_mode", "login", "signup", "logout", "list_plans"];

/// Who may call the server function served at `/api/fn/<endpoint>`.
pub fn server_fn(endpoint: &str) -> Access {
    if PUBLIC_SERVER_FNS.contains(&endpoint) {
        Access::Public
    } else if endpoint.starts_with("admin_") {
        Access::Admin
    } else {
        Access::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_closed_unless_listed() {
        assert_eq!(server_fn("login"), Access::Public);
        assert_eq!(server_fn("list_plans"), Access::Public);
        assert_eq!(server_fn("admin_list_users"), Access::Admin);
        assert_eq!(server_fn("get_usage"), Access::User);
        assert_eq!(server_fn("a_function_added_tomorrow"), Access::User);
    }
}
