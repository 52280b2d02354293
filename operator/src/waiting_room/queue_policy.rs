//! The queue's side of a room: the admission policy and the tier-1 serving
//! parameters in the Redis hashes the queue service reads every tick (its
//! URL from the Secret the Event's queue service uses), and their removal.

use urr_crds::Event;
use urr_service_common::policy::{self, Policy};
use urr_service_common::serving::ServingParams;

use super::context::queue_redis;
use super::{Error, RoomContext};

/// Who the room refuses and who it removes (`spec.control`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// The whole blocked set (replaced, so an unblock takes effect).
    pub blocked_users: Vec<String>,
    /// Added to the kick set the admitter empties.
    pub kicks: Vec<String>,
}

/// Writes the policy, serving parameters and controls, all or none.
pub(super) async fn write(
    ctx: &RoomContext,
    namespace: &str,
    event_name: &str,
    event: &Event,
    policy: &Policy,
    serving: &ServingParams,
    controls: &Controls,
) -> Result<(), Error> {
    let Some(mut conn) = queue_redis(ctx, namespace, Some(event)).await? else {
        return Ok(());
    };
    let blocked = policy::blocked_users_key(event_name);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&blocked).ignore();
    if !controls.blocked_users.is_empty() {
        pipe.sadd(&blocked, &controls.blocked_users).ignore();
    }
    if !controls.kicks.is_empty() {
        pipe.sadd(policy::kick_key(event_name), &controls.kicks)
            .ignore();
    }
    pipe.hset_multiple(policy::policy_key(event_name), &policy.to_fields())
        .ignore()
        .hset_multiple(
            policy::serving_key(event_name),
            &policy::serving_fields(serving),
        )
        .ignore()
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

/// Removes the policy of `event_name`, if the Event (and so the Redis URL)
/// is still there.
pub(super) async fn remove(
    ctx: &RoomContext,
    namespace: &str,
    event_name: &str,
    event: Option<&Event>,
) -> Result<(), Error> {
    if let Some(mut conn) = queue_redis(ctx, namespace, event).await? {
        redis::pipe()
            .del(policy::policy_key(event_name))
            .del(policy::serving_key(event_name))
            .del(policy::blocked_users_key(event_name))
            .del(policy::kick_key(event_name))
            .del(urr_service_common::page_template::page_key(event_name))
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(())
}
