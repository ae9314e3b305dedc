//! The Postman collection runs green: newman (pinned, installed by `make
//! setup` into `.local/newman`) runs every workflow of
//! `postman/voxplane.postman_collection.json` with the generated
//! environment against a real server whose project has a signed-in owner.

use crate::common::{TestApp, root};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newman_runs_the_collection_with_0_failures() {
    let newman = root().join(".local/newman/node_modules/.bin/newman");
    assert!(
        newman.exists(),
        "{} is missing: run `make setup` (it installs the pinned newman)",
        newman.display()
    );
    let app = TestApp::spawn().await;
    let email = "postman@example.com";
    let password = "postman-Orbit-42";
    {
        use voxplane::db::{accounts, members};
        let mut conn = app.conn().await;
        let hash = voxplane::auth::password::hash(password).unwrap();
        let account = accounts::create(&mut conn, email, "Postman", &hash, "free")
            .await
            .unwrap();
        accounts::verify_email(&mut conn, account.id, None)
            .await
            .unwrap();
        members::add(&mut conn, app.project.id, account.id, "owner")
            .await
            .unwrap();
    }
    let base = app.base.clone();
    let key = app.project.key.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(newman)
            .arg("run")
            .arg(root().join("postman/voxplane.postman_collection.json"))
            .arg("-e")
            .arg(root().join("postman/voxplane.postman_environment.json"))
            .args(["--env-var", &format!("base_url={base}")])
            .args(["--env-var", &format!("api_key={key}")])
            .args(["--env-var", &format!("email={email}")])
            .args(["--env-var", &format!("password={password}")])
            .args([
                "--reporters",
                "cli",
                "--color",
                "off",
                "--timeout-request",
                "30000",
            ])
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "newman failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every request ran and none of its tests failed.
    let row = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split('│').nth(1).is_some_and(|c| c.trim() == name))
            .map(|l| l.split('│').map(|c| c.trim().to_owned()).collect())
            .unwrap_or_default()
    };
    let requests = row("requests");
    assert!(requests.len() > 3 && requests[3] == "0", "{stdout}");
    assert!(requests[2].parse::<u32>().unwrap_or(0) >= 20, "{stdout}");
    assert_eq!(
        row("assertions").get(3).map(String::as_str),
        Some("0"),
        "{stdout}"
    );
}
