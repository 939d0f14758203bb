//! The year close and the report: allocation, verification by sector, the market by day,
//! compliance by sector with penalties, pledges, reconciliation. The report depends on the
//! seed only.

use std::fmt::Write;

use client::money::{grouped as g, money};
use client::names;
use proto::v1 as pb;

use super::year::Year;
use super::{BANK, INSTRUMENT, fail};

impl Year<'_> {
    /// Closes the year, checks the books, and writes the report.
    pub(super) async fn close_and_report(&mut self) -> Result<String, String> {
        self.clock.set(super::calendar::dates::CLOSE);
        let closed = self
            .who
            .ministry
            .compliance
            .close_year(pb::CloseYearRequest {
                idempotency_key: "close-2024".into(),
                year: 2024,
                ..Default::default()
            })
            .await
            .map_err(fail("close year"))?
            .into_inner();
        let reconcile = self
            .who
            .auditor
            .admin
            .reconcile(pb::ReconcileRequest {})
            .await
            .map_err(fail("reconcile"))?
            .into_inner();
        let journal = self
            .who
            .auditor
            .registry
            .verify_journal(pb::VerifyJournalRequest {})
            .await
            .map_err(fail("verify journal"))?
            .into_inner();
        self.progress.step("year closed, books reconciled");
        let mut report = self.allocation_section();
        report.push_str(&self.verification_section().await?);
        report.push_str(&self.market_section().await?);
        report.push_str(&self.compliance_section(&closed).await?);
        report.push_str(&self.pledges_section().await?);
        report.push_str(&books_section(&reconcile, &journal));
        self.progress.step(&format!(
            "registry journal: {} entries verified",
            journal.entries
        ));
        if !reconcile.clean || !journal.ok {
            return Err(format!("the books do not reconcile:\n{report}"));
        }
        Ok(report)
    }

    fn allocation_section(&self) -> String {
        let mut report = String::new();
        let (pre, trued) = (&self.pre, &self.trued);
        let _ = writeln!(
            report,
            "carbonx demo (seed {}): compliance year 2024 of a synthetic national market",
            self.options.seed
        );
        let _ = writeln!(
            report,
            "{} covered entities with {} facilities, {} member firms, plan 2024.1 (registry/plans/2024.toml)\n",
            self.entities.len(),
            self.facilities,
            self.members.len()
        );
        let _ = writeln!(report, "Allocation");
        let _ = writeln!(
            report,
            "  pre-allocation (70% of 2023 emissions): {} t to {} entities",
            g(pre.allocated_t),
            g(pre.entities)
        );
        let _ = writeln!(
            report,
            "  true-up on verified 2024 emissions: {} t final allocation, {} t held for differentiated entities; {} t issued in all\n",
            g(trued.allocated_t),
            g(trued.held_t),
            g(trued.issued_t)
        );
        report
    }

    async fn market_section(&mut self) -> Result<String, String> {
        let bars = self
            .who
            .auditor
            .market
            .get_daily_bars(pb::GetDailyBarsRequest {
                instrument: INSTRUMENT.into(),
                from_date: 0,
                to_date: 0,
            })
            .await
            .map_err(fail("bars"))?
            .into_inner()
            .bars;
        let mut report = String::new();
        let _ = writeln!(
            report,
            "Market ({INSTRUMENT}, orders < 100,000 t, +/-10% band)"
        );
        let _ = writeln!(
            report,
            "  {:<10} {:>7} {:>12} {:>18} {:>9} {:>9} {:>9} {:>9}",
            "day", "trades", "volume t", "turnover yuan", "VWAP", "high", "low", "close"
        );
        let (mut volume, mut turnover) = (0u64, 0i64);
        for b in bars.iter().filter(|b| b.volume_t > 0) {
            volume += b.volume_t;
            turnover += b.turnover_fen;
            let _ = writeln!(
                report,
                "  {:<10} {:>7} {:>12} {:>18} {:>9} {:>9} {:>9} {:>9}",
                names::date(b.trading_date),
                g(b.trade_count),
                g(b.volume_t),
                money(b.turnover_fen),
                money(b.turnover_fen / b.volume_t.max(1) as i64),
                money(b.high_fen),
                money(b.low_fen),
                money(b.close_fen)
            );
        }
        let _ = writeln!(
            report,
            "  all days: {} t, {} yuan, VWAP {} yuan; {} orders",
            g(volume),
            money(turnover),
            money(turnover / volume.max(1) as i64),
            g(self.market.orders_sent)
        );
        for line in [&self.market.auction_line, &self.market.block_line] {
            if !line.is_empty() {
                let _ = writeln!(report, "  {line}");
            }
        }
        Ok(report)
    }

    async fn compliance_section(&mut self, closed: &pb::CloseYearReply) -> Result<String, String> {
        let totals = self
            .who
            .ministry
            .compliance
            .get_totals(pb::GetTotalsRequest {
                year: 2024,
                by: pb::TotalsBy::Sector as i32,
            })
            .await
            .map_err(fail("totals"))?
            .into_inner()
            .rows;
        let mut report = String::new();
        let _ = writeln!(
            report,
            "\nCompliance 2024 (closed at the deadline; penalties at {}x the {} average price of {} yuan)",
            5,
            closed.price_month,
            money(closed.average_price_fen)
        );
        let _ = writeln!(
            report,
            "  {:<10} {:>8} {:>14} {:>14} {:>14} {:>9} {:>6} {:>12} {:>18}",
            "sector",
            "entities",
            "verified t",
            "allocated t",
            "surrendered t",
            "compliant",
            "short",
            "shortfall t",
            "penalties yuan"
        );
        for t in &totals {
            let _ = writeln!(
                report,
                "  {:<10} {:>8} {:>14} {:>14} {:>14} {:>9} {:>6} {:>12} {:>18}",
                t.key,
                g(t.entities),
                g(t.obligation_t),
                g(t.allocated_t),
                g(t.surrendered_t),
                g(t.compliant),
                g(t.short),
                g(t.shortfall_t),
                money(t.penalty_fen)
            );
        }
        let accounted: Vec<_> = self
            .entities
            .iter()
            .filter(|e| e.accounting.is_some())
            .collect();
        let _ = writeln!(
            report,
            "  industry's verified emissions computed from {} entities' monthly deposits ({} months) by CETS-AG-03.01/02.01/04.01-V01-2024 and verified through the provinces; PFCs {} t CO2e",
            g(accounted.len() as u64),
            g(accounted.len() as u64 * 12),
            g(accounted.iter().map(|e| e.pfc_2024).sum::<u64>())
        );
        let _ = writeln!(
            report,
            "  all: {} compliant, {} short ({} t, carried as deductions from the 2025 allocation), penalties {} yuan; {} t surrendered by force for differentiated entities",
            g(closed.compliant),
            g(closed.short),
            g(closed.shortfall_t),
            money(closed.penalty_fen),
            g(closed.forced_t)
        );
        Ok(report)
    }

    async fn pledges_section(&mut self) -> Result<String, String> {
        let listed = self
            .who
            .bank
            .registry
            .list_pledges(pb::ListPledgesRequest {
                pledgee_account_id: BANK,
            })
            .await
            .map_err(fail("pledges"))?
            .into_inner()
            .pledges;
        let outstanding: Vec<_> = listed.iter().filter(|p| p.state == "REGISTERED").collect();
        let mut report = String::new();
        let _ = writeln!(report, "\nPledges (Green Bank, account {BANK})");
        let _ = writeln!(
            report,
            "  {} registered ({} t), {} released on repayment, {} outstanding ({} t)",
            self.pledges.len(),
            g(self.pledges.iter().map(|p| p.2).sum::<u64>()),
            self.released,
            outstanding.len(),
            g(outstanding.iter().map(|p| p.quantity_t).sum::<u64>())
        );
        if let Some((pledgor, q)) = self.enforced {
            let _ = writeln!(
                report,
                "  1 enforced on default: {} t of entity {pledgor} transferred to the bank",
                g(q)
            );
        }
        Ok(report)
    }
}

fn books_section(reconcile: &pb::ReconcileReply, journal: &pb::VerifyJournalReply) -> String {
    let mut report = String::new();
    let _ = writeln!(report, "\nReconciliation");
    let _ = writeln!(
        report,
        "  registry vs exchange: {} ({} accounts, {} differences)",
        if reconcile.clean {
            "clean"
        } else {
            "NOT CLEAN"
        },
        reconcile.accounts_checked,
        reconcile.differences.len() + reconcile.problems.len()
    );
    // (The entry count depends on how settlement happened to be batched, so it goes to
    // the progress output: the report depends on the seed only.)
    let _ = writeln!(
        report,
        "  registry journal: hash chain {}",
        if journal.ok { "verified" } else { "BROKEN" }
    );
    report
}
