//! Twilio-compatible voice webhooks: the incoming-call request, `<Gather>` action requests
//! and call status callbacks.
//!
//! Twilio `POST`s an `application/x-www-form-urlencoded` body (`CallSid`, `AccountSid`,
//! `From`, `To`, `CallStatus`, `Direction`, …, see
//! <https://www.twilio.com/docs/usage/webhooks/voice-webhooks>) and signs it in the
//! `X-Twilio-Signature` header (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>):
//! base64 of HMAC-SHA1, keyed with the account's auth token, over the full URL the request was
//! sent to (scheme, host, path and query string, exactly as configured) followed by every POST
//! parameter's name and value, sorted by name. [`receive`] checks the signature and reads the
//! call; the answer is TwiML ([`crate::twiml`]).
//!
//! Two details follow Twilio's own SDKs rather than the prose of the docs:
//! - parameters that share a name are sorted by value too (twilio-python sorts the values of
//!   a repeated name; twilio-node also drops repeated identical values, so that form is
//!   accepted as well);
//! - the URL is tried as given, without its port, and with the scheme's default port added
//!   (`:443` for https, `:80` otherwise), as the SDKs' validators do, since Twilio's signing
//!   side is not consistent about ports behind proxies and load balancers.
//!
//! What the signature does not cover, by Twilio's design (any validator that matches
//! Twilio's, the SDKs' included, accepts these):
//! - the body's bytes: two bodies that decode to the same parameters (`a+b` and `a%20b`, a
//!   stray `&`) carry the same signature;
//! - the boundaries between names and values, which are concatenated without separators: a
//!   body whose `=` or `&` were moved, so that the sorted concatenation is unchanged, verifies
//!   (`CallerCountry=US` as `CallerCountryUS=`; `CallSid=X&CallSidLegacy=Y` as
//!   `CallSid=XCallSidLegacyY`). Such a body mostly loses a field (and is then refused as
//!   malformed); the fuzz tests check that nothing else gets through;
//! - time: there is no timestamp, so a captured request can be replayed. The daemon is safe
//!   against that because a call's requests all map to one contact id
//!   ([`CallRequest::inbound`]) that the router deduplicates on.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use switchboard_channel::same;

use crate::{ChannelError, Inbound, bounded, call_inbound, is_dtmf};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// The largest body read; Twilio's voice requests are a few hundred bytes.
pub const MAX_BODY: usize = 32 * 1024;

/// The most parameters read from one body.
pub const MAX_PARAMS: usize = 128;

/// Longest `CallSid`, `AccountSid`, `ParentCallSid` accepted (Twilio's are 34 bytes; other
/// TwiML providers use longer ids).
const MAX_SID: usize = 128;
/// Longest `From`, `To`, `ForwardedFrom`, `CallerName` (numbers, `client:` and SIP URIs).
const MAX_ADDRESS: usize = 256;
/// Longest `Digits`.
const MAX_DIGITS: usize = 64;

/// Reads a form-encoded body into its parameters, in body order. Bytes that are not UTF-8
/// once percent-decoded become U+FFFD (`form_urlencoded`'s behaviour); Twilio sends UTF-8, so
/// a body that is not is not Twilio's, and fails the signature check unless it decodes to
/// the very parameters Twilio signed.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, ChannelError> {
    if body.len() > MAX_BODY {
        return Err(ChannelError::Malformed(format!(
            "body of {} bytes, more than the {MAX_BODY} allowed",
            body.len()
        )));
    }
    let mut params = Vec::new();
    for (name, value) in form_urlencoded::parse(body) {
        if params.len() == MAX_PARAMS {
            return Err(ChannelError::Malformed(format!(
                "more than {MAX_PARAMS} parameters"
            )));
        }
        params.push((name.into_owned(), value.into_owned()));
    }
    Ok(params)
}

/// The `X-Twilio-Signature` value for a request to `url` with these POST parameters.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sign_sorted(auth_token, url, sorted.into_iter())
}

fn sign_sorted<'a>(
    auth_token: &[u8],
    url: &str,
    sorted: impl Iterator<Item = &'a (String, String)>,
) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks an `X-Twilio-Signature` header for a request to `url` with these POST parameters.
/// The URL is also tried without its port and with the scheme's default port (see the module
/// docs); every comparison is constant-time.
pub fn verify(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), ChannelError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ChannelError::Signature(format!("missing {SIGNATURE_HEADER}")))?;
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut deduplicated = sorted.clone();
    deduplicated.dedup();
    let forms: &[&[&(String, String)]] = if deduplicated.len() == sorted.len() {
        &[&sorted]
    } else {
        &[&sorted, &deduplicated]
    };
    let mut matched = false;
    for url in url_forms(url) {
        for form in forms {
            let expected = sign_sorted(auth_token, &url, form.iter().copied());
            matched |= same(&expected, header);
        }
    }
    if matched {
        Ok(())
    } else {
        Err(ChannelError::Signature(format!(
            "{SIGNATURE_HEADER} does not match the URL and parameters"
        )))
    }
}

