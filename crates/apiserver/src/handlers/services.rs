//! Service address allocation, as kube-apiserver's service REST storage does it: a ClusterIP
//! from the service range for every Service that needs one (not headless, not ExternalName),
//! node ports from 30000-32767 for NodePort and LoadBalancer Services, and on update the
//! allocated values carried over when the new object leaves them out.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::errors::{Cause, Error, Result};
use crate::storage::ClusterState;

/// The service range of every logical cluster: 10.96.0.0/16 (kube's default range is
/// 10.96.0.0/12; a /16 keeps the scan small and is plenty for a local fleet).
const RANGE_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const RANGE_SIZE: u32 = 1 << 16;
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

const KEY: &str = "/services";

fn used(state: &ClusterState) -> (HashSet<String>, HashSet<i64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    if let Some(objects) = state.objects(KEY) {
        for svc in objects.values() {
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

/// Allocates what a new Service needs; an address the user asked for must be free and in
/// range.
pub(crate) fn allocate(state: &ClusterState, name: &str, svc: &mut Value) -> Result<()> {
    let (ips, ports) = used(state);
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let asked = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let ip = match asked {
        Some(ip) if ip == "None" => ip,
        Some(ip) => {
            let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                invalid(
                    name,
                    "spec.clusterIPs[0]",
                    format!("Invalid value: {ip:?}: must be a valid IP address"),
                )
            })?;
            let n = u32::from(parsed);
            if !(RANGE_BASE..RANGE_BASE + RANGE_SIZE).contains(&n) {
                return Err(invalid(
                    name,
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
                    ),
                ));
            }
            if ips.contains(&ip) {
                return Err(invalid(
                    name,
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: []string{{{ip:?}}}: failed to allocate IP {ip}: provided IP is already allocated"
                    ),
                ));
            }
            ip
        }
        None => {
            // Spread allocations over the range like kube's random allocator, deterministically.
            let start = (name
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
                % (RANGE_SIZE - 2))
                + 1;
            let found = (0..RANGE_SIZE - 2)
                .map(|i| RANGE_BASE + 1 + (start + i) % (RANGE_SIZE - 2))
                .map(|n| Ipv4Addr::from(n).to_string())
                .find(|ip| !ips.contains(ip));
            found.ok_or_else(|| {
                Error::api(
                    500,
                    "InternalError",
                    "failed to allocate a serviceIP: range is full",
                )
            })?
        }
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut taken = ports;
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in list {
                if p.get("nodePort").and_then(Value::as_i64).is_some() {
                    continue;
                }
                if let Some(free) = NODE_PORTS.clone().find(|n| !taken.contains(n)) {
                    taken.insert(free);
                    if let Some(o) = p.as_object_mut() {
                        o.insert("nodePort".into(), json!(free));
                    }
                }
            }
        }
    }
    Ok(())
}

/// On update: allocated values the new object leaves out are kept from the stored one; a
/// changed ClusterIP is refused (it is immutable once set).
pub(crate) fn carry_over(name: &str, old: &Value, new: &mut Value) -> Result<()> {
    let Some(old_spec) = old.get("spec") else {
        return Ok(());
    };
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(());
    }
    let old_ip = old_spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    match spec.get("clusterIP").and_then(Value::as_str).unwrap_or("") {
        "" => {
            if let Some(v) = old_spec.get("clusterIP") {
                spec.insert("clusterIP".into(), v.clone());
            }
            if let Some(v) = old_spec.get("clusterIPs") {
                spec.insert("clusterIPs".into(), v.clone());
            }
        }
        ip if !old_ip.is_empty() && ip != old_ip => {
            return Err(invalid(
                name,
                "spec.clusterIPs[0]",
                format!("Invalid value: {ip:?}: may not change once set"),
            ));
        }
        _ => {
            if spec.get("clusterIPs").is_none()
                && let Some(v) = old_spec.get("clusterIPs")
            {
                spec.insert("clusterIPs".into(), v.clone());
            }
        }
    }
    for key in ["ipFamilies", "ipFamilyPolicy"] {
        if spec.get(key).is_none()
            && let Some(v) = old_spec.get(key)
        {
            spec.insert(key.into(), v.clone());
        }
    }
    let old_ports: Vec<&Value> = old_spec
        .get("ports")
        .and_then(Value::as_array)
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in list {
            if p.get("nodePort").is_some() {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                        == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
            });
            if let (Some(n), Some(o)) = (same.and_then(|o| o.get("nodePort")), p.as_object_mut()) {
                o.insert("nodePort".into(), n.clone());
            }
        }
    }
    Ok(())
}
