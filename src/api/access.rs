//! Who may use what, declared once for the server and the pages alike.
//!
//! - **Pages**: [`PAGES`] gives each route of the route table (`app.rs`) its access. The server's
//!   `page_guard` sends visitors of a signed-in page to log in with a 302 before rendering, and
//!   every route's page is wrapped by `ui::common::Guarded`, which reads the same table (log in,
//!   or a 403 page for a user on an admin page) when the browser navigates. `tests/http.rs`
//!   walks every route of the table Leptos serves and checks both ways: that each has a line
//!   here, and what a visitor, a user and an admin get.
//! - **Server functions**: the few a visitor needs are named in [`PUBLIC_SERVER_FNS`]; every
//!   function named `admin_*` is an admin's; every other one needs a signed-in user. The
//!   server's `fn_guard` refuses a call before its input is read, from this alone. A new
//!   function is therefore closed to visitors until it is listed, and `tests/server_fns.rs`
//!   calls every registered one to check that each answers as declared.

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

impl Access {
    /// Whether `user` (`None`: a visitor) may use what has this access.
    pub fn allows(self, user: Option<&crate::api::UserDto>) -> bool {
        match self {
            Access::Public => true,
            Access::User => user.is_some(),
            Access::Admin => user.is_some_and(|u| u.is_admin()),
        }
    }
}

/// Every page's route (as written in the route table) and who may see it.
pub const PAGES: [(&str, Access); 17] = [
    ("/", Access::Public),
    ("/login", Access::Public),
    ("/signup", Access::Public),
    ("/signup/pending", Access::Public),
    ("/pricing", Access::Public),
    ("/chat", Access::User),
    ("/chat/:id", Access::User),
    ("/notifications", Access::User),
    ("/profile", Access::User),
    ("/profile/usage", Access::User),
    ("/profile/tokens", Access::User),
    ("/admin", Access::Admin),
    ("/admin/users", Access::Admin),
    ("/admin/users/:id", Access::Admin),
    ("/admin/usage", Access::Admin),
    ("/admin/plans", Access::Admin),
    ("/admin/jobs", Access::Admin),
];

/// Who may see the page at `path` (a path of the address bar: `/chat/<id>` matches `/chat/:id`);
/// `None` for a path that is no page (it answers 404 to everybody).
pub fn page(path: &str) -> Option<Access> {
    let path = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    PAGES
        .iter()
        .find(|(route, _)| route_matches(route, path))
        .map(|&(_, access)| access)
}

/// Whether `path` is an address of `route`, whose `:name` segments stand for any one segment.
fn route_matches(route: &str, path: &str) -> bool {
    let mut path = path.split('/');
    route.split('/').all(|segment| match path.next() {
        Some(given) if segment.starts_with(':') => !given.is_empty(),
        Some(given) => given == segment,
        None => false,
    }) && path.next().is_none()
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

    #[test]
    fn pages_by_their_route() {
        assert_eq!(page("/"), Some(Access::Public));
        assert_eq!(page("/pricing/"), Some(Access::Public));
        assert_eq!(page("/signup/pending"), Some(Access::Public));
        assert_eq!(page("/chat"), Some(Access::User));
        assert_eq!(
            page("/chat/6f1c2a7e-0000-4000-8000-000000000000"),
            Some(Access::User)
        );
        assert_eq!(page("/profile/tokens"), Some(Access::User));
        assert_eq!(page("/admin"), Some(Access::Admin));
        assert_eq!(page("/admin/users/42"), Some(Access::Admin));
        for none in [
            "/chatter",
            "/profiles",
            "/chat/1/2",
            "/admin/users/1/x",
            "/api/auth/me",
        ] {
            assert_eq!(page(none), None, "{none}");
        }
    }
}
