//! The WaitingRoom's rules in Rust, worded as the API server words them (CEL
//! messages and schema checks), for objects stored before a rule existed.

use super::*;
use crate::validation::matches_pattern;

impl Validate for WaitingRoom {
    /// The API server already enforces the name; the spec is all there is.
    fn validate(&self) -> Result<(), InvalidSpec> {
        self.spec.validate()
    }
}

impl Validate for WaitingRoomSpec {
    fn validate(&self) -> Result<(), InvalidSpec> {
        let mut out = Violations::default();
        check_name(&self.event_ref.name, "spec.eventRef.name", &mut out);
        if let Some(page) = &self.page {
            check_name(
                &page.template_config_map,
                "spec.page.templateConfigMap",
                &mut out,
            );
        }
        self.validate_activation(&mut out);
        let admission = &self.admission;
        out.check_range(
            admission.users_per_second,
            1,
            MAX_USERS_PER_SECOND,
            "spec.admission.usersPerSecond",
        );
        out.check_range(
            admission.max_active_users,
            1,
            MAX_ACTIVE_USERS,
            "spec.admission.maxActiveUsers",
        );
        out.check_range(
            admission.entry_token_ttl_seconds,
            MIN_ENTRY_TOKEN_TTL_SECONDS,
            MAX_ENTRY_TOKEN_TTL_SECONDS,
            "spec.admission.entryTokenTtlSeconds",
        );
        if let Some(max) = admission.session_max_seconds {
            out.check_range(
                max,
                MIN_ENTRY_TOKEN_TTL_SECONDS,
                MAX_SESSION_SECONDS,
                "spec.admission.sessionMaxSeconds",
            );
            out.require(
                max >= admission.entry_token_ttl_seconds,
                "spec.admission.sessionMaxSeconds",
                MSG_SESSION_MAX_BELOW_TTL,
            );
        }
        out.check_range(
            admission.serving_rate.per_interval,
            1,
            MAX_SERVING_PER_INTERVAL,
            "spec.admission.servingRate.perInterval",
        );
        out.check_range(
            admission.serving_rate.interval_seconds,
            1,
            MAX_SERVING_INTERVAL_SECONDS,
            "spec.admission.servingRate.intervalSeconds",
        );
        out.check_range(
            self.pre_queue.opens_minutes_before,
            0,
            MAX_PREQUEUE_MINUTES,
            "spec.preQueue.opensMinutesBefore",
        );
        self.validate_paths(&mut out);
        self.validate_controls(&mut out);
        if let Some(edge) = &self.edge {
            validate_edge(edge, &mut out);
        }
        out.finish()
    }
}

impl WaitingRoomSpec {
    fn validate_activation(&self, out: &mut Violations) {
        let activation = &self.activation;
        out.require(
            activation.mode != ActivationMode::Scheduled || activation.start_at.is_some(),
            "spec.activation.startAt",
            MSG_SCHEDULED_NEEDS_START,
        );
        if let (Some(invites), Some(end)) = (&self.invites, &activation.end_at) {
            out.require(
                invites.valid_until.0 <= end.0,
                "spec.invites.validUntil",
                MSG_INVITES_OUTLIVE_ROOM,
            );
        }
        if let (Some(start), Some(end)) = (&activation.start_at, &activation.end_at) {
            out.require(
                end.0 > start.0,
                "spec.activation.endAt",
                MSG_END_AFTER_START,
            );
        }
        let has_threshold = activation.auto.is_some_and(|auto| {
            auto.queue_depth_above.is_some()
                || auto.active_users_above.is_some()
                || auto.arrivals_per_second_above.is_some()
        });
        out.require(
            activation.mode != ActivationMode::Auto || has_threshold,
            "spec.activation.auto",
            MSG_AUTO_NEEDS_THRESHOLD,
        );
        if let Some(auto) = &activation.auto {
            for (value, field) in [
                (auto.queue_depth_above, "queueDepthAbove"),
                (auto.active_users_above, "activeUsersAbove"),
            ] {
                if let Some(value) = value {
                    out.check_range(
                        value,
                        1,
                        MAX_ACTIVE_USERS,
                        &format!("spec.activation.auto.{field}"),
                    );
                }
            }
            if let Some(value) = auto.arrivals_per_second_above {
                out.check_range(
                    value,
                    1,
                    MAX_USERS_PER_SECOND,
                    "spec.activation.auto.arrivalsPerSecondAbove",
                );
            }
            out.check_range(
                auto.cooldown_seconds,
                0,
                MAX_COOLDOWN_SECONDS,
                "spec.activation.auto.cooldownSeconds",
            );
        }
    }

    fn validate_controls(&self, out: &mut Violations) {
        let control = &self.control;
        out.require(
            self.queueing.method != QueueingMethod::Random || self.pre_queue.randomize_at_open,
            "spec.queueing.method",
            MSG_RANDOM_KEEPS_ORDER,
        );
        out.require(
            !control.draining || self.queueing.method != QueueingMethod::Passthrough,
            "spec.control.draining",
            MSG_DRAIN_PASSTHROUGH,
        );
        for (users, path) in [
            (&control.kick_users, "spec.control.kickUsers"),
            (&control.block_users, "spec.control.blockUsers"),
        ] {
            out.check_items(users.len(), 0, MAX_CONTROL_USERS as usize, path);
            for (i, user) in users.iter().enumerate() {
                out.check_len(user, 1, MAX_USER_ID_LEN as usize, &format!("{path}[{i}]"));
            }
        }
        let nets = &control.block_addresses;
        out.check_items(
            nets.len(),
            0,
            MAX_BLOCKED_ADDRESSES as usize,
            "spec.control.blockAddresses",
        );
        for (i, net) in nets.iter().enumerate() {
            let path = format!("spec.control.blockAddresses[{i}]");
            if matches_pattern(net, CIDR_PATTERN) {
                // The pattern lets 999.1.1.1 through; the parse does not.
                let parses =
                    net.parse::<ipnet::IpNet>().is_ok() || net.parse::<std::net::IpAddr>().is_ok();
                out.require(parses, &path, "not an IP address or CIDR network");
            } else {
                check_pattern(net, CIDR_PATTERN, &path, out);
            }
        }
    }

