//! Who is asking: the login form and its session cookie (or a bearer header), the
//! authorization table's answer for a page, and the headers every response carries.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use server::auth::{Principal, Rpc, Scope, authorize};
use server::services::Ctx;

use crate::Shared;
use crate::html::{Shell, render_with};

/// A login lasts this long (the cookie's Max-Age).
pub const SESSION_S: u64 = 8 * 3_600;
/// The login form's body is at most this long.
pub(crate) const LOGIN_BYTES_MAX: usize = 4_096;
const COOKIE: &str = "carbonx_token";
/// What pages may load: scripts and styles from the dashboard's own `/static/` only (the
/// bars' widths are inline style attributes), nothing framed, forms posted back here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Who is asking: the principal of the cookie (or of the bearer header).
pub(crate) struct Viewer {
    pub principal: Arc<Principal>,
    /// The row of the table that let it in.
    pub scope: Scope,
}

/// What every response of the dashboard carries; pages (HTML, the market stream) are
/// never cached (they show holdings), the static files may be.
pub(crate) async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let is_asset = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/javascript") || t.starts_with("text/css"));
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

#[derive(Template)]
#[template(path = "refused.html")]
struct RefusedPage<'a> {
    shell: Shell,
    reason: &'a str,
    message: &'a str,
    /// A link to the login form (the request had no valid token).
    login: bool,
}

pub(crate) fn refused(status: StatusCode, reason: &str, message: &str) -> Response {
    let page = RefusedPage {
        shell: Shell::bare("Refused"),
        reason,
        message,
        login: status == StatusCode::UNAUTHORIZED,
    };
    render_with(status, &page)
}

/// Where a login may send the browser next: a path of this dashboard only.
fn next_path(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.clone(),
        _ => "/market".into(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    shell: Shell,
    next: &'a str,
    problem: &'a str,
}

fn login_page(status: StatusCode, next: &str, problem: &str) -> Response {
    let page = LoginPage {
        shell: Shell::bare("Log in"),
        next,
        problem,
    };
    render_with(status, &page)
}

pub(crate) async fn login_form(Query(query): Query<HashMap<String, String>>) -> Response {
    login_page(StatusCode::OK, &next_path(query.get("next")), "")
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// The posted token, checked: the session cookie and a redirect to where the user was
/// going, or the form again with the reason.
pub(crate) async fn login(State(ctx): State<Shared>, form: axum::Form<LoginForm>) -> Response {
    let next = next_path(form.next.as_ref());
    let token = form.token.as_str();
    if ctx.tokens.authenticate(token).is_none() || !cookie_safe(token) {
        return login_page(StatusCode::UNAUTHORIZED, &next, "unknown token");
    }
    let secure = if ctx.tls { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_S}{secure}");
    let mut r = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, value);
    }
    r
}

pub(crate) async fn logout() -> Response {
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("carbonx_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

/// Tokens a cookie can carry as they are.
fn cookie_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn viewer(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    rpc: Rpc,
    accounts: &[u64],
) -> Result<Viewer, Box<Response>> {
    let v = unscoped_viewer(ctx, headers, query, rpc, accounts)?;
    // A province's or a body's row needs its check: such pages call `viewer_scoped`.
    if matches!(v.scope, Scope::Jurisdiction | Scope::Assigned) {
        return Err(Box::new(refused(
            StatusCode::FORBIDDEN,
            "ROLE_NOT_ALLOWED",
            "this page is not scoped to a province or a body",
        )));
    }
    Ok(v)
}

fn unscoped_viewer(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    rpc: Rpc,
    accounts: &[u64],
) -> Result<Viewer, Box<Response>> {
    let _ = query;
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == COOKIE)
                .map(|(_, v)| v.to_string())
        });
    let Some(token) = from_header.or(from_cookie) else {
        return Err(Box::new(refused(
            StatusCode::UNAUTHORIZED,
            "NO_TOKEN",
            "this page needs a bearer token",
        )));
    };
    let Some(principal) = ctx.tokens.authenticate(&token) else {
        return Err(Box::new(refused(
            StatusCode::UNAUTHORIZED,
            "BAD_TOKEN",
            "unknown token",
        )));
    };
    let scope = authorize(&principal, rpc, accounts)
        .map_err(|e| Box::new(refused(StatusCode::FORBIDDEN, e.reason, &e.message)))?;
    Ok(Viewer { principal, scope })
}

/// [`viewer`] for a page whose row may scope the caller to a province's entities or a
/// body's files of `year`: checked against the registry like the API's reads.
pub(crate) async fn viewer_scoped(
    ctx: &Ctx,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    rpc: Rpc,
    accounts: &[u64],
    year: u16,
) -> Result<Viewer, Box<Response>> {
    let v = unscoped_viewer(ctx, headers, query, rpc, accounts)?;
    ctx.check_scope(&v.principal, v.scope, year, accounts)
        .await
        .map_err(|e| Box::new(refused(StatusCode::FORBIDDEN, e.reason, &e.message)))?;
    Ok(v)
}
