//! Routing and handlers of the stand-in GitLab service.
//!
//! Status codes and bodies follow GitLab's REST API (`/api/v4`) as documented
//! for GitLab 17: `{"message": "401 Unauthorized"}` without a valid token,
//! `{"message": "404 Project Not Found"}` for an unknown resource,
//! `{"error": "404 Not Found"}` for a path no route matches, and Grape's
//! `{"error": "<param> is missing"}` for a missing parameter.

use http::{HeaderMap, Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::entities;
use super::reply::Reply;
use crate::clock;
use crate::state::{
    AccessLevel, JOB_SCOPES, PersonalAccessToken, Project, Runner, RunnerStatus, RunnerType, State,
    User,
};

/// A request as passed to the router.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    /// Path as received, still percent-encoded.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// `http` or `https`, used to build `Link` headers.
    pub scheme: &'a str,
}

impl ApiRequest<'_> {
    fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }

    fn query_value(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Parameters from the query string and the body (JSON or form-encoded),
    /// merged as Grape merges them. Body values win over query values.
    fn params(&self) -> Vec<(String, String)> {
        let mut params = self.query_pairs();
        let content_type = self.header("content-type").unwrap_or_default();
        let body = String::from_utf8_lossy(self.body);
        let looks_like_json = body.trim_start().starts_with('{');
        if content_type.starts_with("application/json")
            || (content_type.is_empty() && looks_like_json)
        {
            if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&body) {
                for (key, value) in object {
                    let text = match value {
                        Value::String(text) => text,
                        Value::Array(items) => items
                            .iter()
                            .map(|item| {
                                item.as_str()
                                    .map_or_else(|| item.to_string(), str::to_owned)
                            })
                            .collect::<Vec<_>>()
                            .join(","),
                        other => other.to_string(),
                    };
                    params.push((key, text));
                }
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            params.extend(
                form_urlencoded::parse(self.body)
                    .map(|(key, value)| (key.into_owned(), value.into_owned())),
            );
        }
        params
    }
}

fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Routes one request and returns the response.
pub(crate) fn route(state: &mut State, request: &ApiRequest<'_>) -> Reply {
    if let Some(redirect) = state
        .redirects
        .iter()
        .find(|redirect| request.path.starts_with(&redirect.from))
    {
        let mut location = format!("{}{}", redirect.to.trim_end_matches('/'), request.path);
        if !request.query.is_empty() {
            location.push('?');
            location.push_str(request.query);
        }
        return Reply::empty(StatusCode::MOVED_PERMANENTLY).with_header("location", location);
    }
    let path = request.path.trim_start_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        // GitLab serves its health checks only to clients on the monitoring
        // IP allowlist (127.0.0.0/8 by default) and returns 404 with an empty
        // body to every other client, such as one in another container.
        ["-", "health" | "readiness" | "liveness"] => Reply::empty(StatusCode::NOT_FOUND),
        [""] => Reply::empty(StatusCode::FOUND).with_header(
            "location",
            format!("{}/users/sign_in", state.external_url.trim_end_matches('/')),
        ),
        ["users", "sign_in"] => Reply::html(
            StatusCode::OK,
            "<!DOCTYPE html>\n<html><head><title>Sign in · GitLab</title></head><body></body></html>\n",
        ),
        ["api", "v4", rest @ ..] => route_api(state, request, rest),
        _ => Reply::html(
            StatusCode::NOT_FOUND,
            "<!DOCTYPE html>\n<html><head><title>The page could not be found (404)</title></head><body></body></html>\n",
        ),
    }
}