    fn validate_paths(&self, out: &mut Violations) {
        let paths = &self.paths;
        out.check_items(
            paths.protected.len(),
            1,
            MAX_PATHS as usize,
            "spec.paths.protected",
        );
        out.check_items(
            paths.bypass.len(),
            0,
            MAX_PATHS as usize,
            "spec.paths.bypass",
        );
        for (list, field) in [(&paths.protected, "protected"), (&paths.bypass, "bypass")] {
            check_each(list, field, MAX_PATH_LEN, PATH_PREFIX_PATTERN, out);
        }
        out.require(
            paths
                .bypass
                .iter()
                .all(|prefix| !paths.protected.contains(prefix)),
            "spec.paths.bypass",
            MSG_PATH_BOTH_LISTS,
        );
        // CEL's size() counts characters, so count characters here as well.
        let chars: usize = paths
            .protected
            .iter()
            .chain(&paths.bypass)
            .map(|p| p.chars().count())
            .sum();
        out.require(chars <= MAX_EDGE_PATH_BYTES, "spec.paths", MSG_PATH_BYTES);
        self.validate_hosts(out);
    }

    fn validate_hosts(&self, out: &mut Violations) {
        let paths = &self.paths;
        out.check_items(paths.hosts.len(), 0, MAX_HOSTS as usize, "spec.paths.hosts");
        check_each(&paths.hosts, "hosts", MAX_HOST_LEN, HOST_PATTERN, out);
        out.require(
            paths
                .hosts
                .iter()
                .all(|h| paths.hosts.iter().filter(|x| *x == h).count() == 1),
            "spec.paths.hosts",
            MSG_HOST_TWICE,
        );
        // As the CEL rule: H hosts × the prefixes' characters, plus P
        // prefixes × the hosts' characters.
        if !paths.hosts.is_empty() {
            let chars = |list: &[String]| list.iter().map(|s| s.chars().count()).sum::<usize>();
            let routes = paths.hosts.len() * chars(&paths.protected)
                + paths.protected.len() * chars(&paths.hosts);
            out.require(
                routes <= MAX_EDGE_ROUTE_BYTES,
                "spec.paths",
                MSG_ROUTE_BYTES,
            );
        }
    }
}

fn validate_edge(edge: &Edge, out: &mut Violations) {
    out.require(
        edge.key_value_store_arn.is_some() != edge.key_value_store_name.is_some(),
        "spec.edge",
        MSG_ONE_STORE,
    );
    if let Some(arn) = &edge.key_value_store_arn {
        check_pattern(arn, KVS_ARN_PATTERN, "spec.edge.keyValueStoreArn", out);
    }
    if let Some(name) = &edge.key_value_store_name {
        check_pattern(name, KVS_NAME_PATTERN, "spec.edge.keyValueStoreName", out);
    }
    edge.signing_key_ref
        .validate_into("spec.edge.signingKeyRef", out);
    check_pattern(
        &edge.signing_key_id,
        KEY_ID_PATTERN,
        "spec.edge.signingKeyId",
        out,
    );
    if let Some(previous) = &edge.previous_signing_key {
        previous
            .key_ref
            .validate_into("spec.edge.previousSigningKey.keyRef", out);
        check_pattern(
            &previous.id,
            KEY_ID_PATTERN,
            "spec.edge.previousSigningKey.id",
            out,
        );
        out.require(
            previous.id != edge.signing_key_id,
            "spec.edge.previousSigningKey.id",
            MSG_PREVIOUS_KEY_ID,
        );
    }
    out.check_range(
        edge.pass_ttl_seconds,
        MIN_PASS_TTL_SECONDS,
        MAX_PASS_TTL_SECONDS,
        "spec.edge.passTtlSeconds",
    );
    out.check_range(
        edge.propagation_margin_seconds,
        0,
        MAX_PROPAGATION_MARGIN_SECONDS,
        "spec.edge.propagationMarginSeconds",
    );
    out.check_len(
        &edge.waiting_page_path,
        1,
        MAX_PATH_LEN as usize,
        "spec.edge.waitingPagePath",
    );
    check_pattern(
        &edge.waiting_page_path,
        PATH_PREFIX_PATTERN,
        "spec.edge.waitingPagePath",
        out,
    );
}

/// Each item of `spec.paths.<field>`: its length (1 to `max_len`) and its pattern.
fn check_each(
    list: &[String],
    field: &str,
    max_len: u32,
    pattern: &'static str,
    out: &mut Violations,
) {
    for (index, item) in list.iter().enumerate() {
        let path = format!("spec.paths.{field}[{index}]");
        out.check_len(item, 1, max_len as usize, &path);
        check_pattern(item, pattern, &path, out);
    }
}
