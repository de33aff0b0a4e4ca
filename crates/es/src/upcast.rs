//! Upcasting: reading old event shapes as the current one.
//!
//! Each stored event carries the version of its JSON shape. An [`Upcaster`] turns version `n`
//! of one event into version `n + 1`; on load the chain runs until the current version. New
//! events are written at the current version: 1 + the number of upcasters of that event.

use serde_json::Value;

use crate::ConfigError;

/// Turns the stored JSON of `event` at `from_version` into the shape of `from_version + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    /// The event name it applies to.
    pub event: &'static str,
    /// The version it reads.
    pub from_version: i32,
    /// The transformation; an `Err` marks the stored event unreadable.
    pub upcast: fn(Value) -> Result<Value, String>,
}

/// The version new `event`s are written at.
pub(crate) fn current_version(upcasters: &[Upcaster], event: &str) -> i32 {
    let count = upcasters.iter().filter(|u| u.event == event).count();
    1 + i32::try_from(count).unwrap_or(i32::MAX - 1)
}

/// Brings `data` of `event` from `version` to the current version.
pub(crate) fn upcast(
    upcasters: &[Upcaster],
    event: &str,
    mut version: i32,
    mut data: Value,
) -> Result<Value, String> {
    while let Some(step) = upcasters
        .iter()
        .find(|u| u.event == event && u.from_version == version)
    {
        data = (step.upcast)(data)?;
        version += 1;
    }
    let current = current_version(upcasters, event);
    if version != current {
        return Err(format!(
            "stored at version {version}, which no upcaster chain leads to {current} from"
        ));
    }
    Ok(data)
}

/// Checks that each event's upcasters read versions 1, 2, … with no gap or repeat.
pub(crate) fn validate(aggregate: &'static str, upcasters: &[Upcaster]) -> Result<(), ConfigError> {
    for upcaster in upcasters {
        let mut found: Vec<i32> = upcasters
            .iter()
            .filter(|u| u.event == upcaster.event)
            .map(|u| u.from_version)
            .collect();
        found.sort_unstable();
        if found
            .iter()
            .zip(1..)
            .any(|(version, expected)| *version != expected)
        {
            return Err(ConfigError::BrokenUpcasterChain {
                aggregate,
                event: upcaster.event,
                found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rename_amount(mut v: Value) -> Result<Value, String> {
        let amount = v["amount"].take();
        v["cents"] = amount;
        v.as_object_mut().ok_or("not an object")?.remove("amount");
        Ok(v)
    }

    fn double_cents(mut v: Value) -> Result<Value, String> {
        let cents = v["cents"].as_i64().ok_or("no cents")?;
        v["cents"] = json!(cents * 2);
        Ok(v)
    }

    const CHAIN: &[Upcaster] = &[
        Upcaster {
            event: "Deposited",
            from_version: 1,
            upcast: rename_amount,
        },
        Upcaster {
            event: "Deposited",
            from_version: 2,
            upcast: double_cents,
        },
    ];

    #[test]
    fn a_chain_runs_from_the_stored_version_to_the_current_one() {
        assert_eq!(
            upcast(CHAIN, "Deposited", 1, json!({"amount": 5})),
            Ok(json!({"cents": 10}))
        );
        assert_eq!(
            upcast(CHAIN, "Deposited", 2, json!({"cents": 5})),
            Ok(json!({"cents": 10}))
        );
        assert_eq!(
            upcast(CHAIN, "Deposited", 3, json!({"cents": 5})),
            Ok(json!({"cents": 5}))
        );
    }

    #[test]
    fn events_without_upcasters_are_at_version_one() {
        assert_eq!(current_version(CHAIN, "Withdrawn"), 1);
        assert_eq!(current_version(CHAIN, "Deposited"), 3);
        assert!(upcast(CHAIN, "Withdrawn", 2, json!({})).is_err());
    }

    #[test]
    fn a_chain_with_a_gap_is_refused() {
        let broken = [Upcaster {
            event: "Deposited",
            from_version: 2,
            upcast: double_cents,
        }];
        assert!(matches!(
            validate("Account", &broken),
            Err(ConfigError::BrokenUpcasterChain { .. })
        ));
        assert!(validate("Account", CHAIN).is_ok());
    }
}
