//! What each service says it spent on each route: read from its
//! `/metrics` (`urr_<service>_http_request_duration_seconds`) after the
//! crowd, so the report puts the buyer's latency of a step beside the
//! service's own time, and the difference is the queueing in front of it
//! (connection limits, the load balancer, a starved CPU).
//!
//! The internal port is reached through the load balancer too, so a scrape
//! reads one replica: its figures stand for the others (round robin).
//! Quantiles are histogram bucket upper bounds ("at most").

use std::collections::BTreeMap;

use serde::Serialize;

/// One route of one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTime {
    pub service: String,
    pub method: String,
    pub route: String,
    pub count: u64,
    /// Upper bounds of the buckets holding the median and the 99th percentile.
    pub p50_ms_at_most: f64,
    pub p99_ms_at_most: f64,
}

/// Routes that say nothing about a buyer's wait.
const SKIPPED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Reads the request-duration histograms of `service` from an OpenMetrics text.
pub fn parse(service: &str, text: &str) -> Vec<RouteTime> {
    let bucket = format!("urr_{service}_http_request_duration_seconds_bucket{{");
    // (method, route) → upper bound → cumulative count, summed over status classes.
    let mut buckets: BTreeMap<(String, String), BTreeMap<u64, (f64, u64)>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&bucket) else {
            continue;
        };
        let Some((labels, value)) = split_labels(rest) else {
            continue;
        };
        let Ok(count) = value.trim().parse::<f64>() else {
            continue;
        };
        let (Some(method), Some(route), Some(le)) =
            (labels.get("method"), labels.get("route"), labels.get("le"))
        else {
            continue;
        };
        if SKIPPED.contains(&route.as_str()) {
            continue;
        }
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(bound) => bound,
                Err(_) => continue,
            }
        };
        let slot = buckets
            .entry((method.clone(), route.clone()))
            .or_default()
            .entry(bound.to_bits())
            .or_insert((bound, 0));
        slot.1 += count as u64;
    }
    buckets
        .into_iter()
        .filter_map(|((method, route), by_bound)| {
            let mut cumulative: Vec<(f64, u64)> = by_bound.into_values().collect();
            cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
            let count = cumulative.last().map(|(_, c)| *c)?;
            (count > 0).then(|| RouteTime {
                service: service.to_owned(),
                method,
                route,
                count,
                p50_ms_at_most: quantile(&cumulative, count, 0.5) * 1000.0,
                p99_ms_at_most: quantile(&cumulative, count, 0.99) * 1000.0,
            })
        })
        .collect()
}

/// The upper bound of the first bucket whose cumulative count reaches `q`.
fn quantile(cumulative: &[(f64, u64)], count: u64, q: f64) -> f64 {
    let wanted = (count as f64 * q).ceil() as u64;
    cumulative
        .iter()
        .find(|(_, c)| *c >= wanted)
        .map_or(f64::INFINITY, |(bound, _)| *bound)
}

/// `k="v",k2="v2"} value` → the labels and the value. Values are quoted
/// and may hold braces (`route="/v1/events/{event}"`).
fn split_labels(rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut at = 0;
    loop {
        match rest.as_bytes().get(at)? {
            b'}' => return Some((labels, &rest[at + 1..])),
            b',' => {
                at += 1;
                continue;
            }
            _ => {}
        }
        let eq = rest[at..].find("=\"")? + at;
        let key = rest[at..eq].to_owned();
        let quoted = eq + 2;
        let mut value = String::new();
        let mut chars = rest[quoted..].char_indices();
        at = loop {
            let (offset, c) = chars.next()?;
            match c {
                '"' => break quoted + offset + 1,
                '\\' => value.push(chars.next()?.1),
                c => value.push(c),
            }
        };
        labels.insert(key, value);
    }
}

/// Scrapes each `(service, internal base URL)` and reads its routes; a
/// service that does not answer is reported as such, never silently dropped.
pub async fn scrape(
    http: &reqwest::Client,
    services: &[(&str, &str)],
) -> (Vec<RouteTime>, Vec<String>) {
    let mut routes = Vec::new();
    let mut missing = Vec::new();
    for (service, base) in services {
        let text = match http.get(format!("{base}/metrics")).send().await {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            _ => None,
        };
        match text {
            Some(text) => routes.extend(parse(service, &text)),
            None => missing.push(format!("{service}: {base}/metrics did not answer")),
        }
    }
    (routes, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP urr_payment_http_request_duration_seconds Time the service spent
# TYPE urr_payment_http_request_duration_seconds histogram
urr_payment_http_request_duration_seconds_sum{method="POST",route="/v1/payments",status="2xx"} 1.5
urr_payment_http_request_duration_seconds_count{method="POST",route="/v1/payments",status="2xx"} 10
urr_payment_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/payments",status="2xx"} 0
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="2xx",le="0.002"} 5
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="2xx",le="0.004"} 9
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="2xx",le="+Inf"} 10
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="4xx",le="0.001"} 2
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="4xx",le="0.002"} 2
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="4xx",le="0.004"} 2
urr_payment_http_request_duration_seconds_bucket{method="POST",route="/v1/payments",status="4xx",le="+Inf"} 2
urr_payment_http_request_duration_seconds_bucket{method="GET",route="/v1/payments/{id}",status="2xx",le="0.001"} 1
urr_payment_http_request_duration_seconds_bucket{method="GET",route="/v1/payments/{id}",status="2xx",le="+Inf"} 1
urr_payment_http_request_duration_seconds_bucket{method="GET",route="/readyz",status="2xx",le="+Inf"} 7
urr_queue_http_request_duration_seconds_bucket{method="GET",route="/x",status="2xx",le="+Inf"} 7
"#;

    #[test]
    fn routes_are_summed_over_status_classes_with_bucket_quantiles() {
        let routes = parse("payment", TEXT);
        assert_eq!(routes.len(), 2, "{routes:?}");
        let get = &routes[0];
        assert_eq!(
            (get.method.as_str(), get.route.as_str(), get.count),
            ("GET", "/v1/payments/{id}", 1)
        );
        assert_eq!(get.p50_ms_at_most, 1.0);
        let create = &routes[1];
        assert_eq!(create.route, "/v1/payments");
        assert_eq!(create.count, 12);
        // 12 requests: 2 by 1 ms, 7 by 2 ms, 11 by 4 ms, 12 in all.
        assert_eq!(create.p50_ms_at_most, 2.0);
        assert_eq!(create.p99_ms_at_most, f64::INFINITY);
    }

    #[test]
    fn quoted_values_may_hold_braces_commas_and_escapes() {
        let (labels, value) =
            split_labels(r#"route="/v1/events/{event}",note="a,b \"c\"",le="+Inf"} 3"#)
                .expect("labels");
        assert_eq!(labels["route"], "/v1/events/{event}");
        assert_eq!(labels["note"], r#"a,b "c""#);
        assert_eq!(labels["le"], "+Inf");
        assert_eq!(value.trim(), "3");
        assert!(split_labels(r#"route="open"#).is_none());
    }
}
