//! The Event's rules in Rust, worded as the API server words them (CEL
//! messages and schema checks), for objects stored before a rule existed.

use super::*;

impl Validate for Event {
    /// The name rule, then every rule of the spec.
    fn validate(&self) -> Result<(), InvalidSpec> {
        let mut out = Violations::default();
        let name = self.metadata.name.as_deref().unwrap_or_default();
        out.require(
            name.len() <= MAX_EVENT_NAME_LEN
                && crate::validation::matches_pattern(name, EVENT_NAME_PATTERN),
            "metadata.name",
            MSG_EVENT_NAME,
        );
        if let Err(spec) = self.spec.validate() {
            for violation in spec.0 {
                out.push(violation.path, violation.message);
            }
        }
        out.finish()
    }
}

impl Validate for EventSpec {
    fn validate(&self) -> Result<(), InvalidSpec> {
        let mut out = Violations::default();
        out.check_len(
            &self.display_name,
            1,
            MAX_NAME_LEN as usize,
            "spec.displayName",
        );
        out.check_len(
            &self.venue.name,
            1,
            MAX_NAME_LEN as usize,
            "spec.venue.name",
        );
        if let Some(city) = &self.venue.city {
            out.check_len(city, 1, MAX_NAME_LEN as usize, "spec.venue.city");
        }
        if let Some(zone) = &self.venue.time_zone {
            out.check_len(zone, 1, 64, "spec.venue.timeZone");
            check_pattern(zone, TIME_ZONE_PATTERN, "spec.venue.timeZone", &mut out);
        }
        out.require(
            self.sales_close_at.0 > self.sales_open_at.0,
            "spec.salesCloseAt",
            MSG_CLOSE_AFTER_OPEN,
        );
        self.validate_seat_map(&mut out);
        let limits = &self.limits;
        out.check_range(
            limits.max_seats_per_order,
            1,
            MAX_SEATS_PER_ORDER,
            "spec.limits.maxSeatsPerOrder",
        );
        out.check_range(
            limits.max_seats_per_user,
            1,
            MAX_SEATS_PER_ORDER,
            "spec.limits.maxSeatsPerUser",
        );
        out.require(
            limits.max_seats_per_user >= limits.max_seats_per_order,
            "spec.limits.maxSeatsPerUser",
            MSG_USER_LIMIT,
        );
        out.check_range(
            self.hold_timeout_seconds,
            MIN_HOLD_SECONDS,
            MAX_HOLD_SECONDS,
            "spec.holdTimeoutSeconds",
        );
        self.validate_auth(&mut out);
        if let Some(address) = &self.client_address {
            out.check_range(
                address.trusted_hops,
                1,
                16,
                "spec.clientAddress.trustedHops",
            );
        }
        if let Some(until) = self
            .refund_policy
            .as_ref()
            .and_then(|policy| policy.buyer_refunds_until.as_ref())
        {
            out.require(
                until.0 > self.sales_open_at.0,
                "spec.refundPolicy.buyerRefundsUntil",
                MSG_REFUNDS_AFTER_OPEN,
            );
        }
        self.validate_services(&mut out);
        out.finish()
    }
}

impl EventSpec {
    fn validate_seat_map(&self, out: &mut Violations) {
        let sections = &self.seat_map.sections;
        out.check_items(
            sections.len(),
            1,
            MAX_SECTIONS as usize,
            "spec.seatMap.sections",
        );
        for (index, section) in sections.iter().enumerate() {
            let path = format!("spec.seatMap.sections[{index}]");
            out.check_len(&section.id, 1, 63, &format!("{path}.id"));
            check_pattern(&section.id, DNS_LABEL_PATTERN, &format!("{path}.id"), out);
            out.check_len(
                &section.name,
                1,
                MAX_NAME_LEN as usize,
                &format!("{path}.name"),
            );
            if let Some(rows) = section.rows {
                out.check_range(rows, 1, MAX_ROWS, &format!("{path}.rows"));
            }
            if let Some(per_row) = section.seats_per_row {
                out.check_range(
                    per_row,
                    1,
                    MAX_SEATS_PER_ROW,
                    &format!("{path}.seatsPerRow"),
                );
            }
            if let Some(capacity) = section.capacity {
                out.check_range(
                    capacity,
                    1,
                    MAX_STANDING_CAPACITY,
                    &format!("{path}.capacity"),
                );
            }
            // The same expression as the CEL rule on `Section`.
            let kind_ok = if section.capacity.is_some() {
                section.rows.is_none() && section.seats_per_row.is_none()
            } else {
                section.rows.is_some() && section.seats_per_row.is_some()
            };
            out.require(kind_ok, &path, MSG_SECTION_KIND);
            out.check_range(
                section.price.amount_minor,
                0,
                MAX_PRICE_MINOR,
                &format!("{path}.price.amountMinor"),
            );
            out.check_len(
                &section.price.currency,
                3,
                3,
                &format!("{path}.price.currency"),
            );
            check_pattern(
                &section.price.currency,
                CURRENCY_PATTERN,
                &format!("{path}.price.currency"),
                out,
            );
        }
        // The API server enforces this through the list's map type; an object
        // stored before the list was keyed may still repeat an id.
        let mut ids: Vec<&str> = sections.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        for pair in ids.windows(2).filter(|pair| pair[0] == pair[1]) {
            out.push("spec.seatMap.sections", duplicate_section_message(pair[0]));
        }
        if let Some(first) = sections.first() {
            out.require(
                sections
                    .iter()
                    .all(|s| s.price.currency == first.price.currency),
                "spec.seatMap.sections",
                MSG_ONE_CURRENCY,
            );
        }
        let total = self.total_capacity();
        if total > MAX_EVENT_CAPACITY {
            out.push(
                "spec.seatMap.sections",
                format!(
                    "the event sells {total} seats; at most {MAX_EVENT_CAPACITY} are supported"
                ),
            );
        }
    }

