//! The gateway's log lines as an operator reads them: plain text (no ANSI colour codes) when
//! they go to a pipe or a file rather than a terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "common/gateway.rs"]
mod gateway;

use gateway::*;

#[tokio::test]
async fn logs_written_to_a_pipe_carry_no_colour_codes() {
    let yaml = format!(
        "listeners: [{{name: test, bind: '127.0.0.1:0', auth: {{mode: none}}}}]\nbackends:\n{}",
        fixture_stdio("notes", "notes"),
    );
    // The helper pipes the binary's stdout and stderr (where the logs go).
    let (mut gw, _dir) = GatewayProcess::start(&yaml).await;
    let mut lines = Vec::new();
    let discovered = tokio::time::timeout(EVENT_WAIT, async {
        while let Some(line) = gw.logs.recv().await {
            let done = line.contains("Backend discovered");
            lines.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        discovered,
        Ok(true),
        "no `Backend discovered` log line; got {lines:#?}"
    );
    let last = lines.last().expect("one line at least");
    assert!(
        last.contains("INFO") && last.contains("backend=notes"),
        "the level and fields are there, as plain text: {last:?}"
    );
    for line in &lines {
        assert!(
            !line.contains('\u{1b}'),
            "a log line written to a pipe carries an ANSI escape: {line:?}"
        );
    }
}