/// The URL as given, without its port, and with the scheme's default port; duplicates
/// removed. A URL without `scheme://` is only tried as given.
fn url_forms(url: &str) -> Vec<String> {
    let mut forms = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return forms;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // The port follows the host, after any user info; an IPv6 host is in brackets.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    let host_end = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..]
            .find(':')
            .map_or(host_port.len(), |colon| bracket + colon),
        None => host_port.find(':').unwrap_or(host_port.len()),
    };
    let base = format!(
        "{scheme}://{}{}",
        &authority[..host_start],
        &host_port[..host_end]
    );
    match &host_port[host_end..] {
        "" => {
            let default = if scheme.eq_ignore_ascii_case("https") {
                "443"
            } else {
                "80"
            };
            forms.push(format!("{base}:{default}{tail}"));
        }
        port if port.len() > 1 && port[1..].bytes().all(|b| b.is_ascii_digit()) => {
            forms.push(format!("{base}{tail}"));
        }
        _ => {}
    }
    forms.dedup();
    forms
}

/// Where a call is in its life, from `CallStatus`
/// (<https://www.twilio.com/docs/voice/api/call-resource#call-status-values>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Waiting to be placed.
    Queued,
    /// Placed (sent by status callbacks subscribed to the `initiated` event).
    Initiated,
    /// Ringing.
    Ringing,
    /// Answered and going on; an incoming call in an IVR is in progress.
    InProgress,
    /// Answered, then ended by either side.
    Completed,
    /// The called party was busy.
    Busy,
    /// Could not be placed (bad number, carrier error).
    Failed,
    /// Rang out unanswered.
    NoAnswer,
    /// Hung up while queued or ringing.
    Canceled,
}

impl CallStatus {
    /// Reads Twilio's spelling (`in-progress`, `no-answer`, …).
    pub fn parse(value: &str) -> Option<CallStatus> {
        Some(match value {
            "queued" => CallStatus::Queued,
            "initiated" => CallStatus::Initiated,
            "ringing" => CallStatus::Ringing,
            "in-progress" => CallStatus::InProgress,
            "completed" => CallStatus::Completed,
            "busy" => CallStatus::Busy,
            "failed" => CallStatus::Failed,
            "no-answer" => CallStatus::NoAnswer,
            "canceled" => CallStatus::Canceled,
            _ => return None,
        })
    }

    /// Twilio's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
        }
    }

    /// The call is over: nothing more will happen on it. A final status while its contact
    /// waits means the caller gave up (abandon); while an agent owns it, the call is done
    /// (close, freeing the agent's voice slot).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }

    /// The call was answered and has ended (`completed`): for an incoming call, Twilio
    /// answered it, so this is the caller or the agent hanging up, not a failure to connect.
    pub fn answered_then_ended(self) -> bool {
        self == CallStatus::Completed
    }

    /// The call ended without ever being answered (busy, failed, no answer, canceled).
    pub fn ended_unanswered(self) -> bool {
        self.is_final() && !self.answered_then_ended()
    }
}

/// Who placed the call, from `Direction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A customer called one of the account's numbers (`inbound`).
    Inbound,
    /// Placed through the REST API (`outbound-api`).
    OutboundApi,
    /// Placed by a `<Dial>` (`outbound-dial`): the leg to an agent.
    OutboundDial,
    /// Absent, or a value this crate does not know.
    Unknown,
}

impl Direction {
    fn parse(value: Option<&str>) -> Direction {
        match value {
            Some("inbound") => Direction::Inbound,
            Some("outbound-api") => Direction::OutboundApi,
            Some("outbound-dial") => Direction::OutboundDial,
            _ => Direction::Unknown,
        }
    }
}