    fn validate_auth(&self, out: &mut Violations) {
        let jwt = &self.auth.user_jwt;
        let key_ok = match jwt.algorithm {
            JwtAlgorithm::HS256 => jwt.secret_ref.is_some() && jwt.jwks_url.is_none(),
            JwtAlgorithm::RS256 => jwt.jwks_url.is_some() && jwt.secret_ref.is_none(),
        };
        out.require(key_ok, "spec.auth.userJwt", MSG_JWT_KEY);
        if let Some(secret) = &jwt.secret_ref {
            secret.validate_into("spec.auth.userJwt.secretRef", out);
        }
        if let Some(url) = &jwt.jwks_url {
            out.check_len(url, 9, 2048, "spec.auth.userJwt.jwksUrl");
            check_pattern(url, r"^https://[^\s]+$", "spec.auth.userJwt.jwksUrl", out);
        }
        for (value, path) in [
            (&jwt.issuer, "spec.auth.userJwt.issuer"),
            (&jwt.audience, "spec.auth.userJwt.audience"),
        ] {
            if let Some(value) = value {
                out.check_len(value, 1, 512, path);
            }
        }
        self.auth
            .entry_token_key_ref
            .validate_into("spec.auth.entryTokenKeyRef", out);
        self.auth
            .service_token_ref
            .validate_into("spec.auth.serviceTokenRef", out);
        self.auth
            .payment_webhook_secret_ref
            .validate_into("spec.auth.paymentWebhookSecretRef", out);
        if let Some(origin) = &self.auth.origin_secret_ref {
            origin.validate_into("spec.auth.originSecretRef", out);
        }
    }

    fn validate_services(&self, out: &mut Violations) {
        let services = &self.services;
        for (name, runtime) in [
            ("queue", &services.queue),
            ("ticket", &services.ticket),
            ("payment", &services.payment),
        ] {
            runtime.validate_into(&format!("spec.services.{name}"), out);
        }
        let queue = &services.queue.connections;
        out.require(
            queue.redis_url_ref.is_some(),
            "spec.services.queue.connections",
            MSG_QUEUE_CONNECTIONS,
        );
        let ticket = &services.ticket.connections;
        out.require(
            ticket.redis_url_ref.is_some()
                && ticket.database_url_ref.is_some()
                && ticket.kafka_brokers_ref.is_some(),
            "spec.services.ticket.connections",
            MSG_TICKET_CONNECTIONS,
        );
        let payment = &services.payment.connections;
        out.require(
            payment.database_url_ref.is_some() && payment.kafka_brokers_ref.is_some(),
            "spec.services.payment.connections",
            MSG_PAYMENT_CONNECTIONS,
        );
        out.require(
            services.queue.provider.is_none() && services.ticket.provider.is_none(),
            "spec.services",
            MSG_PROVIDER_ONLY_PAYMENT,
        );
        if let Some(provider) = &services.payment.provider {
            out.require(
                provider.name != PaymentProviderName::Stripe
                    || (provider.secret_key_ref.is_some() && provider.webhook_secret_ref.is_some()),
                "spec.services.payment.provider",
                MSG_STRIPE_KEYS,
            );
            out.require(
                provider.name != PaymentProviderName::Toss || provider.secret_key_ref.is_some(),
                "spec.services.payment.provider",
                MSG_TOSS_KEYS,
            );
            if let Some(base) = &provider.api_base {
                out.check_len(base, 8, 512, "spec.services.payment.provider.apiBase");
                check_pattern(
                    base,
                    API_BASE_PATTERN,
                    "spec.services.payment.provider.apiBase",
                    out,
                );
            }
        }
    }
}

impl ServiceRuntime {
    fn validate_into(&self, path: &str, out: &mut Violations) {
        if let Some(image) = &self.image {
            out.check_len(image, 1, 512, &format!("{path}.image"));
            check_pattern(image, IMAGE_PATTERN, &format!("{path}.image"), out);
        }
        out.check_range(
            self.replicas.min,
            MIN_REPLICAS,
            MAX_REPLICAS,
            &format!("{path}.replicas.min"),
        );
        out.check_range(
            self.replicas.max,
            MIN_REPLICAS,
            MAX_REPLICAS,
            &format!("{path}.replicas.max"),
        );
        out.require(
            self.replicas.min <= self.replicas.max,
            &format!("{path}.replicas"),
            MSG_MIN_MAX_REPLICAS,
        );
        if let Some(prewarm) = &self.prewarm {
            out.check_range(
                prewarm.replicas,
                MIN_REPLICAS,
                MAX_REPLICAS,
                &format!("{path}.prewarm.replicas"),
            );
            out.check_range(
                prewarm.lead_seconds,
                0,
                MAX_PREWARM_LEAD_SECONDS,
                &format!("{path}.prewarm.leadSeconds"),
            );
            out.require(
                prewarm.replicas >= self.replicas.min && prewarm.replicas <= self.replicas.max,
                &format!("{path}.prewarm"),
                MSG_PREWARM_RANGE,
            );
        }
        out.check_items(self.env.len(), 0, 64, &format!("{path}.env"));
        let connections = &self.connections;
        for (reference, field) in [
            (&connections.redis_url_ref, "redisUrlRef"),
            (&connections.database_url_ref, "databaseUrlRef"),
            (&connections.kafka_brokers_ref, "kafkaBrokersRef"),
        ] {
            if let Some(reference) = reference {
                reference.validate_into(&format!("{path}.connections.{field}"), out);
            }
        }
    }
}
