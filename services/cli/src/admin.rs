//! `saleboard admin ...`: sites, keys, the event, exchange rates, organizers and the audit log,
//! with the organizer's own secret (or the organizer token from configuration, `bootstrap`).

use std::path::PathBuf;

use saleboard_proto::Timestamp;
use saleboard_proto::json::JsonMessage;
use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::{
    ActionKind, ActionState, AdjustTransactionsRequest, AdminAction, ApproveActionRequest,
    AuditEntry, BacktestIntegrityRequest, CreateApiKeyRequest, CreateOrganizerRequest,
    CreateSiteRequest, Event, ExchangeRate, FlagState, GetEventRequest, GetIntegrityFlagRequest,
    GetIntegrityPolicyRequest, IntegrityBacktest, IntegrityFlag, IntegrityPolicy, IntegrityRule,
    ListActionsRequest, ListApiKeysRequest, ListAuditLogRequest, ListEventsRequest,
    ListExchangeRatesRequest, ListIntegrityFlagsRequest, ListOrganizersRequest, ListSitesRequest,
    Organizer, RejectActionRequest, ReviewIntegrityFlagRequest, RevokeApiKeyRequest,
    RevokeOrganizerRequest, SampleIntegrityFlagRequest, SetExchangeRatesRequest,
    SetSiteEnabledRequest, SetSiteHoldRequest, Severity,
};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{self, Authed, Output};

/// Arguments of `saleboard admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// AdminService endpoint: the leaderboard's admin listener (--admin-listen), not its public
    /// port. (`--endpoint` is still accepted for it.)
    #[arg(
        long = "admin-endpoint",
        alias = "endpoint",
        global = true,
        env = "SALEBOARD_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:50054"
    )]
    pub admin_endpoint: String,
    /// The organizer's secret (`sbo_...`), or the organizer token from configuration.
    #[arg(
        long,
        global = true,
        env = "SALEBOARD_ORGANIZER_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, env = "SALEBOARD_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    #[allow(missing_docs)]
    pub command: AdminCommand,
}

/// What to manage.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Participating sites.
    #[command(subcommand)]
    Sites(SitesCommand),
    /// API keys of sites.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The event window and reporting currency.
    #[command(subcommand)]
    Event(EventCommand),
    /// Exchange rates into the reporting currency.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Organizers, each with a secret of their own.
    #[command(subcommand)]
    Organizers(OrganizersCommand),
    /// The audit log: who changed what, and when.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Integrity: the thresholds of each event's rules.
    #[command(subcommand)]
    Integrity(IntegrityCommand),
    /// Propose to void transactions of a site that organizers confirmed invalid: once another
    /// organizer approves (`admin approve`), a void is appended to the ledger for each (a
    /// sale's refunds are voided with it) and every figure stops counting them.
    Adjust {
        /// The site.
        #[arg(long)]
        site: String,
        /// The transaction ids to void (1 to 1,000).
        #[arg(required = true)]
        transaction_ids: Vec<String>,
        /// Why (required): the approving organizer reads it, the audit log keeps it.
        #[arg(long)]
        reason: String,
        /// The integrity flag this answers, if any.
        #[arg(long, default_value = "")]
        flag: String,
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
    },
    /// Approve another organizer's pending action (a hold, a release or an adjustment): it
    /// applies now.
    Approve {
        /// The action (`act-...`).
        action_id: String,
    },
    /// Reject another organizer's pending action: nothing changes.
    Reject {
        /// The action (`act-...`).
        action_id: String,
        /// Why (optional).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List organizers' actions, newest first.
    Actions {
        /// Only this event's.
        #[arg(long, default_value = "")]
        event: String,
        /// Only pending ones.
        #[arg(long)]
        pending: bool,
    },
}

/// `saleboard admin integrity`.
#[derive(Debug, clap::Subcommand)]
pub enum IntegrityCommand {
    /// List an event's integrity flags, newest first (`--output json`: one per line).
    List {
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
        /// Only this site's.
        #[arg(long, default_value = "")]
        site: String,
        /// Only flags in this state: open, under-review, cleared, confirmed.
        #[arg(long)]
        state: Option<FlagStateArg>,
    },
    /// Show one flag with every figure its evaluation read.
    Show {
        /// The flag (`flg-...`).
        flag_id: String,
    },
    /// The transaction ids a flagged site is asked to justify, drawn reproducibly by the flag's
    /// seed (`--output json` for the whole answer).
    Sample {
        /// The flag (`flg-...`).
        flag_id: String,
        /// How many (default: the event policy's sample_size, 59).
        #[arg(long, default_value_t = 0)]
        size: u32,
    },
    /// Review a flag: set its state, with a note (a site under review is marked on the public
    /// board).
    Review {
        /// The flag (`flg-...`).
        flag_id: String,
        /// Its new state.
        #[arg(long)]
        state: FlagStateArg,
        /// What was found (required).
        #[arg(long)]
        note: String,
    },
    /// Run the rules over an event (last year's, say) with its thresholds: per rule the 99th
    /// percentile and the largest value of the statistic across its sites, and how many the
    /// thresholds raise, to set this year's thresholds from (`--output json`: the answer).
    Backtest {
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
    },
    /// Show an event's integrity thresholds (every field; `*` marks the defaults), or change
    /// them with `--set` and `--default`.
    Policy {
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
        /// Set a field, e.g. `--set min_sales=200 --set late_sales_floor_decimal=0.075`
        /// (field names as `GetIntegrityPolicy` answers them); repeatable.
        #[arg(long, value_name = "FIELD=VALUE")]
        set: Vec<String>,
        /// Put a field back to its default; repeatable.
        #[arg(long, value_name = "FIELD")]
        default: Vec<String>,
    },
}

