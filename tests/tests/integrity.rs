//! Integrity (issue 28), on both databases, as organizers see it over gRPC: holds and releases
//! proposed by one named organizer and applied only once another approves them (four eyes);
//! a held site leaves the public ranking and stays in every national figure, its key keeps
//! working; refusals name the field or the rule; every proposal and decision is in the audit
//! log with its organizer. Thresholds per event. The refund-rate flag raised for the one site
//! of thirteen that refunds 40%, with its evaluation, reviewed, marked on the public board, and
//! kept in the history when it stops holding.

use futures::StreamExt as _;
use saleboard::client::Output;
use saleboard::loadgen::{Inflate, LoadgenArgs, Pattern, run};
use saleboard_proto::v1::{
    ActionKind, ActionState, AdjustTransactionsRequest, AdminAction, ApproveActionRequest,
    BacktestIntegrityRequest, Event, FlagState, GetIntegrityFlagRequest, GetIntegrityPolicyRequest,
    GetLeaderboardRequest, GetNationalTotalsRequest, GetSiteTotalsRequest, IntegrityFlag,
    IntegrityPolicy, IntegrityRule, Leaderboard, ListActionsRequest, ListAuditLogRequest,
    ListIntegrityFlagsRequest, Outcome, RejectActionRequest, ReviewIntegrityFlagRequest,
    SampleIntegrityFlagRequest, SetSiteHoldRequest, Severity, SubmitTransactionsRequest,
    Transaction, WatchLeaderboardRequest,
};
use saleboard_tests::app::admin_client;
use saleboard_tests::data::{refund, sale};
use saleboard_tests::{Backend, TestApp, backend_tests};
use tonic::Code;

backend_tests!(
    a_hold_needs_two_organizers_and_keeps_the_national_figure,
    thresholds_are_set_per_event_and_audited,
    a_site_refunding_far_more_than_the_nation_is_flagged_and_reviewed,
    a_site_falling_from_first_place_in_settlement_is_flagged,
    a_settling_event_is_watched_while_the_next_one_is_live,
    the_automatic_hold_holds_on_a_high_flag_and_a_release_stands,
    a_backtest_sums_up_each_rule_over_an_event,
    sales_received_over_an_hour_late_are_flagged,
    an_adjustment_voids_transactions_in_every_figure,
    a_site_growing_far_beyond_the_nation_on_its_baseline_is_flagged,
    the_automatic_hold_lapses_with_the_organizer_who_set_it,
    each_inflate_pattern_raises_its_rule_for_that_site_alone,
    an_event_is_judged_once_more_at_its_close,
);

async fn push(app: &TestApp, secret: &str, txs: Vec<Transaction>) {
    let answer = app
        .ingest(secret)
        .await
        .submit_transactions(SubmitTransactionsRequest { transactions: txs })
        .await
        .expect("submit")
        .into_inner();
    assert!(
        answer
            .results
            .iter()
            .all(|r| r.outcome == i32::from(Outcome::Accepted)),
        "{answer:?}"
    );
}

