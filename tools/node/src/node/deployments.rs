//! Deployments as the node runs them: each one's pod template resolved,
//! its replica count and rollout strategy turned into goals for its pods,
//! and the pods of Deployments that are gone stopped.

use super::*;

impl Node {
    /// Applies the listed Deployments: templates, counts, rollouts; and
    /// stops the pods of Deployments that are gone.
    pub(super) fn sync_deployments(&mut self, deployments: &[Deployment]) {
        let mut listed = BTreeSet::new();
        for deployment in deployments {
            let Some(name) = deployment.metadata.name.clone() else {
                continue;
            };
            listed.insert(name.clone());
            self.sync_deployment(&name, deployment);
        }
        let gone: Vec<String> = self
            .deployments
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(state) = self.deployments.remove(&name) {
                tracing::info!(deployment = %name, "deployment gone; stopping its pods");
                for pod in state.pods {
                    self.to_stop.push((name.clone(), pod, "deployment gone"));
                }
            }
        }
    }

    fn sync_deployment(&mut self, name: &str, deployment: &Deployment) {
        let state = self.deployments.entry(name.to_owned()).or_default();
        let Some(spec) = deployment.spec.as_ref() else {
            state.template_error = Some("the Deployment has no spec".to_owned());
            return;
        };
        state.spec_replicas = spec.replicas.unwrap_or(1);
        state.desired = u32::try_from(state.spec_replicas)
            .unwrap_or(0)
            .min(self.args.max_replicas);
        let strategy = match spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Strategy::Recreate,
            _ => Strategy::RollingUpdate,
        };
        state.strategy = Some(strategy);
        // A paused Deployment keeps its pods' template until resumed.
        let paused = spec.paused == Some(true) && state.hash.is_some();
        match template::template_hash(&spec.template) {
            Ok(hash) if state.hash.as_deref() != Some(hash.as_str()) && !paused => {
                match Template::from_spec(&spec.template) {
                    Ok(template) => {
                        for warning in &template.warnings {
                            tracing::warn!(deployment = %name, "{warning}");
                        }
                        state.template = Some(Arc::new(template));
                        state.template_error = None;
                    }
                    Err(error) => {
                        tracing::warn!(deployment = %name, template = %hash, "cannot run the pod template: {error}");
                        state.template = None;
                        state.template_error = Some(error.to_string());
                    }
                }
                if !state.pods.is_empty() {
                    tracing::info!(deployment = %name, template = %hash, "rolling out a new pod template");
                    state.rolling = true;
                }
                state.hash = Some(hash);
            }
            Ok(_) => {}
            Err(error) => {
                state.template_error = Some(error.to_string());
            }
        }
        let current = state.hash.clone();
        let members: Vec<Member> = state
            .pods
            .iter()
            .map(|pod| Member {
                index: pod.index(),
                current: current.as_deref() == Some(pod.template().hash.as_str()),
                ready: pod.ready(),
            })
            .collect();
        let goal = Goal {
            desired: state.desired,
            can_create: state.template.is_some(),
            strategy,
            old_terminating: self.terminating.iter().any(|t| t.deployment == name),
        };
        let plan = rollout::plan(&members, goal);
        let mut stop = plan.stop;
        stop.sort_unstable_by(|a, b| b.cmp(a));
        for position in stop {
            let pod = state.pods.remove(position);
            let why = if members[position].current {
                "scaled down"
            } else {
                "old template, no longer needed"
            };
            self.to_stop.push((name.to_owned(), pod, why));
        }
        if let Some(template) = &state.template {
            for index in plan.create {
                match self.pod_ips.allocate() {
                    Ok(ip) => state
                        .pods
                        .push(Pod::new(name, index, Arc::clone(template), ip)),
                    Err(error) => {
                        tracing::warn!(deployment = %name, "no address for a new pod: {error}");
                        break;
                    }
                }
            }
        }
        state.pods.sort_by(|a, b| a.name().cmp(b.name()));
        let old_left = state
            .pods
            .iter()
            .any(|p| current.as_deref() != Some(p.template().hash.as_str()));
        if state.rolling && !old_left {
            state.rolling = false;
            tracing::info!(
                deployment = %name,
                template = current.as_deref().unwrap_or_default(),
                "rolled out: every old pod replaced"
            );
        }
    }
}
