//! The published draws: anyone may check the order.

use super::*;

/// `GET /v1/events/{event}/queue/audit`: the pre-queue draw and the
/// `random` method's order. A seed is shown only once it can no longer be
/// used to choose a place: the draw's after the draw, the random method's
/// once the room no longer orders by it; before, only their commitments.
pub(super) async fn audit(
    State(state): State<AppState>,
    Path(event): Path<String>,
) -> Result<Json<serde_json::Value>, QueueError> {
    check_event(&state, &event)?;
    let draw = state.store.shuffle_state().await?;
    let shuffled_at = draw.get("shuffledAt").and_then(|v| v.parse::<i64>().ok());
    let random = state.store.random_state().await?;
    let method = state.snapshot.get(&state.store).await?.policy.method;
    let used_from = random.get("usedFromMs").and_then(|v| v.parse::<i64>().ok());
    let revealed = used_from.is_some() && method != QueueingMethod::Random;
    Ok(Json(json!({
        "randomOrder": {
            "algorithm": "while the method is random, each tick admits the waiters with the lowest score, the first 13 hex digits of SHA-1(seed || userId) read as an integer, seed as its lowercase hex string, userId as UTF-8; the commitment is SHA-256(seed)",
            "seedCommitment": random.get("commitment"),
            "seed": revealed.then(|| random.get("seed")).flatten(),
            "usedFromMs": used_from,
        },
        "event": state.event,
        "algorithm": "members present at open sorted ascending by SHA-256(seed || userId), seed as its lowercase hex string, userId as UTF-8; the commitment is SHA-256(seed)",
        "seedCommitment": draw.get("commitment"),
        "seed": shuffled_at.and(draw.get("seed")),
        "shuffledAtMs": shuffled_at,
        "participants": draw.get("participants").and_then(|v| v.parse::<u64>().ok()),
        "membersRoot": draw.get("membersRoot"),
        "membersAlgorithm": "RFC 6962 Merkle tree over the members present at open sorted ascending by userId: leaf SHA-256(0x00 || userId), node SHA-256(0x01 || left || right); GET …/queue/audit/proof (signed in) gives your inclusion proof",
    })))
}

/// `GET /v1/events/{event}/queue/audit/proof`: the caller's inclusion proof
/// in the draw's member commitment (404 `not-in-draw` if they were not in
/// it, or before the draw).
pub(super) async fn proof(
    State(state): State<AppState>,
    Caller(user): Caller,
) -> Result<Json<serde_json::Value>, QueueError> {
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
    Ok(Json(json!({
        "event": state.event,
        "userId": user.user_id,
        "leafIndex": index,
        "treeSize": draw.members.len(),
        "auditPath": path,
        "membersRoot": root,
    })))
}

/// The pre-queue draw's members, sorted by id, and their Merkle tree.
#[derive(Debug)]
pub struct DrawnMembers {
    members: Vec<String>,
    tree: crate::merkle::Tree,
}