fn route_api(state: &mut State, request: &ApiRequest<'_>, rest: &[&str]) -> Reply {
    let method = if request.method == Method::HEAD {
        &Method::GET
    } else {
        request.method
    };
    match (method, rest) {
        (&Method::POST, ["runners", "verify"]) => verify_runner(state, request),
        (&Method::POST, ["runners"]) => register_runner(state, request),
        (&Method::DELETE, ["runners"]) => unregister_runner(state, request),
        (&Method::GET, ["version" | "metadata"]) => with_token(
            state,
            request,
            &["api", "read_api", "read_user", "ai_features"],
            |state, _, _| {
                Reply::json(
                    StatusCode::OK,
                    &json!({
                        "version": state.version,
                        "revision": state.revision,
                        "kas": { "enabled": false, "externalUrl": null, "externalK8sProxyUrl": null, "version": null },
                        "enterprise": state.enterprise,
                    }),
                )
            },
        ),
        (&Method::GET, ["user"]) => with_token(
            state,
            request,
            &["api", "read_api", "read_user"],
            |state, _, user| Reply::json(StatusCode::OK, &entities::user(state, user)),
        ),
        (&Method::GET, ["personal_access_tokens", "self"]) => {
            with_token(state, request, &[], |_, token, _| {
                Reply::json(
                    StatusCode::OK,
                    &entities::personal_access_token(token, true),
                )
            })
        }
        (&Method::GET, ["runners"]) => with_token(state, request, READ_API, |state, _, _| {
            list_runners(state, request, |runner| {
                runner.runner_type != RunnerType::InstanceType
            })
        }),
        (&Method::GET, ["runners", "all"]) => {
            with_token(state, request, READ_API, |state, _, user| {
                if !user.is_admin {
                    return Reply::forbidden();
                }
                list_runners(state, request, |_| true)
            })
        }
        (&Method::GET, ["runners", id]) => with_token(state, request, READ_API, |state, _, _| {
            let Ok(id) = id.parse::<u64>() else {
                return Reply::error(StatusCode::BAD_REQUEST, "id is invalid");
            };
            match state.runner(id) {
                Some(runner) => {
                    Reply::json(StatusCode::OK, &entities::runner_details(state, runner))
                }
                None => Reply::not_found("Runner"),
            }
        }),
        (&Method::GET, ["projects", id, rest @ ..]) => {
            with_token(state, request, READ_API, |state, _, _| {
                let Some(project) = find_project(state, id) else {
                    return Reply::not_found("Project");
                };
                match rest {
                    [] => Reply::json(StatusCode::OK, &entities::project(state, project)),
                    ["runners"] => list_runners(state, request, |runner| {
                        runner_serves_project(runner, project)
                    }),
                    ["jobs"] => list_jobs(state, request, project),
                    ["protected_branches"] => {
                        let branches = project
                            .protected_branches
                            .iter()
                            .enumerate()
                            .map(|(index, branch)| {
                                entities::protected_branch(index as u64 + 1, branch)
                            })
                            .collect();
                        paginate(state, request, branches)
                    }
                    _ => Reply::no_route(),
                }
            })
        }
        _ => Reply::no_route(),
    }
}

const READ_API: &[&str] = &["api", "read_api"];

/// Returns the personal access token of a request, from `PRIVATE-TOKEN`,
/// `Authorization: Bearer`, or the `private_token` or `access_token` query
/// parameter, in that order.
fn request_token(request: &ApiRequest<'_>) -> Option<String> {
    if let Some(token) = request.header("private-token") {
        return Some(token.trim().to_owned());
    }
    if let Some(authorization) = request.header("authorization") {
        let (scheme, token) = authorization.split_once(' ').unwrap_or((authorization, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(token.trim().to_owned());
        }
    }
    request
        .query_value("private_token")
        .or_else(|| request.query_value("access_token"))
}

fn invalid_token(description: &str) -> Reply {
    Reply::json(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "invalid_token", "error_description": description }),
    )
    .with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"gitlab\", error=\"invalid_token\", error_description=\"{description}\""
        ),
    )
}

fn insufficient_scope(scopes: &[&str]) -> Reply {
    let description = "The request requires higher privileges than provided by the access token.";
    let scope = scopes.join(" ");
    Reply::json(
        StatusCode::FORBIDDEN,
        &json!({ "error": "insufficient_scope", "error_description": description, "scope": scope }),
    )
    .with_header(
        "www-authenticate",
        format!(
            "Bearer realm=\"gitlab\", error=\"insufficient_scope\", error_description=\"{description}\", scope=\"{scope}\""
        ),
    )
}

/// Authenticates the request with a personal access token that has one of
/// `scopes` (any scope when empty) and runs `handler`, or returns GitLab's
/// 401 or 403 response.
fn with_token(
    state: &State,
    request: &ApiRequest<'_>,
    scopes: &[&str],
    handler: impl FnOnce(&State, &PersonalAccessToken, &User) -> Reply,
) -> Reply {
    let Some(value) = request_token(request) else {
        return Reply::unauthorized();
    };
    let Some(token) = state
        .personal_access_tokens
        .iter()
        .find(|token| token.token == value)
    else {
        return Reply::unauthorized();
    };
    if token.revoked {
        return invalid_token("Token was revoked. You have to re-authorize from the user.");
    }
    if token
        .expires_at
        .as_deref()
        .is_some_and(|expires_at| expires_at <= clock::today().as_str())
    {
        return invalid_token("Token has expired.");
    }
    let Some(user) = state
        .user(token.user_id)
        .filter(|user| user.state == "active")
    else {
        return Reply::unauthorized();
    };
    if !scopes.is_empty()
        && !token
            .scopes
            .iter()
            .any(|scope| scopes.contains(&scope.as_str()))
    {
        return insufficient_scope(scopes);
    }
    handler(state, token, user)
}

