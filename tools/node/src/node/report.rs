//! What the node reports in its status file: Services with their
//! addresses and ready endpoints, Deployments with their pods.

use super::*;

impl Node {
    pub(super) fn status(&self) -> Status {
        let mut status = Status::default();
        for (name, entry) in &self.services {
            let ports: Vec<PortStatus> = self
                .virtual_servers
                .iter()
                .filter(|v| &v.service == name)
                .map(|v| PortStatus {
                    name: v.port_name.clone(),
                    port: v.bind.port(),
                    address: v.bind.to_string(),
                    endpoints: v.servers.iter().map(|s| s.addr.to_string()).collect(),
                })
                .collect();
            status.services.insert(
                name.clone(),
                ServiceStatus {
                    cluster_ip: entry.ip.to_string(),
                    address: ports.first().map(|p| p.address.clone()),
                    endpoints: ports
                        .first()
                        .map(|p| p.endpoints.clone())
                        .unwrap_or_default(),
                    ports,
                },
            );
        }
        for (name, state) in &self.deployments {
            let current = |pod: &&Pod| state.hash.as_deref() == Some(pod.template().hash.as_str());
            let count = |filter: fn(&Pod) -> bool| {
                let n = state
                    .pods
                    .iter()
                    .filter(current)
                    .filter(|p| filter(p))
                    .count();
                u32::try_from(n).unwrap_or(u32::MAX)
            };
            let pods: Vec<PodStatus> = state
                .pods
                .iter()
                .map(|pod| {
                    let view = pod.view();
                    PodStatus {
                        name: view.name,
                        ip: view.ip.to_string(),
                        pid: view.pid,
                        ready: view.ready,
                        restarts: view.restarts,
                        started: view.started.map(status::timestamp),
                        template_hash: view.template_hash,
                        state: view.state.to_owned(),
                        reason: view.reason,
                    }
                })
                .collect();
            let error = state
                .template_error
                .clone()
                .or_else(|| state.fetch_error.clone())
                .or_else(|| {
                    state
                        .pods
                        .iter()
                        .find_map(|p| p.start_error().map(str::to_owned))
                });
            status.deployments.insert(
                name.clone(),
                DeploymentStatus {
                    desired: state.desired,
                    spec_replicas: state.spec_replicas,
                    running: count(Pod::is_running),
                    ready: count(Pod::ready),
                    restarts: state.pods.iter().map(Pod::restarts).sum(),
                    template_hash: state.hash.clone(),
                    pods,
                    error,
                },
            );
        }
        status
    }
}
