//! [`AdminStore`] and [`LedgerStore`] written once for every [`Backend`]: the SQL is the same
//! on both databases ([`crate::sql`]); the append flow is one skeleton whose batch steps the
//! backend supplies.

use std::collections::BTreeSet;

use async_trait::async_trait;
use saleboard_domain::action::{ActionKind, ActionState};
use saleboard_domain::adjust;
use saleboard_domain::resolve::{Decision, LedgerState, Stored};
use saleboard_domain::{Currency, Event, Events, Rate, SiteId, TransactionId, UnixNanos};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};

use crate::backend::{Accepted, Backend};
use crate::known::{Filter, KnownKeys};
use crate::model::{db_position, to_u64};
use crate::rows::FlagRow;
use crate::rows::{
    ActionRow, ActiveKeyRow, ApiKeyRow, AuditRow, EventRow, OrganizerRow, RateRow, SiteRow,
};
use crate::{
    ActionDecision, ActionRecord, ActiveKey, AdminStore, ApiKeyRecord, Audit, AuditCall,
    AuditEntry, AuditQuery, Candidate, LedgerRow, LedgerStore, OrganizerRecord, PolicyRecord,
    Result, SiteRecord, StorageError, sql,
};
use crate::{FlagEvaluation, FlagRecord, FlagReview};

