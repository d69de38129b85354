//! Responses of the stand-in, in the shapes GitLab's Grape API produces.

use http::StatusCode;
use serde_json::{Value, json};

/// A response before it is turned into a hyper response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: StatusCode, value: &Value) -> Reply {
        Reply {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body: serde_json::to_vec(value).expect("a JSON value always serializes"),
        }
    }

    /// `{"message": ...}`, the body of GitLab's `render_api_error!` helpers
    /// (`401 Unauthorized`, `403 Forbidden`, `404 Project Not Found`, ...).
    pub fn message(status: StatusCode, message: &str) -> Reply {
        Reply::json(status, &json!({ "message": message }))
    }

    /// `{"error": ...}`, the body Grape produces for parameter validation
    /// failures and for GitLab's catch-all route (`404 Not Found`).
    pub fn error(status: StatusCode, error: &str) -> Reply {
        Reply::json(status, &json!({ "error": error }))
    }

    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn html(status: StatusCode, body: &str) -> Reply {
        Reply {
            status,
            content_type: Some("text/html; charset=utf-8"),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn unauthorized() -> Reply {
        Reply::message(StatusCode::UNAUTHORIZED, "401 Unauthorized")
    }

    pub fn forbidden() -> Reply {
        Reply::message(StatusCode::FORBIDDEN, "403 Forbidden")
    }

    /// 404 for a resource that does not exist, for example `not_found("Project")`.
    pub fn not_found(resource: &str) -> Reply {
        Reply::message(StatusCode::NOT_FOUND, &format!("404 {resource} Not Found"))
    }

    /// 404 for a path that no API route matches.
    pub fn no_route() -> Reply {
        Reply::error(StatusCode::NOT_FOUND, "404 Not Found")
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}