/// A flag's state on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FlagStateArg {
    /// Raised, not reviewed.
    Open,
    /// Being looked into: marked on the public board.
    UnderReview,
    /// Explained.
    Cleared,
    /// Not right.
    Confirmed,
}

impl FlagStateArg {
    fn proto(self) -> FlagState {
        match self {
            Self::Open => FlagState::Open,
            Self::UnderReview => FlagState::UnderReview,
            Self::Cleared => FlagState::Cleared,
            Self::Confirmed => FlagState::Confirmed,
        }
    }
}

/// `saleboard admin organizers`.
#[derive(Debug, clap::Subcommand)]
pub enum OrganizersCommand {
    /// Add an organizer (its secret is printed once).
    Create {
        /// Lower-case slug: a-z, 0-9 and '-'.
        name: String,
    },
    /// List organizers (never their secrets), `bootstrap` first.
    List,
    /// Revoke an organizer: its secret is refused everywhere within 2 seconds.
    Revoke {
        /// The organizer's name.
        name: String,
    },
}

/// `saleboard admin audit`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List the audit log, oldest first (`--output json`: one entry per line).
    List {
        /// Only this organizer's calls.
        #[arg(long)]
        organizer: Option<String>,
        /// Only calls at or after this time: RFC 3339, or relative to now (now-1h).
        #[arg(long)]
        since: Option<String>,
    },
    /// Recompute the audit log's hash chain; names the first entry that breaks it.
    Verify,
}

/// `saleboard admin sites`.
#[derive(Debug, clap::Subcommand)]
pub enum SitesCommand {
    /// Register a site.
    Create {
        /// Lower-case slug: a-z, 0-9 and '-'.
        site_id: String,
        /// Name shown on screens (default: the id).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List every site.
    List,
    /// Disable a site: its keys are refused and it leaves the leaderboard (its ledger rows and
    /// totals stay; `enable` brings it back).
    Disable {
        /// The site.
        site_id: String,
    },
    /// Enable a disabled site again.
    Enable {
        /// The site.
        site_id: String,
    },
    /// Propose to hold a site in an event: once another organizer approves (`admin approve`),
    /// it leaves that event's public ranking and big screen, and stays in the national figures
    /// (its keys keep working).
    Hold {
        /// The site.
        site_id: String,
        /// Why (required): the approving organizer reads it, the audit log keeps it.
        #[arg(long)]
        reason: String,
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
    },
    /// Propose to release a held site (applied once another organizer approves).
    Release {
        /// The site.
        site_id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
        /// The event (default: the current one).
        #[arg(long, default_value = "")]
        event: String,
    },
}

/// `saleboard admin keys`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Issue a key for a site (its secret is printed once).
    Create {
        /// The site.
        site_id: String,
    },
    /// Revoke a key (refused by every ingest process within 2 seconds).
    Revoke {
        /// The key's id (not its secret).
        key_id: String,
    },
    /// List keys (never their secrets): every site's, or one site's (`keys list SITE`, or
    /// `--site SITE`).
    List {
        /// Only this site's keys.
        #[arg(value_name = "SITE")]
        site_id: Option<String>,
        /// Only this site's keys (as the positional SITE).
        #[arg(long, conflicts_with = "site_id")]
        site: Option<String>,
    },
}

/// `saleboard admin event`.
#[derive(Debug, clap::Subcommand)]
pub enum EventCommand {
    /// Create an event, or edit one: an edit changes only the fields given (the rest are kept
    /// as stored) and prints what changed. (SetEvent itself replaces every field: this command
    /// reads the event first.)
    Set {
        /// Event id, e.g. harbolnas-2026.
        #[arg(long)]
        id: String,
        /// Name shown on screens.
        #[arg(long)]
        name: Option<String>,
        /// Start of the window: RFC 3339 (2026-12-10T00:00:00+07:00), or relative to now
        /// (now, now-1h). Needed for a new event.
        #[arg(long)]
        starts: Option<String>,
        /// End of the window (exclusive): RFC 3339, or relative to now (now+3d). Needed for a
        /// new event.
        #[arg(long)]
        ends: Option<String>,
        /// Reporting currency (ISO 4217); a new event's default is IDR.
        #[arg(long)]
        currency: Option<String>,
        /// End of the settlement period (refunds taken until then; final after): RFC 3339 or
        /// relative to now. Default: the stored one, or the end + 7 days.
        #[arg(long)]
        closes: Option<String>,
        /// The event it is compared with by default (e.g. last year's); "" removes it.
        #[arg(long)]
        baseline: Option<String>,
        /// IANA time zone for display, e.g. Asia/Jakarta; "" for UTC.
        #[arg(long)]
        time_zone: Option<String>,
    },
    /// Show an event (the current one without --id).
    Get {
        /// The event.
        #[arg(long, default_value = "")]
        id: String,
    },
    /// List every event, newest first, with its state.
    List,
    /// Close an event: its settlement period ends now (or when its window ends, if it is still
    /// live); from then on its figures are final (EVENT_CLOSED).
    Close {
        /// The event.
        #[arg(long)]
        id: String,
    },
}

/// `saleboard admin rates`.
#[derive(Debug, clap::Subcommand)]
pub enum RatesCommand {
    /// Set rates from a CSV file of `currency,rate` (a header row is optional).
    Set {
        /// The CSV file.
        file: PathBuf,
        /// The event the rates belong to (default: the current event).
        #[arg(long, default_value = "")]
        event: String,
    },
    /// List an event's rates.
    List {
        /// The event (default: the current event).
        #[arg(long, default_value = "")]
        event: String,
    },
}

