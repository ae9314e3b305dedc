//! The OpenAPI document is a contract the server keeps: schemathesis
//! (pinned, installed by `make setup` into `.local/schemathesis`) runs every
//! operation against a real test server with all its checks — examples,
//! coverage and fuzzing phases, a fixed seed and a bounded number of cases —
//! and must find nothing; and every example in the document is valid
//! against its schema.
//!
//! The run raises only rate limits (settings: the anonymous, per-account
//! and per-plan requests per minute), so that the thousands of requests it
//! sends within a minute are not a flood; quotas and every rule stay. Credentials: the test project's API key (header and Bearer), and a
//! signed-in member of a second project (`X-Project-Id`) for team chat and
//! the account routes. The key's project has no members, so account routes
//! aimed at it (the examples use id 1) answer 404 and the key survives.
//!
//! Longer fuzzing, locally: see docs/API.md ("Conformance").

use crate::common::{TestApp, create_project_in, root};
use std::process::Command;
use voxplane::limits::plans::Plan;

const SEED: &str = "1";
const MAX_EXAMPLES: &str = "5";

fn tool(rel: &str) -> std::path::PathBuf {
    let path = root().join(rel);
    assert!(
        path.exists(),
        "{} is missing: run `make setup` (it installs the pinned schemathesis)",
        path.display()
    );
    path
}

#[test]
fn examples_are_valid_against_their_schemas() {
    let python = tool(".local/schemathesis/bin/python");
    let examples = Command::new(&python)
        .arg(root().join("scripts/conformance/check_examples.py"))
        .arg(root().join("openapi/openapi.json"))
        .output()
        .unwrap();
    assert!(
        examples.status.success(),
        "examples invalid against their schemas:\n{}",
        String::from_utf8_lossy(&examples.stdout)
    );
    assert!(String::from_utf8_lossy(&examples.stdout).contains(" checked, 0 invalid"));
}

/// Rules the schema cannot state (ids that must name existing resources,
/// the SSRF guard, phone numbers that must exist, file contents, …) are
/// listed with their reason in `scripts/conformance/schemathesis.toml`:
/// there, and only for the operations named, a 400 is an accepted answer
/// to a schema-valid request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.anonymous = 1_000_000;
        s.rate_limits.account = 1_000_000;
        s.rate_limits.free = 1_000_000;
        s.rate_limits.professional = 1_000_000;
        s.rate_limits.enterprise = 1_000_000;
        s.accounts.max_failures_per_account = 1_000_000;
    })
    .await;
    // A member (admin, so the run cannot delete the project it acts on).
    let password = "conformance-Orbit-42";
    let email = "conformance@example.com";
    let member_project = create_project_in(&app.db_url, "Conformance", Plan::Professional).await;
    {
        use voxplane::db::{accounts, members};
        let mut conn = app.conn().await;
        let hash = voxplane::auth::password::hash(password).unwrap();
        let account = accounts::create(&mut conn, email, "Conformance", &hash, "professional")
            .await
            .unwrap();
        accounts::verify_email(&mut conn, account.id, None)
            .await
            .unwrap();
        members::add(&mut conn, member_project.id, account.id, "admin")
            .await
            .unwrap();
    }
    let st = tool(".local/schemathesis/bin/schemathesis");
    let report = std::env::temp_dir().join(format!("vp-schemathesis-{}", app.db_name));
    let base = app.base.clone();
    let key = app.project.key.clone();
    let project_id = member_project.id.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("--config-file")
            .arg(root().join("scripts/conformance/schemathesis.toml"))
            .args(["--no-color", "run"])
            .arg(format!("{base}/openapi.json"))
            .args([
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
            ])
            .args([
                "--seed",
                SEED,
                "--max-examples",
                MAX_EXAMPLES,
                "--workers",
                "2",
            ])
            .args(["--generation-deterministic", "--no-shrink"])
            .args(["--request-timeout", "30"])
            .args(["--report", "ndjson"])
            .arg("--report-dir")
            .arg(&report)
            .env("VOXPLANE_API_KEY", key)
            .env("VOXPLANE_PROJECT_ID", project_id)
            .env("VOXPLANE_DEMO_EMAIL", email)
            .env("VOXPLANE_DEMO_PASSWORD", password)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Tested: "),
        "schemathesis tested nothing:\n{stdout}"
    );
    // The stateful phase ran: it follows the document's links from the
    // create operations to the ones that read, change and delete by id.
    let stateful = stdout
        .lines()
        .find(|l| l.contains("Stateful"))
        .unwrap_or_default();
    assert!(
        !stateful.contains("skipped") && !stateful.contains("disabled") && !stateful.is_empty(),
        "the stateful phase did not run:\n{stdout}"
    );
    println!("{stdout}");
}
