//! The room's waiting page (`spec.page`): the ConfigMap it names is read,
//! its template and values checked by the same code the queue and
//! `urr-operator page-preview` use ([`urr_service_common::page_template`]),
//! and a good one written to the Redis hash the queue serves the page from.
//! A bad one is refused with the `PageTemplateValid` condition naming the
//! problem, and the hash is left alone: visitors keep the last good page
//! (or the default one), never a broken or half-filled one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use sha2::{Digest, Sha256};
use urr_crds::Event;
use urr_crds::conditions;
use urr_crds::waiting_room::{WaitingRoomSpec, WaitingRoomStatus};
use urr_service_common::page_template::{self, Branding, TEMPLATE_KEY, Template};

use super::context::queue_redis;
use super::status::set;
use super::{Error, RoomContext};

/// What the ConfigMap holds, as the condition says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageCheck {
    /// Good: the template and its values, and their digest.
    Valid {
        template: String,
        branding: Branding,
        digest: String,
    },
    /// Refused: the condition's reason and message.
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// Checks the data of ConfigMap `name` (`None`: it does not exist) for the
/// Event named `event_display_name`. Pure, so the reasons are unit-tested.
pub fn check(
    name: &str,
    data: Option<&BTreeMap<String, String>>,
    event_display_name: &str,
) -> PageCheck {
    let Some(data) = data else {
        return PageCheck::Refused {
            reason: "ConfigMapMissing",
            message: format!(
                "no ConfigMap {name} (spec.page.templateConfigMap) in the room's namespace; serving the last good page, or the default one"
            ),
        };
    };
    let Some(source) = data.get(TEMPLATE_KEY) else {
        return PageCheck::Refused {
            reason: "TemplateKeyMissing",
            message: format!("ConfigMap {name} has no key {TEMPLATE_KEY}"),
        };
    };
    let checked = Template::parse(source).and_then(|template| {
        let branding = Branding::from_data(data, event_display_name)?;
        // Rendered once here, so a value the template needs (a logo) and
        // the page as a whole are checked before a visitor sees them.
        template.render(&branding)?;
        Ok(branding)
    });
    match checked {
        Ok(branding) => {
            let mut hasher = Sha256::new();
            hasher.update(source.as_bytes());
            for (key, value) in branding.to_fields() {
                hasher.update([0]);
                hasher.update(key.as_bytes());
                hasher.update([0]);
                hasher.update(value.as_bytes());
            }
            PageCheck::Valid {
                template: source.clone(),
                branding,
                digest: hex::encode(&hasher.finalize()[..8]),
            }
        }
        Err(error) => PageCheck::Refused {
            reason: error.reason(),
            message: format!("ConfigMap {name}, key {TEMPLATE_KEY}: {error}"),
        },
    }
}

/// Reads, checks and publishes the room's page; records the condition.
pub(super) async fn sync(
    ctx: &RoomContext,
    namespace: &str,
    spec: &WaitingRoomSpec,
    event: &Event,
    status: &mut WaitingRoomStatus,
    generation: Option<i64>,
    now: &Time,
) -> Result<(), Error> {
    let key = page_template::page_key(&spec.event_ref.name);
    let Some(page) = &spec.page else {
        // Back to the default page, once: a room that never had a page (its
        // condition says so) costs no Secret read and no Redis call.
        let had_page = status
            .conditions
            .iter()
            .any(|c| c.type_ == conditions::PAGE_TEMPLATE_VALID);
        if !had_page {
            return Ok(());
        }
        status
            .conditions
            .retain(|c| c.type_ != conditions::PAGE_TEMPLATE_VALID);
        if let Some(mut conn) = queue_redis(ctx, namespace, Some(event)).await? {
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut conn)
                .await?;
        }
        return Ok(());
    };
    let name = &page.template_config_map;
    let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let config_map = config_maps
        .get_opt(name)
        .await
        .map_err(|source| Error::Kube {
            what: format!("ConfigMap {name}"),
            source,
        })?;
    let data = config_map.map(|c| c.data.unwrap_or_default());
    match check(name, data.as_ref(), &event.spec.display_name) {
        PageCheck::Valid {
            template,
            branding,
            digest,
        } => {
            if let Some(mut conn) = queue_redis(ctx, namespace, Some(event)).await? {
                let mut fields = branding.to_fields();
                fields.push(("template", template));
                fields.push(("digest", digest.clone()));
                // Replaced whole, so a value taken out of the ConfigMap
                // (a logo) is gone from the page too.
                redis::pipe()
                    .atomic()
                    .del(&key)
                    .ignore()
                    .hset_multiple(&key, &fields)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await?;
            }
            set(
                status,
                conditions::PAGE_TEMPLATE_VALID,
                true,
                "TemplateValid",
                format!("ConfigMap {name} (digest {digest}) is the waiting page"),
                generation,
                now,
            );
        }
        PageCheck::Refused { reason, message } => set(
            status,
            conditions::PAGE_TEMPLATE_VALID,
            false,
            reason,
            message,
            generation,
            now,
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const GOOD: &str = include_str!("../../../examples/waiting-page/template.html");

    #[test]
    fn each_refusal_has_its_reason_and_names_the_config_map() {
        let cases = [
            (None, "ConfigMapMissing"),
            (Some(data(&[("other", "x")])), "TemplateKeyMissing"),
            (
                Some(data(&[(TEMPLATE_KEY, "<p>{{price}}</p>")])),
                "UnknownVariable",
            ),
            (
                Some(data(&[(TEMPLATE_KEY, &"x".repeat(70_000))])),
                "TemplateTooLarge",
            ),
            (
                Some(data(&[(
                    TEMPLATE_KEY,
                    &GOOD.replace("</head>", "<script>x()</script></head>"),
                )])),
                "ForeignScript",
            ),
            // The example uses {{logoUrl}}: without one it cannot render.
            (Some(data(&[(TEMPLATE_KEY, GOOD)])), "InvalidValue"),
        ];
        for (data, reason) in cases {
            match check("brand", data.as_ref(), "Aurora") {
                PageCheck::Refused {
                    reason: got,
                    message,
                } => {
                    assert_eq!(got, reason, "{message}");
                    assert!(message.contains("brand"), "{message}");
                }
                valid => panic!("{reason}: accepted {valid:?}"),
            }
        }
    }

    #[test]
    fn a_good_config_map_is_valid_and_its_digest_follows_its_values() {
        let mut good = data(&[(TEMPLATE_KEY, GOOD), ("logoUrl", "/brand/logo.svg")]);
        let PageCheck::Valid {
            digest, branding, ..
        } = check("brand", Some(&good), "Aurora")
        else {
            panic!("refused");
        };
        assert_eq!(branding.event_name, "Aurora");
        good.insert("brandColor".to_owned(), "#075".to_owned());
        let PageCheck::Valid { digest: other, .. } = check("brand", Some(&good), "Aurora") else {
            panic!("refused");
        };
        assert_ne!(digest, other);
    }
}
