//! What the Deployment and ReplicaSet controllers decide, reduced to one
//! node: which pods to create and which to stop, given the pods that run,
//! the current template and the desired count.
//!
//! Rolling update: every pod of the new template starts at once (pods are
//! cheap here, and each has its own address); each new pod that is ready
//! lets one old pod go, unready old pods first. An unrunnable new template
//! leaves the old pods serving, as a stalled rollout does.

/// A pod, as the plan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub index: u32,
    /// Of the Deployment's current template.
    pub current: bool,
    pub ready: bool,
}

/// What to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indices of current-template pods to create.
    pub create: Vec<u32>,
    /// Positions (in the members given) of pods to stop.
    pub stop: Vec<usize>,
}

/// How the Deployment replaces pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate,
    /// Every old pod stops before a new one starts.
    Recreate,
}

/// Where the Deployment should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goal {
    /// Pods of the current template.
    pub desired: u32,
    /// False when the current template cannot run here.
    pub can_create: bool,
    pub strategy: Strategy,
    /// Old pods are still shutting down (not among the members any more).
    pub old_terminating: bool,
}

/// Plans one step towards the goal.
pub fn plan(members: &[Member], goal: Goal) -> Plan {
    let desired = goal.desired;
    let mut plan = Plan::default();
    // Scale-down: current pods past the desired count, highest index first.
    let mut surplus: Vec<(usize, u32)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.current && m.index >= desired)
        .map(|(position, m)| (position, m.index))
        .collect();
    surplus.sort_by_key(|s| std::cmp::Reverse(s.1));
    plan.stop
        .extend(surplus.iter().map(|(position, _)| *position));

    let kept = |m: &&Member| m.current && m.index < desired;
    let ready_current = members.iter().filter(kept).filter(|m| m.ready).count();
    let mut old: Vec<(usize, &Member)> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.current)
        .collect();
    let keep_old = match goal.strategy {
        Strategy::RollingUpdate => {
            usize::try_from(desired).map_or(0, |d| d.saturating_sub(ready_current))
        }
        Strategy::Recreate => 0,
    };
    // Unready pods go first, then the highest indices.
    old.sort_by(|(_, a), (_, b)| a.ready.cmp(&b.ready).then(b.index.cmp(&a.index)));
    let excess = old.len().saturating_sub(keep_old);
    plan.stop
        .extend(old.iter().take(excess).map(|(position, _)| *position));

    let recreating =
        goal.strategy == Strategy::Recreate && (!old.is_empty() || goal.old_terminating);
    if goal.can_create && !recreating {
        let existing: Vec<u32> = members.iter().filter(kept).map(|m| m.index).collect();
        plan.create = (0..desired).filter(|i| !existing.contains(i)).collect();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(index: u32, current: bool, ready: bool) -> Member {
        Member {
            index,
            current,
            ready,
        }
    }

    fn goal(desired: u32, can_create: bool, strategy: Strategy, old_terminating: bool) -> Goal {
        Goal {
            desired,
            can_create,
            strategy,
            old_terminating,
        }
    }

    fn rolling(members: &[Member], desired: u32) -> Plan {
        plan(members, goal(desired, true, Strategy::RollingUpdate, false))
    }

    #[test]
    fn creates_missing_pods_and_leaves_a_steady_state_alone() {
        assert_eq!(
            rolling(&[], 2),
            Plan {
                create: vec![0, 1],
                stop: vec![]
            }
        );
        let steady = [member(0, true, true), member(1, true, false)];
        assert_eq!(rolling(&steady, 2), Plan::default());
        assert_eq!(
            rolling(&steady, 3),
            Plan {
                create: vec![2],
                stop: vec![]
            }
        );
    }

    #[test]
    fn scales_down_from_the_highest_index() {
        let pods = [
            member(1, true, true),
            member(0, true, true),
            member(2, true, true),
        ];
        assert_eq!(
            rolling(&pods, 1),
            Plan {
                create: vec![],
                stop: vec![2, 0]
            }
        );
        assert_eq!(rolling(&pods, 0).stop, vec![2, 0, 1]);
    }

    #[test]
    fn each_ready_new_pod_retires_one_old_pod() {
        // Template changed: two old pods serve, no new pod yet.
        let old = [member(0, false, true), member(1, false, true)];
        assert_eq!(
            rolling(&old, 2),
            Plan {
                create: vec![0, 1],
                stop: vec![]
            }
        );
        // New pods started, none ready: the old ones stay.
        let started = [
            member(0, false, true),
            member(1, false, true),
            member(0, true, false),
            member(1, true, false),
        ];
        assert_eq!(rolling(&started, 2), Plan::default());
        // One new pod ready: the old pod with the highest index goes.
        let one_ready = [
            member(0, false, true),
            member(1, false, true),
            member(0, true, true),
            member(1, true, false),
        ];
        assert_eq!(
            rolling(&one_ready, 2),
            Plan {
                create: vec![],
                stop: vec![1]
            }
        );
        // Both ready: the last old pod goes.
        let done = [
            member(0, false, true),
            member(0, true, true),
            member(1, true, true),
        ];
        assert_eq!(rolling(&done, 2).stop, vec![0]);
    }

    #[test]
    fn unready_old_pods_go_first() {
        let pods = [
            member(0, false, false),
            member(1, false, true),
            member(0, true, true),
        ];
        assert_eq!(rolling(&pods, 2).stop, vec![0]);
    }

    #[test]
    fn an_unrunnable_template_keeps_the_old_pods() {
        let old = [member(0, false, true), member(1, false, true)];
        let broken = |desired| goal(desired, false, Strategy::RollingUpdate, false);
        assert_eq!(plan(&old, broken(2)), Plan::default());
        // A scale-down still applies to them.
        assert_eq!(plan(&old, broken(1)).stop, vec![1]);
    }

    #[test]
    fn recreate_stops_old_pods_before_starting_new_ones() {
        let old = [member(0, false, true), member(1, false, true)];
        assert_eq!(
            plan(&old, goal(2, true, Strategy::Recreate, false)),
            Plan {
                create: vec![],
                stop: vec![1, 0]
            }
        );
        assert_eq!(
            plan(&[], goal(2, true, Strategy::Recreate, true)),
            Plan::default(),
            "not while old pods shut down"
        );
        assert_eq!(
            plan(&[], goal(2, true, Strategy::Recreate, false)).create,
            vec![0, 1]
        );
    }
}
