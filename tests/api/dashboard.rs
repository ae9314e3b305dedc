//! The web dashboard in a real browser: `tests/browser/dashboard.mjs`
//! (playwright-core driving Debian's Chromium, both installed by
//! `make setup`) against a real server, following the links of the `.eml`
//! files the server writes. The script asks for simulator actions on its
//! stdout (`@@ connect <room> <token>`) and reads the answer on stdin.
//! Screenshots of every page go to `.local/screenshots/`.

use crate::common::{TestApp, root};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One `@@` request of the script: `ok …` or `error …`.
async fn answer(app: &TestApp, command: &str) -> String {
    let parts: Vec<&str> = command.split_whitespace().collect();
    match parts.as_slice() {
        ["connect", room, token] => match app.sim().connect(room, token).await {
            Ok(p) => format!("ok {}", p.identity),
            Err(e) => format!("error {e}"),
        },
        _ => format!("error unknown command {command}"),
    }
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let mail = root()
        .join(".local/test-mail")
        .join(format!("dashboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&mail);
    let dir = mail.clone();
    let app = TestApp::spawn_with(move |s| {
        s.smtp_url = None;
        s.mail_dir = Some(dir);
        // One attempt: a failed test delivery is `failed` at once, for the
        // redeliver step.
        s.webhook_retry_schedule_secs = vec![0];
    })
    .await;
    let script = root().join("tests/browser/dashboard.mjs");
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("VOXPLANE_URL", &app.base)
        .env("MAIL_DIR", &mail)
        .env("SCREENSHOTS", root().join(".local/screenshots"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs tests/browser/dashboard.mjs (make setup installs its drivers)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = Vec::new();
    let run = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(command) = line.strip_prefix("@@ ") {
                let reply = answer(&app, command).await;
                output.push(format!("{line} -> {reply}"));
                stdin
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .unwrap();
            } else {
                output.push(line);
            }
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(300), run).await;
    let log = output.join("\n");
    println!("{log}");
    let status = status.unwrap_or_else(|_| panic!("the browser tests timed out:\n{log}"));
    assert!(status.success(), "the browser tests failed:\n{log}");
    assert!(
        log.lines().filter(|l| l.starts_with("ok ")).count() >= 9,
        "every browser test ran:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&mail);
}