#[async_trait]
impl<B> AdminStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i16: Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn create_site(
        &self,
        site: &SiteId,
        display_name: &str,
        now: UnixNanos,
        audit: Audit<'_, SiteRecord>,
    ) -> Result<SiteRecord> {
        let mut write = self.begin_write().await?;
        let created = sqlx::query_as::<_, SiteRow>(sql::INSERT_SITE)
            .bind(site.as_str())
            .bind(display_name)
            .bind(now.0)
            .fetch_optional(&mut *write.tx)
            .await?;
        let record = created.map(SiteRow::into_record).transpose()?;
        if record.is_some() {
            sqlx::query(sql::BUMP_SITES_VERSION)
                .execute(&mut *write.tx)
                .await?;
        }
        commit_audited::<B, _>(write, record, audit, || StorageError::AlreadyExists {
            what: "site",
            id: site.to_string(),
        })
        .await
    }

    async fn list_sites(&self) -> Result<Vec<SiteRecord>> {
        sqlx::query_as::<_, SiteRow>(sql::SITES)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(SiteRow::into_record)
            .collect()
    }

    async fn set_site_enabled(
        &self,
        site: &SiteId,
        enabled: bool,
        now: UnixNanos,
        audit: Audit<'_, SiteRecord>,
    ) -> Result<SiteRecord> {
        let mut write = self.begin_write().await?;
        let mut record = sqlx::query_as::<_, SiteRow>(sql::SET_SITE_ENABLED)
            .bind(site.as_str())
            .bind(i64::from(enabled))
            .bind(now.0)
            .fetch_optional(&mut *write.tx)
            .await?;
        if record.is_some() {
            sqlx::query(sql::BUMP_SITES_VERSION)
                .execute(&mut *write.tx)
                .await?;
        } else {
            // Already so (or unknown): nothing changed, the version stays (the board does not
            // read the sites again for a call that changed nothing).
            record = sqlx::query_as::<_, SiteRow>(sql::SITE)
                .bind(site.as_str())
                .fetch_optional(&mut *write.tx)
                .await?;
        }
        let record = record.map(SiteRow::into_record).transpose()?;
        commit_audited::<B, _>(write, record, audit, || StorageError::NotFound {
            what: "site",
            id: site.to_string(),
        })
        .await
    }

    async fn create_api_key(
        &self,
        key_id: &str,
        site: &SiteId,
        secret_hash: &str,
        now: UnixNanos,
        audit: Audit<'_, ApiKeyRecord>,
    ) -> Result<ApiKeyRecord> {
        let mut write = self.begin_write().await?;
        let created = sqlx::query_as::<_, ApiKeyRow>(sql::INSERT_KEY)
            .bind(key_id)
            .bind(site.as_str())
            .bind(secret_hash)
            .bind(now.0)
            .fetch_optional(&mut *write.tx)
            .await?;
        let record = created.map(ApiKeyRow::into_record).transpose()?;
        commit_audited::<B, _>(write, record, audit, || StorageError::NotFound {
            what: "site",
            id: site.to_string(),
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        key_id: &str,
        now: UnixNanos,
        audit: Audit<'_, ApiKeyRecord>,
    ) -> Result<ApiKeyRecord> {
        let mut write = self.begin_write().await?;
        let revoked = sqlx::query_as::<_, ApiKeyRow>(sql::REVOKE_KEY)
            .bind(key_id)
            .bind(now.0)
            .fetch_optional(&mut *write.tx)
            .await?;
        let record = revoked.map(ApiKeyRow::into_record).transpose()?;
        commit_audited::<B, _>(write, record, audit, || StorageError::NotFound {
            what: "API key",
            id: key_id.to_owned(),
        })
        .await
    }

    async fn list_api_keys(&self, site: Option<&SiteId>) -> Result<Vec<ApiKeyRecord>> {
        sqlx::query_as::<_, ApiKeyRow>(sql::KEYS)
            .bind(site.map_or("", SiteId::as_str))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ApiKeyRow::into_record)
            .collect()
    }

    async fn active_keys(&self) -> Result<Vec<ActiveKey>> {
        sqlx::query_as::<_, ActiveKeyRow>(sql::ACTIVE_KEYS)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ActiveKeyRow::into_record)
            .collect()
    }

    async fn find_active_key(&self, secret_hash: &str) -> Result<Option<ActiveKey>> {
        sqlx::query_as::<_, ActiveKeyRow>(sql::ACTIVE_KEY)
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?
            .map(ActiveKeyRow::into_record)
            .transpose()
    }

    async fn set_event(&self, event: &Event, now: UnixNanos, audit: Audit<'_, ()>) -> Result<()> {
        let result = async {
            // Under the writer lock: an append either committed before (and the checks below see
            // its rows) or starts after and decides with this version.
            let mut write = self.begin_write().await?;
            sqlx::query_scalar::<_, i64>(B::LOCK_HEAD)
                .fetch_one(&mut *write.tx)
                .await?;
            let events = events_in(&mut write.tx).await?;
            if let Err(e) = check_event_change(&mut write.tx, &events, event, now).await {
                return Err(write.abandon(e).await);
            }
            sqlx::query(sql::UPSERT_EVENT)
                .bind(event.event_id.as_str())
                .bind(event.display_name.as_str())
                .bind(event.starts_at.0)
                .bind(event.ends_at.0)
                .bind(event.closes_at.0)
                .bind(event.reporting_currency.code())
                .bind(event.baseline_event_id.as_str())
                .bind(event.time_zone.as_str())
                .execute(&mut *write.tx)
                .await?;
            // The audit head after the ledger head: every write that takes both takes them in
            // this order.
            append_audit::<B>(&mut write.tx, audit.call, audit.outcome_of(&())).await?;
            write.tx.commit().await?;
            Ok(())
        }
        .await;
        self.writes().record("set event", result)
    }

    async fn get_event(&self) -> Result<Option<Event>> {
        Ok(self.events().await?.current(UnixNanos::now()).cloned())
    }

    async fn events(&self) -> Result<Events> {
        let rows = sqlx::query_as::<_, EventRow>(sql::EVENTS)
            .fetch_all(self.pool())
            .await?;
        Ok(Events::new(
            rows.into_iter()
                .map(EventRow::into_event)
                .collect::<Result<_>>()?,
        ))
    }

    async fn set_exchange_rates(
        &self,
        event_id: &str,
        rates: &[(Currency, Rate)],
        audit: Audit<'_, Vec<(Currency, Rate)>>,
    ) -> Result<Vec<(Currency, Rate)>> {
        let mut write = self.begin_write().await?;
        for (currency, rate) in rates {
            sqlx::query(sql::UPSERT_RATE)
                .bind(event_id)
                .bind(currency.code())
                .bind(rate.to_string())
                .execute(&mut *write.tx)
                .await?;
        }
        let all = sqlx::query_as::<_, RateRow>(sql::RATES)
            .bind(event_id)
            .fetch_all(&mut *write.tx)
            .await?
            .into_iter()
            .map(RateRow::into_pair)
            .collect::<Result<Vec<_>>>()?;
        append_audit::<B>(&mut write.tx, audit.call, audit.outcome_of(&all)).await?;
        write.tx.commit().await?;
        Ok(all)
    }

    async fn list_exchange_rates(&self, event_id: &str) -> Result<Vec<(Currency, Rate)>> {
        sqlx::query_as::<_, RateRow>(sql::RATES)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(RateRow::into_pair)
            .collect()
    }

    async fn create_organizer(
        &self,
        name: &str,
        secret_hash: &str,
        now: UnixNanos,
        audit: Audit<'_, OrganizerRecord>,
    ) -> Result<OrganizerRecord> {
        let mut write = self.begin_write().await?;
        let created = sqlx::query_as::<_, OrganizerRow>(sql::INSERT_ORGANIZER)
            .bind(name)
            .bind(secret_hash)
            .bind(now.0)
            .bind(audit.call.organizer.as_str())
            .fetch_optional(&mut *write.tx)
            .await?;
        let record = created.map(OrganizerRow::into_record);
        commit_audited::<B, _>(write, record, audit, || StorageError::AlreadyExists {
            what: "organizer",
            id: name.to_owned(),
        })
        .await
    }

    async fn revoke_organizer(
        &self,
        name: &str,
        now: UnixNanos,
        audit: Audit<'_, OrganizerRecord>,
    ) -> Result<OrganizerRecord> {
        let mut write = self.begin_write().await?;
        let revoked = sqlx::query_as::<_, OrganizerRow>(sql::REVOKE_ORGANIZER)
            .bind(name)
            .bind(now.0)
            .fetch_optional(&mut *write.tx)
            .await?;
        let record = revoked.map(OrganizerRow::into_record);
        commit_audited::<B, _>(write, record, audit, || StorageError::NotFound {
            what: "organizer",
            id: name.to_owned(),
        })
        .await
    }

    async fn list_organizers(&self) -> Result<Vec<OrganizerRecord>> {
        Ok(sqlx::query_as::<_, OrganizerRow>(sql::ORGANIZERS)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(OrganizerRow::into_record)
            .collect())
    }

    async fn find_active_organizer(&self, secret_hash: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar::<_, String>(sql::ACTIVE_ORGANIZER)
            .bind(secret_hash)
            .fetch_optional(self.pool())
            .await?)
    }

    async fn record_refusal(&self, call: &AuditCall, outcome: &str) -> Result<AuditEntry> {
        let mut write = self.begin_write().await?;
        let entry = append_audit::<B>(&mut write.tx, call, outcome.to_owned()).await?;
        write.tx.commit().await?;
        Ok(entry)
    }

    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        sqlx::query_as::<_, AuditRow>(sql::AUDIT_LOG)
            .bind(db_position(query.after)?)
            .bind(query.organizer.as_deref().unwrap_or(""))
            .bind(query.since.map_or(i64::MIN, |t| t.0))
            .bind(i64::from(query.limit))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(AuditRow::into_entry)
            .collect()
    }

    async fn audit_head(&self) -> Result<(u64, String)> {
        let (position, sha256): (i64, String) = sqlx::query_as(sql::AUDIT_HEAD)
            .fetch_one(self.pool())
            .await?;
        Ok((to_u64("audit_head", position)?, sha256))
    }

    async fn propose_action(
        &self,
        action: &ActionRecord,
        audit: Audit<'_, ActionRecord>,
    ) -> Result<ActionRecord> {
        let mut write = self.begin_write().await?;
        let site = sqlx::query_scalar::<_, String>(B::LOCK_SITE)
            .bind(action.site_id.as_str())
            .fetch_optional(&mut *write.tx)
            .await?;
        if site.is_none() {
            let missing = StorageError::NotFound {
                what: "site",
                id: action.site_id.to_string(),
            };
            return Err(write.abandon(missing).await);
        }
        let events: i64 = sqlx::query_scalar(sql::EVENT_COUNT)
            .bind(action.event_id.as_str())
            .fetch_one(&mut *write.tx)
            .await?;
        if events == 0 {
            let missing = StorageError::NotFound {
                what: "event",
                id: action.event_id.clone(),
            };
            return Err(write.abandon(missing).await);
        }
        let held: i64 = sqlx::query_scalar(sql::HELD_COUNT)
            .bind(action.event_id.as_str())
            .bind(action.site_id.as_str())
            .fetch_one(&mut *write.tx)
            .await?;
        let pending = sqlx::query_scalar::<_, String>(sql::PENDING_ACTION)
            .bind(action.event_id.as_str())
            .bind(action.site_id.as_str())
            .fetch_optional(&mut *write.tx)
            .await?;
        if let Err(refusal) = saleboard_domain::action::check_proposal(
            action.kind,
            action.site_id.as_str(),
            &action.event_id,
            held > 0,
            pending.as_deref(),
        ) {
            return Err(write.abandon(refusal.into()).await);
        }
        if action.kind == ActionKind::Adjust {
            // What it names must be voidable now (it is planned again when approved).
            let events = events_in(&mut write.tx).await?;
            if let Err(refusal) =
                plan_adjustment(&mut write.tx, &events, action, action.proposed_at).await?
            {
                return Err(write.abandon(refusal.into()).await);
            }
        }
        let stored = sqlx::query_as::<_, ActionRow>(sql::INSERT_ACTION)
            .bind(action.action_id.as_str())
            .bind(action.kind.as_str())
            .bind(action.event_id.as_str())
            .bind(action.site_id.as_str())
            .bind(action.reason.as_str())
            .bind(action.proposed_by.as_str())
            .bind(action.proposed_at.0)
            .bind(action.adjustment.transaction_ids.join(","))
            .bind(action.adjustment.flag_id.as_str())
            .fetch_one(&mut *write.tx)
            .await?
            .into_record()?;
        commit_audited::<B, _>(write, Some(stored), audit, || {
            unreachable!("a stored action is committed")
        })
        .await
    }

    async fn decide_action(
        &self,
        decision: &ActionDecision<'_>,
        audit: Audit<'_, ActionRecord>,
    ) -> Result<ActionRecord> {
        let mut write = self.begin_write().await?;
        let found = sqlx::query_as::<_, ActionRow>(sql::ACTION)
            .bind(decision.action_id)
            .fetch_optional(&mut *write.tx)
            .await?
            .map(ActionRow::into_record)
            .transpose()?;
        let Some(action) = found else {
            let missing = StorageError::NotFound {
                what: "action",
                id: decision.action_id.to_owned(),
            };
            return Err(write.abandon(missing).await);
        };
        // The site's row lock first (as a proposal takes it), then the action as it is under
        // it: a decision made meanwhile is seen.
        sqlx::query_scalar::<_, String>(B::LOCK_SITE)
            .bind(action.site_id.as_str())
            .fetch_optional(&mut *write.tx)
            .await?;
        let action = sqlx::query_as::<_, ActionRow>(sql::ACTION)
            .bind(decision.action_id)
            .fetch_one(&mut *write.tx)
            .await?
            .into_record()?;
        if let Err(refusal) = saleboard_domain::action::check_decision(
            decision.action_id,
            action.state,
            &action.proposed_by,
            decision.organizer,
        ) {
            return Err(write.abandon(refusal.into()).await);
        }
        let state = if decision.approve {
            ActionState::Applied
        } else {
            ActionState::Rejected
        };
        let decided = sqlx::query_as::<_, ActionRow>(sql::DECIDE_ACTION)
            .bind(decision.action_id)
            .bind(state.as_str())
            .bind(decision.organizer)
            .bind(decision.at.0)
            .bind(decision.note)
            .fetch_optional(&mut *write.tx)
            .await?
            .map(ActionRow::into_record)
            .transpose()?;
        let Some(decided) = decided else {
            // Pending as read under the site's lock, so never reached; refused all the same.
            let refusal = saleboard_domain::action::ActionRefusal::Decided {
                action_id: decision.action_id.to_owned(),
                state: action.state,
            };
            return Err(write.abandon(refusal.into()).await);
        };
        let mut appended = None;
        let decided = match (decision.approve, decided.kind.holds()) {
            (false, _) => decided,
            (true, Some(holds)) => {
                let event = decided.event_id.as_str();
                let site = decided.site_id.as_str();
                let held: i64 = sqlx::query_scalar(sql::HELD_COUNT)
                    .bind(event)
                    .bind(site)
                    .fetch_one(&mut *write.tx)
                    .await?;
                // One pending action per site and the standing checked when it was proposed:
                // the site stands as it did then. Checked again all the same (never applied
                // twice).
                if (held > 0) == holds {
                    let refusal = saleboard_domain::action::ActionRefusal::AlreadySo {
                        site: site.to_owned(),
                        event: event.to_owned(),
                        held: held > 0,
                    };
                    return Err(write.abandon(refusal.into()).await);
                }
                let change = if holds {
                    sqlx::query(sql::INSERT_HOLD)
                        .bind(event)
                        .bind(site)
                        .bind(decided.action_id.as_str())
                        .bind(decision.at.0)
                } else {
                    sqlx::query(sql::DELETE_HOLD).bind(event).bind(site)
                };
                change.execute(&mut *write.tx).await?;
                sqlx::query(sql::BUMP_SITES_VERSION)
                    .execute(&mut *write.tx)
                    .await?;
                decided
            }
            (true, None) => match append_voids(self, &mut write, &decided, decision.at).await? {
                Ok((decided, head, voids)) => {
                    appended = Some((head, voids));
                    decided
                }
                Err(refusal) => return Err(write.abandon(refusal.into()).await),
            },
        };
        if let Some((head, voids)) = &appended {
            // The voids' keys join this store's filter once they are committed, as an
            // append's do; a commit that fails leaves the filter behind the head (it rules
            // nothing out there).
            let stored = commit_audited::<B, _>(write, Some(decided), audit, || {
                unreachable!("a decided action is committed")
            })
            .await?;
            if let Some(last) = voids.last() {
                self.known().advanced(
                    *head,
                    last.position,
                    voids.iter().map(|v| (v.site.as_str(), v.tx.id.as_str())),
                );
            }
            return Ok(stored);
        }
        commit_audited::<B, _>(write, Some(decided), audit, || {
            unreachable!("a decided action is committed")
        })
        .await
    }

    async fn list_actions(
        &self,
        event_id: Option<&str>,
        state: Option<ActionState>,
    ) -> Result<Vec<ActionRecord>> {
        sqlx::query_as::<_, ActionRow>(sql::ACTIONS)
            .bind(event_id.unwrap_or(""))
            .bind(state.map_or("", ActionState::as_str))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(ActionRow::into_record)
            .collect()
    }

    async fn set_integrity_policy(
        &self,
        policy: &PolicyRecord,
        audit: Audit<'_, PolicyRecord>,
    ) -> Result<PolicyRecord> {
        let mut write = self.begin_write().await?;
        let events: i64 = sqlx::query_scalar(sql::EVENT_COUNT)
            .bind(policy.event_id.as_str())
            .fetch_one(&mut *write.tx)
            .await?;
        let stored = if events == 0 {
            None
        } else {
            sqlx::query(sql::UPSERT_POLICY)
                .bind(policy.event_id.as_str())
                .bind(policy.overrides_json.as_str())
                .bind(policy.updated_at.0)
                .bind(policy.updated_by.as_str())
                .execute(&mut *write.tx)
                .await?;
            Some(policy.clone())
        };
        commit_audited::<B, _>(write, stored, audit, || StorageError::NotFound {
            what: "event",
            id: policy.event_id.clone(),
        })
        .await
    }

    async fn integrity_policy(&self, event_id: &str) -> Result<Option<PolicyRecord>> {
        let row: Option<(String, String, i64, String)> = sqlx::query_as(sql::POLICY)
            .bind(event_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(
            |(event_id, overrides_json, updated_at_ns, updated_by)| PolicyRecord {
                event_id,
                overrides_json,
                updated_at: UnixNanos(updated_at_ns),
                updated_by,
            },
        ))
    }

    async fn record_flags(&self, evaluation: &FlagEvaluation<'_>) -> Result<()> {
        let mut write = self.begin_write().await?;
        // An evaluation of older figures than the stored one (another leaderboard process
        // behind this one) changes nothing: the history never goes back.
        let stored: Option<i64> = sqlx::query_scalar(sql::EVALUATED_AT)
            .bind(evaluation.event_id)
            .fetch_optional(&mut *write.tx)
            .await?;
        if stored.is_some_and(|w| w > db_position(evaluation.watermark).unwrap_or(i64::MAX)) {
            drop(write.tx.rollback().await);
            return Ok(());
        }
        for f in evaluation.raised {
            sqlx::query(sql::INSERT_FLAG)
                .bind(f.flag_id.as_str())
                .bind(f.event_id.as_str())
                .bind(f.site_id.as_str())
                .bind(f.rule.name())
                .bind(i64::from(f.rule_version))
                .bind(f.severity.as_str())
                .bind(f.state.as_str())
                .bind(f.statistic.as_str())
                .bind(f.threshold.as_str())
                .bind(f.national.as_str())
                .bind(f.inputs_json.as_str())
                .bind(db_position(f.watermark)?)
                .bind(f.raised_at.0)
                .bind(i64::from_ne_bytes(f.sample_seed.to_ne_bytes()))
                .execute(&mut *write.tx)
                .await?;
        }
        let watermark = db_position(evaluation.watermark)?;
        for id in evaluation.cleared {
            sqlx::query(sql::CLEAR_FLAG)
                .bind(id.as_str())
                .bind(watermark)
                .execute(&mut *write.tx)
                .await?;
        }
        sqlx::query(sql::UPSERT_EVALUATION)
            .bind(evaluation.event_id)
            .bind(watermark)
            .bind(evaluation.at.0)
            .bind(i64::from(evaluation.undecided_sites))
            .execute(&mut *write.tx)
            .await?;
        write.tx.commit().await?;
        Ok(())
    }

    async fn holding_flags(&self, event_id: &str) -> Result<Vec<FlagRecord>> {
        sqlx::query_as::<_, FlagRow>(sql::HOLDING_FLAGS)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(FlagRow::into_record)
            .collect()
    }

    async fn list_flags(
        &self,
        event_id: &str,
        site: Option<&SiteId>,
        state: Option<saleboard_domain::integrity::FlagState>,
    ) -> Result<(Vec<FlagRecord>, u32)> {
        let flags = sqlx::query_as::<_, FlagRow>(sql::FLAGS)
            .bind(event_id)
            .bind(site.map_or("", SiteId::as_str))
            .bind(state.map_or("", saleboard_domain::integrity::FlagState::as_str))
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(FlagRow::into_record)
            .collect::<Result<Vec<_>>>()?;
        let undecided: Option<i64> = sqlx::query_scalar(sql::UNDECIDED)
            .bind(event_id)
            .fetch_optional(self.pool())
            .await?;
        Ok((
            flags,
            u32::try_from(undecided.unwrap_or(0)).unwrap_or(u32::MAX),
        ))
    }

    async fn flag(&self, flag_id: &str) -> Result<Option<FlagRecord>> {
        sqlx::query_as::<_, FlagRow>(sql::FLAG)
            .bind(flag_id)
            .fetch_optional(self.pool())
            .await?
            .map(FlagRow::into_record)
            .transpose()
    }

    async fn review_flag(
        &self,
        review: &FlagReview<'_>,
        audit: Audit<'_, FlagRecord>,
    ) -> Result<FlagRecord> {
        let mut write = self.begin_write().await?;
        let reviewed = sqlx::query_as::<_, FlagRow>(sql::REVIEW_FLAG)
            .bind(review.flag_id)
            .bind(review.state.as_str())
            .bind(review.note)
            .bind(review.organizer)
            .bind(review.at.0)
            .fetch_optional(&mut *write.tx)
            .await?
            .map(FlagRow::into_record)
            .transpose()?;
        if reviewed.is_some() {
            // The board reads the sites under review with the sites.
            sqlx::query(sql::BUMP_SITES_VERSION)
                .execute(&mut *write.tx)
                .await?;
        }
        commit_audited::<B, _>(write, reviewed, audit, || StorageError::NotFound {
            what: "flag",
            id: review.flag_id.to_owned(),
        })
        .await
    }

    async fn record_end_ranking(
        &self,
        event_id: &str,
        sites: &[SiteId],
        watermark: u64,
    ) -> Result<()> {
        let mut write = self.begin_write().await?;
        let watermark = db_position(watermark)?;
        let now = UnixNanos::now().0;
        let taken: Option<i64> = sqlx::query_scalar(sql::INSERT_END_HEADER)
            .bind(event_id)
            .bind(watermark)
            .bind(now)
            .fetch_optional(&mut *write.tx)
            .await?;
        if taken.is_some() {
            for (i, site) in sites.iter().enumerate() {
                sqlx::query(sql::INSERT_END_PLACE)
                    .bind(event_id)
                    .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
                    .bind(site.as_str())
                    .bind(watermark)
                    .bind(now)
                    .execute(&mut *write.tx)
                    .await?;
            }
        }
        write.tx.commit().await?;
        Ok(())
    }

    async fn end_ranking(&self, event_id: &str) -> Result<Option<Vec<SiteId>>> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(sql::END_RANKING)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let places: Vec<String> = rows.into_iter().filter_map(|(_, site)| site).collect();
        crate::model::site_ids("integrity_end_rankings", &places).map(Some)
    }

    async fn sale_ids(&self, event_id: &str, site: &SiteId, upto: u64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(sql::SALE_IDS)
            .bind(site.as_str())
            .bind(event_id)
            .bind(db_position(upto)?)
            .fetch_all(self.pool())
            .await?)
    }

    async fn held_sites(&self, event_id: &str) -> Result<Vec<SiteId>> {
        let held: Vec<String> = sqlx::query_scalar(sql::HELD_SITES)
            .bind(event_id)
            .fetch_all(self.pool())
            .await?;
        crate::model::site_ids("site_holds", &held)
    }
}

