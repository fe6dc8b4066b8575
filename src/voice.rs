//! The voice channel in the daemon: calls from Twilio-compatible providers (`type =
//! "twilio"`) and from other telephony through the generic JSON IVR webhook (`type =
//! "ivr"`) become voice contacts. While a caller waits they hear their place in line and
//! the expected wait, refreshed every `hold_for`; once an agent accepts, the call is put
//! through to the agent's `dial` target. A caller who hangs up while waiting abandons the
//! contact; a call that ends after an agent took it goes to wrap-up, which frees the slot.
//!
//! A Twilio call goes through these requests, all to the source's URL, told apart by the
//! `step` query parameter (the provider signs the URL with its query):
//! - no step: the incoming call. With `digits` configured, a `<Gather>` menu; otherwise the
//!   call is queued at once.
//! - `step=queue`: the menu's answer (`Digits`), or a retry of queueing; the call is
//!   published as a contact and the caller told where they stand.
//! - `step=wait`: the waiting loop's `<Redirect>`; where the call stands now, or `<Dial>`.
//! - `step=dialed`: the `<Dial>` to the agent ended; the call ends.
//! - `step=status`: the number's call status callback (configure it in the provider's
//!   console as `<public_url>?step=status`): a final status ends the conversation.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_bus::Envelope;
use switchboard_channel::Inbound;
use switchboard_channel_voice::twiml::{self, DialTarget, Say, Verb};
use switchboard_channel_voice::{ivr, twilio};
use tracing::{info, warn};

use crate::api::{AppState, publish};
use crate::channels::{Placed, query_pairs, refused, standing, wait_seconds, with_defaults};
use crate::config::SourceConfig;
use crate::router::now;

/// Checks an agent's dial target: `client:<name>`, `+<E.164 digits>` or `sip:<uri>`.
pub fn dial_target(dial: &str) -> Result<(), String> {
    DialTarget::parse(dial).map(|_| ())
}

/// How long a `<Dial>` rings the agent.
const RING_SECONDS: u32 = 30;

/// `POST /v1/channels/<name>` for a `twilio` source.
pub async fn twilio(
    s: &AppState,
    name: &str,
    source: &SourceConfig,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // The provider signed the URL it requested: the public one, with this query.
    let url = match uri.query() {
        Some(q) => format!("{}?{q}", source.public_url),
        None => source.public_url.clone(),
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    let call = match twilio::receive(source.secret.as_bytes(), &url, signature, body) {
        Ok(call) => call,
        Err(e) => return refused(s, name, &e),
    };
    let query = query_pairs(uri);
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let step = param("step").unwrap_or("");
    let calls = Twiml::new(source);
    let Inbound { id, mut message } = call.inbound();
    match step {
        "status" => {
            if call.status.is_final() {
                message.summary = format!("Call ended: {}", call.status.as_str());
                let end = Envelope::end(format!("{id}:end"), now(), message);
                if let Err(response) = publish(s, &end).await {
                    return *response;
                }
                info!(source = name, call = %call.call_sid, status = call.status.as_str(), "call ended");
            }
            StatusCode::NO_CONTENT.into_response()
        }
        "dialed" => calls.render(twiml::Response::new().hangup()),
        "wait" => {
            calls
                .waiting(s, twiml::Response::new(), &id, Duration::ZERO)
                .await
        }
        "" if source.menu_digits > 0 && call.digits.is_none() => calls.menu(),
        _ => {
            // Digits come with the menu's answer, or in the query of a retry; the rules
            // route on them.
            let digits = call.digits.as_deref().or(param("digits"));
            if let Some(d) = digits {
                message.attributes.insert("digits".into(), json!(d));
            }
            let envelope = Envelope::new(id.clone(), now(), with_defaults(source, message));
            if publish(s, &envelope).await.is_err() {
                // Nothing was accepted: hold the caller and try again, digits kept.
                let retry = calls.url("queue", digits);
                return calls.render(
                    calls
                        .say(twiml::Response::new(), "Please hold.")
                        .pause(2)
                        .redirect(retry),
                );
            }
            let mut answer = twiml::Response::new();
            if step.is_empty() && !source.greeting.is_empty() {
                answer = calls.say(answer, &source.greeting);
            }
            calls.waiting(s, answer, &id, source.answer_within).await
        }
    }
}

/// Builds a source's TwiML.
struct Twiml<'a> {
    source: &'a SourceConfig,
}

impl<'a> Twiml<'a> {
    fn new(source: &'a SourceConfig) -> Self {
        Twiml { source }
    }

    /// The source's URL for a step.
    fn url(&self, step: &str, digits: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("step", step);
        if let Some(d) = digits {
            q.append_pair("digits", d);
        }
        format!("{}?{}", self.source.public_url, q.finish())
    }

    fn said(&self, text: &str) -> Say {
        let nonempty = |v: &String| (!v.is_empty()).then(|| v.clone());
        Say {
            text: text.to_owned(),
            voice: nonempty(&self.source.voice),
            language: nonempty(&self.source.language),
        }
    }

    fn say(&self, r: twiml::Response, text: &str) -> twiml::Response {
        r.verb(Verb::Say(self.said(text)))
    }

    fn render(&self, r: twiml::Response) -> Response {
        (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            r.render(),
        )
            .into_response()
    }

