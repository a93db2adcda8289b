//! The README's command-line block, run as written, line by line, against a fresh
//! `saleboard dev` on a new database, on whatever date the test runs: every command must exit 0.
//! The only substitutions are the README's own placeholders (`sbk_...`, the `...` token, and
//! `key_...`, the key id the block itself created), and the example files it names.

use std::collections::HashMap;
use std::process::Command;

use saleboard_tests::proc::{bin_dir, start_dev};

/// The lines of the first ```sh block after `heading`.
fn block_after<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let from = text.find(heading).expect("the heading is in the README");
    let rest = &text[from..];
    let open = rest.find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let close = rest[open..].find("```").expect("the block closes");
    rest[open..open + close].lines().collect()
}

/// The command of a line, without its comment.
fn command(line: &str) -> &str {
    match line.find('#') {
        Some(i) => line[..i].trim(),
        None => line.trim(),
    }
}

/// The last `key_...` id in `text`.
fn last_key_id(text: &str) -> Option<String> {
    text.match_indices("key_").last().map(|(i, _)| {
        text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_line_block_works_in_order() {
    let readme = include_str!("../../README.md");
    // The quick start first, then the reference block, against the same dev.
    let mut lines = block_after(readme, "## Quick start");
    lines.extend(block_after(readme, "## The command line"));
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite:{}", dir.path().join("saleboard.db").display());
    let dev = start_dev(&db, dir.path(), "dev.out").await;
    let banner = dev.banner.clone();
    let token = dev.organizer_token();
    let key = banner
        .lines()
        .find_map(|l| l.split("API key of toko-satu: ").nth(1))
        .expect("dev prints toko-satu's key")
        .trim()
        .to_owned();

    // The example files the block names, as a shop would export them.
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    std::fs::write(
        dir.path().join("orders.csv"),
        format!(
            "transaction_id,store_id,kind,currency,amount_minor,occurred_at,refund_of\n\
             R1,jkt,SALE,IDR,15000000,{at},\n\
             R2,jkt,SALE,USD,1599,{at},\n\
             R3,jkt,REFUND,IDR,500000,{at},R1\n"
        ),
    )
    .expect("orders.csv");
    std::fs::write(
        dir.path().join("more.jsonl"),
        format!(
            "{{\"transaction_id\":\"R4\",\"kind\":\"SALE\",\"currency\":\"IDR\",\"amount\":\"250000\",\"occurred_at\":\"{at}\"}}\n"
        ),
    )
    .expect("more.jsonl");
    std::fs::write(
        dir.path().join("rates.csv"),
        "currency,rate\nUSD,15850.25\n",
    )
    .expect("rates.csv");

    let mut env: HashMap<String, String> = HashMap::from([
        (
            "PATH".to_owned(),
            format!(
                "{}:{}",
                bin_dir().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
        (
            "SALEBOARD_ENDPOINT".to_owned(),
            format!("http://{}", dev.leaderboard),
        ),
        (
            "SALEBOARD_INGEST_ENDPOINT".to_owned(),
            format!("http://{}", dev.ingest),
        ),
        (
            "SALEBOARD_ADMIN_ENDPOINT".to_owned(),
            format!("http://{}", dev.admin),
        ),
    ]);
    let mut key_id = None::<String>;
    let mut ran = Vec::new();
    for line in lines {
        let mut cmd = command(line).to_owned();
        if cmd.is_empty() {
            continue;
        }
        cmd = cmd.replace("sbk_...", &key);
        if cmd == "export SALEBOARD_ORGANIZER_TOKEN=..." {
            cmd = format!("export SALEBOARD_ORGANIZER_TOKEN={token}");
        }
        if cmd.contains("key_...") {
            let id = key_id
                .as_deref()
                .expect("a key was created before it is revoked");
            cmd = cmd.replace("key_...", id);
        }
        assert!(!cmd.contains("..."), "an unknown placeholder in: {line}");
        if let Some(assignment) = cmd.strip_prefix("export ") {
            let (name, value) = assignment.split_once('=').expect("NAME=value");
            env.insert(name.to_owned(), value.to_owned());
            continue;
        }
        let out = Command::new("sh")
            .args(["-c", &cmd])
            .current_dir(dir.path())
            .env_clear()
            .envs(&env)
            .output()
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README line {line:?} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(id) = last_key_id(&stdout) {
            key_id = Some(id);
        }
        ran.push((cmd, stdout));
    }
    let ran_text: Vec<&str> = ran.iter().map(|(c, _)| c.as_str()).collect();
    assert!(ran_text.len() >= 12, "the whole block ran: {ran_text:#?}");
    let output = |prefix: &str| {
        ran.iter()
            .find(|(c, _)| c.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .unwrap_or_default()
    };
    assert!(
        output("saleboard push").contains("accepted"),
        "{}",
        output("saleboard push")
    );
    assert!(
        output("saleboard national").contains("IDR "),
        "{}",
        output("saleboard national")
    );
    assert!(
        output("saleboard whoami").contains("toko-satu"),
        "{}",
        output("saleboard whoami")
    );
    drop(dev);
}

/// Every rejection reason a client can be told is listed in the README.
#[test]
fn every_rejection_reason_is_documented() {
    let readme = include_str!("../../README.md");
    let missing: Vec<&str> = saleboard_domain::Reason::ALL
        .iter()
        .map(|r| r.code())
        .filter(|code| !readme.contains(&format!("`{code}`")))
        .collect();
    assert!(missing.is_empty(), "not in the README: {missing:?}");
}