/// Ends an audited write whose statement produced `record`: its audit entry in the same
/// transaction, then the commit. `None` (nothing to change: a taken or unknown id) rolls back
/// with `refusal`, and no entry (the caller records the refusal on its own).
async fn commit_audited<B, T>(
    mut write: crate::backend::Writing<B::Db>,
    record: Option<T>,
    audit: Audit<'_, T>,
    refusal: impl FnOnce() -> StorageError + Send,
) -> Result<T>
where
    B: Backend,
    T: Send,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    let Some(record) = record else {
        return Err(write.abandon(refusal()).await);
    };
    append_audit::<B>(&mut write.tx, audit.call, audit.outcome_of(&record)).await?;
    write.tx.commit().await?;
    Ok(record)
}

/// Appends the entry of `call` with `outcome` to the audit log inside `tx`: locks the log's
/// head (last of the write's locks), chains the entry to it, inserts it and moves the head.
/// It commits with the change it records, or not at all.
async fn append_audit<B>(
    tx: &mut crate::tx::Tx<B::Db>,
    call: &AuditCall,
    outcome: String,
) -> Result<AuditEntry>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    let (head, prev): (i64, String) = sqlx::query_as(B::LOCK_AUDIT).fetch_one(&mut **tx).await?;
    let position = to_u64("audit_head", head)?.saturating_add(1);
    let entry = AuditEntry {
        position,
        at: call.at,
        organizer: call.organizer.clone(),
        rpc: call.rpc.clone(),
        request_json: call.request_json.clone(),
        outcome,
        prev_sha256: prev,
        sha256: String::new(),
    }
    .seal();
    let at = db_position(position)?;
    sqlx::query(sql::INSERT_AUDIT)
        .bind(at)
        .bind(entry.at.0)
        .bind(entry.organizer.as_str())
        .bind(entry.rpc.as_str())
        .bind(entry.request_json.as_str())
        .bind(entry.outcome.as_str())
        .bind(entry.prev_sha256.as_str())
        .bind(entry.sha256.as_str())
        .execute(&mut **tx)
        .await?;
    sqlx::query(sql::MOVE_AUDIT_HEAD)
        .bind(at)
        .bind(entry.sha256.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(entry)
}