    /// The keypad menu; without an answer the call is queued without a choice.
    fn menu(&self) -> Response {
        let prompt = if self.source.greeting.is_empty() {
            Vec::new()
        } else {
            vec![twiml::Prompt::Say(self.said(&self.source.greeting))]
        };
        self.render(
            twiml::Response::new()
                .verb(Verb::Gather {
                    num_digits: Some(self.source.menu_digits),
                    action: Some(self.url("queue", None)),
                    method: Some(twiml::Method::Post),
                    timeout: Some(5),
                    prompt,
                })
                .redirect(self.url("queue", None)),
        )
    }

    /// What a queued caller hears next: where they stand and a hold, or the agent.
    async fn waiting(
        &self,
        s: &AppState,
        answer: twiml::Response,
        id: &str,
        within: Duration,
    ) -> Response {
        let hold = self.source.hold_for.as_secs().clamp(1, 600) as u32;
        let placed = standing(s, id, within).await;
        let answer = match placed {
            Some(Placed {
                standing,
                dial,
                agent,
            }) => match standing.state {
                "waiting" => {
                    let place = standing.position.unwrap_or(0) + 1;
                    let text = twiml::wait_announcement(place, standing.expected_wait);
                    self.hold(self.say(answer, &text), hold)
                }
                // An agent is being asked: check again shortly.
                "offered" => answer.pause(2).redirect(self.url("wait", None)),
                _ => match dial.as_deref().map(DialTarget::parse) {
                    Some(Ok(target)) => {
                        answer.dial(target, Some(RING_SECONDS), Some(self.url("dialed", None)))
                    }
                    _ => {
                        warn!(
                            agent = agent.as_deref().unwrap_or("?"),
                            "the agent holding a call has no dial target; set `dial` on the agent"
                        );
                        self.hold(
                            self.say(answer, "Please hold; your agent will be with you shortly."),
                            hold,
                        )
                    }
                },
            },
            None => match s.store.contact(id).await {
                // The contact ended while the caller was on the line (closed by its agent).
                Ok(Some(r)) if r.ended_at.is_some() => {
                    self.say(answer, "Thank you for calling. Goodbye.").hangup()
                }
                // Not placed yet (or placed by another process): hold and ask again.
                _ => self.hold(self.say(answer, "Please hold."), hold),
            },
        };
        self.render(answer)
    }

    /// Hold music or silence, then back to the wait step.
    fn hold(&self, answer: twiml::Response, seconds: u32) -> twiml::Response {
        let answer = if self.source.hold_music.is_empty() {
            answer.pause(seconds)
        } else {
            answer.verb(Verb::Play {
                url: self.source.hold_music.clone(),
            })
        };
        answer.redirect(self.url("wait", None))
    }
}

/// `POST /v1/channels/<name>` for an `ivr` source: the generic JSON IVR webhook.
pub async fn ivr(
    s: &AppState,
    name: &str,
    source: &SourceConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let signature = headers
        .get(switchboard_delivery::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    let unix = now().as_millis() / 1000;
    let request = match ivr::receive(
        source.secret.as_bytes(),
        signature,
        body,
        unix,
        source.replay_window.as_secs(),
    ) {
        Ok(r) => r,
        Err(e) => return refused(s, name, &e),
    };
    let Inbound { id, message } = request.inbound();
    let mut answer = ivr::IvrAnswer {
        call_id: request.call_id.clone(),
        contact: None,
        state: ivr::IvrState::Waiting,
        position: None,
        expected_wait_seconds: None,
        announcement: None,
        agent: None,
        retry_after_seconds: Some(source.hold_for.as_secs().max(1)),
    };
    if request.event.is_final() {
        let end = Envelope::end(format!("{id}:end"), now(), message);
        if let Err(response) = publish(s, &end).await {
            return *response;
        }
        answer.state = ivr::IvrState::Ended;
        answer.retry_after_seconds = None;
        return Json(answer).into_response();
    }
    let within = if request.event == ivr::IvrEvent::Wait {
        Duration::ZERO
    } else {
        let envelope = Envelope::new(id.clone(), now(), with_defaults(source, message));
        if let Err(response) = publish(s, &envelope).await {
            return *response;
        }
        source.answer_within
    };
    match standing(s, &id, within).await {
        Some(p) => {
            let st = &p.standing;
            answer.contact = Some(st.contact.clone());
            answer.expected_wait_seconds = st.expected_wait.map(wait_seconds);
            match st.state {
                "waiting" => {
                    let place = st.position.unwrap_or(0) + 1;
                    answer.position = Some(place);
                    answer.announcement = Some(twiml::wait_announcement(place, st.expected_wait));
                }
                "offered" => answer.state = ivr::IvrState::Offered,
                _ => match p.dial {
                    Some(dial) => {
                        answer.state = ivr::IvrState::Connect;
                        answer.agent = Some(ivr::IvrAgent {
                            name: p.agent.unwrap_or_default(),
                            dial,
                        });
                        answer.retry_after_seconds = None;
                    }
                    None => {
                        warn!(
                            agent = p.agent.as_deref().unwrap_or("?"),
                            "the agent holding a call has no dial target; set `dial` on the agent"
                        );
                        answer.state = ivr::IvrState::Offered;
                    }
                },
            }
        }
        None => {
            if let Ok(Some(r)) = s.store.contact(&id).await
                && r.ended_at.is_some()
            {
                answer.state = ivr::IvrState::Ended;
                answer.contact = Some(r.id);
                answer.retry_after_seconds = None;
            }
        }
    }
    Json(answer).into_response()
}
