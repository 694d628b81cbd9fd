//! Service address allocation, as kube-apiserver's service REST storage does it: a ClusterIP
//! from the service range for every Service that needs one (not headless, not ExternalName),
//! node ports from 30000-32767 for NodePort and LoadBalancer Services, every address unique in
//! its logical cluster; on update the allocated values the new object leaves out are kept, a
//! changed ClusterIP is refused, and what a type change newly needs is allocated.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{Map, Value, json};

use crate::errors::{Cause, Error, Result};
use crate::storage::ClusterState;

/// The service range of every logical cluster: 10.96.0.0/16 (kube's default range is
/// 10.96.0.0/12; a /16 keeps the scan small and is plenty for a local fleet). The network and
/// broadcast addresses are never handed out.
const RANGE_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const RANGE_SIZE: u32 = 1 << 16;
const RANGE: &str = "10.96.0.0/16";
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

const KEY: &str = "/services";

/// Addresses and node ports held by every Service but `(namespace, name)`.
fn used(state: &ClusterState, namespace: &str, name: &str) -> (HashSet<String>, HashSet<i64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    let Some(objects) = state.objects(KEY) else {
        return (ips, ports);
    };
    for ((ns, n), svc) in objects {
        if ns == namespace && n == name {
            continue;
        }
        if let Some(list) = svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
            ips.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
            ips.insert(ip.to_string());
        }
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

fn invalid(name: &str, field: &str, message: String) -> Error {
    Error::invalid(
        "",
        "Service",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

fn str_of<'a>(spec: &'a Map<String, Value>, key: &str) -> &'a str {
    spec.get(key).and_then(Value::as_str).unwrap_or("")
}

/// On update, before the write's managed fields are recorded: the allocated values the new
/// object leaves out are kept from the stored one (kube's patchAllocatedValues), so they stay
/// unchanged rather than owned by the writer.
pub(crate) fn carry_over(old: &Value, new: &mut Value) {
    let Some(old_spec) = old.get("spec").and_then(Value::as_object) else {
        return;
    };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if str_of(spec, "type") == "ExternalName" || !str_of(spec, "clusterIP").is_empty() {
        return;
    }
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        if spec.get(key).is_none()
            && let Some(v) = old_spec.get(key)
        {
            spec.insert(key.into(), v.clone());
        }
    }
}

/// Allocates what a Service needs, on create (`old` None) or update (after [`carry_over`]),
/// once the write's managed fields are recorded (no manager owns what is allocated): an address
/// or node port the object asks for must be in range and free; a changed ClusterIP is refused;
/// what is missing is kept from `old` or allocated.
pub(crate) fn allocate(
    state: &ClusterState,
    namespace: &str,
    name: &str,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<()> {
    let (ips, mut taken) = used(state, namespace, name);
    let old_spec = old.and_then(|o| o.get("spec")).and_then(Value::as_object);
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let ty = match str_of(spec, "type") {
        "" => "ClusterIP",
        t => t,
    }
    .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let old_ip = old_spec.map(|s| str_of(s, "clusterIP")).unwrap_or("");
    let asked = str_of(spec, "clusterIP").to_string();
    let ip = if !old_ip.is_empty() && asked != old_ip {
        return Err(invalid(
            name,
            "spec.clusterIPs[0]",
            format!("Invalid value: {asked:?}: may not change once set"),
        ));
    } else if asked == "None" || (!asked.is_empty() && asked == old_ip) {
        asked
    } else if asked.is_empty() {
        free_ip(name, &ips)?
    } else {
        check_ip(name, &asked, &ips)?;
        asked
    };
    spec.insert("clusterIP".into(), json!(ip));
    if spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .is_none_or(|l| l.is_empty() || l[0].as_str() != Some(ip.as_str()))
    {
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    if ty != "NodePort" && ty != "LoadBalancer" {
        return Ok(());
    }
    let old_ports: Vec<&Value> = old_spec
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let mine: HashSet<i64> = old_ports
        .iter()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect();
    let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut wanting = Vec::new();
    for (i, p) in list.iter_mut().enumerate() {
        let kept = old_ports
            .iter()
            .find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                        == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
            })
            .and_then(|o| o.get("nodePort").cloned());
        match p.get("nodePort").and_then(Value::as_i64) {
            Some(n) => {
                if !NODE_PORTS.contains(&n) {
                    return Err(invalid(
                        name,
                        &format!("spec.ports[{i}].nodePort"),
                        format!(
                            "Invalid value: {n}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                        ),
                    ));
                }
                if !taken.insert(n) && !mine.contains(&n) {
                    return Err(invalid(
                        name,
                        &format!("spec.ports[{i}].nodePort"),
                        format!("Invalid value: {n}: provided port is already allocated"),
                    ));
                }
            }
            None => match (kept, p.as_object_mut()) {
                (Some(n), Some(o)) => {
                    if let Some(k) = n.as_i64() {
                        taken.insert(k);
                    }
                    o.insert("nodePort".into(), n);
                }
                _ => wanting.push(i),
            },
        }
    }
    for i in wanting {
        let free = NODE_PORTS
            .clone()
            .find(|n| !taken.contains(n))
            .ok_or_else(|| Error::internal("failed to allocate a nodePort: range is full"))?;
        taken.insert(free);
        if let Some(o) = list.get_mut(i).and_then(Value::as_object_mut) {
            o.insert("nodePort".into(), json!(free));
        }
    }
    Ok(())
}

fn check_ip(name: &str, ip: &str, used: &HashSet<String>) -> Result<()> {
    let parsed: Ipv4Addr = ip.parse().map_err(|_| {
        invalid(
            name,
            "spec.clusterIPs[0]",
            format!("Invalid value: {ip:?}: must be a valid IP address"),
        )
    })?;
    let n = u32::from(parsed);
    if n <= RANGE_BASE || n >= RANGE_BASE + RANGE_SIZE - 1 {
        return Err(invalid(
            name,
            "spec.clusterIPs",
            format!(
                "Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {RANGE}"
            ),
        ));
    }
    if used.contains(ip) {
        return Err(invalid(
            name,
            "spec.clusterIPs",
            format!(
                "Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: provided IP is already allocated"
            ),
        ));
    }
    Ok(())
}

/// A free address, starting from a point derived from the name so allocations spread over the
/// range (kube's allocator picks at random).
fn free_ip(name: &str, used: &HashSet<String>) -> Result<String> {
    let span = RANGE_SIZE - 2;
    let start = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % span;
    (0..span)
        .map(|i| Ipv4Addr::from(RANGE_BASE + 1 + (start + i) % span).to_string())
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| Error::internal("failed to allocate a serviceIP: range is full"))
}