#[async_trait]
impl<B> LedgerStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i16: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    async fn append(&self, batch: &[Candidate]) -> Result<Vec<Decision>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let result = async {
            // From here until commit no other writer, in any process, can read or move the head,
            // so the state loaded below is complete.
            let mut write = self.begin_write().await?;
            let head: i64 = sqlx::query_scalar(B::LOCK_HEAD)
                .fetch_one(&mut *write.tx)
                .await?;
            let head = to_u64("ledger_head", head)?;
            catch_up_known(self, &mut write.tx, head).await?;
            let known = self.known();
            // The events as committed: SetEvent takes the same lock.
            let events = events_in(&mut write.tx).await?;
            let mut state = LedgerState::new(head, events, UnixNanos::now());
            for row in B::stored_rows(&mut write.tx, &keys_to_load(batch, known, head)).await? {
                let (site, tx, position, event_id) = row.into_domain()?;
                state.insert_stored(
                    site,
                    Stored {
                        tx,
                        position,
                        event_id,
                    },
                );
            }
            let targets = refund_targets(batch);
            if !targets.is_empty() {
                for row in B::refunded_sums(&mut write.tx, &targets).await? {
                    let (site, sale, refunded) = row.into_parts()?;
                    state.insert_refunded(site, sale, refunded);
                }
            }
            let decisions = decide(&mut state, batch);
            let accepted: Vec<Accepted<'_>> = batch
                .iter()
                .zip(&decisions)
                .filter_map(|(candidate, d)| match d {
                    Decision::Accepted { position, event_id } => Some(Accepted {
                        candidate,
                        position: *position,
                        event_id,
                        // Only a refund's can differ from the candidate's (its sale's).
                        segments: match candidate.tx.refund_of() {
                            Some(_) => state
                                .stored(&candidate.site, &candidate.tx.id)
                                .map_or(&candidate.tx.segments, |s| &s.tx.segments),
                            None => &candidate.tx.segments,
                        },
                    }),
                    _ => None,
                })
                .collect();
            let moved_to = accepted.last().map(|a| a.position);
            if let Some(last) = moved_to {
                if let Err(e) = B::insert_accepted(&mut write.tx, &accepted).await {
                    // The database refusing the rows (the unique index refusing an id the filter
                    // said was new would be a bug in the filter): look every id up until it is
                    // loaded again. A lost connection says nothing about the filter.
                    if matches!(e, StorageError::Database(_)) {
                        known.reset();
                    }
                    return Err(e);
                }
                sqlx::query(sql::MOVE_HEAD)
                    .bind(db_position(last)?)
                    .execute(&mut *write.tx)
                    .await?;
            }
            // A group commit's insert is one message of up to a few MB, and each pooled connection
            // would otherwise keep a buffer of its largest: give that memory back now (issue 15:
            // 8 connections held about 10 MB of ingest's peak).
            sqlx::Connection::shrink_buffers(&mut *write.tx);
            write.tx.commit().await?;
            if let Some(last) = moved_to {
                known.advanced(
                    head,
                    last,
                    accepted
                        .iter()
                        .map(|a| (a.candidate.site.as_str(), a.candidate.tx.id.as_str())),
                );
            }
            Ok(decisions)
        }
        .await;
        self.writes().record("append", result)
    }

    async fn probe_write(&self) -> Result<()> {
        let result = async {
            let mut write = self.begin_write().await?;
            let head: i64 = sqlx::query_scalar(B::LOCK_HEAD)
                .fetch_one(&mut *write.tx)
                .await?;
            // The head set to itself: a row written and committed, nothing changed.
            sqlx::query(sql::MOVE_HEAD)
                .bind(head)
                .execute(&mut *write.tx)
                .await?;
            write.tx.commit().await
        }
        .await;
        self.writes().record("probe", result)
    }

    async fn ledger_head(&self) -> Result<u64> {
        let head: i64 = sqlx::query_scalar(sql::HEAD).fetch_one(self.pool()).await?;
        to_u64("ledger_head", head)
    }

    async fn read_ledger(&self, after: u64, limit: u32) -> Result<Vec<LedgerRow>> {
        self.ledger_after(after, limit).await
    }
}