async fn board(app: &TestApp) -> Leaderboard {
    app.leaderboard()
        .await
        .get_leaderboard(GetLeaderboardRequest {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("GetLeaderboard")
        .into_inner()
}

/// (site, rank) of every entry.
fn ranks(b: &Leaderboard) -> Vec<(String, u32)> {
    b.entries
        .iter()
        .map(|e| (e.site_id.clone(), e.rank))
        .collect()
}

fn ranked(list: &[(&str, u32)]) -> Vec<(String, u32)> {
    list.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect()
}

fn hold(site: &str, held: bool, reason: &str) -> SetSiteHoldRequest {
    SetSiteHoldRequest {
        event_id: String::new(),
        site_id: site.to_owned(),
        held,
        reason: reason.to_owned(),
    }
}

/// The event `id` (IDR, its id as its name) from `starts` to `ends` (Unix seconds).
fn idr_event(id: &str, starts: i64, ends: i64) -> Event {
    let at = |seconds| Some(saleboard_proto::Timestamp { seconds, nanos: 0 });
    Event {
        event_id: id.into(),
        display_name: id.into(),
        starts_at: at(starts),
        ends_at: at(ends),
        reporting_currency: "IDR".into(),
        ..Event::default()
    }
}

/// Sets the event "flash-sale" (IDR) from `starts` to `ends` (Unix seconds).
async fn flash_sale(app: &TestApp, starts: i64, ends: i64) {
    app.admin()
        .await
        .set_event(Event {
            display_name: "Flash sale".into(),
            ..idr_event("flash-sale", starts, ends)
        })
        .await
        .expect("SetEvent");
}

fn state(a: &AdminAction) -> ActionState {
    ActionState::try_from(a.state).expect("a known state")
}

async fn a_hold_needs_two_organizers_and_keeps_the_national_figure(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Arrange: the event, three sites that sold 900, 500 and 100 IDR, two named organizers.
    app.set_event().await;
    let mut secrets = Vec::new();
    for (site, amount) in [("besar", 900), ("sedang", 500), ("kecil", 100)] {
        let (_, secret) = app.site_with_key(site).await;
        push(
            &app,
            &secret,
            vec![sale(&format!("{site}-1"), "IDR", amount)],
        )
        .await;
        secrets.push(secret);
    }
    app.settle().await;
    let ana_secret = app.create_organizer("ana").await;
    let budi_secret = app.create_organizer("budi").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;
    let mut budi = admin_client(app.admin_addr, Some(&budi_secret)).await;
    let before = board(&app).await;
    assert_eq!(
        ranks(&before),
        ranked(&[("besar", 1), ("sedang", 2), ("kecil", 3)])
    );
    assert_eq!(before.national_net_reporting_minor, 1_500);
    assert!(before.held_sites.is_empty());

    // Refusals name the field or the thing.
    let no_reason = ana
        .set_site_hold(hold("sedang", true, "  "))
        .await
        .expect_err("no reason");
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    assert!(no_reason.message().contains("reason"), "{no_reason:?}");
    let long = ana
        .set_site_hold(hold("sedang", true, &"x".repeat(1_001)))
        .await
        .expect_err("too long");
    assert_eq!(long.code(), Code::InvalidArgument);
    assert!(long.message().contains("at most 1000"), "{long:?}");
    let unknown = ana
        .set_site_hold(hold("nobody", true, "why"))
        .await
        .expect_err("unknown site");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("nobody"), "{unknown:?}");
    let no_event = ana
        .set_site_hold(SetSiteHoldRequest {
            event_id: "no-such-event".into(),
            ..hold("sedang", true, "why")
        })
        .await
        .expect_err("unknown event");
    assert_eq!(no_event.code(), Code::NotFound);
    let not_held = ana
        .set_site_hold(hold("sedang", false, "why"))
        .await
        .expect_err("nothing to release");
    assert_eq!(not_held.code(), Code::FailedPrecondition);
    assert!(not_held.message().contains("not held"), "{not_held:?}");
    // A retailer's key is no organizer.
    let mut retailer = admin_client(app.admin_addr, Some(&secrets[0])).await;
    let refused = retailer
        .set_site_hold(hold("sedang", true, "mine"))
        .await
        .expect_err("a retailer");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // Act: ana proposes to hold `sedang`. Nothing changes until another organizer approves.
    let proposed = ana
        .set_site_hold(hold("sedang", true, "40% refunded after the window"))
        .await
        .expect("SetSiteHold")
        .into_inner();
    assert!(proposed.action_id.starts_with("act-"), "{proposed:?}");
    assert_eq!(state(&proposed), ActionState::Pending);
    assert_eq!(proposed.kind, i32::from(ActionKind::Hold));
    assert_eq!(proposed.proposed_by, "ana");
    assert_eq!(proposed.event_id, "harbolnas-test");
    assert_eq!(proposed.site_id, "sedang");
    assert!(proposed.approved_by.is_empty() && proposed.decided_at.is_none());
    let twice = budi
        .set_site_hold(hold("sedang", true, "me too"))
        .await
        .expect_err("one pending action per site");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains(&proposed.action_id), "{twice:?}");
    assert_eq!(ranks(&board(&app).await), ranks(&before));

    // The proposer cannot approve it (four eyes).
    let own = ana
        .approve_action(ApproveActionRequest {
            action_id: proposed.action_id.clone(),
        })
        .await
        .expect_err("self-approval");
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");
    assert!(own.message().contains("another organizer"), "{own:?}");
    let own_rejection = ana
        .reject_action(RejectActionRequest {
            action_id: proposed.action_id.clone(),
            reason: "changed my mind".into(),
        })
        .await
        .expect_err("self-rejection");
    assert_eq!(
        own_rejection.code(),
        Code::PermissionDenied,
        "{own_rejection:?}"
    );
    let missing = budi
        .approve_action(ApproveActionRequest {
            action_id: "act-0000".into(),
        })
        .await
        .expect_err("unknown action");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(ranks(&board(&app).await), ranks(&before));

    // Budi approves: in the very next read `sedang` is off the ranking, the sites after it
    // move up, and the national figure keeps it.
    let applied = budi
        .approve_action(ApproveActionRequest {
            action_id: proposed.action_id.clone(),
        })
        .await
        .expect("ApproveAction")
        .into_inner();
    assert_eq!(state(&applied), ActionState::Applied);
    assert_eq!(applied.approved_by, "budi");
    assert!(applied.decided_at.is_some());
    let held = board(&app).await;
    assert_eq!(ranks(&held), ranked(&[("besar", 1), ("kecil", 2)]));
    assert_eq!(held.national_net_reporting_minor, 1_500);
    assert_eq!(held.held_sites, ["sedang"]);
    let national = app
        .leaderboard()
        .await
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("GetNationalTotals")
        .into_inner();
    assert_eq!(national.net_reporting_minor, 1_500);
    let watched = app
        .leaderboard()
        .await
        .watch_leaderboard(WatchLeaderboardRequest {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("WatchLeaderboard")
        .into_inner()
        .next()
        .await
        .expect("a message")
        .expect("figures");
    assert_eq!(ranks(&watched), ranks(&held));
    assert_eq!(watched.held_sites, ["sedang"]);
    // A decision is final.
    let again = ana
        .reject_action(RejectActionRequest {
            action_id: proposed.action_id.clone(),
            reason: String::new(),
        })
        .await
        .expect_err("decided");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("applied already"), "{again:?}");

    // The held site's key keeps working and its sales count nationally; its own figures stay.
    push(
        &app,
        &secrets[1],
        vec![sale("sedang-2", "IDR", 50), sale("sedang-usd", "USD", 100)],
    )
    .await;
    app.settle().await;
    let later = board(&app).await;
    assert_eq!(later.national_net_reporting_minor, 1_550);
    // A held site's currency without a rate is named like any site's (it is left out of the
    // national figure, which must say so).
    assert_eq!(later.unconverted_currencies, ["USD"]);
    assert_eq!(ranks(&later), ranked(&[("besar", 1), ("kecil", 2)]));
    let own_figures = app
        .leaderboard()
        .await
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "sedang".into(),
            ..Default::default()
        })
        .await
        .expect("GetSiteTotals")
        .into_inner();
    let idr = own_figures
        .totals
        .iter()
        .find(|t| t.currency == "IDR")
        .expect("IDR");
    assert_eq!(idr.net_minor, 550);

    // A release: rejected by ana (with a note), then proposed again and approved by bootstrap.
    let release = budi
        .set_site_hold(hold("sedang", false, "refunds explained"))
        .await
        .expect("release proposed")
        .into_inner();
    assert_eq!(release.kind, i32::from(ActionKind::Release));
    let rejected = ana
        .reject_action(RejectActionRequest {
            action_id: release.action_id.clone(),
            reason: "wait for the bank statement".into(),
        })
        .await
        .expect("RejectAction")
        .into_inner();
    assert_eq!(state(&rejected), ActionState::Rejected);
    assert_eq!(rejected.rejected_by, "ana");
    assert!(rejected.approved_by.is_empty());
    assert_eq!(rejected.decision_note, "wait for the bank statement");
    assert_eq!(board(&app).await.held_sites, ["sedang"]);
    let release = budi
        .set_site_hold(hold("sedang", false, "bank statement received"))
        .await
        .expect("release proposed again")
        .into_inner();
    app.admin()
        .await
        .approve_action(ApproveActionRequest {
            action_id: release.action_id.clone(),
        })
        .await
        .expect("bootstrap approves");
    let back = board(&app).await;
    assert_eq!(
        ranks(&back),
        ranked(&[("besar", 1), ("sedang", 2), ("kecil", 3)])
    );
    assert!(back.held_sites.is_empty());
    assert_eq!(back.national_net_reporting_minor, 1_550);

    // Every action, newest first; none pending.
    let actions = ana
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    let listed: Vec<(String, ActionState)> = actions
        .iter()
        .map(|a| (a.action_id.clone(), state(a)))
        .collect();
    assert_eq!(
        listed,
        [
            (release.action_id.clone(), ActionState::Applied),
            (rejected.action_id.clone(), ActionState::Rejected),
            (proposed.action_id.clone(), ActionState::Applied),
        ]
    );
    let pending = ana
        .list_actions(ListActionsRequest {
            event_id: "harbolnas-test".into(),
            state: ActionState::Pending.into(),
        })
        .await
        .expect("ListActions pending")
        .into_inner()
        .actions;
    assert!(pending.is_empty(), "{pending:?}");
    let bad_state = ana
        .list_actions(ListActionsRequest {
            state: 42,
            ..Default::default()
        })
        .await
        .expect_err("unknown state");
    assert_eq!(bad_state.code(), Code::InvalidArgument);

    // The audit log has every proposal and decision, refused ones too, each by its organizer.
    let log = app
        .admin()
        .await
        .list_audit_log(ListAuditLogRequest {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("ListAuditLog")
        .into_inner()
        .entries;
    let actions_logged: Vec<(String, String, String)> = log
        .iter()
        .filter(|e| ["SetSiteHold", "ApproveAction", "RejectAction"].contains(&e.rpc.as_str()))
        .map(|e| {
            let code = e.outcome.split(' ').next().unwrap_or_default().to_owned();
            (e.organizer.clone(), e.rpc.clone(), code)
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("ana", "SetSiteHold", "INVALID_ARGUMENT"),
        ("ana", "SetSiteHold", "INVALID_ARGUMENT"),
        ("ana", "SetSiteHold", "NOT_FOUND"),
        ("ana", "SetSiteHold", "NOT_FOUND"),
        ("ana", "SetSiteHold", "FAILED_PRECONDITION"),
        ("ana", "SetSiteHold", "OK"),
        ("budi", "SetSiteHold", "FAILED_PRECONDITION"),
        ("ana", "ApproveAction", "PERMISSION_DENIED"),
        ("ana", "RejectAction", "PERMISSION_DENIED"),
        ("budi", "ApproveAction", "NOT_FOUND"),
        ("budi", "ApproveAction", "OK"),
        ("ana", "RejectAction", "FAILED_PRECONDITION"),
        ("budi", "SetSiteHold", "OK"),
        ("ana", "RejectAction", "OK"),
        ("budi", "SetSiteHold", "OK"),
        ("bootstrap", "ApproveAction", "OK"),
    ]
    .iter()
    .map(|(o, r, c)| ((*o).to_owned(), (*r).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(actions_logged, expected);
    let approval = log
        .iter()
        .find(|e| e.rpc == "ApproveAction" && e.organizer == "budi" && e.outcome.starts_with("OK"))
        .expect("budi's approval");
    assert!(
        approval
            .outcome
            .contains("\"state\":\"ACTION_STATE_APPLIED\"")
            && approval.outcome.contains("\"approved_by\":\"budi\""),
        "{}",
        approval.outcome
    );
    app.stop().await;
}

async fn policy_of(app: &TestApp, event_id: &str) -> IntegrityPolicy {
    app.admin()
        .await
        .get_integrity_policy(GetIntegrityPolicyRequest {
            event_id: event_id.to_owned(),
        })
        .await
        .expect("GetIntegrityPolicy")
        .into_inner()
}

async fn thresholds_are_set_per_event_and_audited(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    let now = saleboard_tests::data::now_secs();
    app.admin()
        .await
        .set_event(Event {
            event_id: "next".into(),
            display_name: "Next".into(),
            starts_at: Some(saleboard_proto::Timestamp {
                seconds: now + 30 * 86_400,
                nanos: 0,
            }),
            ends_at: Some(saleboard_proto::Timestamp {
                seconds: now + 31 * 86_400,
                nanos: 0,
            }),
            reporting_currency: "IDR".into(),
            ..Event::default()
        })
        .await
        .expect("SetEvent next");
    let ana_secret = app.create_organizer("ana").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;

    // Never set: the defaults, every field named as defaulted.
    let defaults = policy_of(&app, "").await;
    assert_eq!(defaults.event_id, "harbolnas-test");
    assert_eq!(defaults.min_sales, Some(500));
    assert_eq!(defaults.min_share_decimal.as_deref(), Some("0.001"));
    assert_eq!(defaults.late_refunds_times, Some(3));
    assert_eq!(defaults.late_refunds_points, Some(5));
    assert_eq!(defaults.refund_rate_points, Some(10));
    assert_eq!(defaults.late_sales_floor_decimal.as_deref(), Some("0.05"));
    assert_eq!(defaults.rank_top, Some(10));
    assert_eq!(defaults.store_share_decimal.as_deref(), Some("0.2"));
    assert_eq!(defaults.sample_size, Some(59));
    assert_eq!(defaults.auto_hold, Some(false));
    assert_eq!(defaults.defaulted.len(), 26, "{defaults:?}");
    assert!(defaults.updated_by.is_empty() && defaults.updated_at.is_none());

    // Ana sets two thresholds of the current event: the rest stay defaults.
    let set = ana
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(50),
            late_sales_floor_decimal: Some("0.075".into()),
            auto_hold: Some(true),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy")
        .into_inner();
    assert_eq!(set.event_id, "harbolnas-test");
    assert_eq!(set.min_sales, Some(50));
    assert_eq!(set.late_sales_floor_decimal.as_deref(), Some("0.075"));
    assert_eq!(set.auto_hold, Some(true));
    assert_eq!(set.late_refunds_times, Some(3));
    assert_eq!(set.defaulted.len(), 23, "{set:?}");
    assert!(!set.defaulted.contains(&"min_sales".to_owned()));
    assert_eq!(set.updated_by, "ana");
    assert!(set.updated_at.is_some());
    assert_eq!(policy_of(&app, "harbolnas-test").await, set);
    // Per event: the next one keeps the defaults.
    let next = policy_of(&app, "next").await;
    assert_eq!(next.min_sales, Some(500));
    assert_eq!(next.defaulted.len(), 26);

    // Out of range: refused naming the field, nothing stored.
    for (bad, field) in [
        (
            IntegrityPolicy {
                min_share_decimal: Some("2".into()),
                ..IntegrityPolicy::default()
            },
            "min_share_decimal",
        ),
        (
            IntegrityPolicy {
                sample_size: Some(0),
                ..IntegrityPolicy::default()
            },
            "sample_size",
        ),
    ] {
        let e = ana.set_integrity_policy(bad).await.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(field), "{e:?}");
    }
    assert_eq!(policy_of(&app, "").await, set);
    let unknown = ana
        .set_integrity_policy(IntegrityPolicy {
            event_id: "no-such-event".into(),
            ..IntegrityPolicy::default()
        })
        .await
        .expect_err("unknown event");
    assert_eq!(unknown.code(), Code::NotFound);

    // The whole policy is replaced: an empty one is every default again.
    let reset = ana
        .set_integrity_policy(IntegrityPolicy::default())
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(reset.min_sales, Some(500));
    assert_eq!(reset.defaulted.len(), 26);
    assert_eq!(reset.updated_by, "ana");

    // Thresholds are private: a retailer's key reads nothing.
    let (_, key) = app.site_with_key("toko").await;
    let refused = admin_client(app.admin_addr, Some(&key))
        .await
        .get_integrity_policy(GetIntegrityPolicyRequest::default())
        .await
        .expect_err("a retailer");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Every change and refusal is ana's entry in the audit log.
    assert_eq!(
        app.audit_codes("ana", "SetIntegrityPolicy").await,
        [
            "OK",
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "NOT_FOUND",
            "OK"
        ]
    );
    // The first one carries the policy set.
    let first = app
        .admin()
        .await
        .list_audit_log(ListAuditLogRequest {
            limit: 1,
            organizer: "ana".into(),
            ..Default::default()
        })
        .await
        .expect("ListAuditLog")
        .into_inner()
        .entries;
    assert_eq!(first[0].rpc, "SetIntegrityPolicy");
    assert!(
        first[0].outcome.contains("\"min_sales\":\"50\""),
        "{}",
        first[0].outcome
    );
    app.stop().await;
}

async fn flags(app: &TestApp) -> (Vec<IntegrityFlag>, u32) {
    let listed = app
        .admin()
        .await
        .list_integrity_flags(ListIntegrityFlagsRequest::default())
        .await
        .expect("ListIntegrityFlags")
        .into_inner();
    (listed.flags, listed.undecided_sites)
}

/// The flags once `done` holds of them (the evaluation runs every 2 s).
async fn flags_when(app: &TestApp, done: impl Fn(&[IntegrityFlag]) -> bool) -> Vec<IntegrityFlag> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (listed, _) = flags(app).await;
        if done(&listed) {
            return listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the flags never got there: {listed:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Every flag once one of `rule` is raised, and those of `rule`.
async fn flags_of_rule(
    app: &TestApp,
    rule: IntegrityRule,
) -> (Vec<IntegrityFlag>, Vec<IntegrityFlag>) {
    let all = flags_when(app, |f| f.iter().any(|f| f.rule == i32::from(rule))).await;
    let of_rule = all
        .iter()
        .filter(|f| f.rule == i32::from(rule))
        .cloned()
        .collect();
    (all, of_rule)
}

fn input<'a>(f: &'a IntegrityFlag, name: &str) -> &'a str {
    f.inputs
        .iter()
        .find(|i| i.name == name)
        .map_or("", |i| i.value_decimal.as_str())
}

/// The trial: thirteen sites sell, one refunds 40% of its sales and the others 3%.
/// The refund-rate flag is raised for that site alone, with its evaluation; an organizer puts
/// it under review (the public board marks the site, its figures unchanged); when the site's
/// figures stop holding the rule the flag records the position, and a review clears the mark.
async fn a_site_refunding_far_more_than_the_nation_is_flagged_and_reviewed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    // A small event: every site decided from its first sales.
    app.admin()
        .await
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let mut cheat_secret = String::new();
    for i in 0..13 {
        let site = if i == 12 {
            "cheat".to_owned()
        } else {
            format!("honest-{i:02}")
        };
        let (_, secret) = app.site_with_key(&site).await;
        let mut txs: Vec<Transaction> = (0..10)
            .map(|n| sale(&format!("{site}-s{n}"), "IDR", 10_000))
            .collect();
        if i == 12 {
            // 40% refunded.
            txs.extend((0..4).map(|n| {
                refund(
                    &format!("{site}-r{n}"),
                    &format!("{site}-s{n}"),
                    "IDR",
                    10_000,
                )
            }));
            cheat_secret.clone_from(&secret);
        } else {
            // 3% refunded.
            txs.push(refund(
                &format!("{site}-r0"),
                &format!("{site}-s0"),
                "IDR",
                3_000,
            ));
        }
        push(&app, &secret, txs).await;
    }
    let watermark = app.settle().await;

    let raised = flags_when(&app, |f| !f.is_empty()).await;
    assert_eq!(raised.len(), 1, "{raised:#?}");
    let flag = &raised[0];
    assert_eq!(flag.site_id, "cheat");
    assert_eq!(flag.event_id, "harbolnas-test");
    assert_eq!(flag.rule, i32::from(IntegrityRule::RefundRate));
    assert_eq!(flag.severity, i32::from(Severity::Medium));
    assert_eq!(flag.state, i32::from(FlagState::Open));
    // 40% against max(2 × 3%, 3% + 10 points) = 13%; the nation without the site: 3%.
    assert_eq!(flag.statistic_decimal, "0.4");
    assert_eq!(flag.threshold_decimal, "0.13");
    assert_eq!(flag.national_decimal, "0.03");
    assert_eq!(flag.watermark, watermark);
    assert_eq!(flag.cleared_at_watermark, 0);
    assert_eq!(flag.rule_version, 1);
    assert_eq!(input(flag, "site_gross_minor"), "100000");
    assert_eq!(input(flag, "site_refunded_minor"), "40000");
    assert_eq!(input(flag, "national_gross_minor"), "1200000");
    assert_eq!(input(flag, "national_refunded_minor"), "36000");
    assert_eq!(input(flag, "min_sales"), "1");
    let (_, undecided) = flags(&app).await;
    assert_eq!(undecided, 0);
    let mut admin = app.admin().await;
    let got = admin
        .get_integrity_flag(GetIntegrityFlagRequest {
            flag_id: flag.flag_id.clone(),
        })
        .await
        .expect("GetIntegrityFlag")
        .into_inner();
    assert_eq!(&got, flag);
    let missing = admin
        .get_integrity_flag(GetIntegrityFlagRequest {
            flag_id: "flg-0".into(),
        })
        .await
        .expect_err("unknown flag");
    assert_eq!(missing.code(), Code::NotFound);
    // The sample the site is asked to justify: reproducible from the flag's seed, drawn from
    // its sales up to the flag's watermark.
    let sample = |size: u32| {
        let flag_id = flag.flag_id.clone();
        let app = &app;
        async move {
            app.admin()
                .await
                .sample_integrity_flag(SampleIntegrityFlagRequest { flag_id, size })
                .await
                .expect("SampleIntegrityFlag")
                .into_inner()
        }
    };
    let whole = sample(0).await;
    assert_eq!(whole.seed, flag.sample_seed);
    assert_eq!(whole.population, 10);
    assert_eq!(whole.watermark, flag.watermark);
    assert_eq!(whole.site_id, "cheat");
    // The policy's 59 is more than the site's 10 sales: every one, in the seed's order.
    let mut every = whole.transaction_ids.clone();
    every.sort();
    let sales: Vec<String> = (0..10).map(|n| format!("cheat-s{n}")).collect();
    let mut sorted = sales.clone();
    sorted.sort();
    assert_eq!(every, sorted);
    let three = sample(3).await;
    assert_eq!(three.transaction_ids, whole.transaction_ids[..3]);
    assert_eq!(sample(3).await, three, "the same sample every time");
    let drawn =
        saleboard_domain::integrity::sample(flag.sample_seed, sales.iter().map(String::as_str), 3);
    assert_eq!(
        three.transaction_ids, drawn,
        "anyone with the seed draws it again"
    );
    let too_big = app
        .admin()
        .await
        .sample_integrity_flag(SampleIntegrityFlagRequest {
            flag_id: flag.flag_id.clone(),
            size: 10_001,
        })
        .await
        .expect_err("too big");
    assert_eq!(too_big.code(), Code::InvalidArgument);

    // Flags are private.
    let refused = admin_client(app.admin_addr, Some(&cheat_secret))
        .await
        .list_integrity_flags(ListIntegrityFlagsRequest::default())
        .await
        .expect_err("a retailer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Nothing public changed: no mark yet.
    assert!(board(&app).await.entries.iter().all(|e| !e.under_review));

    // Review: a note and a state are required.
    let ana_secret = app.create_organizer("ana").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;
    for (state, note, field) in [
        (FlagState::UnderReview, " ", "note"),
        (FlagState::Unspecified, "looking", "state"),
    ] {
        let e = ana
            .review_integrity_flag(ReviewIntegrityFlagRequest {
                flag_id: flag.flag_id.clone(),
                state: state.into(),
                note: note.into(),
            })
            .await
            .expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains(field), "{e:?}");
    }
    let reviewed = ana
        .review_integrity_flag(ReviewIntegrityFlagRequest {
            flag_id: flag.flag_id.clone(),
            state: FlagState::UnderReview.into(),
            note: "asked the site for its refund records".into(),
        })
        .await
        .expect("ReviewIntegrityFlag")
        .into_inner();
    assert_eq!(reviewed.state, i32::from(FlagState::UnderReview));
    assert_eq!(reviewed.reviewed_by, "ana");
    assert_eq!(reviewed.note, "asked the site for its refund records");
    // The public board marks the site at once; its figures and rank are unchanged.
    let marked = board(&app).await;
    let cheat = marked
        .entries
        .iter()
        .find(|e| e.site_id == "cheat")
        .expect("ranked");
    assert!(cheat.under_review);
    assert_eq!(cheat.net_reporting_minor, 60_000);
    assert_eq!(marked.entries.iter().filter(|e| e.under_review).count(), 1);

    // The site sells on: 2.0% refunded now, under the threshold. The flag stays in the
    // history with the position that showed it; the review stands until an organizer's next.
    push(
        &app,
        &cheat_secret,
        (10..30)
            .map(|n| sale(&format!("cheat-s{n}"), "IDR", 100_000))
            .collect(),
    )
    .await;
    let moved = app.settle().await;
    let cleared = flags_when(&app, |f| f.iter().all(|f| f.cleared_at_watermark > 0)).await;
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].cleared_at_watermark, moved);
    assert_eq!(cleared[0].state, i32::from(FlagState::UnderReview));
    assert!(board(&app).await.entries.iter().any(|e| e.under_review));
    ana.review_integrity_flag(ReviewIntegrityFlagRequest {
        flag_id: flag.flag_id.clone(),
        state: FlagState::Cleared.into(),
        note: "refunds were a recall, documented".into(),
    })
    .await
    .expect("cleared by review");
    assert!(board(&app).await.entries.iter().all(|e| !e.under_review));
    let by_state = app
        .admin()
        .await
        .list_integrity_flags(ListIntegrityFlagsRequest {
            state: FlagState::Cleared.into(),
            site_id: "cheat".into(),
            ..Default::default()
        })
        .await
        .expect("by state")
        .into_inner()
        .flags;
    assert_eq!(by_state.len(), 1);

    // Every review is ana's in the audit log.
    assert_eq!(
        app.audit_codes("ana", "ReviewIntegrityFlag").await,
        ["INVALID_ARGUMENT", "INVALID_ARGUMENT", "OK", "OK"]
    );
    app.stop().await;
}

