//! `accept`: a deliberate edit of applied revisions recorded in the
//! ledger, the old checksums kept with the reason, who and when.

use alembic_chain::{Resolver, Target};

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::EngineError;

use super::report::Accepted;
use super::state::Current;
use super::{quote_literal, Engine};

impl<'m> Engine<'m> {
    /// Records a deliberate edit of applied revisions: the ledger takes the
    /// files' checksums now, and keeps the old ones with the reason, who and
    /// when in its `accepted` list. `revision` is what users type for
    /// applied revisions: an id or prefix, a label, `current`, `heads`,
    /// `head`, relative forms (`current-1`). Of several revisions named,
    /// those whose files match their ledger rows are left alone. An applied
    /// revision without a ledger row (adopted from Python Alembic) gets one.
    /// Everything is checked before the ledger is written, in one statement.
    #[cfg(feature = "sync")]
    pub fn accept(
        &self,
        client: &mut postgres::Client,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        wait(self.accept_async(client, revision, reason, by))
    }

    /// [`Engine::accept`] on any [`Connection`].
    pub async fn accept_async<C: Connection>(
        &self,
        client: &mut C,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        self.locked(client, None, async |client, current| {
            self.view(&current)
                .accept_locked(client, current, revision, reason, by)
                .await
        })
        .await
    }

    /// The revisions `accept` would change, or why it cannot.
    fn to_accept(&self, current: &Current, revision: &str) -> Result<Vec<Accepted>, EngineError> {
        let named =
            match Resolver::with_current(self.map, current.known.clone()).resolve(revision)? {
                Target::Revisions(revs) => revs,
                Target::Base | Target::BranchBase { .. } => Vec::new(),
            };
        if named.is_empty() {
            return Err(EngineError::NotApplied {
                revision: revision.to_owned(),
            });
        }
        let applied = self.applied(current);
        let mut out = Vec::new();
        for &i in &named {
            let rev = self.map.rev(i);
            if !applied.contains(&i) {
                return Err(EngineError::NotApplied {
                    revision: rev.id.clone(),
                });
            }
            let upgrade = rev.upgrade.checksum().as_str().to_owned();
            let downgrade = rev
                .downgrade
                .as_ref()
                .map(|d| d.checksum().as_str().to_owned());
            let previous = current.ledger.get(&rev.id).map(|row| {
                (
                    row.upgrade_checksum().to_owned(),
                    row.downgrade_checksum().map(str::to_owned),
                )
            });
            if previous.as_ref() == Some(&(upgrade.clone(), downgrade.clone())) {
                continue;
            }
            out.push(Accepted {
                revision: rev.id.clone(),
                previous,
                upgrade,
                downgrade,
            });
        }
        if out.is_empty() {
            return Err(EngineError::NothingToAccept {
                revision: self.ids(&named).join(", "),
            });
        }
        Ok(out)
    }

    async fn accept_locked<C: Connection>(
        &self,
        client: &mut C,
        current: Current,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        let accepted = self.to_accept(&current, revision)?;
        let l = self.ledger_table();
        let literal = |v: Option<&str>| v.map_or("NULL".to_owned(), quote_literal);
        let mut sql = String::from("BEGIN;\n");
        for a in &accepted {
            let entry = format!(
                "jsonb_build_object('upgrade_from', {}, 'downgrade_from', {}, 'upgrade_to', {}, 'downgrade_to', {}, 'reason', {}, 'by', {}, 'at', now())",
                literal(a.previous.as_ref().map(|p| p.0.as_str())),
                literal(a.previous.as_ref().and_then(|p| p.1.as_deref())),
                quote_literal(&a.upgrade),
                literal(a.downgrade.as_deref()),
                quote_literal(reason),
                quote_literal(by)
            );
            sql.push_str(&format!(
                "INSERT INTO {l} (revision, upgrade_checksum, downgrade_checksum, tool, accepted) VALUES ({}, {}, {}, {}, jsonb_build_array({entry})) \
                 ON CONFLICT (revision) DO UPDATE SET upgrade_checksum = EXCLUDED.upgrade_checksum, downgrade_checksum = EXCLUDED.downgrade_checksum, \
                 accepted = {l}.accepted || EXCLUDED.accepted;\n",
                quote_literal(&a.revision),
                quote_literal(&a.upgrade),
                literal(a.downgrade.as_deref()),
                quote_literal(&self.settings.tool)
            ));
        }
        sql.push_str("COMMIT;");
        Self::db(
            "cannot record the accepted edit",
            client.batch_execute(&sql).await,
        )?;
        Ok(accepted)
    }
}