fn timestamp(field: &str, text: &str) -> anyhow::Result<Timestamp> {
    if let Some(seconds) = relative_to_now(text.trim()) {
        return Ok(Timestamp {
            seconds: seconds?,
            nanos: 0,
        });
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        anyhow::anyhow!(
            "--{field} {text:?} is not an RFC 3339 time such as 2026-12-12T00:00:00+07:00, nor \
             a time relative to now such as now, now-1h or now+3d ({e})"
        )
    })?;
    Ok(Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    })
}

/// `now`, `now+3d`, `now-90m` (units s, m, h, d) as Unix seconds; `None` when the text does
/// not start with `now`.
fn relative_to_now(text: &str) -> Option<anyhow::Result<i64>> {
    let rest = text.strip_prefix("now")?;
    let now = crate::client_now();
    if rest.is_empty() {
        return Some(Ok(now));
    }
    let bad = || {
        anyhow::anyhow!(
            "{text:?}: write now, or now followed by +/- a whole number and a unit (s, m, h, d), \
             such as now-1h or now+3d"
        )
    };
    let parse = || -> anyhow::Result<i64> {
        let (sign, amount) = match rest.as_bytes().first() {
            Some(b'+') => (1, &rest[1..]),
            Some(b'-') => (-1, &rest[1..]),
            _ => return Err(bad()),
        };
        let unit = amount.chars().last().ok_or_else(bad)?;
        let seconds_per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let digits = &amount[..amount.len() - unit.len_utf8()];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        n.checked_mul(seconds_per)
            .and_then(|d| d.checked_mul(sign))
            .and_then(|d| now.checked_add(d))
            .ok_or_else(bad)
    };
    Some(parse())
}

fn text(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads `currency,rate` rows.
///
/// # Errors
/// When the file cannot be read or a row has not two fields.
pub fn read_rates(file: &PathBuf) -> anyhow::Result<Vec<ExchangeRate>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
    let mut rates = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let (Some(currency), Some(rate), None) = (record.get(0), record.get(1), record.get(2))
        else {
            anyhow::bail!(
                "{} line {}: expected two fields, currency,rate",
                file.display(),
                i + 1
            );
        };
        if i == 0 && currency.eq_ignore_ascii_case("currency") {
            continue;
        }
        rates.push(ExchangeRate {
            currency: currency.to_owned(),
            rate: rate.to_owned(),
        });
    }
    Ok(rates)
}

/// The answer: its message in the proto3 JSON mapping for a script, else the table.
fn print(
    output: Output,
    message: &impl JsonMessage,
    table: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", client::json(message)?),
        Output::Table => print!("{}", table()),
    }
    Ok(())
}

