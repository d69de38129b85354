//! JSON shapes of GitLab REST API entities, filled from the stand-in state.
//! Fields that the state does not model are present with GitLab's values for
//! an empty instance (`null`, `[]`, `0`), so clients that deserialize whole
//! entities keep working.

use serde_json::{Value, json};

use crate::state::{
    PersonalAccessToken, Project, ProtectedBranch, Runner, RunnerStatus, State, User,
};

fn trimmed_external_url(state: &State) -> &str {
    state.external_url.trim_end_matches('/')
}

/// `web_url` of a project, from the state or derived from `external_url`.
pub fn project_web_url(state: &State, project: &Project) -> String {
    project.web_url.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            trimmed_external_url(state),
            project.path_with_namespace
        )
    })
}

fn namespace_path(project: &Project) -> &str {
    project
        .path_with_namespace
        .rsplit_once('/')
        .map_or("", |(namespace, _)| namespace)
}

/// Short project entity embedded in runner details.
pub fn project_summary(project: &Project) -> Value {
    json!({
        "id": project.id,
        "name": project.path(),
        "name_with_namespace": project.path_with_namespace.replace('/', " / "),
        "path": project.path(),
        "path_with_namespace": project.path_with_namespace,
    })
}

/// Project entity of `GET /projects/:id`.
pub fn project(state: &State, project: &Project) -> Value {
    let web_url = project_web_url(state, project);
    let http_url_to_repo = project
        .http_url_to_repo
        .clone()
        .unwrap_or_else(|| format!("{web_url}.git"));
    let host = state
        .external_url
        .split_once("://")
        .map_or(state.external_url.as_str(), |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let namespace = namespace_path(project);
    json!({
        "id": project.id,
        "description": null,
        "name": project.path(),
        "name_with_namespace": project.path_with_namespace.replace('/', " / "),
        "path": project.path(),
        "path_with_namespace": project.path_with_namespace,
        "created_at": "2024-10-01T09:00:00.000Z",
        "default_branch": project.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": format!("git@{host}:{}.git", project.path_with_namespace),
        "http_url_to_repo": http_url_to_repo,
        "web_url": web_url,
        "readme_url": null,
        "avatar_url": null,
        "forks_count": 0,
        "star_count": 0,
        "last_activity_at": "2024-10-01T09:00:00.000Z",
        "namespace": {
            "id": project.id,
            "name": namespace.rsplit('/').next().unwrap_or_default(),
            "path": namespace.rsplit('/').next().unwrap_or_default(),
            "kind": "group",
            "full_path": namespace,
            "parent_id": null,
            "avatar_url": null,
            "web_url": format!("{}/groups/{namespace}", trimmed_external_url(state)),
        },
        "visibility": project.visibility,
        "archived": false,
        "empty_repo": false,
        "jobs_enabled": true,
        "builds_access_level": "enabled",
        "shared_runners_enabled": project.shared_runners_enabled,
        "group_runners_enabled": true,
        "ci_config_path": null,
        "public_jobs": true,
    })
}

/// Short runner entity of runner lists.
pub fn runner_summary(runner: &Runner) -> Value {
    json!({
        "id": runner.id,
        "description": runner.description,
        "ip_address": runner.ip_address,
        "active": !runner.paused,
        "paused": runner.paused,
        "is_shared": runner.runner_type == crate::state::RunnerType::InstanceType,
        "runner_type": runner.runner_type.as_str(),
        "name": runner.name,
        "online": runner.status == RunnerStatus::Online,
        "status": runner.status.as_str(),
    })
}

/// Runner entity of `GET /runners/:id`.
pub fn runner_details(state: &State, runner: &Runner) -> Value {
    let mut value = runner_summary(runner);
    let projects: Vec<Value> = runner
        .projects
        .iter()
        .filter_map(|id| state.project(*id))
        .map(project_summary)
        .collect();
    let details = json!({
        "tag_list": runner.tag_list,
        "run_untagged": runner.run_untagged,
        "locked": runner.locked,
        "maximum_timeout": runner.maximum_timeout,
        "access_level": runner.access_level.as_str(),
        "version": runner.version,
        "revision": runner.revision,
        "platform": runner.platform,
        "architecture": runner.architecture,
        "contacted_at": runner.contacted_at,
        "maintenance_note": runner.maintenance_note,
        "projects": projects,
        "groups": [],
    });
    merge(&mut value, details);
    value
}

/// Job entity of `GET /projects/:id/jobs`.
pub fn job(state: &State, project: &Project, job: &crate::state::Job) -> Value {
    let runner = job
        .runner_id
        .and_then(|id| state.runner(id))
        .map(runner_summary);
    json!({
        "id": job.id,
        "status": job.status,
        "stage": job.stage,
        "name": job.name,
        "ref": job.git_ref,
        "tag": false,
        "coverage": null,
        "allow_failure": false,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "erased_at": null,
        "duration": null,
        "queued_duration": null,
        "user": user(state, state.user(1).unwrap_or(&User::root())),
        "commit": null,
        "pipeline": {
            "id": job.id,
            "iid": job.id,
            "project_id": project.id,
            "ref": job.git_ref,
            "sha": "0000000000000000000000000000000000000000",
            "status": job.status,
        },
        "web_url": format!("{}/-/jobs/{}", project_web_url(state, project), job.id),
        "project": { "ci_job_token_scope_enabled": false },
        "artifacts": [],
        "runner": runner,
        "runner_manager": null,
        "artifacts_expire_at": null,
        "archived": false,
        "tag_list": job.tag_list,
    })
}

fn access_level_description(level: u32) -> &'static str {
    match level {
        0 => "No one",
        30 => "Developers + Maintainers",
        40 => "Maintainers",
        60 => "Admins",
        _ => "Custom",
    }
}

fn access_levels(id: u64, level: u32) -> Value {
    json!([{
        "id": id,
        "access_level": level,
        "access_level_description": access_level_description(level),
        "deploy_key_id": null,
        "user_id": null,
        "group_id": null,
    }])
}

/// Protected branch entity; `id` is the position in the list, from 1.
pub fn protected_branch(id: u64, branch: &ProtectedBranch) -> Value {
    json!({
        "id": id,
        "name": branch.name,
        "push_access_levels": access_levels(id * 2 - 1, branch.push_access_level),
        "merge_access_levels": access_levels(id * 2, branch.merge_access_level),
        "unprotect_access_levels": [],
        "allow_force_push": branch.allow_force_push,
        "code_owner_approval_required": branch.code_owner_approval_required,
    })
}

/// User entity of `GET /user`.
pub fn user(state: &State, user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": user.state,
        "locked": false,
        "avatar_url": null,
        "web_url": format!("{}/{}", trimmed_external_url(state), user.username),
        "created_at": "2024-10-01T09:00:00.000Z",
        "bot": user.bot,
        "is_admin": user.is_admin,
    })
}

/// Token entity of `GET /personal_access_tokens/self`.
pub fn personal_access_token(token: &PersonalAccessToken, active: bool) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "revoked": token.revoked,
        "created_at": token.created_at,
        "description": null,
        "scopes": token.scopes,
        "user_id": token.user_id,
        "last_used_at": token.last_used_at,
        "active": active,
        "expires_at": token.expires_at,
    })
}

fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        target.extend(extra);
    }
}