/// (site_id, transaction_id) pairs whose stored rows the batch needs: its own ids that may be
/// stored (for duplicates and conflicts; the filter rules out the others), the sales its
/// refunds name, and those sales' voids that may be stored.
fn keys_to_load(batch: &[Candidate], known: &KnownKeys, head: u64) -> Vec<(String, String)> {
    let mut keys = BTreeSet::new();
    for c in batch {
        if known.may_contain(c.site.as_str(), c.tx.id.as_str(), head) {
            keys.insert((c.site.as_str(), c.tx.id.as_str().to_owned()));
        }
        if let Some(sale) = c.tx.refund_of() {
            keys.insert((c.site.as_str(), sale.as_str().to_owned()));
            // The sale's void, if the organizers voided it (the filter rules most out).
            let void = TransactionId::void_of(sale);
            if known.may_contain(c.site.as_str(), void.as_str(), head) {
                keys.insert((c.site.as_str(), void.as_str().to_owned()));
            }
        }
    }
    keys.into_iter().map(|(s, t)| (s.to_owned(), t)).collect()
}

/// Keys read per query while loading the filter.
const LOAD_CHUNK: u64 = 200_000;

/// Loads every key of the ledger up to its head into a new filter, then hands it to `known`
/// (appends catch up from that head under the writer lock). Runs beside the appends, which
/// look every id up until it is done; on failure the next append starts it again.
async fn load_known_keys<DB>(pool: sqlx::Pool<DB>, known: std::sync::Arc<KnownKeys>)
where
    DB: Database,
    for<'c> &'c sqlx::Pool<DB>: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<<DB as Database>::Row>,
{
    use futures::TryStreamExt as _;
    use sqlx::Row as _;
    let load = async {
        // Every row at or below a committed head is committed.
        let head = to_u64(
            "ledger_head",
            sqlx::query_scalar(sql::HEAD).fetch_one(&pool).await?,
        )?;
        // Room for an eighth more before the filter grows a layer.
        let mut filter = Filter::with_capacity(head.saturating_add(head / 8));
        let mut from = 0;
        while from < head {
            let to = head.min(from.saturating_add(LOAD_CHUNK));
            // Streamed: each key is hashed from the row's bytes, none is kept.
            let mut rows = sqlx::query(sql::KEYS_BETWEEN)
                .bind(db_position(from)?)
                .bind(db_position(to)?)
                .fetch(&pool);
            while let Some(row) = rows.try_next().await? {
                filter.insert(row.try_get::<&str, _>(0)?, row.try_get::<&str, _>(1)?);
            }
            from = to;
        }
        Ok::<_, StorageError>((filter, head))
    };
    match load.await {
        Ok((filter, head)) => {
            tracing::info!(
                keys_through = head,
                "ledger keys loaded: appends look up only ids that may be stored"
            );
            known.loaded(filter, head);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load the ledger's keys; appends look every id up");
            known.reset();
        }
    }
}