fn find_project<'s>(state: &'s State, raw_id: &str) -> Option<&'s Project> {
    let id = percent_decode_str(raw_id).decode_utf8_lossy();
    match id.parse::<u64>() {
        Ok(number) => state.project(number),
        Err(_) => state
            .projects
            .iter()
            .find(|project| project.path_with_namespace.eq_ignore_ascii_case(&id)),
    }
}

/// Runners that `GET /projects/:id/runners` lists: runners assigned to the
/// project (or to its group), and instance runners when the project allows them.
fn runner_serves_project(runner: &Runner, project: &Project) -> bool {
    match runner.runner_type {
        RunnerType::InstanceType => project.shared_runners_enabled,
        RunnerType::GroupType | RunnerType::ProjectType => runner.projects.contains(&project.id),
    }
}

fn list_runners(
    state: &State,
    request: &ApiRequest<'_>,
    visible: impl Fn(&Runner) -> bool,
) -> Reply {
    let query = request.query_pairs();
    let runner_type = match param(&query, "type") {
        Some(value) => match RunnerType::parse(value) {
            Some(runner_type) => Some(runner_type),
            None => {
                return Reply::error(StatusCode::BAD_REQUEST, "type does not have a valid value");
            }
        },
        None => None,
    };
    let status = match param(&query, "status") {
        Some(value) => match value {
            "online" | "offline" | "stale" | "never_contacted" | "active" | "paused" => Some(value),
            _ => {
                return Reply::error(
                    StatusCode::BAD_REQUEST,
                    "status does not have a valid value",
                );
            }
        },
        None => None,
    };
    let paused = match param(&query, "paused") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Reply::error(StatusCode::BAD_REQUEST, "paused is invalid"),
        None => None,
    };
    let tags: Vec<&str> = param(&query, "tag_list")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .collect()
        })
        .unwrap_or_default();

    let runners = state
        .runners
        .iter()
        .filter(|runner| visible(runner))
        .filter(|runner| runner_type.is_none_or(|wanted| runner.runner_type == wanted))
        .filter(|runner| match status {
            None => true,
            Some("active") => !runner.paused,
            Some("paused") => runner.paused,
            Some(wanted) => runner.status.as_str() == wanted,
        })
        .filter(|runner| paused.is_none_or(|wanted| runner.paused == wanted))
        .filter(|runner| {
            tags.iter()
                .all(|tag| runner.tag_list.iter().any(|own| own == tag))
        })
        .map(entities::runner_summary)
        .collect();
    paginate(state, request, runners)
}

fn list_jobs(state: &State, request: &ApiRequest<'_>, project: &Project) -> Reply {
    let scopes: Vec<String> = request
        .query_pairs()
        .into_iter()
        .filter(|(key, _)| key == "scope[]" || key == "scope")
        .map(|(_, value)| value)
        .collect();
    if scopes
        .iter()
        .any(|scope| !JOB_SCOPES.contains(&scope.as_str()))
    {
        return Reply::error(StatusCode::BAD_REQUEST, "scope does not have a valid value");
    }
    let mut jobs: Vec<_> = state
        .jobs
        .iter()
        .filter(|job| job.project_id == project.id)
        .filter(|job| scopes.is_empty() || scopes.contains(&job.status))
        .collect();
    // GitLab lists jobs newest first.
    jobs.sort_by_key(|job| std::cmp::Reverse(job.id));
    let jobs = jobs
        .into_iter()
        .map(|job| entities::job(state, project, job))
        .collect();
    paginate(state, request, jobs)
}