/// The settlement rank: four sites sell during an event that ends a few seconds later; their
/// places by gross are taken at the end; the first one then refunds 90% of its sales and falls
/// to fourth by net: `INTEGRITY_RULE_SETTLEMENT_RANK` (high) is raised for it alone, with the
/// two places.
async fn a_site_falling_from_first_place_in_settlement_is_flagged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let ends = now + 6;
    flash_sale(&app, now - 3_600, ends).await;
    app.admin()
        .await
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let mut first = String::new();
    for (site, amount) in [("a", 100_000), ("b", 90_000), ("c", 80_000), ("d", 70_000)] {
        let (_, secret) = app.site_with_key(site).await;
        push(
            &app,
            &secret,
            (0..10)
                .map(|n| sale(&format!("{site}-{n}"), "IDR", amount / 10))
                .collect(),
        )
        .await;
        if site == "a" {
            first = secret;
        }
    }
    app.settle().await;
    // After the end (and an evaluation): the places at the end are a, b, c, d; nothing moved.
    let wait = u64::try_from(ends - saleboard_tests::data::now_secs() + 4).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    let (before, _) = flags(&app).await;
    assert!(
        before
            .iter()
            .all(|f| f.rule != i32::from(IntegrityRule::SettlementRank)),
        "{before:#?}"
    );
    // Refunds after the end: 90% of a's sales.
    push(
        &app,
        &first,
        (0..9)
            .map(|n| refund(&format!("a-r{n}"), &format!("a-{n}"), "IDR", 10_000))
            .collect(),
    )
    .await;
    app.settle().await;
    let (raised, rank) = flags_of_rule(&app, IntegrityRule::SettlementRank).await;
    assert_eq!(rank.len(), 1, "{raised:#?}");
    let flag = &rank[0];
    assert_eq!(flag.site_id, "a");
    assert_eq!(flag.event_id, "flash-sale");
    assert_eq!(flag.severity, i32::from(Severity::High));
    assert_eq!(flag.statistic_decimal, "3");
    assert_eq!(flag.threshold_decimal, "3");
    assert_eq!(input(flag, "condition"), "moved within the top places");
    assert_eq!(input(flag, "place_by_gross_at_end"), "1");
    assert_eq!(input(flag, "place_by_net_now"), "4");
    // The refunds came after the end: INTEGRITY_RULE_LATE_REFUNDS (high) for a alone, 90%
    // against max(3 × 0, 0 + 5 points), from the fold's late figures.
    let (_, late) = flags_of_rule(&app, IntegrityRule::LateRefunds).await;
    assert_eq!(late.len(), 1, "{late:#?}");
    assert_eq!(late[0].site_id, "a");
    assert_eq!(late[0].severity, i32::from(Severity::High));
    assert_eq!(late[0].statistic_decimal, "0.9");
    assert_eq!(late[0].threshold_decimal, "0.05");
    assert_eq!(input(&late[0], "site_late_refunded_minor"), "90000");
    assert_eq!(input(&late[0], "national_late_refunded_minor"), "0");
    assert!(!input(&late[0], "late_figures_watermark").is_empty());
    // The automatic hold is off by default: the flag alone changes nothing public.
    let public = board(&app).await;
    assert!(public.held_sites.is_empty(), "{public:?}");
    assert_eq!(public.entries.len(), 4);
    app.stop().await;
}

