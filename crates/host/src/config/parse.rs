//! The settings' parsers: each value refused with one line saying what was expected.

use std::{collections::BTreeMap, time::Duration};

use super::RpcServices;

/// A count from 1 to 1024.
pub(super) fn parse_count(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(count @ 1..=1024) => Ok(count),
        _ => Err(format!(
            "expected a whole number from 1 to 1024, got {value:?}"
        )),
    }
}

pub(super) fn parse_ack_wait(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        wait if (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&wait) => Ok(wait),
        _ => Err(format!("expected from 1s to 1h, got {value:?}")),
    }
}

pub(super) fn parse_lease(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        lease if (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&lease) => Ok(lease),
        _ => Err(format!("expected from 1s to 1m, got {value:?}")),
    }
}

pub(super) fn parse_port(value: &str) -> Result<u16, String> {
    value
        .strip_prefix(':')
        .unwrap_or(value)
        .parse()
        .map_err(|_| format!("expected a port number such as 8080 or :8080, got {value:?}"))
}

/// Parses Go-style durations: `30s`, `500ms`, `2m`, `1h`, `1m30s`; a bare number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let invalid = || format!("expected a duration such as 30s, 500ms or 1m30s, got {value:?}");
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err(invalid()),
        };
        total += Duration::try_from_secs_f64(seconds).map_err(|_| invalid())?;
        rest = tail;
    }
    if value.is_empty() {
        Err(invalid())
    } else {
        Ok(total)
    }
}

pub(super) fn parse_stream(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "expected a stream name of letters, digits, '-' and '_', got {value:?}"
        ))
    }
}

pub(super) fn parse_rpc_services(value: &str) -> Result<RpcServices, String> {
    let mut services = BTreeMap::new();
    for pair in value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (name, address) = pair
            .split_once('=')
            .filter(|(name, address)| !name.trim().is_empty() && address.contains(':'))
            .ok_or_else(|| {
                format!("expected NAME=host:port pairs separated by commas, got {pair:?}")
            })?;
        services.insert(name.trim().to_uppercase(), address.trim().to_owned());
    }
    Ok(RpcServices(services))
}

pub(super) fn parse_log_level(value: &str) -> Result<String, String> {
    let directives = match value.to_ascii_uppercase().as_str() {
        "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" => value.to_ascii_lowercase(),
        "PANIC" | "FATAL" => "error".to_owned(),
        _ => value.to_owned(),
    };
    tracing_subscriber::EnvFilter::builder()
        .parse(&directives)
        .map(|_| directives)
        .map_err(|e| format!("expected TRACE, DEBUG, INFO, WARN, ERROR or tracing directives: {e}"))
}
