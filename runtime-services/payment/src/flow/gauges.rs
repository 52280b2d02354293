//! The by-state gauge and the circuit breaker's, refreshed on the
//! reconciler's pass.

use super::Payments;

impl Payments {
    /// Refreshes the by-state gauge.
    pub async fn refresh_gauges(&self) -> Result<(), sqlx::Error> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM payments GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        for state in crate::state::ALL {
            let count = rows
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.metrics
                .payments
                .get_or_create(&crate::telemetry::StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(count);
        }
        self.metrics
            .circuit_state
            .set(crate::breaker::gauge_value(self.ticket.circuit_state()));
        Ok(())
    }
}