/// Runs the command.
///
/// # Errors
/// When the service cannot be reached or refuses, explained.
pub async fn run(args: &AdminArgs) -> anyhow::Result<()> {
    let endpoint = &args.admin_endpoint;
    let Some(token) = args.token.as_deref() else {
        anyhow::bail!(
            "admin commands need the organizer token: --token or SALEBOARD_ORGANIZER_TOKEN"
        );
    };
    let mut admin: AdminServiceClient<Authed> =
        AdminServiceClient::new(client::connect(endpoint, Some(token)).await?);
    let output = args.output;
    match &args.command {
        AdminCommand::Sites(command) => sites(&mut admin, endpoint, output, command).await,
        AdminCommand::Keys(command) => keys(&mut admin, endpoint, output, command).await,
        AdminCommand::Event(command) => event(&mut admin, endpoint, output, command).await,
        AdminCommand::Rates(command) => rates(&mut admin, endpoint, output, command).await,
        AdminCommand::Organizers(command) => {
            organizers(&mut admin, endpoint, output, command).await
        }
        AdminCommand::Audit(command) => audit(&mut admin, endpoint, output, command).await,
        AdminCommand::Integrity(IntegrityCommand::List { event, site, state }) => {
            let listed = admin
                .list_integrity_flags(ListIntegrityFlagsRequest {
                    event_id: event.clone(),
                    site_id: site.clone(),
                    state: state
                        .map_or(FlagState::Unspecified, FlagStateArg::proto)
                        .into(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "ListIntegrityFlags", &s))?
                .into_inner();
            match output {
                Output::Json => {
                    for f in &listed.flags {
                        println!("{}", client::json(f)?);
                    }
                }
                Output::Table => {
                    for f in &listed.flags {
                        println!("{}", flag_line(f));
                    }
                    println!(
                        "{} flag(s); {} site(s) without enough sales to decide",
                        listed.flags.len(),
                        listed.undecided_sites
                    );
                }
            }
            Ok(())
        }
        AdminCommand::Integrity(IntegrityCommand::Show { flag_id }) => {
            let f = admin
                .get_integrity_flag(GetIntegrityFlagRequest {
                    flag_id: flag_id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "GetIntegrityFlag", &s))?
                .into_inner();
            print(output, &f, || {
                let mut out = format!("{}\n", flag_line(&f));
                out.push_str(&format!(
                    "statistic {} against threshold {} (the nation without the site: {}), rules v{}\n",
                    f.statistic_decimal, f.threshold_decimal, f.national_decimal, f.rule_version
                ));
                for i in &f.inputs {
                    out.push_str(&format!("  {:<28} {}\n", i.name, i.value_decimal));
                }
                if !f.reviewed_by.is_empty() {
                    out.push_str(&format!(
                        "reviewed by {} at {}: {}\n",
                        f.reviewed_by,
                        text(f.reviewed_at.as_ref()),
                        f.note
                    ));
                }
                out
            })
        }
        AdminCommand::Integrity(IntegrityCommand::Sample { flag_id, size }) => {
            let sample = admin
                .sample_integrity_flag(SampleIntegrityFlagRequest {
                    flag_id: flag_id.clone(),
                    size: *size,
                })
                .await
                .map_err(|s| client::explain(endpoint, "SampleIntegrityFlag", &s))?
                .into_inner();
            print(output, &sample, || {
                let mut out = format!(
                    "{} of {} sales of {} in {} up to position {} (seed {}):\n",
                    sample.transaction_ids.len(),
                    sample.population,
                    sample.site_id,
                    sample.event_id,
                    sample.watermark,
                    sample.seed
                );
                for id in &sample.transaction_ids {
                    out.push_str(id);
                    out.push('\n');
                }
                out
            })
        }
        AdminCommand::Integrity(IntegrityCommand::Backtest { event }) => {
            let answer = admin
                .backtest_integrity(BacktestIntegrityRequest {
                    event_id: event.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "BacktestIntegrity", &s))?
                .into_inner();
            print(output, &answer, || backtest_table(&answer))
        }
        AdminCommand::Integrity(IntegrityCommand::Review {
            flag_id,
            state,
            note,
        }) => {
            let f = admin
                .review_integrity_flag(ReviewIntegrityFlagRequest {
                    flag_id: flag_id.clone(),
                    state: state.proto().into(),
                    note: note.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "ReviewIntegrityFlag", &s))?
                .into_inner();
            print(output, &f, || format!("{}\n", flag_line(&f)))
        }
        AdminCommand::Integrity(IntegrityCommand::Policy {
            event,
            set,
            default,
        }) => integrity_policy(&mut admin, endpoint, output, event, set, default).await,
        AdminCommand::Adjust {
            site,
            transaction_ids,
            reason,
            flag,
            event,
        } => {
            let a = admin
                .adjust_transactions(AdjustTransactionsRequest {
                    event_id: event.clone(),
                    site_id: site.clone(),
                    transaction_ids: transaction_ids.clone(),
                    reason: reason.clone(),
                    flag_id: flag.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "AdjustTransactions", &s))?
                .into_inner();
            print(output, &a, || proposed_text(&a))
        }
        AdminCommand::Approve { action_id } => {
            let a = admin
                .approve_action(ApproveActionRequest {
                    action_id: action_id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "ApproveAction", &s))?
                .into_inner();
            print(output, &a, || format!("{}\n", action_line(&a)))
        }
        AdminCommand::Reject { action_id, reason } => {
            let a = admin
                .reject_action(RejectActionRequest {
                    action_id: action_id.clone(),
                    reason: reason.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "RejectAction", &s))?
                .into_inner();
            print(output, &a, || format!("{}\n", action_line(&a)))
        }
        AdminCommand::Actions { event, pending } => {
            let listed = admin
                .list_actions(ListActionsRequest {
                    event_id: event.clone(),
                    state: if *pending {
                        ActionState::Pending.into()
                    } else {
                        ActionState::Unspecified.into()
                    },
                })
                .await
                .map_err(|s| client::explain(endpoint, "ListActions", &s))?
                .into_inner();
            match output {
                // One action per line, as the audit log lists.
                Output::Json => {
                    for a in &listed.actions {
                        println!("{}", client::json(a)?);
                    }
                }
                Output::Table => {
                    for a in &listed.actions {
                        println!("{}", action_line(a));
                    }
                }
            }
            Ok(())
        }
    }
}

/// `saleboard admin integrity policy`: reads the policy in force; with changes, sets what was
/// set before plus `set`, less `default`, and prints the answer.
async fn integrity_policy(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    event: &str,
    set: &[String],
    default: &[String],
) -> anyhow::Result<()> {
    let current = admin
        .get_integrity_policy(GetIntegrityPolicyRequest {
            event_id: event.to_owned(),
        })
        .await
        .map_err(|s| client::explain(endpoint, "GetIntegrityPolicy", &s))?
        .into_inner();
    let answer = if set.is_empty() && default.is_empty() {
        current
    } else {
        let request = policy_change(&current, set, default)?;
        admin
            .set_integrity_policy(request)
            .await
            .map_err(|s| client::explain(endpoint, "SetIntegrityPolicy", &s))?
            .into_inner()
    };
    let mut value = saleboard_proto::json::to_value(&answer)?;
    print(output, &answer, || {
        let mut out = format!("integrity policy of {}", answer.event_id);
        if answer.updated_by.is_empty() {
            out.push_str(" (the defaults: never set)\n");
        } else {
            out.push_str(&format!(
                " (set by {} at {})\n",
                answer.updated_by,
                text(answer.updated_at.as_ref())
            ));
        }
        if let Some(fields) = value.as_object_mut() {
            for (name, v) in fields.iter() {
                if ["event_id", "defaulted", "updated_at", "updated_by"].contains(&name.as_str()) {
                    continue;
                }
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                let mark = if answer.defaulted.iter().any(|d| d == name) {
                    "  *"
                } else {
                    ""
                };
                out.push_str(&format!("{name:<30} {shown}{mark}\n"));
            }
        }
        out.push_str("* the default\n");
        out
    })
}

/// The policy to set: the fields `current` has set (not defaulted), then `set`, less
/// `default`.
fn policy_change(
    current: &IntegrityPolicy,
    set: &[String],
    default: &[String],
) -> anyhow::Result<IntegrityPolicy> {
    let mut value = saleboard_proto::json::to_value(current)?;
    let fields = value
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("a policy is a JSON object"))?;
    for name in &current.defaulted {
        fields.remove(name);
    }
    for name in ["defaulted", "updated_at", "updated_by"] {
        fields.remove(name);
    }
    for change in set {
        let (name, raw) = change
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--set {change:?}: write FIELD=VALUE"))?;
        let v = if name.ends_with("_decimal") {
            serde_json::Value::String(raw.to_owned())
        } else {
            serde_json::from_str(raw).map_err(|_| {
                anyhow::anyhow!("--set {name}: {raw:?} is not a number or true/false")
            })?
        };
        fields.insert(name.to_owned(), v);
    }
    for name in default {
        fields.remove(name);
    }
    saleboard_proto::json::from_str(&value.to_string())
        .map_err(|e| anyhow::anyhow!("the policy does not read ({e}): check the field names"))
}

