//! Checks of the images jobs run: pull policy, helper image, tools inside, executor kind.

pub mod executor_kind;
pub mod helper;
pub mod job_tools;
pub mod pull_policy;

/// Images that the jobs of the pipeline use, with the jobs that use each.
pub(crate) fn job_images(facts: &crate::facts::Facts) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |image: &str, job: &str| match out.iter_mut().find(|(known, _)| known == image) {
        Some((_, jobs)) => {
            if !jobs.iter().any(|known| known == job) {
                jobs.push(job.to_string());
            }
        }
        None => out.push((image.to_string(), vec![job.to_string()])),
    };
    for job in facts.jobs() {
        if let Some(image) = &job.image {
            add(&image.name, &job.name);
        }
        for service in &job.services {
            add(&service.name, &job.name);
        }
    }
    out
}