/// An event that ended and settles while the next one is live: its refunds still raise flags
/// in it (the current event is the live one).
async fn a_settling_event_is_watched_while_the_next_one_is_live(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let mut admin = app.admin().await;
    for (id, starts, ends) in [
        ("last-week", now - 3 * 3_600, now - 2 * 3_600),
        ("today", now - 3_600, now + 86_400),
    ] {
        admin
            .set_event(idr_event(id, starts, ends))
            .await
            .expect("SetEvent");
    }
    admin
        .set_integrity_policy(IntegrityPolicy {
            event_id: "last-week".into(),
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    for (site, txs) in x_refunds_forty_per_cent(now) {
        let (_, secret) = app.site_with_key(site).await;
        push(&app, &secret, txs).await;
    }
    app.settle().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let flags = loop {
        let listed = admin
            .list_integrity_flags(ListIntegrityFlagsRequest {
                event_id: "last-week".into(),
                ..Default::default()
            })
            .await
            .expect("ListIntegrityFlags")
            .into_inner()
            .flags;
        if listed.len() >= 2 {
            break listed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the settling event was never evaluated: {listed:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // x refunded 40% (y none), all of it after the end: the refund rate and the late refunds.
    // (Both sites' sales were received over an hour after they occurred, so neither's late
    // sales stand out against the other's.)
    let mut raised: Vec<(&str, &str, i32)> = flags
        .iter()
        .map(|f| (f.site_id.as_str(), f.event_id.as_str(), f.rule))
        .collect();
    raised.sort_unstable();
    assert_eq!(
        raised,
        [
            ("x", "last-week", i32::from(IntegrityRule::LateRefunds)),
            ("x", "last-week", i32::from(IntegrityRule::RefundRate)),
        ],
        "{flags:#?}"
    );
    // The live event has none.
    let (current, _) = self::flags(&app).await;
    assert!(current.is_empty(), "{current:#?}");
    app.stop().await;
}

/// Sites x and y, ten sales each of two and a half hours before `now` (Unix seconds); x
/// refunds four of them in full (40%), y none: each site's transactions.
fn x_refunds_forty_per_cent(now: i64) -> [(&'static str, Vec<Transaction>); 2] {
    ["x", "y"].map(|site| {
        let mut txs: Vec<Transaction> = (0..10)
            .map(|n| Transaction {
                occurred_at: Some(saleboard_proto::Timestamp {
                    seconds: now - 150 * 60,
                    nanos: 0,
                }),
                ..sale(&format!("{site}-{n}"), "IDR", 10_000)
            })
            .collect();
        if site == "x" {
            txs.extend((0..4).map(|n| {
                refund(
                    &format!("{site}-r{n}"),
                    &format!("{site}-{n}"),
                    "IDR",
                    10_000,
                )
            }));
        }
        (site, txs)
    })
}

/// The automatic hold (off by default), turned on by a named organizer: the settlement-rank
/// flag (high) of the site that fell from first place holds it at once, as an action proposed
/// by `policy:auto-hold` and approved for that organizer, both in the audit log; the site
/// leaves the ranking and stays in the national figure. Two organizers release it; the same
/// flag does not hold it again.
async fn the_automatic_hold_holds_on_a_high_flag_and_a_release_stands(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let ends = now + 6;
    flash_sale(&app, now - 3_600, ends).await;
    let ana_secret = app.create_organizer("ana").await;
    let budi_secret = app.create_organizer("budi").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;
    let mut budi = admin_client(app.admin_addr, Some(&budi_secret)).await;
    let policy = ana
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            auto_hold: Some(true),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy")
        .into_inner();
    assert_eq!(policy.auto_hold, Some(true));
    let mut first = String::new();
    for (site, amount) in [("a", 100_000), ("b", 90_000), ("c", 80_000), ("d", 70_000)] {
        let (_, secret) = app.site_with_key(site).await;
        push(
            &app,
            &secret,
            (0..10)
                .map(|n| sale(&format!("{site}-{n}"), "IDR", amount / 10))
                .collect(),
        )
        .await;
        if site == "a" {
            first = secret;
        }
    }
    app.settle().await;
    let wait = u64::try_from(ends - saleboard_tests::data::now_secs() + 4).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    // Nothing held before a flag.
    assert!(board(&app).await.held_sites.is_empty());
    // a refunds 90% after the end: fourth by net, the high flag, the automatic hold.
    push(
        &app,
        &first,
        (0..9)
            .map(|n| refund(&format!("a-r{n}"), &format!("a-{n}"), "IDR", 10_000))
            .collect(),
    )
    .await;
    app.settle().await;
    // Both high flags of a (waited for, so none is raised after the release below).
    let raised = flags_when(&app, |f| {
        [IntegrityRule::SettlementRank, IntegrityRule::LateRefunds]
            .iter()
            .all(|rule| f.iter().any(|f| f.rule == i32::from(*rule)))
    })
    .await;
    // Its refunds came after the end: late refunds (high) as well; either high flag holds it.
    let high: Vec<String> = raised
        .iter()
        .filter(|f| f.site_id == "a" && f.severity == i32::from(Severity::High))
        .map(|f| f.flag_id.clone())
        .collect();
    assert!(!high.is_empty(), "{raised:#?}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let held = loop {
        let b = board(&app).await;
        if !b.held_sites.is_empty() {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline, "never held: {b:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(held.held_sites, ["a"]);
    assert_eq!(
        ranks(&held),
        ranked(&[("b", 1), ("c", 2), ("d", 3)]),
        "the held site leaves the ranking"
    );
    // a's net (10,000) stays in the national figure.
    assert_eq!(held.national_net_reporting_minor, 250_000);
    let actions = ana
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert_eq!(actions.len(), 1, "{actions:#?}");
    let auto = &actions[0];
    assert_eq!(state(auto), ActionState::Applied);
    assert_eq!(auto.kind, i32::from(ActionKind::Hold));
    assert_eq!(auto.site_id, "a");
    assert_eq!(auto.event_id, "flash-sale");
    assert_eq!(auto.proposed_by, "policy:auto-hold");
    assert_eq!(auto.approved_by, "ana");
    let (flags_now, _) = flags(&app).await;
    let grounds: Vec<&IntegrityFlag> = flags_now
        .iter()
        .filter(|f| auto.reason.contains(&f.flag_id))
        .collect();
    assert_eq!(grounds.len(), 1, "one high flag: {auto:?}");
    assert_eq!(grounds[0].site_id, "a");
    assert_eq!(grounds[0].severity, i32::from(Severity::High));
    let rule = IntegrityRule::try_from(grounds[0].rule).expect("a rule");
    assert!(auto.reason.contains(rule.as_str_name()), "{auto:?}");
    let flag_id = grounds[0].flag_id.clone();
    let log = ana
        .list_audit_log(ListAuditLogRequest {
            limit: 1_000,
            organizer: "policy:auto-hold".into(),
            ..Default::default()
        })
        .await
        .expect("ListAuditLog")
        .into_inner()
        .entries;
    let calls: Vec<(&str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.rpc.as_str(),
                e.outcome.split(' ').next().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        calls.len(),
        2,
        "the proposal and the approval, and nothing else: {log:#?}"
    );
    for rpc in ["SetSiteHold", "ApproveAction"] {
        assert!(calls.contains(&(rpc, "OK")), "{rpc}: {log:#?}");
    }
    assert!(
        log.iter()
            .any(|e| e.rpc == "SetSiteHold" && e.request_json.contains(&flag_id)),
        "{log:#?}"
    );

    // Two organizers release a; the same flag does not hold it again.
    let release = ana
        .set_site_hold(SetSiteHoldRequest {
            event_id: "flash-sale".into(),
            ..hold("a", false, "the refunds are a recall, documented")
        })
        .await
        .expect("SetSiteHold release")
        .into_inner();
    budi.approve_action(ApproveActionRequest {
        action_id: release.action_id.clone(),
    })
    .await
    .expect("ApproveAction");
    // Three evaluations (every 2 s) after the release.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let after = board(&app).await;
    assert!(after.held_sites.is_empty(), "{after:?}");
    assert_eq!(after.entries.len(), 4);
    let actions = ana
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert_eq!(actions.len(), 2, "{actions:#?}");
    app.stop().await;
}

/// The backtest an organizer runs over last year's event before the day: thirteen sites that
/// refund 3% and one that refunds 40%, a fourteenth below the minimum support. Per rule: the
/// decided sites, the 99th percentile and the largest refund rate, how many the thresholds
/// raise; the rules that cannot be run over the event say why. Nothing is stored or raised by
/// it. Organizers only; an unknown event is NOT_FOUND.
async fn a_backtest_sums_up_each_rule_over_an_event(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.set_event().await;
    app.admin()
        .await
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(5),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let mut retailer = String::new();
    for i in 0..14 {
        let site = match i {
            12 => "cheat".to_owned(),
            13 => "tiny".to_owned(),
            _ => format!("honest-{i:02}"),
        };
        let (_, secret) = app.site_with_key(&site).await;
        let sales = if i == 13 { 2 } else { 10 };
        let mut txs: Vec<Transaction> = (0..sales)
            .map(|n| sale(&format!("{site}-s{n}"), "IDR", 10_000))
            .collect();
        let refunded = match i {
            12 => 4 * 10_000,
            13 => 10_000,
            // 3%, 3.5%, 4% ... 8.5%: twelve rates, the largest under the threshold.
            _ => 3_000 + 500 * i,
        };
        let mut left = refunded;
        for n in 0.. {
            if left == 0 {
                break;
            }
            let amount = left.min(10_000);
            txs.push(refund(
                &format!("{site}-r{n}"),
                &format!("{site}-s{n}"),
                "IDR",
                amount,
            ));
            left -= amount;
        }
        push(&app, &secret, txs).await;
        retailer = secret;
    }
    let watermark = app.settle().await;
    let mut admin = app.admin().await;
    let answer = admin
        .backtest_integrity(BacktestIntegrityRequest {
            event_id: "harbolnas-test".into(),
        })
        .await
        .expect("BacktestIntegrity")
        .into_inner();
    assert_eq!(answer.event_id, "harbolnas-test");
    assert_eq!(answer.watermark, watermark);
    assert_eq!(answer.sites, 14);
    assert_eq!(
        answer.undecided_sites, 1,
        "tiny has 2 sales of the 5 needed"
    );
    let names: Vec<i32> = answer.rules.iter().map(|r| r.rule).collect();
    assert_eq!(names.len(), 9, "every rule, in the contract's order");
    assert_eq!(names[0], i32::from(IntegrityRule::LateRefunds));
    let rate = answer
        .rules
        .iter()
        .find(|r| r.rule == i32::from(IntegrityRule::RefundRate))
        .expect("the refund rate");
    assert!(rate.evaluated, "{rate:?}");
    assert_eq!(rate.severity, i32::from(Severity::Medium));
    assert_eq!(rate.statistic, "refunded / gross");
    assert_eq!(rate.sites, 13);
    // Of 13 values the 99th percentile is the largest (nearest rank 13): cheat's 40%.
    assert_eq!(rate.p99_decimal, "0.4");
    assert_eq!(rate.max_decimal, "0.4");
    assert_eq!(rate.raised, 1, "cheat alone: {rate:?}");
    let rank = answer
        .rules
        .iter()
        .find(|r| r.rule == i32::from(IntegrityRule::SettlementRank))
        .expect("the settlement rank");
    assert!(!rank.evaluated);
    assert!(
        rank.not_evaluated_reason.contains("places at its end"),
        "{rank:?}"
    );
    assert_eq!((rank.sites, rank.raised), (0, 0));
    assert!(rank.p99_decimal.is_empty());
    // Nothing came late: the late rules decide every site at 0.
    for rule in [IntegrityRule::LateRefunds, IntegrityRule::LateSales] {
        let late = answer
            .rules
            .iter()
            .find(|r| r.rule == i32::from(rule))
            .expect("a late rule");
        assert!(late.evaluated, "{late:?}");
        assert_eq!(late.severity, i32::from(Severity::High));
        assert_eq!((late.sites, late.raised), (13, 0), "{late:?}");
        assert_eq!(
            (late.p99_decimal.as_str(), late.max_decimal.as_str()),
            ("0", "0")
        );
    }
    let evaluated = [
        IntegrityRule::LateRefunds,
        IntegrityRule::RefundRate,
        IntegrityRule::LateSales,
        IntegrityRule::SettlementRank,
        IntegrityRule::AmountPattern,
    ]
    .map(i32::from);
    // The amount pattern: every decided site's share of round amounts; none raised (it is
    // evidence beside another flag, and no other rule raises a site here).
    let amounts = answer
        .rules
        .iter()
        .find(|r| r.rule == i32::from(IntegrityRule::AmountPattern))
        .expect("the amount pattern");
    assert!(amounts.evaluated, "{amounts:?}");
    assert_eq!((amounts.sites, amounts.raised), (13, 0), "{amounts:?}");
    for r in &answer.rules {
        if !evaluated.contains(&r.rule) {
            assert!(!r.evaluated && !r.not_evaluated_reason.is_empty(), "{r:?}");
        }
    }
    // The current event by default; an unknown one is NOT_FOUND; a retailer is refused.
    let current = admin
        .backtest_integrity(BacktestIntegrityRequest::default())
        .await
        .expect("BacktestIntegrity of the current event")
        .into_inner();
    assert_eq!(current.event_id, "harbolnas-test");
    let unknown = admin
        .backtest_integrity(BacktestIntegrityRequest {
            event_id: "harbolnas-1999".into(),
        })
        .await
        .expect_err("no such event");
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("harbolnas-1999"), "{unknown:?}");
    let mut site = admin_client(app.admin_addr, Some(&retailer)).await;
    let refused = site
        .backtest_integrity(BacktestIntegrityRequest::default())
        .await
        .expect_err("a retailer");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    app.stop().await;
}

/// `INTEGRITY_RULE_LATE_SALES`: thirteen sites sell now; one pushes a fifth of its sales with
/// an `occurred_at` two hours back (received now: over an hour late). That site alone is raised,
/// from the fold's late figures, and `verify` agrees with them.
async fn sales_received_over_an_hour_late_are_flagged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    flash_sale(&app, now - 4 * 3_600, now + 3_600).await;
    app.admin()
        .await
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    for i in 0..13 {
        let site = if i == 12 {
            "backdater".to_owned()
        } else {
            format!("honest-{i:02}")
        };
        let (_, secret) = app.site_with_key(&site).await;
        let txs: Vec<Transaction> = (0..10)
            .map(|n| {
                let mut t = sale(&format!("{site}-s{n}"), "IDR", 10_000);
                if i == 12 && n < 2 {
                    t.occurred_at = Some(saleboard_proto::Timestamp {
                        seconds: now - 2 * 3_600,
                        nanos: 0,
                    });
                }
                t
            })
            .collect();
        push(&app, &secret, txs).await;
    }
    app.settle().await;
    let (raised, late) = flags_of_rule(&app, IntegrityRule::LateSales).await;
    assert_eq!(late.len(), 1, "{raised:#?}");
    let flag = &late[0];
    assert_eq!(flag.site_id, "backdater");
    assert_eq!(flag.severity, i32::from(Severity::High));
    // 20% against max(3 × 0, 5%).
    assert_eq!(flag.statistic_decimal, "0.2");
    assert_eq!(flag.threshold_decimal, "0.05");
    assert_eq!(input(flag, "site_late_sales_minor"), "20000");
    assert_eq!(input(flag, "national_late_sales_minor"), "0");
    assert!(
        raised.iter().all(|f| f.site_id == "backdater"),
        "no honest site is raised: {raised:#?}"
    );
    // verify recomputes the late figures from the ledger and agrees.
    let out = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .arg("verify")
        .env("SALEBOARD_DATABASE_URL", &app.db.url)
        .output()
        .expect("verify runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!stdout.contains("late figures"), "{stdout}");
    app.stop().await;
}

fn adjust(site: &str, ids: &[&str], reason: &str) -> AdjustTransactionsRequest {
    AdjustTransactionsRequest {
        event_id: String::new(),
        site_id: site.to_owned(),
        transaction_ids: ids.iter().map(|&i| i.to_owned()).collect(),
        reason: reason.to_owned(),
        flag_id: String::new(),
    }
}

/// A sale of `brand`.
fn branded(id: &str, amount: i64, brand: &str) -> Transaction {
    Transaction {
        brand: brand.into(),
        ..sale(id, "IDR", amount)
    }
}

/// AdjustTransactions as organizers use it: refusals name the field or the id; one organizer
/// proposes, another approves (four eyes); the sale is voided with its refund, and every
/// figure (site totals, ranking, national, hourly curve, breakdowns) stops counting them;
/// a refund of the voided sale is REJECTED SALE_VOIDED; a row is voided once; `saleboard
/// verify` agrees with the figures; the audit log has both calls.
async fn an_adjustment_voids_transactions_in_every_figure(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Arrange: besar sold 900 (nestle) and 600 (wings) and refunded 200 of the first; kecil
    // sold 1,000 (nestle).
    app.set_event().await;
    let (_, besar) = app.site_with_key("besar").await;
    let (_, kecil) = app.site_with_key("kecil").await;
    push(
        &app,
        &besar,
        vec![
            branded("b-1", 900, "nestle"),
            branded("b-2", 600, "wings"),
            refund("b-r1", "b-1", "IDR", 200),
        ],
    )
    .await;
    push(&app, &kecil, vec![branded("k-1", 1_000, "nestle")]).await;
    app.settle().await;
    let before = board(&app).await;
    assert_eq!(ranks(&before), ranked(&[("besar", 1), ("kecil", 2)]));
    assert_eq!(before.national_net_reporting_minor, 2_300);
    let ana_secret = app.create_organizer("ana").await;
    let budi_secret = app.create_organizer("budi").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;
    let mut budi = admin_client(app.admin_addr, Some(&budi_secret)).await;

    // Refusals name the field or the id, and store nothing.
    for (request, code, names) in [
        (
            adjust("besar", &[], "why"),
            Code::InvalidArgument,
            "transaction_ids",
        ),
        (
            adjust("besar", &["b-1", "b-1"], "why"),
            Code::InvalidArgument,
            "transaction_ids[1]",
        ),
        (
            adjust("besar", &["b-1", "bad id"], "why"),
            Code::InvalidArgument,
            "transaction_ids[1]",
        ),
        (
            adjust("besar", &["b-1"], " "),
            Code::InvalidArgument,
            "reason",
        ),
        (
            adjust("besar", &["b-2", "k-1"], "why"),
            Code::NotFound,
            "transaction_ids[1] \"k-1\"",
        ),
        (adjust("nobody", &["b-1"], "why"), Code::NotFound, "nobody"),
        (
            AdjustTransactionsRequest {
                flag_id: "flg-none".into(),
                ..adjust("besar", &["b-1"], "why")
            },
            Code::NotFound,
            "flag_id",
        ),
    ] {
        let refused = ana
            .adjust_transactions(request.clone())
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), code, "{request:?}: {refused:?}");
        assert!(
            refused.message().contains(names),
            "{request:?}: {refused:?}"
        );
    }
    let mut retailer = admin_client(app.admin_addr, Some(&besar)).await;
    let mine = retailer
        .adjust_transactions(adjust("kecil", &["k-1"], "theirs"))
        .await
        .expect_err("a retailer");
    assert_eq!(mine.code(), Code::PermissionDenied, "{mine:?}");

    // Act: ana proposes to void b-1; nothing changes until budi approves.
    let proposed = ana
        .adjust_transactions(adjust(
            "besar",
            &["b-1"],
            "brushing: the site could not justify it",
        ))
        .await
        .expect("AdjustTransactions")
        .into_inner();
    assert_eq!(state(&proposed), ActionState::Pending);
    assert_eq!(proposed.kind, i32::from(ActionKind::Adjust));
    assert_eq!(proposed.transaction_ids, ["b-1"]);
    assert_eq!((proposed.voided_rows, proposed.through_position), (0, 0));
    let head = app.store.ledger_head().await.expect("head");
    let own = ana
        .approve_action(ApproveActionRequest {
            action_id: proposed.action_id.clone(),
        })
        .await
        .expect_err("four eyes");
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");
    assert_eq!(app.store.ledger_head().await.expect("head"), head);
    let applied = budi
        .approve_action(ApproveActionRequest {
            action_id: proposed.action_id.clone(),
        })
        .await
        .expect("ApproveAction")
        .into_inner();
    assert_eq!(state(&applied), ActionState::Applied);
    assert_eq!(applied.approved_by, "budi");
    // The sale and its refund: two voids, at the next two positions.
    assert_eq!(
        (applied.voided_rows, applied.through_position),
        (2, head + 2)
    );

    // Every figure stops counting b-1 and its refund.
    assert!(app.settle().await >= applied.through_position);
    let after = board(&app).await;
    assert_eq!(ranks(&after), ranked(&[("kecil", 1), ("besar", 2)]));
    assert_eq!(after.national_net_reporting_minor, 1_600);
    let mut public = app.leaderboard().await;
    // A site's hourly series is its own (or the organizers').
    let totals = app
        .leaderboard_as(&besar)
        .await
        .get_site_totals(GetSiteTotalsRequest {
            site_id: "besar".into(),
            include_hourly: true,
            ..Default::default()
        })
        .await
        .expect("GetSiteTotals")
        .into_inner();
    let idr = &totals.totals[0];
    assert_eq!(
        (
            idr.sale_count,
            idr.gross_minor,
            idr.refund_count,
            idr.refunded_minor,
            idr.net_minor
        ),
        (1, 600, 0, 0, 600)
    );
    let hourly_net: i64 = totals.hourly.iter().map(|h| h.net_minor).sum();
    assert_eq!(hourly_net, 600);
    let national = public
        .get_national_totals(GetNationalTotalsRequest::default())
        .await
        .expect("GetNationalTotals")
        .into_inner();
    let curve: i64 = national.hourly.iter().map(|h| h.net_reporting_minor).sum();
    assert_eq!((national.net_reporting_minor, curve), (1_600, 1_600));
    let brands = public
        .get_breakdown(saleboard_proto::v1::GetBreakdownRequest {
            dimension: saleboard_proto::v1::Dimension::Brand.into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("GetBreakdown")
        .into_inner();
    let nestle = brands
        .entries
        .iter()
        .find(|e| e.key == "nestle")
        .expect("nestle");
    assert_eq!(
        (
            nestle.net_reporting_minor,
            nestle.sale_count,
            nestle.refund_count
        ),
        (1_000, 1, 0),
        "only kecil's nestle sale is counted"
    );

    // A refund of the voided sale is refused, naming why; the sale sent again is a duplicate.
    let answer = app
        .ingest(&besar)
        .await
        .submit_transactions(SubmitTransactionsRequest {
            transactions: vec![
                refund("b-r2", "b-1", "IDR", 100),
                branded("b-1", 900, "nestle"),
            ],
        })
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(answer.results[0].outcome, i32::from(Outcome::Rejected));
    assert_eq!(answer.results[0].reason, "SALE_VOIDED");
    assert!(
        answer.results[0]
            .message
            .contains("voided by the organizers"),
        "{answer:?}"
    );
    assert_eq!(answer.results[1].outcome, i32::from(Outcome::Duplicate));

    // A row is voided once: the refund went with its sale.
    let twice = ana
        .adjust_transactions(adjust("besar", &["b-r1"], "again"))
        .await
        .expect_err("voided already");
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    assert!(twice.message().contains("voided already"), "{twice:?}");

    // verify recomputes every figure from the ledger, voids included, and agrees.
    let verified = std::process::Command::new(saleboard_tests::proc::bin_dir().join("saleboard"))
        .arg("verify")
        .env("SALEBOARD_DATABASE_URL", &app.db.url)
        .output()
        .expect("verify runs");
    assert!(
        verified.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    // Both calls are in the audit log with their organizers; the action lists what it did.
    let log = ana
        .list_audit_log(ListAuditLogRequest {
            limit: 1_000,
            ..Default::default()
        })
        .await
        .expect("ListAuditLog")
        .into_inner()
        .entries;
    let logged: Vec<(String, String, String)> = log
        .iter()
        .filter(|e| e.outcome.starts_with("OK"))
        .filter(|e| ["AdjustTransactions", "ApproveAction"].contains(&e.rpc.as_str()))
        .map(|e| (e.organizer.clone(), e.rpc.clone(), e.outcome.clone()))
        .collect();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(
        (logged[0].0.as_str(), logged[0].1.as_str()),
        ("ana", "AdjustTransactions")
    );
    assert_eq!(
        (logged[1].0.as_str(), logged[1].1.as_str()),
        ("budi", "ApproveAction")
    );
    assert!(
        logged[1].2.contains("\"voided_rows\":\"2\""),
        "{}",
        logged[1].2
    );
    let listed = budi
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert_eq!(listed[0].action_id, proposed.action_id);
    assert_eq!(listed[0].voided_rows, 2);
}

/// INTEGRITY_RULE_GROWTH from the comparison with the baseline event (no ledger scan): twelve
/// sites grow 10% on last week, one grows 400% with orders of the same size: that one is
/// raised (its excess over the nation's growth, 3.9, against the floor 1), with the figures it
/// read; the others are not. The backtest of the event runs the rule too.
async fn a_site_growing_far_beyond_the_nation_on_its_baseline_is_flagged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let at = |seconds| Some(saleboard_proto::Timestamp { seconds, nanos: 0 });
    let mut admin = app.admin().await;
    // Last week's event (still settling: it takes its sales now), then this one on it.
    admin
        .set_event(Event {
            event_id: "last-week".into(),
            display_name: "Last week".into(),
            starts_at: at(now - 5 * 86_400),
            ends_at: at(now - 4 * 86_400),
            reporting_currency: "IDR".into(),
            ..Event::default()
        })
        .await
        .expect("SetEvent last-week");
    admin
        .set_event(Event {
            baseline_event_id: "last-week".into(),
            ..saleboard_tests::data::event()
        })
        .await
        .expect("SetEvent");
    admin
        .set_integrity_policy(IntegrityPolicy {
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let sales = |prefix: &str, n: usize, amount: i64, occurred: Option<i64>| -> Vec<Transaction> {
        (0..n)
            .map(|i| {
                let mut t = sale(&format!("{prefix}-{i}"), "IDR", amount);
                if let Some(seconds) = occurred {
                    t.occurred_at = at(seconds);
                }
                t
            })
            .collect()
    };
    let last_week = Some(now - 5 * 86_400 + 3_600);
    for i in 0..13 {
        let name = format!("toko-{i:02}");
        let (_, secret) = app.site_with_key(&name).await;
        push(&app, &secret, sales("lw", 10, 1_000, last_week)).await;
        let now_sales = if i == 12 {
            sales("now", 50, 1_000, None)
        } else {
            sales("now", 10, 1_100, None)
        };
        push(&app, &secret, now_sales).await;
    }
    app.settle().await;

    let (all, growth) = flags_of_rule(&app, IntegrityRule::Growth).await;
    assert_eq!(growth.len(), 1, "{all:#?}");
    let f = &growth[0];
    assert_eq!(f.site_id, "toko-12");
    assert_eq!(f.severity, i32::from(Severity::Medium));
    // +400% against the others' +10%: 3.9 beyond the nation, the floor 1 (the sites' spread is
    // nil).
    assert_eq!(f.statistic_decimal, "3.9");
    assert_eq!(f.threshold_decimal, "1");
    assert_eq!(input(f, "condition"), "grew beyond the nation");
    assert_eq!(input(f, "site_net_now_minor"), "50000");
    assert_eq!(input(f, "site_baseline_net_minor"), "10000");
    assert_eq!(input(f, "national_net_now_minor"), "182000");
    assert_eq!(input(f, "national_baseline_net_minor"), "130000");
    assert_eq!(input(f, "in_top_places"), "true");
    assert_eq!(
        input(f, "order_value_ratio_decimal"),
        "0.9090909090909090909090909091"
    );
    // No other rule holds for anyone (honest refunds: none; nothing late).
    assert!(
        all.iter()
            .all(|f| f.rule == i32::from(IntegrityRule::Growth)),
        "{all:#?}"
    );

    let backtest = admin
        .backtest_integrity(BacktestIntegrityRequest::default())
        .await
        .expect("BacktestIntegrity")
        .into_inner();
    let rule = backtest
        .rules
        .iter()
        .find(|r| r.rule == i32::from(IntegrityRule::Growth))
        .expect("the growth rule");
    assert!(rule.evaluated, "{rule:?}");
    assert_eq!((rule.sites, rule.raised), (13, 1), "{rule:?}");
    assert_eq!(rule.max_decimal, "3.9");
}

/// The automatic hold approves in the name of the organizer who set the policy: once that
/// organizer is revoked, a site with grounds (a high flag) is not held; when another organizer
/// sets the policy again, it is, approved in their name.
async fn the_automatic_hold_lapses_with_the_organizer_who_set_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    flash_sale(&app, now - 3 * 3_600, now + 3_600).await;
    let ana_secret = app.create_organizer("ana").await;
    let budi_secret = app.create_organizer("budi").await;
    let mut ana = admin_client(app.admin_addr, Some(&ana_secret)).await;
    let mut budi = admin_client(app.admin_addr, Some(&budi_secret)).await;
    let policy = IntegrityPolicy {
        min_sales: Some(1),
        min_share_decimal: Some("0".into()),
        auto_hold: Some(true),
        ..IntegrityPolicy::default()
    };
    ana.set_integrity_policy(policy.clone())
        .await
        .expect("SetIntegrityPolicy");
    app.admin()
        .await
        .revoke_organizer(saleboard_proto::v1::RevokeOrganizerRequest { name: "ana".into() })
        .await
        .expect("RevokeOrganizer");
    // Three sites sell now; x backdates every sale by two hours: LATE_SALES (high).
    for site in ["a", "b", "c", "x"] {
        let (_, secret) = app.site_with_key(site).await;
        let txs = (0..5)
            .map(|n| {
                let mut t = sale(&format!("{site}-{n}"), "IDR", 10_000);
                if site == "x" {
                    t.occurred_at = Some(saleboard_proto::Timestamp {
                        seconds: now - 2 * 3_600,
                        nanos: 0,
                    });
                }
                t
            })
            .collect();
        push(&app, &secret, txs).await;
    }
    app.settle().await;
    let (_, late) = flags_of_rule(&app, IntegrityRule::LateSales).await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].site_id, "x");
    // Three evaluations (2 s apart) with the grounds: nothing held, no action.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(board(&app).await.held_sites.is_empty());
    let actions = budi
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert!(actions.is_empty(), "{actions:#?}");

    // Budi sets the policy again: the hold is approved in his name.
    budi.set_integrity_policy(policy)
        .await
        .expect("SetIntegrityPolicy");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if board(&app).await.held_sites == ["x"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let actions = budi
        .list_actions(ListActionsRequest::default())
        .await
        .expect("ListActions")
        .into_inner()
        .actions;
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(actions[0].proposed_by, "policy:auto-hold");
    assert_eq!(actions[0].approved_by, "budi");
}

/// `saleboard loadgen`'s arguments for a run of 130 sites with Zipf volumes against `app`,
/// the sites (`PREFIX-001`, the biggest, ...) and the event kept for the flags to be read.
fn inflated_run(
    app: &TestApp,
    prefix: &str,
    event: &str,
    inflate: &[(&str, Pattern)],
) -> LoadgenArgs {
    LoadgenArgs {
        sites: 130,
        count: 60_000,
        batch: 200,
        resubmits: 0.0,
        site_prefix: prefix.into(),
        event: event.into(),
        keep_sites: true,
        keep_open: true,
        inflate: inflate
            .iter()
            .map(|(site, pattern)| Inflate {
                site: (*site).into(),
                pattern: *pattern,
            })
            .collect(),
        output: Output::Json,
        ..app.loadgen_args()
    }
}

/// The flags of `event` once every (site, rule) of `want` is raised, with the count of
/// undecided sites; then two more evaluations, so the final figures have been judged too.
async fn flags_of_event(
    app: &TestApp,
    event: &str,
    want: &[(&str, IntegrityRule)],
) -> (Vec<IntegrityFlag>, u32) {
    let list = || async {
        app.admin()
            .await
            .list_integrity_flags(ListIntegrityFlagsRequest {
                event_id: event.into(),
                ..ListIntegrityFlagsRequest::default()
            })
            .await
            .expect("ListIntegrityFlags")
            .into_inner()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = list().await;
        let raised = |(site, rule): &(&str, IntegrityRule)| {
            listed
                .flags
                .iter()
                .any(|f| f.site_id == *site && f.rule == i32::from(*rule))
        };
        if want.iter().all(raised) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{want:?} never all raised in {event}: {:#?}",
            listed.flags
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let listed = list().await;
    (listed.flags, listed.undecided_sites)
}

/// Asserts that the flags are exactly `want` (site, rule), whatever their state: no honest
/// site of the run was raised by any rule at any point of it.
fn only(flags: &[IntegrityFlag], want: &[(&str, IntegrityRule)]) {
    let mut got: Vec<(String, i32)> = flags.iter().map(|f| (f.site_id.clone(), f.rule)).collect();
    got.sort_unstable();
    let mut wanted: Vec<(String, i32)> = want
        .iter()
        .map(|(s, r)| ((*s).to_owned(), i32::from(*r)))
        .collect();
    wanted.sort_unstable();
    assert_eq!(got, wanted, "the flags: {flags:#?}");
}

/// The demonstration, through `saleboard loadgen --inflate`: 130 sites with Zipf
/// volumes (the 500-sale support decides the biggest few dozen; the rest are counted
/// undecided), one or two of them inflating their figures. Each pattern raises its rule for its
/// site, and no rule raises an honest site of the same run.
async fn each_inflate_pattern_raises_its_rule_for_that_site_alone(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |c| c.site_rate_limit = 0).await else {
        return;
    };
    // In the run's own event, which ended before the run: every refund is late. lg-001 refunds
    // 40% of its sales in full, the others 3% of a part. lg-001 and lg-002 sell at round
    // amounts: evidence beside lg-001's flags, never a flag alone (lg-002).
    let report = run(&inflated_run(
        &app,
        "lg",
        "",
        &[
            ("lg-001", Pattern::LateRefunds),
            ("lg-001", Pattern::RoundAmounts),
            ("lg-002", Pattern::RoundAmounts),
        ],
    ))
    .await
    .expect("the first run");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let own = report.event_id.clone();
    let want = [
        ("lg-001", IntegrityRule::LateRefunds),
        ("lg-001", IntegrityRule::RefundRate),
        ("lg-001", IntegrityRule::AmountPattern),
    ];
    let (flags, undecided) = flags_of_event(&app, &own, &want).await;
    only(&flags, &want);
    assert!(
        (60..130).contains(&undecided),
        "the small sites are undecided: {undecided}"
    );
    let late = flags
        .iter()
        .find(|f| f.rule == i32::from(IntegrityRule::LateRefunds))
        .expect("late refunds");
    let statistic: f64 = late.statistic_decimal.parse().expect("a decimal");
    assert!((0.3..0.5).contains(&statistic), "{late:#?}");
    let amounts = flags
        .iter()
        .find(|f| f.rule == i32::from(IntegrityRule::AmountPattern))
        .expect("the amount pattern");
    assert_eq!(amounts.severity, i32::from(Severity::Low));
    // About 60% of lg-001's sales at a round amount, against the others' (lg-002's among them).
    let share: f64 = amounts.statistic_decimal.parse().expect("a decimal");
    let national: f64 = amounts.national_decimal.parse().expect("a decimal");
    assert!((0.55..0.65).contains(&share), "{amounts:#?}");
    assert!(national > 0.0 && national < 0.2, "{amounts:#?}");
    assert!(
        !input(amounts, "site_round_sales").is_empty(),
        "{amounts:#?}"
    );

    // A live event on the first one as its baseline: lg-001's pattern is over; lh-001 sends
    // three sales in ten with an occurred_at two hours back, lh-002 orders five times the size.
    let now = saleboard_tests::data::now_secs();
    app.admin()
        .await
        .set_event(Event {
            baseline_event_id: own.clone(),
            ..idr_event("live-sale", now - 3 * 3_600, now + 3_600)
        })
        .await
        .expect("SetEvent");
    let report = run(&inflated_run(
        &app,
        "lh",
        "live-sale",
        &[("lh-001", Pattern::Backdated), ("lh-002", Pattern::Growth)],
    ))
    .await
    .expect("the second run");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let want = [
        ("lh-001", IntegrityRule::LateSales),
        ("lh-002", IntegrityRule::Growth),
    ];
    let (flags, _) = flags_of_event(&app, "live-sale", &want).await;
    only(&flags, &want);
    let growth = flags
        .iter()
        .find(|f| f.rule == i32::from(IntegrityRule::Growth))
        .expect("growth");
    assert_eq!(
        input(growth, "condition"),
        "average order against the nation's",
        "{growth:#?}"
    );
    app.stop().await;
}

/// An event is judged once more at its close, on its final figures: a site's late refunds
/// pushed just before the organizers close the event (before the next evaluation, every 2 s)
/// still raise its flags, though the event is no longer settling.
async fn an_event_is_judged_once_more_at_its_close(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let now = saleboard_tests::data::now_secs();
    let at = |seconds: i64| Some(saleboard_proto::Timestamp { seconds, nanos: 0 });
    let mut admin = app.admin().await;
    let closing = idr_event("closing", now - 3 * 3_600, now - 2 * 3_600);
    admin.set_event(closing.clone()).await.expect("SetEvent");
    // A live event beside it, so the closed one is not the current event (always evaluated).
    admin
        .set_event(idr_event("today", now - 3_600, now + 86_400))
        .await
        .expect("SetEvent");
    admin
        .set_integrity_policy(IntegrityPolicy {
            event_id: "closing".into(),
            min_sales: Some(1),
            min_share_decimal: Some("0".into()),
            ..IntegrityPolicy::default()
        })
        .await
        .expect("SetIntegrityPolicy");
    let mut pushes = Vec::new();
    for (site, txs) in x_refunds_forty_per_cent(now) {
        let (_, secret) = app.site_with_key(site).await;
        pushes.push((secret, txs));
    }
    // Pushed, then closed at once.
    for (secret, txs) in pushes {
        push(&app, &secret, txs).await;
    }
    admin
        .set_event(Event {
            closes_at: at(saleboard_tests::data::now_secs()),
            ..closing
        })
        .await
        .expect("SetEvent: closed");
    let (flags, _) = flags_of_event(
        &app,
        "closing",
        &[
            ("x", IntegrityRule::LateRefunds),
            ("x", IntegrityRule::RefundRate),
        ],
    )
    .await;
    only(
        &flags,
        &[
            ("x", IntegrityRule::LateRefunds),
            ("x", IntegrityRule::RefundRate),
        ],
    );
    app.stop().await;
}