/// Returns one page of `items` with GitLab's offset pagination headers.
fn paginate(state: &State, request: &ApiRequest<'_>, items: Vec<Value>) -> Reply {
    let query = request.query_pairs();
    let page = match param(&query, "page").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(page)) if page >= 1 => page,
        Some(_) => return Reply::error(StatusCode::BAD_REQUEST, "page is invalid"),
    };
    let per_page = match param(&query, "per_page").map(str::parse::<usize>) {
        None => 20,
        // GitLab caps per_page at 100 and treats 0 as the default.
        Some(Ok(0)) => 20,
        Some(Ok(per_page)) => per_page.min(100),
        Some(Err(_)) => return Reply::error(StatusCode::BAD_REQUEST, "per_page is invalid"),
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let next_page = if page < total_pages {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let prev_page = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };

    let link_base = {
        let host = request
            .header("host")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                state
                    .external_url
                    .split_once("://")
                    .map_or("", |(_, rest)| rest)
                    .to_owned()
            });
        format!("{}://{}{}", request.scheme, host, request.path)
    };
    let link = |target: usize| {
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .filter(|(key, _)| key != "page" && key != "per_page")
            .cloned()
            .collect();
        pairs.push(("page".to_owned(), target.to_string()));
        pairs.push(("per_page".to_owned(), per_page.to_string()));
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        format!("<{link_base}?{encoded}>")
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link(page - 1)));
    }
    if page < total_pages {
        links.push(format!("{}; rel=\"next\"", link(page + 1)));
    }
    links.push(format!("{}; rel=\"first\"", link(1)));
    links.push(format!("{}; rel=\"last\"", link(total_pages)));

    Reply::json(StatusCode::OK, &Value::Array(page_items))
        .with_header("x-page", page.to_string())
        .with_header("x-per-page", per_page.to_string())
        .with_header("x-total", total.to_string())
        .with_header("x-total-pages", total_pages.to_string())
        .with_header("x-next-page", next_page)
        .with_header("x-prev-page", prev_page)
        .with_header("link", links.join(", "))
}

/// `POST /runners/verify`: checks a runner authentication token.
fn verify_runner(state: &State, request: &ApiRequest<'_>) -> Reply {
    let params = request.params();
    let Some(token) = param(&params, "token") else {
        return Reply::error(StatusCode::BAD_REQUEST, "token is missing");
    };
    if state
        .revoked_runner_tokens
        .iter()
        .any(|revoked| revoked == token)
    {
        return Reply::forbidden();
    }
    let Some(runner) = state.runners.iter().find(|runner| runner.token == token) else {
        return Reply::forbidden();
    };
    // ISO 8601 times in UTC compare correctly as text.
    if runner
        .token_expires_at
        .as_deref()
        .is_some_and(|expires_at| expires_at <= clock::now_rfc3339().as_str())
    {
        return Reply::forbidden();
    }
    if runner.orphaned {
        return Reply::message(StatusCode::UNPROCESSABLE_ENTITY, "Runner is orphaned");
    }
    Reply::json(
        StatusCode::OK,
        &json!({ "id": runner.id, "token": runner.token, "token_expires_at": runner.token_expires_at }),
    )
}

/// `POST /runners`: registers a runner with a registration token (the flow
/// GitLab deprecated in 15.6 but still serves when registration tokens are on).
fn register_runner(state: &mut State, request: &ApiRequest<'_>) -> Reply {
    let params = request.params();
    let Some(token) = param(&params, "token") else {
        return Reply::error(StatusCode::BAD_REQUEST, "token is missing");
    };
    if !state.registration_tokens.iter().any(|known| known == token) {
        return Reply::forbidden();
    }

    let id = state
        .runners
        .iter()
        .map(|runner| runner.id)
        .max()
        .unwrap_or(0)
        + 1;
    let mut runner = Runner::new(id, &format!("glrt-standin-registered-{id:04}"));
    runner.status = RunnerStatus::NeverContacted;
    runner.contacted_at = None;
    if let Some(description) = param(&params, "description") {
        runner.description = description.to_owned();
    }
    if let Some(tags) = param(&params, "tag_list") {
        runner.tag_list = tags
            .split(',')
            .map(str::trim)
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect();
    }

    runner.run_untagged = param(&params, "run_untagged") != Some("false");
    runner.locked = param(&params, "locked") == Some("true");
    runner.paused = param(&params, "paused") == Some("true");
    if param(&params, "access_level") == Some("ref_protected") {
        runner.access_level = AccessLevel::RefProtected;
    }

    let body = json!({ "id": runner.id, "token": runner.token, "token_expires_at": null });
    state.runners.push(runner);
    Reply::json(StatusCode::CREATED, &body)
}

/// `DELETE /runners`: removes the runner that owns the authentication token.
fn unregister_runner(state: &mut State, request: &ApiRequest<'_>) -> Reply {
    let params = request.params();
    let Some(token) = param(&params, "token") else {
        return Reply::error(StatusCode::BAD_REQUEST, "token is missing");
    };
    let Some(position) = state
        .runners
        .iter()
        .position(|runner| runner.token == token)
    else {
        return Reply::forbidden();
    };
    state.runners.remove(position);
    Reply::empty(StatusCode::NO_CONTENT)
}