/// A flag in one line: id, site, rule, severity, state, figures, since when.
/// A backtest as a table: one rule a line.
fn backtest_table(b: &IntegrityBacktest) -> String {
    let mut out = format!(
        "event {} at position {}: {} sites with sales, {} undecided\n{:<20} {:<7} {:>6} {:>7} {:>22} {:>22}  statistic\n",
        b.event_id,
        b.watermark,
        b.sites,
        b.undecided_sites,
        "rule",
        "sev",
        "sites",
        "raised",
        "p99",
        "max"
    );
    for r in &b.rules {
        let rule = IntegrityRule::try_from(r.rule).map_or("?", |r| {
            r.as_str_name()
                .strip_prefix("INTEGRITY_RULE_")
                .unwrap_or("?")
        });
        let severity = Severity::try_from(r.severity).map_or("?", |s| {
            s.as_str_name().strip_prefix("SEVERITY_").unwrap_or("?")
        });
        if r.evaluated {
            let dash = |v: &str| {
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.to_owned()
                }
            };
            out.push_str(&format!(
                "{rule:<20} {severity:<7} {:>6} {:>7} {:>22} {:>22}  {}\n",
                r.sites,
                r.raised,
                dash(&r.p99_decimal),
                dash(&r.max_decimal),
                r.statistic
            ));
        } else {
            out.push_str(&format!(
                "{rule:<20} {severity:<7} not evaluated: {}\n",
                r.not_evaluated_reason
            ));
        }
    }
    out
}

fn flag_line(f: &IntegrityFlag) -> String {
    let rule = IntegrityRule::try_from(f.rule).map_or("?", |r| {
        r.as_str_name()
            .strip_prefix("INTEGRITY_RULE_")
            .unwrap_or("?")
    });
    let severity = Severity::try_from(f.severity).map_or("?", |s| {
        s.as_str_name().strip_prefix("SEVERITY_").unwrap_or("?")
    });
    let state = FlagState::try_from(f.state).map_or("?", |s| {
        s.as_str_name().strip_prefix("FLAG_STATE_").unwrap_or("?")
    });
    let holding = if f.cleared_at_watermark == 0 {
        "holding".to_owned()
    } else {
        format!(
            "no longer holding since position {}",
            f.cleared_at_watermark
        )
    };
    format!(
        "{} {} {rule} {severity} {state}: {} against {} (nation {}), raised at position {} {}; {holding}",
        f.flag_id,
        f.site_id,
        f.statistic_decimal,
        f.threshold_decimal,
        f.national_decimal,
        f.watermark,
        text(f.raised_at.as_ref()),
    )
}

/// A proposal as printed: its line, and how it is applied.
fn proposed_text(a: &AdminAction) -> String {
    format!(
        "{}\nanother organizer applies it with: saleboard admin approve {}\n",
        action_line(a),
        a.action_id
    )
}

/// An action in one line: id, what, state, who, why.
fn action_line(a: &AdminAction) -> String {
    let what = match ActionKind::try_from(a.kind) {
        Ok(ActionKind::Hold) => "hold".to_owned(),
        Ok(ActionKind::Release) => "release".to_owned(),
        Ok(ActionKind::Adjust) => {
            let flag = if a.flag_id.is_empty() {
                String::new()
            } else {
                format!(" for flag {}", a.flag_id)
            };
            let named = a.transaction_ids.len();
            let applied = if a.voided_rows == 0 {
                String::new()
            } else {
                format!(
                    ", {} voids through ledger position {}",
                    a.voided_rows, a.through_position
                )
            };
            format!(
                "adjust ({named} transaction{}{flag}{applied})",
                if named == 1 { "" } else { "s" }
            )
        }
        _ => "?".to_owned(),
    };
    let state = match ActionState::try_from(a.state) {
        Ok(ActionState::Pending) => "PENDING: another organizer approves or rejects it".to_owned(),
        Ok(ActionState::Applied) => format!("APPLIED, approved by {}", a.approved_by),
        Ok(ActionState::Rejected) if a.decision_note.is_empty() => {
            format!("REJECTED by {}", a.rejected_by)
        }
        Ok(ActionState::Rejected) => {
            format!("REJECTED by {}: {}", a.rejected_by, a.decision_note)
        }
        _ => "?".to_owned(),
    };
    format!(
        "{} {what} {} in {}: {state} (proposed by {} at {}; reason: {})",
        a.action_id,
        a.site_id,
        a.event_id,
        a.proposed_by,
        text(a.proposed_at.as_ref()),
        a.reason
    )
}