/// (site_id, sale id) pairs whose refunded sums the batch needs.
fn refund_targets(batch: &[Candidate]) -> Vec<(String, String)> {
    let keys: BTreeSet<_> = batch
        .iter()
        .filter_map(|c| c.tx.refund_of().map(|s| (c.site.as_str(), s.as_str())))
        .collect();
    keys.into_iter()
        .map(|(s, t)| (s.to_owned(), t.to_owned()))
        .collect()
}

/// Decides the batch in order, one decision per candidate.
fn decide(state: &mut LedgerState, batch: &[Candidate]) -> Vec<Decision> {
    batch
        .iter()
        .map(|c| state.resolve(&c.site, &c.tx))
        .collect()
}

/// Brings this store's filter of the ledger's keys up to the locked `head` (other writers'
/// rows join it), or starts loading it; under the writer lock.
async fn catch_up_known<B>(store: &B, tx: &mut crate::tx::Tx<B::Db>, head: u64) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> &'q str: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Decode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    let known = store.known();
    match known.through() {
        // Other writers appended since this store last looked: their keys join the filter.
        Some(through) if through < head => {
            let keys: Vec<(String, String)> = sqlx::query_as(sql::KEYS_BETWEEN)
                .bind(db_position(through)?)
                .bind(db_position(head)?)
                .fetch_all(&mut **tx)
                .await?;
            known.advanced(
                through,
                head,
                keys.iter().map(|(s, t)| (s.as_str(), t.as_str())),
            );
        }
        Some(_) => {}
        None => {
            if known.start_loading() {
                tokio::spawn(load_known_keys(store.pool().clone(), known.clone()));
            }
        }
    }
    Ok(())
}

