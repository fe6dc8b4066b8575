//! The voice channel in the daemon: calls from Twilio-compatible providers and generic
//! IVRs become contacts; the caller hears their place and expected wait until an agent
//! accepts, and is then put through to the agent's `dial` target.

/// Checks an agent's dial target: `client:<name>`, `+<E.164 digits>` or `sip:<uri>`.
pub fn dial_target(dial: &str) -> Result<(), String> {
    let ok = match dial.split_once(':') {
        Some(("client", name)) => !name.is_empty(),
        Some(("sip", uri)) => uri.contains('@') || !uri.is_empty(),
        _ => {
            dial.len() > 2 && dial.starts_with('+') && dial[1..].chars().all(|c| c.is_ascii_digit())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{dial:?} is not client:<name>, a +E.164 number or a sip: URI"
        ))
    }
}
