//! Before and after a run: its sites and their keys, the exchange rates it needs, the event it
//! loads (its own, on the first free day from 2000-01-01, unless `--event`), and the clean-up.

use saleboard_proto::Timestamp;
use saleboard_proto::v1::admin_service_client::AdminServiceClient;
use saleboard_proto::v1::{
    CreateApiKeyRequest, CreateSiteRequest, Event, ExchangeRate, GetEventRequest,
    ListEventsRequest, ListExchangeRatesRequest, RevokeApiKeyRequest, SetExchangeRatesRequest,
    SetSiteEnabledRequest,
};

use super::LoadgenArgs;
use super::workload::Pattern;
use crate::client;

/// A load site and the key issued for this run: (site id, key id, secret).
pub(super) type LoadSite = (String, String, String);

pub(super) async fn setup(args: &LoadgenArgs) -> anyhow::Result<(Vec<LoadSite>, RunEvent)> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let explain = |what: &str, s: tonic::Status| client::explain(&args.admin_endpoint, what, &s);
    check_inflate(args)?;
    let now = crate::client_now();
    let run_event = if args.event.is_empty() {
        own_event(&mut admin, &args.admin_endpoint, now).await?
    } else {
        let e = admin
            .get_event(GetEventRequest {
                event_id: args.event.clone(),
            })
            .await
            .map_err(|s| explain("GetEvent", s))?
            .into_inner();
        let (start, end) = (
            e.starts_at.map_or(0, |t| t.seconds),
            e.ends_at.map_or(0, |t| t.seconds),
        );
        if now >= end || now < start {
            anyhow::bail!(
                "the event {:?} is not live; loadgen pushes transactions of now into it (leave out --event to run in an event of the run's own)",
                e.event_id
            );
        }
        if now < start + 60 {
            // Its transactions are of the last minute: they must all fall inside the window.
            anyhow::bail!(
                "the event {:?} started {} s ago; loadgen pushes transactions of the last minute, \
                 so it needs the event live for 60 s: retry in {} s (at {})",
                e.event_id,
                now - start,
                start + 60 - now,
                time::OffsetDateTime::from_unix_timestamp(start + 60)
                    .ok()
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_default()
            );
        }
        if args.inflate.iter().any(|i| i.pattern == Pattern::Backdated)
            && now < start + BACKDATED_NEEDS
        {
            // A backdated sale occurred two hours before it is sent: inside the window too.
            anyhow::bail!(
                "--inflate ...=backdated sends sales of two hours ago, and the event {:?} started {} s ago: \
                 it needs the event live for {BACKDATED_NEEDS} s (or leave out --event to run in an event of the run's own)",
                e.event_id,
                now - start,
            );
        }
        RunEvent {
            event_id: e.event_id,
            clock: None,
            own: false,
        }
    };
    let have = admin
        .list_exchange_rates(ListExchangeRatesRequest {
            event_id: run_event.event_id.clone(),
        })
        .await
        .map_err(|s| explain("ListExchangeRates", s))?
        .into_inner()
        .rates;
    let missing: Vec<_> = [
        ("USD", "15850.25"),
        ("SGD", "11790"),
        ("MYR", "3560.5"),
        ("JPY", "105.75"),
    ]
    .into_iter()
    .filter(|(c, _)| !have.iter().any(|r| r.currency == *c))
    .map(|(c, r)| ExchangeRate {
        currency: c.into(),
        rate: r.into(),
    })
    .collect();
    if !missing.is_empty() {
        admin
            .set_exchange_rates(SetExchangeRatesRequest {
                rates: missing,
                event_id: run_event.event_id.clone(),
            })
            .await
            .map_err(|s| explain("SetExchangeRates", s))?;
    }
    let mut sites = Vec::new();
    for i in 1..=args.sites {
        let site = site_name(args, i);
        match admin
            .create_site(CreateSiteRequest {
                site_id: site.clone(),
                display_name: format!("Load site {i}"),
            })
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                // Disabled by the previous run's clean-up.
                admin
                    .set_site_enabled(SetSiteEnabledRequest {
                        site_id: site.clone(),
                        enabled: true,
                    })
                    .await
                    .map_err(|s| explain("SetSiteEnabled", s))?;
            }
            Err(s) => return Err(explain("CreateSite", s)),
        }
        let key = admin
            .create_api_key(CreateApiKeyRequest {
                site_id: site.clone(),
            })
            .await
            .map_err(|s| explain("CreateApiKey", s))?
            .into_inner();
        sites.push((site, key.key_id, key.secret));
    }
    Ok((sites, run_event))
}

/// How long a live event must have run for a `backdated` site's sales (two hours and up to a
/// minute before now) to fall inside its window.
const BACKDATED_NEEDS: i64 = 2 * 3_600 + 120;

/// The id of the run's site number `i` (from 1).
fn site_name(args: &LoadgenArgs, i: u32) -> String {
    format!("{}-{i:03}", args.site_prefix)
}