/// Whether `store` holds a filter of the ledger's keys.
fn known_loaded<B: Backend>(store: &B) -> bool {
    store.known().through().is_some()
}

/// The rows an adjustment voids ([`saleboard_domain::adjust::plan`]), planned against the
/// ledger as `tx` sees it at `at`: each named row, its void if it has one, and a named sale's
/// refunds with theirs. Every read is a probe of the ledger's unique or refunds index, at most
/// three per named id and one per refund.
async fn plan_adjustment<DB>(
    tx: &mut crate::tx::Tx<DB>,
    events: &Events,
    action: &ActionRecord,
    at: UnixNanos,
) -> Result<std::result::Result<Vec<adjust::Row>, adjust::AdjustRefusal>>
where
    DB: Database,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    for<'q> i16: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<<DB as Database>::Row>,
{
    if let Some(event) = events.get(&action.event_id)
        && event.state(at) == saleboard_domain::EventState::Closed
    {
        return Ok(Err(adjust::AdjustRefusal::Closed {
            event: event.event_id.clone(),
            closed_at: event.closes_at.to_rfc3339(),
        }));
    }
    let named = adjust::parse_ids(&action.adjustment.transaction_ids)
        .map_err(|e| StorageError::corrupt("admin_actions", format!("transaction_ids: {e}")))?;
    let site = action.site_id.as_str();
    let mut rows: std::collections::HashMap<TransactionId, adjust::Row> =
        std::collections::HashMap::with_capacity(named.len());
    let mut refunds: std::collections::HashMap<TransactionId, Vec<TransactionId>> =
        std::collections::HashMap::new();
    let mut found_refunds = Vec::new();
    for id in &named {
        let Some(row) = sqlx::query_as::<_, crate::rows::FullLedgerRow>(sql::LEDGER_ROW)
            .bind(site)
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?
        else {
            continue;
        };
        let row = row.into_row()?;
        let mut voided = false;
        for naming in sqlx::query_as::<_, crate::rows::FullLedgerRow>(sql::LEDGER_NAMING)
            .bind(site)
            .bind(id.as_str())
            .fetch_all(&mut **tx)
            .await?
        {
            let naming = naming.into_row()?;
            if naming.tx.kind().is_void() {
                voided = true;
            } else {
                refunds
                    .entry(id.clone())
                    .or_default()
                    .push(naming.tx.id.clone());
                found_refunds.push(naming);
            }
        }
        rows.insert(
            id.clone(),
            adjust::Row {
                tx: row.tx,
                event_id: row.event_id,
                received_at: row.received_at,
                voided,
            },
        );
    }
    for refund in found_refunds {
        let void = TransactionId::void_of(&refund.tx.id);
        let voided = sqlx::query_as::<_, crate::rows::FullLedgerRow>(sql::LEDGER_ROW)
            .bind(site)
            .bind(void.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        rows.entry(refund.tx.id.clone()).or_insert(adjust::Row {
            tx: refund.tx,
            event_id: refund.event_id,
            received_at: refund.received_at,
            voided,
        });
    }
    Ok(
        adjust::plan(site, &action.event_id, &named, &rows, &refunds)
            .map(|planned| planned.into_iter().cloned().collect()),
    )
}

/// Appends an approved adjustment's voids under the writer lock, at the positions after the
/// head, and records them on the action: the action as it then is, the head they follow, and
/// the rows appended; or why it cannot be applied now.
async fn append_voids<B>(
    store: &B,
    write: &mut crate::backend::Writing<B::Db>,
    action: &ActionRecord,
    at: UnixNanos,
) -> Result<std::result::Result<(ActionRecord, u64, Vec<LedgerRow>), adjust::AdjustRefusal>>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> i16: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> String: Encode<'q, B::Db> + Decode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Decode<'q, B::Db> + Type<B::Db>,
    for<'a> &'a str: ColumnIndex<<B::Db as Database>::Row>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    // The ledger's writer lock, as an append takes it: positions follow the head, in order.
    let head: i64 = sqlx::query_scalar(B::LOCK_HEAD)
        .fetch_one(&mut *write.tx)
        .await?;
    let head = to_u64("ledger_head", head)?;
    // A store with a filter of the ledger's keys (one appending too: the in-process suite)
    // keeps it complete; an approval never starts loading one (the leaderboard's store would
    // scan the ledger's keys for nothing).
    if known_loaded(store) {
        catch_up_known(store, &mut write.tx, head).await?;
    }
    let events = events_in(&mut write.tx).await?;
    let planned = match plan_adjustment(&mut write.tx, &events, action, at).await? {
        Ok(planned) => planned,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let mut voids = Vec::with_capacity(planned.len());
    for (row, position) in planned.into_iter().zip(head + 1..) {
        let tx = row.tx.voided().ok_or_else(|| {
            StorageError::corrupt(
                "ledger",
                format!("{:?} is a void, named as a target", row.tx.id),
            )
        })?;
        voids.push(LedgerRow {
            position,
            event_id: row.event_id,
            site: action.site_id.clone(),
            // A void's key is the action that appended it.
            key_id: action.action_id.clone(),
            // Its target's receipt: it is folded as late as its target was.
            received_at: row.received_at,
            tx,
        });
    }
    let candidates: Vec<Candidate> = voids
        .iter()
        .map(|v| Candidate {
            site: v.site.clone(),
            key_id: v.key_id.clone(),
            received_at: v.received_at,
            tx: v.tx.clone(),
        })
        .collect();
    let accepted: Vec<Accepted<'_>> = candidates
        .iter()
        .zip(&voids)
        .map(|(candidate, v)| Accepted {
            candidate,
            position: v.position,
            event_id: &v.event_id,
            segments: &candidate.tx.segments,
        })
        .collect();
    let last = voids.last().map_or(head, |v| v.position);
    if !accepted.is_empty() {
        B::insert_accepted(&mut write.tx, &accepted).await?;
        sqlx::query(sql::MOVE_HEAD)
            .bind(db_position(last)?)
            .execute(&mut *write.tx)
            .await?;
    }
    let record = sqlx::query_as::<_, ActionRow>(sql::ADJUSTED)
        .bind(action.action_id.as_str())
        .bind(i64::try_from(voids.len()).unwrap_or(i64::MAX))
        .bind(db_position(last)?)
        .fetch_one(&mut *write.tx)
        .await?
        .into_record()?;
    Ok(Ok((record, head, voids)))
}

/// Every event, read inside `tx`.
pub(crate) async fn events_in<DB>(tx: &mut crate::tx::Tx<DB>) -> Result<Events>
where
    DB: Database,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'q> i64: Decode<'q, DB> + Type<DB>,
    for<'q> String: Decode<'q, DB> + Type<DB>,
    for<'a> &'a str: ColumnIndex<<DB as Database>::Row>,
{
    let rows = sqlx::query_as::<_, EventRow>(sql::EVENTS)
        .fetch_all(&mut **tx)
        .await?;
    Ok(Events::new(
        rows.into_iter()
            .map(EventRow::into_event)
            .collect::<Result<_>>()?,
    ))
}

/// The rules of changing events (decided by the domain), with the count of sales outside a
/// narrowed window that they may need from the ledger.
async fn check_event_change<DB>(
    tx: &mut crate::tx::Tx<DB>,
    events: &Events,
    event: &Event,
    now: UnixNanos,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut <DB as Database>::Connection: Executor<'c, Database = DB>,
    <DB as Database>::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<<DB as Database>::Row>,
{
    use saleboard_domain::event::{ChangeCheck, check_change, narrowing};
    if check_change(events, event, now)? == ChangeCheck::SalesOutside {
        let outside: i64 = sqlx::query_scalar(sql::SALES_OUTSIDE)
            .bind(event.event_id.as_str())
            .bind(event.starts_at.0)
            .bind(event.ends_at.0)
            .fetch_one(&mut **tx)
            .await?;
        narrowing(event, to_u64("ledger", outside)?)?;
    }
    Ok(())
}

/// Refuses a database migrated past the last migration of `migrator` (this build's), before
/// anything is applied to it ([`StorageError::NewerSchema`], naming both versions): an older
/// release must not run on a newer schema. A database without migrations passes.
pub(crate) async fn refuse_newer_schema<B>(
    store: &B,
    backend: &'static str,
    migrator: &sqlx::migrate::Migrator,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    <B::Db as Database>::Arguments: IntoArguments<B::Db>,
    for<'q> i64: Decode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Decode<'q, B::Db> + Type<B::Db>,
    usize: ColumnIndex<<B::Db as Database>::Row>,
{
    let mut conn = store.pool().acquire().await?;
    let migrated: bool = sqlx::query_scalar(B::MIGRATED)
        .fetch_one(&mut *conn)
        .await?;
    if !migrated {
        return Ok(());
    }
    let found: i64 = sqlx::query_scalar(sql::LAST_MIGRATION)
        .fetch_one(&mut *conn)
        .await?;
    let known = migrator.iter().map(|m| m.version).max().unwrap_or_default();
    if found > known {
        return Err(StorageError::NewerSchema {
            backend,
            found,
            known,
        });
    }
    Ok(())
}