fn organizer_line(o: &Organizer) -> String {
    let state = match (&o.revoked_at, o.created_at.is_none()) {
        (Some(at), _) => format!("revoked {}", text(Some(at))),
        (None, true) => "the organizer token from configuration".to_owned(),
        (None, false) => format!(
            "created {} by {}",
            text(o.created_at.as_ref()),
            o.created_by
        ),
    };
    format!("{:<40} {state}\n", o.name)
}

/// `saleboard admin organizers ...`.
async fn organizers(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &OrganizersCommand,
) -> anyhow::Result<()> {
    match command {
        OrganizersCommand::Create { name } => {
            let o = admin
                .create_organizer(CreateOrganizerRequest { name: name.clone() })
                .await
                .map_err(|s| client::explain(endpoint, "CreateOrganizer", &s))?
                .into_inner();
            print(output, &o, || {
                format!(
                    "organizer {}\nsecret (shown only now; give it to {} alone): {}\n",
                    o.name, o.name, o.secret
                )
            })?;
        }
        OrganizersCommand::List => {
            let listed = admin
                .list_organizers(ListOrganizersRequest {})
                .await
                .map_err(|s| client::explain(endpoint, "ListOrganizers", &s))?
                .into_inner();
            print(output, &listed, || {
                listed.organizers.iter().map(organizer_line).collect()
            })?;
        }
        OrganizersCommand::Revoke { name } => {
            let o = admin
                .revoke_organizer(RevokeOrganizerRequest { name: name.clone() })
                .await
                .map_err(|s| client::explain(endpoint, "RevokeOrganizer", &s))?
                .into_inner();
            print(output, &o, || {
                format!(
                    "revoked organizer {} at {}: its secret is refused from now on\n",
                    o.name,
                    text(o.revoked_at.as_ref())
                )
            })?;
        }
    }
    Ok(())
}

/// Audit entries read per page.
const AUDIT_PAGE: u32 = 1_000;

/// Every audit entry the request selects, page by page, handed to `each` in order.
async fn audit_entries(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    mut request: ListAuditLogRequest,
    mut each: impl FnMut(AuditEntry) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    request.limit = AUDIT_PAGE;
    loop {
        let page = admin
            .list_audit_log(request.clone())
            .await
            .map_err(|s| client::explain(endpoint, "ListAuditLog", &s))?
            .into_inner();
        for entry in page.entries {
            each(entry)?;
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        request.page_token = page.next_page_token;
    }
}

/// An entry as the chain check reads it.
fn domain_entry(e: &AuditEntry) -> saleboard_domain::audit::Entry {
    let at = e.at.as_ref().map_or(0, |t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos))
    });
    saleboard_domain::audit::Entry {
        position: e.position,
        at: saleboard_domain::UnixNanos(at),
        organizer: e.organizer.clone(),
        rpc: e.rpc.clone(),
        request_json: e.request_json.clone(),
        outcome: e.outcome.clone(),
        prev_sha256: e.prev_sha256.clone(),
        sha256: e.sha256.clone(),
    }
}

/// `saleboard admin audit ...`.
async fn audit(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &AuditCommand,
) -> anyhow::Result<()> {
    match command {
        AuditCommand::List { organizer, since } => {
            let request = ListAuditLogRequest {
                organizer: organizer.clone().unwrap_or_default(),
                since: since
                    .as_deref()
                    .map(|t| timestamp("since", t))
                    .transpose()?,
                ..ListAuditLogRequest::default()
            };
            audit_entries(admin, endpoint, request, |e| {
                match output {
                    Output::Json => println!("{}", client::json(&e)?),
                    Output::Table => println!(
                        "{:>6} {} {:<20} {:<18} {}",
                        e.position,
                        text(e.at.as_ref()),
                        e.organizer,
                        e.rpc,
                        e.outcome.chars().take(120).collect::<String>()
                    ),
                }
                Ok(())
            })
            .await?;
        }
        AuditCommand::Verify => {
            let mut check = saleboard_domain::audit::ChainCheck::default();
            let mut last = String::new();
            audit_entries(admin, endpoint, ListAuditLogRequest::default(), |e| {
                check.check(&domain_entry(&e)).map_err(|why| {
                    anyhow::anyhow!(
                        "the audit log's chain breaks at entry {} ({} by {} at {}): {why}",
                        e.position,
                        e.rpc,
                        e.organizer,
                        text(e.at.as_ref())
                    )
                })?;
                last.clone_from(&e.sha256);
                Ok(())
            })
            .await?;
            println!(
                "verified: the audit log's {} entries are chained, none altered; last sha256 {}",
                check.checked(),
                if last.is_empty() { "(none)" } else { &last }
            );
        }
    }
    Ok(())
}

/// `saleboard admin sites ...`.
async fn sites(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &SitesCommand,
) -> anyhow::Result<()> {
    match command {
        SitesCommand::Create { site_id, name } => {
            let s = admin
                .create_site(CreateSiteRequest {
                    site_id: site_id.clone(),
                    display_name: name.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "CreateSite", &s))?
                .into_inner();
            print(output, &s, || {
                format!("created site {} ({})\n", s.site_id, s.display_name)
            })?;
        }
        SitesCommand::List => {
            let listed = admin
                .list_sites(ListSitesRequest {})
                .await
                .map_err(|s| client::explain(endpoint, "ListSites", &s))?
                .into_inner();
            print(output, &listed, || {
                listed
                    .sites
                    .iter()
                    .map(|s| {
                        let state = if s.disabled { "  (disabled)" } else { "" };
                        format!("{:<40} {}{state}\n", s.site_id, s.display_name)
                    })
                    .collect()
            })?;
        }
        SitesCommand::Disable { site_id } | SitesCommand::Enable { site_id } => {
            let enabled = matches!(command, SitesCommand::Enable { .. });
            let s = admin
                .set_site_enabled(SetSiteEnabledRequest {
                    site_id: site_id.clone(),
                    enabled,
                })
                .await
                .map_err(|s| client::explain(endpoint, "SetSiteEnabled", &s))?
                .into_inner();
            print(output, &s, || {
                if s.disabled {
                    format!(
                        "disabled site {}: its keys are refused and it is off the leaderboard\n",
                        s.site_id
                    )
                } else {
                    format!("enabled site {}\n", s.site_id)
                }
            })?;
        }
        SitesCommand::Hold {
            site_id,
            reason,
            event,
        }
        | SitesCommand::Release {
            site_id,
            reason,
            event,
        } => {
            let a = admin
                .set_site_hold(SetSiteHoldRequest {
                    event_id: event.clone(),
                    site_id: site_id.clone(),
                    held: matches!(command, SitesCommand::Hold { .. }),
                    reason: reason.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "SetSiteHold", &s))?
                .into_inner();
            print(output, &a, || proposed_text(&a))?;
        }
    }
    Ok(())
}