/// Refuses an `--inflate` that names no site of the run, or a site and pattern twice, before
/// anything is set up (a site may follow several patterns).
fn check_inflate(args: &LoadgenArgs) -> anyhow::Result<()> {
    let mut seen = std::collections::HashSet::new();
    for inflate in &args.inflate {
        if inflate.pattern == Pattern::Backdated && args.event.is_empty() {
            anyhow::bail!(
                "--inflate {}=backdated needs --event of a live event: in the run's own event every sale \
                 is received after its end, so every site's sales are late alike and the pattern shows nothing",
                inflate.site
            );
        }
        let of_run = (1..=args.sites).any(|i| site_name(args, i) == inflate.site);
        if !of_run {
            anyhow::bail!(
                "--inflate names {:?}, which is not a site of this run: its sites are {p}-001 to {p}-{:03}",
                inflate.site,
                args.sites,
                p = args.site_prefix,
            );
        }
        if !seen.insert((inflate.site.as_str(), inflate.pattern)) {
            anyhow::bail!(
                "--inflate names {:?} with the same pattern twice",
                inflate.site
            );
        }
    }
    Ok(())
}

/// The event a run loads, and the clock its transactions are stamped with.
#[derive(Debug, Clone)]
pub(super) struct RunEvent {
    pub(super) event_id: String,
    /// Seconds the generator takes as "now": inside the run's own event's window; `None` for a
    /// live event (the real clock).
    pub(super) clock: Option<i64>,
    /// Created for this run (closed after it).
    pub(super) own: bool,
}

/// Creates the run's own event: the first free day from 2000-01-01 (UTC), far from any real
/// event's time, open for refunds until the run closes it.
async fn own_event(
    admin: &mut AdminServiceClient<client::Authed>,
    endpoint: &str,
    now: i64,
) -> anyhow::Result<RunEvent> {
    const DAY: i64 = 86_400;
    const Y2K: i64 = 946_684_800;
    let events = admin
        .list_events(ListEventsRequest {})
        .await
        .map_err(|s| client::explain(endpoint, "ListEvents", &s))?
        .into_inner()
        .events;
    let window = |e: &Event| {
        (
            e.starts_at.map_or(0, |t| t.seconds),
            e.ends_at.map_or(0, |t| t.seconds),
        )
    };
    let mut start = Y2K;
    for _ in 0..=events.len() {
        let end = start + DAY;
        let Some(last_clash) = events
            .iter()
            .map(window)
            .filter(|(s, e)| *s < end && start < *e)
            .map(|(_, e)| e)
            .max()
        else {
            break;
        };
        start = last_clash;
    }
    let end = start + DAY;
    let event_id = format!("loadgen-{now}");
    admin
        .set_event(Event {
            event_id: event_id.clone(),
            display_name: "Load generator run".into(),
            starts_at: Some(Timestamp {
                seconds: end - DAY,
                nanos: 0,
            }),
            ends_at: Some(Timestamp {
                seconds: end,
                nanos: 0,
            }),
            closes_at: Some(Timestamp {
                seconds: now + DAY,
                nanos: 0,
            }),
            reporting_currency: "IDR".into(),
            ..Event::default()
        })
        .await
        .map_err(|s| client::explain(endpoint, "SetEvent", &s))?;
    Ok(RunEvent {
        event_id,
        // Sales up to a minute before it, refunds at it: all inside the window.
        clock: Some(end - 60),
        own: true,
    })
}

/// Closes the run's own event (its figures are final).
pub(super) async fn close_own_event(args: &LoadgenArgs, run: &RunEvent) -> anyhow::Result<()> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    let mut event = admin
        .get_event(GetEventRequest {
            event_id: run.event_id.clone(),
        })
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "GetEvent", &s))?
        .into_inner();
    event.closes_at = event.ends_at;
    admin
        .set_event(event)
        .await
        .map_err(|s| client::explain(&args.admin_endpoint, "SetEvent", &s))?;
    Ok(())
}

/// Revokes the keys this run issued and disables its sites: they leave the leaderboard.
pub(super) async fn clean_up(args: &LoadgenArgs, sites: &[LoadSite]) -> anyhow::Result<()> {
    let mut admin =
        AdminServiceClient::new(client::connect(&args.admin_endpoint, Some(&args.token)).await?);
    for (site, key_id, _) in sites {
        admin
            .revoke_api_key(RevokeApiKeyRequest {
                key_id: key_id.clone(),
            })
            .await
            .map_err(|s| client::explain(&args.admin_endpoint, "RevokeApiKey", &s))?;
        admin
            .set_site_enabled(SetSiteEnabledRequest {
                site_id: site.clone(),
                enabled: false,
            })
            .await
            .map_err(|s| client::explain(&args.admin_endpoint, "SetSiteEnabled", &s))?;
    }
    Ok(())
}
