//! What operators watch names what the service exports: every metric the
//! Grafana dashboard, the Prometheus rules and the Terraform alarms use is
//! in the `/metrics` of a running API and a running worker (the binary's
//! `api` and `worker` roles, as they are deployed), from their start: a
//! series an alert reads exists before the first job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::support::binary::{Role, command, free_address, get_when_up};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `image_api_*` and `image_worker_*` names in the files under `dir` whose
/// names end in one of `extensions`.
fn used_names(dir: &Path, extensions: &[&str], names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            used_names(&path, extensions, names);
            continue;
        }
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // Rule unit tests name synthetic series of their own.
        if file.ends_with(".test.yml") || !extensions.iter().any(|ext| file.ends_with(ext)) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut rest = text.as_str();
        while let Some(start) = rest.find("image_") {
            let candidate = &rest[start..];
            let end = candidate.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(candidate.len());
            let name = &candidate[..end];
            let preceded = rest[..start].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded && (name.starts_with("image_api_") || name.starts_with("image_worker_")) {
                names.insert(name.to_owned());
            }
            rest = &candidate[end.max(1)..];
        }
    }
}

/// The metric families a `/metrics` text declares, and its sample names.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| match line.strip_prefix("# TYPE ") {
            Some(declared) => declared.split_whitespace().next(),
            None if !line.starts_with('#') => line.split(['{', ' ']).next(),
            None => None,
        })
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `name` (as a query writes it: a counter with `_total`, a
/// histogram's `_bucket`) is one of the `exported` families or samples.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_total", "_bucket", "_sum", "_count", "_created"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|family| exported.contains(family)))
}

#[tokio::test]
async fn every_metric_the_dashboard_rules_and_alarms_use_is_exported() {
    let mut used = BTreeSet::new();
    used_names(&repo().join("docker/grafana"), &[".json"], &mut used);
    used_names(&repo().join("docker/prometheus"), &[".yml"], &mut used);
    used_names(&repo().join("terraform"), &[".tf"], &mut used);
    assert!(used.len() >= 8, "the dashboard, rules and alarms name the service's metrics: {used:?}");

    let dir = TempDir::new().expect("temp dir");
    let migrated = command(&dir, &["migrate"]).status().expect("migrate runs");
    assert!(migrated.success());
    let (api_address, worker_address) = (free_address(), free_address());
    let _api = Role(command(&dir, &["api"]).env("LISTEN_ADDR", &api_address).spawn().expect("api starts"));
    let _worker = Role(command(&dir, &["worker"]).env("METRICS_ADDR", &worker_address).spawn().expect("worker starts"));

    // Routes and statuses appear with their first request; every other
    // series exists from the start.
    let health = get_when_up(&format!("http://{api_address}/healthz")).await;
    assert!(!health.is_empty());
    let unknown = reqwest::get(format!("http://{api_address}/v1/jobs/{}", uuid::Uuid::nil())).await.expect("request");
    assert_eq!(unknown.status(), 401, "no key");
    let mut scraped = exported(&get_when_up(&format!("http://{api_address}/metrics")).await);
    scraped.extend(exported(&get_when_up(&format!("http://{worker_address}/metrics")).await));

    let missing: Vec<&String> = used.iter().filter(|name| !is_exported(name, &scraped)).collect();
    assert!(missing.is_empty(), "used but not exported: {missing:?}\nexported: {scraped:?}");
}