/// `saleboard admin keys ...`.
async fn keys(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { site_id } => {
            let k = admin
                .create_api_key(CreateApiKeyRequest {
                    site_id: site_id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "CreateApiKey", &s))?
                .into_inner();
            print(output, &k, || {
                format!(
                    "key {} for {}\nsecret (shown only now): {}\n",
                    k.key_id, k.site_id, k.secret
                )
            })?;
        }
        KeysCommand::Revoke { key_id } => {
            let revoked = admin
                .revoke_api_key(RevokeApiKeyRequest {
                    key_id: key_id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "RevokeApiKey", &s))?
                .into_inner();
            print(output, &revoked, || {
                let k = revoked.key.clone().unwrap_or_default();
                format!(
                    "revoked key {} of {} at {}\n",
                    k.key_id,
                    k.site_id,
                    text(k.revoked_at.as_ref())
                )
            })?;
        }
        KeysCommand::List { site_id, site } => {
            let listed = admin
                .list_api_keys(ListApiKeysRequest {
                    site_id: site_id.clone().or_else(|| site.clone()).unwrap_or_default(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "ListApiKeys", &s))?
                .into_inner();
            print(output, &listed, || {
                listed
                    .keys
                    .iter()
                    .map(|k| {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        format!("{:<22} {:<40} {state}\n", k.key_id, k.site_id)
                    })
                    .collect()
            })?;
        }
    }
    Ok(())
}

/// `saleboard admin event ...`.
async fn event(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &EventCommand,
) -> anyhow::Result<()> {
    match command {
        EventCommand::Set {
            id,
            name,
            starts,
            ends,
            currency,
            closes,
            baseline,
            time_zone,
        } => {
            let stored = match admin
                .get_event(GetEventRequest {
                    event_id: id.clone(),
                })
                .await
            {
                Ok(e) => Some(e.into_inner()),
                Err(s) if s.code() == tonic::Code::NotFound => None,
                Err(s) => return Err(client::explain(endpoint, "GetEvent", &s)),
            };
            if stored.is_none() && (starts.is_none() || ends.is_none()) {
                anyhow::bail!(
                    "event {id:?} does not exist yet: a new event needs --starts and --ends \
                     (`saleboard admin event list` shows the events there are)"
                );
            }
            let mut wanted = stored.clone().unwrap_or_else(|| Event {
                event_id: id.clone(),
                reporting_currency: "IDR".into(),
                ..Event::default()
            });
            let set = |field: &mut String, value: &Option<String>| {
                if let Some(v) = value {
                    field.clone_from(v);
                }
            };
            set(&mut wanted.display_name, name);
            set(&mut wanted.reporting_currency, currency);
            set(&mut wanted.baseline_event_id, baseline);
            set(&mut wanted.time_zone, time_zone);
            for (field, flag, value) in [
                (&mut wanted.starts_at, "starts", starts),
                (&mut wanted.ends_at, "ends", ends),
                (&mut wanted.closes_at, "closes", closes),
            ] {
                if let Some(v) = value {
                    *field = Some(timestamp(flag, v)?);
                }
            }
            let e = admin
                .set_event(wanted)
                .await
                .map_err(|s| client::explain(endpoint, "SetEvent", &s))?
                .into_inner();
            let changes = stored
                .as_ref()
                .map(|before| event_changes(before, &e))
                .transpose()?;
            if output == Output::Json {
                // The event in the mapping, and what the edit changed beside it.
                let mut json = client::json_value(&e)?;
                json["changes"] = changes.as_ref().map_or(json!("created"), |c| {
                    c.iter()
                        .map(|(field, old, new)| json!({"field": field, "old": old, "new": new}))
                        .collect()
                });
                println!("{json}");
            } else {
                let mut table = event_table(&e);
                match &changes {
                    None => table.push_str("created\n"),
                    Some(c) if c.is_empty() => table.push_str("nothing changed\n"),
                    Some(c) => {
                        for (field, old, new) in c {
                            table.push_str(&format!("  {field}: {old:?} -> {new:?}\n"));
                        }
                    }
                }
                print!("{table}");
            }
        }
        EventCommand::Get { id } => {
            let e = admin
                .get_event(GetEventRequest {
                    event_id: id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "GetEvent", &s))?
                .into_inner();
            print(output, &e, || event_table(&e))?;
        }
        EventCommand::Close { id } => {
            let mut e = admin
                .get_event(GetEventRequest {
                    event_id: id.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "GetEvent", &s))?
                .into_inner();
            let now = crate::client_now();
            let ends = e.ends_at.map_or(now, |t| t.seconds);
            e.closes_at = Some(if ends > now {
                e.ends_at.unwrap_or_default()
            } else {
                Timestamp {
                    seconds: now,
                    nanos: 0,
                }
            });
            let e = admin
                .set_event(e)
                .await
                .map_err(|s| client::explain(endpoint, "SetEvent", &s))?
                .into_inner();
            print(output, &e, || event_table(&e))?;
        }
        EventCommand::List => {
            let listed = admin
                .list_events(ListEventsRequest {})
                .await
                .map_err(|s| client::explain(endpoint, "ListEvents", &s))?
                .into_inner();
            print(output, &listed, || {
                listed.events.iter().map(event_table).collect()
            })?;
        }
    }
    Ok(())
}

