//! The published draws: anyone may check the order.

use super::*;

/// The pre-queue draw: its commitment, seed and member root.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Audit {
    /// The `random` queueing method's order.
    random_order: RandomOrder,
    event: String,
    /// How the draw orders the members present at open.
    #[schema(value_type = String)]
    algorithm: &'static str,
    /// SHA-256 of the seed (hex), published before the draw; `null` before one is chosen.
    seed_commitment: Option<String>,
    /// The seed (hex), once drawn.
    seed: Option<String>,
    /// When the draw happened, Unix ms.
    shuffled_at_ms: Option<i64>,
    /// Members in the draw.
    participants: Option<u64>,
    /// RFC 6962 Merkle root (hex) over the members present at open.
    members_root: Option<String>,
    #[schema(value_type = String)]
    members_algorithm: &'static str,
}

/// The `random` method's seed: its commitment, and the seed once the room
/// no longer orders by it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct RandomOrder {
    #[schema(value_type = String)]
    algorithm: &'static str,
    seed_commitment: Option<String>,
    seed: Option<String>,
    /// Since when the room ordered randomly, Unix ms.
    used_from_ms: Option<i64>,
}

/// The caller's inclusion proof in the draw's `membersRoot` (RFC 9162).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Proof {
    event: String,
    user_id: String,
    leaf_index: usize,
    tree_size: usize,
    /// Sibling hashes (hex), leaf to root.
    audit_path: Vec<String>,
    members_root: String,
}

/// The published draws.
///
/// The pre-queue draw and the `random` method's order. A seed is shown
/// only once it can no longer be used to choose a place: the draw's after
/// the draw, the random method's once the room no longer orders by it;
/// before, only their commitments.
#[utoipa::path(
    get,
    path = "/v1/events/{event}/queue/audit",
    tag = "audit",
    operation_id = "queueAudit",
    params(("event" = String, Path, description = "The event's name.")),
    responses(
        (status = 200, description = "The draw's commitments, and seeds once revealed.", body = Audit),
        (status = 404, description = "`unknown-event`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Json<Audit>, QueueError> {
    check_event(&state, &event)?;
    let draw = state.store.shuffle_state().await?;
    let shuffled_at = draw.get("shuffledAt").and_then(|v| v.parse::<i64>().ok());
    let random = state.store.random_state().await?;
    let method = state.snapshot.get(&state.store).await?.policy.method;
    let used_from = random.get("usedFromMs").and_then(|v| v.parse::<i64>().ok());
    let revealed = used_from.is_some() && method != QueueingMethod::Random;
    Ok(Json(Audit {
        random_order: RandomOrder {
            algorithm: "while the method is random, each tick admits the waiters with the lowest score, the first 13 hex digits of SHA-1(seed || userId) read as an integer, seed as its lowercase hex string, userId as UTF-8; the commitment is SHA-256(seed)",
            seed_commitment: random.get("commitment").cloned(),
            seed: revealed.then(|| random.get("seed").cloned()).flatten(),
            used_from_ms: used_from,
        },
        event: state.event.clone(),
        algorithm: "members present at open sorted ascending by SHA-256(seed || userId), seed as its lowercase hex string, userId as UTF-8; the commitment is SHA-256(seed)",
        seed_commitment: draw.get("commitment").cloned(),
        seed: shuffled_at.and(draw.get("seed").cloned()),
        shuffled_at_ms: shuffled_at,
        participants: draw.get("participants").and_then(|v| v.parse::<u64>().ok()),
        members_root: draw.get("membersRoot").cloned(),
        members_algorithm: "RFC 6962 Merkle tree over the members present at open sorted ascending by userId: leaf SHA-256(0x00 || userId), node SHA-256(0x01 || left || right); GET …/queue/audit/proof (signed in) gives your inclusion proof",
    }))
}

/// The caller's inclusion proof in the draw.
///
/// Checkable against `membersRoot` with RFC 9162's algorithm; 404
/// `not-in-draw` for who was not in line at the draw, or before it.
#[utoipa::path(
    get,
    path = "/v1/events/{event}/queue/audit/proof",
    tag = "audit",
    operation_id = "queueAuditProof",
    params(("event" = String, Path, description = "The event's name.")),
    security(("userJwt" = [])),
    responses(
        (status = 200, description = "The proof.", body = Proof),
        (status = 404, description = "`unknown-event` or `not-in-draw`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn proof(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<Proof>, QueueError> {
    let draw = state.store.shuffle_state().await?;
    let Some(root) = draw.get("membersRoot").cloned() else {
        return Err(QueueError::NotInDraw);
    };
    // The member list never changes after the draw: read and hashed once
    // per replica, so a proof is a walk up the kept tree.
    let draw = state
        .drawn_members
        .get_or_try_init(|| async {
            let members = state.store.drawn_members().await?;
            let tree = crate::merkle::Tree::new(&members);
            Ok::<_, redis::RedisError>(Arc::new(DrawnMembers { members, tree }))
        })
        .await?
        .clone();
    let Ok(index) = draw.members.binary_search(&user.user_id) else {
        return Err(QueueError::NotInDraw);
    };
    let path: Vec<String> = draw.tree.proof(index).iter().map(hex::encode).collect();
    Ok(Json(Proof {
        event: state.event.clone(),
        user_id: user.user_id,
        leaf_index: index,
        tree_size: draw.members.len(),
        audit_path: path,
        members_root: root,
    }))
}

/// The pre-queue draw's members, sorted by id, and their Merkle tree.
#[derive(Debug)]
pub struct DrawnMembers {
    members: Vec<String>,
    tree: crate::merkle::Tree,
}