/// One voice webhook request, checked: an incoming call, a `<Gather>` result or a status
/// callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// `CallSid`: the call, stable across all of its requests.
    pub call_sid: String,
    /// `AccountSid`: the provider account the call belongs to.
    pub account_sid: String,
    /// `From`: the caller (E.164 number, `client:name` or a SIP URI; may be empty or
    /// `anonymous` for withheld numbers).
    pub from: String,
    /// `To`: the number or address called.
    pub to: String,
    /// `CallStatus`.
    pub status: CallStatus,
    /// `Direction`.
    pub direction: Direction,
    /// `Digits`: what the caller keyed in, on a `<Gather>` action request.
    pub digits: Option<String>,
    /// `CallerName`: caller ID name, when the number has CNAM lookup.
    pub caller_name: Option<String>,
    /// `ForwardedFrom`: the number that forwarded the call, when the carrier tells.
    pub forwarded_from: Option<String>,
    /// `ParentCallSid`: the call that created this one (a `<Dial>` leg's inbound call).
    pub parent_call_sid: Option<String>,
    /// `CallDuration`: seconds the call lasted, on a `completed` status callback.
    pub call_duration: Option<u64>,
    /// `SequenceNumber`: the order of status callbacks for one call (they may arrive out of
    /// order).
    pub sequence_number: Option<u64>,
    /// Every other parameter (`FromCountry`, `CallbackSource`, `ApiVersion`, …), for
    /// classification rules; the first value of a repeated name.
    pub others: BTreeMap<String, String>,
}