/// `saleboard admin rates ...`.
async fn rates(
    admin: &mut AdminServiceClient<Authed>,
    endpoint: &str,
    output: Output,
    command: &RatesCommand,
) -> anyhow::Result<()> {
    match command {
        RatesCommand::Set { file, event } => {
            let rates = read_rates(file)?;
            // Which event the rates go to, said before they are changed (the current one when
            // --event is not given).
            let target = admin
                .get_event(GetEventRequest {
                    event_id: event.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "GetEvent", &s))?
                .into_inner();
            eprintln!(
                "setting the exchange rates of event {} ({})",
                target.event_id,
                state_name(&target)
            );
            let answer = admin
                .set_exchange_rates(SetExchangeRatesRequest {
                    rates,
                    event_id: event.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "SetExchangeRates", &s))?
                .into_inner();
            print_rates(
                output,
                &answer,
                &answer.rates,
                &answer.currencies_without_rate,
            )?;
        }
        RatesCommand::List { event } => {
            let answer = admin
                .list_exchange_rates(ListExchangeRatesRequest {
                    event_id: event.clone(),
                })
                .await
                .map_err(|s| client::explain(endpoint, "ListExchangeRates", &s))?
                .into_inner();
            print_rates(
                output,
                &answer,
                &answer.rates,
                &answer.currencies_without_rate,
            )?;
        }
    }
    Ok(())
}

/// The rates in force, then the currencies sold in that have none (in the table or the answer's
/// JSON, and as a warning on stderr).
fn print_rates(
    output: Output,
    answer: &impl JsonMessage,
    rates: &[ExchangeRate],
    without: &[String],
) -> anyhow::Result<()> {
    print(output, answer, || {
        let mut table = rates_table(rates);
        for currency in without {
            table.push_str(&format!(
                "{currency:<4} (no rate: its sales are left out of the national figure)\n"
            ));
        }
        table
    })?;
    if !without.is_empty() {
        eprintln!("{}", crate::query::unconverted_warning(without));
    }
    Ok(())
}

/// The state's name in lower case (`live`, `closed`...).
fn state_name(e: &Event) -> String {
    e.state()
        .as_str_name()
        .trim_start_matches("EVENT_STATE_")
        .to_ascii_lowercase()
}

/// The fields an edit changed: (field, old, new), as the JSON mapping shows them.
fn event_changes(before: &Event, after: &Event) -> anyhow::Result<Vec<(String, String, String)>> {
    let (old, new) = (client::json_value(before)?, client::json_value(after)?);
    Ok([
        "display_name",
        "starts_at",
        "ends_at",
        "closes_at",
        "reporting_currency",
        "baseline_event_id",
        "time_zone",
        "state",
    ]
    .into_iter()
    .filter(|f| old[*f] != new[*f])
    .map(|f| {
        let show = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
        (f.to_owned(), show(&old[f]), show(&new[f]))
    })
    .collect())
}

fn event_table(e: &Event) -> String {
    let baseline = if e.baseline_event_id.is_empty() {
        String::new()
    } else {
        format!(", compared with {}", e.baseline_event_id)
    };
    let zone = if e.time_zone.is_empty() {
        "UTC"
    } else {
        &e.time_zone
    };
    format!(
        "{} ({}) {}: {} to {}, refunds until {}, reporting in {}{baseline}, shown in {zone}\n",
        e.event_id,
        e.display_name,
        state_name(e),
        text(e.starts_at.as_ref()),
        text(e.ends_at.as_ref()),
        text(e.closes_at.as_ref()),
        e.reporting_currency
    )
}

fn rates_table(rates: &[ExchangeRate]) -> String {
    rates
        .iter()
        .map(|r| format!("{:<4} {}\n", r.currency, r.rate))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_relative_to_now() {
        let now = crate::client_now();
        let at = |text: &str| timestamp("starts", text).map(|t| t.seconds - now);
        // The clock may tick between `now` above and the parse.
        let near = |text: &str, expected: i64| {
            let got = at(text).expect(text);
            assert!((0..=2).contains(&(got - expected)), "{text}: {got}");
        };
        near("now", 0);
        near("now-1h", -3_600);
        near("now+3d", 3 * 86_400);
        near("now+90m", 5_400);
        near("now-30s", -30);
        for bad in [
            "now+", "now+3", "now+3w", "now*3d", "now+-3d", "nowish", "now + 3d",
        ] {
            let message = timestamp("starts", bad).expect_err(bad).to_string();
            assert!(message.contains("now-1h"), "{bad}: {message}");
        }
        assert!(
            timestamp("ends", &format!("now+{}d", i64::MAX)).is_err(),
            "no overflow"
        );
        assert_eq!(
            timestamp("starts", "2026-12-10T00:00:00+07:00")
                .expect("RFC 3339")
                .seconds,
            1_796_835_600
        );
    }
}