/// Verifies the signature of a request sent to `url` and reads the call. `url` is the full
/// URL the provider requested, query string included, as configured there (behind a proxy,
/// the public URL, not the local one).
pub fn receive(
    auth_token: &[u8],
    url: &str,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<CallRequest, ChannelError> {
    let params = parse_form(body)?;
    verify(auth_token, url, &params, signature_header)?;
    CallRequest::from_params(params)
}

impl CallRequest {
    /// Reads a call from parameters whose signature was checked.
    pub fn from_params(params: Vec<(String, String)>) -> Result<CallRequest, ChannelError> {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in params {
            fields.entry(name).or_insert(value);
        }
        let mut take = |name: &str, max: usize| -> Result<Option<String>, ChannelError> {
            match fields.remove(name) {
                Some(v) => bounded(name, &v, max, false).map(|()| Some(v)),
                None => Ok(None),
            }
        };
        let required = |name: &str, value: Option<String>| {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ChannelError::Malformed(format!("{name} is missing")))
        };
        let call_sid = required("CallSid", take("CallSid", MAX_SID)?)?;
        let account_sid = required("AccountSid", take("AccountSid", MAX_SID)?)?;
        let from = take("From", MAX_ADDRESS)?.unwrap_or_default();
        let to = take("To", MAX_ADDRESS)?.unwrap_or_default();
        let status_text = required("CallStatus", take("CallStatus", 32)?)?;
        let status = CallStatus::parse(&status_text).ok_or_else(|| {
            ChannelError::Malformed(format!(
                "CallStatus {status_text:?} is not one of queued, initiated, ringing, \
                 in-progress, completed, busy, failed, no-answer, canceled"
            ))
        })?;
        let direction = Direction::parse(take("Direction", 32)?.as_deref());
        let digits = take("Digits", MAX_DIGITS)?;
        if let Some(d) = &digits
            && !is_dtmf(d)
        {
            return Err(ChannelError::Malformed(
                "Digits: only 0-9, *, # and w expected".into(),
            ));
        }
        let caller_name = take("CallerName", MAX_ADDRESS)?;
        let forwarded_from = take("ForwardedFrom", MAX_ADDRESS)?;
        let parent_call_sid = take("ParentCallSid", MAX_SID)?;
        let mut number = |name: &str| -> Result<Option<u64>, ChannelError> {
            take(name, 20)?
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        ChannelError::Malformed(format!("{name}: a whole number expected"))
                    })
                })
                .transpose()
        };
        let call_duration = number("CallDuration")?;
        let sequence_number = number("SequenceNumber")?;
        Ok(CallRequest {
            call_sid,
            account_sid,
            from,
            to,
            status,
            direction,
            digits,
            caller_name,
            forwarded_from,
            parent_call_sid,
            call_duration,
            sequence_number,
            others: fields,
        })
    }

    /// The voice contact this call becomes, under an id that is the same for every request
    /// of the call (the router deduplicates on it). The caller is the customer and the call
    /// the conversation; the called number and any IVR digits go into the attributes, for
    /// classification rules.
    pub fn inbound(&self) -> Inbound {
        let mut attributes = BTreeMap::new();
        attributes.insert("to".into(), self.to.clone().into());
        attributes.insert("account".into(), self.account_sid.clone().into());
        if let Some(d) = &self.digits {
            attributes.insert("digits".into(), d.clone().into());
        }
        if let Some(name) = &self.caller_name {
            attributes.insert("caller_name".into(), name.clone().into());
        }
        for (key, attribute) in [
            ("FromCountry", "from_country"),
            ("FromState", "from_state"),
            ("FromCity", "from_city"),
        ] {
            if let Some(v) = self.others.get(key) {
                attributes.insert(attribute.into(), v.clone().into());
            }
        }
        call_inbound("twilio", &self.call_sid, &self.from, attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn url_forms_strip_and_add_ports() {
        assert_eq!(
            url_forms("https://a.example.com/x?y=1"),
            [
                "https://a.example.com/x?y=1",
                "https://a.example.com:443/x?y=1"
            ]
        );
        assert_eq!(
            url_forms("http://a.example.com:8080/x"),
            ["http://a.example.com:8080/x", "http://a.example.com/x"]
        );
        assert_eq!(
            url_forms("https://u:p@[::1]:8443?q"),
            ["https://u:p@[::1]:8443?q", "https://u:p@[::1]?q"]
        );
        assert_eq!(
            url_forms("https://[::1]/"),
            ["https://[::1]/", "https://[::1]:443/"]
        );
        assert_eq!(url_forms("not a url"), ["not a url"]);
    }

    #[test]
    fn repeated_names_sort_by_value_and_identical_repeats_may_be_collapsed() {
        let token = b"secret";
        let url = "https://example.com/voice";
        let params = pairs(&[("B", "2"), ("A", "z"), ("A", "y")]);
        // Sorted by name, then value: A y, A z, B 2.
        let expected = signature(token, url, &pairs(&[("A", "y"), ("A", "z"), ("B", "2")]));
        assert_eq!(signature(token, url, &params), expected);
        verify(token, url, &params, Some(&expected)).unwrap();
        // twilio-node signs a repeated identical value once.
        let repeated = pairs(&[("A", "y"), ("A", "y")]);
        let once = signature(token, url, &pairs(&[("A", "y")]));
        verify(token, url, &repeated, Some(&once)).unwrap();
    }

    #[test]
    fn a_missing_or_wrong_signature_is_a_401() {
        let params = pairs(&[("CallSid", "CA1")]);
        let err = verify(b"t", "https://x/", &params, None).unwrap_err();
        assert_eq!(err.status(), 401);
        let err = verify(b"t", "https://x/", &params, Some("  ")).unwrap_err();
        assert_eq!(err.status(), 401);
        let good = signature(b"t", "https://x/", &params);
        let err = verify(b"u", "https://x/", &params, Some(&good)).unwrap_err();
        assert_eq!(err.reason(), "bad_signature");
    }

    #[test]
    fn statuses_say_whether_the_call_is_over() {
        for s in [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "completed",
            "busy",
            "failed",
            "no-answer",
            "canceled",
        ] {
            assert_eq!(CallStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(!CallStatus::InProgress.is_final());
        assert!(!CallStatus::Ringing.is_final());
        assert!(CallStatus::Completed.answered_then_ended());
        assert!(CallStatus::NoAnswer.ended_unanswered());
        assert!(CallStatus::Canceled.is_final());
        assert!(!CallStatus::Completed.ended_unanswered());
        assert_eq!(CallStatus::parse("In-Progress"), None);
    }

    #[test]
    fn missing_and_oversized_fields_are_named() {
        let err = CallRequest::from_params(pairs(&[("AccountSid", "AC1")])).unwrap_err();
        assert_eq!(err.to_string(), "malformed body: CallSid is missing");
        let long = "9".repeat(MAX_ADDRESS + 1);
        let err = CallRequest::from_params(pairs(&[
            ("CallSid", "CA1"),
            ("AccountSid", "AC1"),
            ("CallStatus", "ringing"),
            ("From", &long),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("From"), "{err}");
        let err = CallRequest::from_params(pairs(&[
            ("CallSid", "CA1"),
            ("AccountSid", "AC1"),
            ("CallStatus", "ringing"),
            ("Digits", "12<script>"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("Digits"), "{err}");
    }

    #[test]
    fn a_body_is_bounded() {
        assert!(parse_form(&vec![b'a'; MAX_BODY + 1]).is_err());
        let many = "a=1&".repeat(MAX_PARAMS + 1);
        assert!(parse_form(many.as_bytes()).is_err());
        assert_eq!(
            parse_form(b"a=1+2&b=%2B%26").unwrap(),
            pairs(&[("a", "1 2"), ("b", "+&")])
        );
    }
}
