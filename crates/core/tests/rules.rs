//! One test per routing rule of DESIGN.md's "Routing policy" and the list.

mod support;

use std::time::Duration;

use support::{World, profile, skills, teams};
use switchboard_core::{
    AgentId, Caps, Channel, CloseReason, ContactState, Criterion, Decision, EngineError, Event,
    OfferOutcome, OfflineBehaviour, Policy, Presence, PresenceReason, QueueId, QueuePolicy,
    RequeueReason, Route, StickyPolicy, TeamId, Time, TransferTarget, Urgency, WaitKind,
};

const EMAIL: Channel = Channel::Email;
const CHAT: Channel = Channel::Chat;
const VOICE: Channel = Channel::Voice;

fn world() -> World {
    World::new(Policy::default())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ----- order of waiting contacts ------------------------------------------------------------

#[test]
fn a_voice_call_is_served_before_an_email_that_arrived_earlier() {
    let mut w = world();
    let email = w.contact(EMAIL, &[]);
    w.wait(5);
    let call = w.contact(VOICE, &[]);
    // One agent who serves both, one slot in total.
    let mut p = profile(&[], &[(EMAIL, 1), (VOICE, 1)]);
    p.caps.total = Some(1);
    let a = w.agent_with(1, p);
    assert_eq!(w.offered_to(call), Some(a));
    assert_eq!(w.state(email), Some(ContactState::Waiting));
}

#[test]
fn an_email_that_waited_long_enough_beats_a_fresh_chat() {
    let mut w = world();
    let email = w.contact(EMAIL, &[]);
    // Email's normal target is 4 h, chat's 60 s: after 4 h the email's deadline is now,
    // a fresh chat's is a minute away.
    w.wait(4 * 3600);
    let chat = w.contact(CHAT, &[]);
    let mut p = profile(&[], &[(EMAIL, 1), (CHAT, 1)]);
    p.caps.total = Some(1);
    let a = w.agent_with(1, p);
    assert_eq!(w.offered_to(email), Some(a));
    assert_eq!(w.state(chat), Some(ContactState::Waiting));
}

#[test]
fn urgency_shortens_the_deadline() {
    let mut w = world();
    let normal = w.contact(CHAT, &[]);
    let mut urgent = w.new_contact(CHAT, &[]);
    urgent.urgency = Urgency::Urgent;
    let urgent = w.arrive(urgent);
    let deadline = |w: &World, c| w.engine.contact(c).unwrap().deadline();
    assert_eq!(deadline(&w, normal), w.now() + secs(60));
    assert_eq!(deadline(&w, urgent), w.now() + secs(15));
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    assert_eq!(w.offered_to(urgent), Some(a));
    assert_eq!(w.offered_to(normal), None);
}

#[test]
fn a_queue_target_overrides_the_channel_target() {
    let mut policy = Policy::default();
    let mut vip = QueuePolicy::open("vip");
    vip.targets[EMAIL.index()][Urgency::Normal.index()] = Some(secs(300));
    policy.queues.push(vip);
    let mut w = World::new(policy);
    let mut c = w.new_contact(EMAIL, &[]);
    c.queue = QueueId(1);
    let c = w.arrive(c);
    assert_eq!(w.engine.contact(c).unwrap().deadline(), w.now() + secs(300));
}

// ----- eligibility ----------------------------------------------------------------------------

#[test]
fn only_agents_with_every_required_skill_are_offered() {
    let mut w = world();
    let only_a = w.agent(1, &[(1, 9)], &[(CHAT, 3)]);
    let both = w.agent(2, &[(1, 2), (2, 2)], &[(CHAT, 3)]);
    let c = w.contact(CHAT, &[1, 2]);
    assert_eq!(w.offered_to(c), Some(both));
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c), Some(only_a), "higher proficiency wins");
}

#[test]
fn per_channel_caps_are_never_exceeded() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 2), (EMAIL, 1)]);
    let chats: Vec<_> = (0..3).map(|_| w.contact(CHAT, &[])).collect();
    assert_eq!(w.offered_to(chats[0]), Some(a));
    assert_eq!(w.offered_to(chats[1]), Some(a));
    assert_eq!(w.offered_to(chats[2]), None);
    let email = w.contact(EMAIL, &[]);
    assert_eq!(w.offered_to(email), Some(a), "the email cap is separate");
    assert_eq!(w.engine.agent(a).unwrap().load(CHAT), 2);
}

#[test]
fn the_total_cap_binds_across_channels() {
    let mut w = world();
    let mut p = profile(&[], &[(CHAT, 3), (EMAIL, 5)]);
    p.caps.total = Some(2);
    let a = w.agent_with(1, p);
    let c1 = w.contact(CHAT, &[]);
    let c2 = w.contact(EMAIL, &[]);
    let c3 = w.contact(EMAIL, &[]);
    assert_eq!(w.offered_to(c1), Some(a));
    assert_eq!(w.offered_to(c2), Some(a));
    assert_eq!(w.offered_to(c3), None);
    match w.engine.wait_reason(c3).unwrap().kind {
        WaitKind::AllAtCapacity { available: 1 } => {}
        other => panic!("unexpected reason {other:?}"),
    }
}

#[test]
fn an_agent_on_a_call_is_offered_nothing_else() {
    let mut w = world();
    let a = w.agent(1, &[], &[(VOICE, 1), (CHAT, 3)]);
    let call = w.contact(VOICE, &[]);
    assert_eq!(w.offered_to(call), Some(a));
    let chat = w.contact(CHAT, &[]);
    assert_eq!(w.offered_to(chat), None, "voice is exclusive");
    w.accept(call);
    w.close(call);
    assert_eq!(
        w.offered_to(chat),
        Some(a),
        "the chat comes once the call ends"
    );
}

#[test]
fn away_and_offline_agents_are_not_offered() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 3)]);
    w.presence(a, Presence::Away);
    let c = w.contact(CHAT, &[]);
    assert_eq!(w.offered_to(c), None);
    match w.engine.wait_reason(c).unwrap().kind {
        WaitKind::NoAgentAvailable { matching: 1, .. } => {}
        other => panic!("unexpected reason {other:?}"),
    }
    w.presence(a, Presence::Available);
    assert_eq!(w.offered_to(c), Some(a));
}

// ----- choice among eligible agents -----------------------------------------------------------

#[test]
fn the_best_proficiency_wins_then_the_lowest_load_then_the_longest_idle() {
    let mut w = world();
    let low = w.agent(1, &[(1, 3)], &[(CHAT, 3)]);
    let high = w.agent(2, &[(1, 8)], &[(CHAT, 3)]);
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c), Some(high));
    let d = w.take();
    let Some(Decision::Offered { explanation, .. }) = d
        .iter()
        .rev()
        .find(|d| matches!(d, Decision::Offered { .. }))
    else {
        panic!("no offer in {d:?}");
    };
    assert_eq!(explanation.decided_by, Criterion::Proficiency);
    assert_eq!(explanation.winner.agent, high);
    assert_eq!(explanation.runners_up[0].agent, low);
    assert_eq!(explanation.eligible, 2);
    assert_eq!(
        explanation.route,
        Route::Skills {
            skills: skills(&[1]),
            teams: teams(&[])
        }
    );

    // Equal proficiency: the less loaded agent wins.
    let mut w = world();
    let busy = w.agent(1, &[(1, 5)], &[(CHAT, 3)]);
    let first = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(first), Some(busy));
    w.wait(1);
    let idle = w.agent(2, &[(1, 5)], &[(CHAT, 3)]);
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c), Some(idle));
    let offers: Vec<_> = w
        .take()
        .into_iter()
        .filter_map(|d| match d {
            Decision::Offered { explanation, .. } => Some(explanation.decided_by),
            _ => None,
        })
        .collect();
    assert_eq!(offers.last(), Some(&Criterion::LoadRatio));

    // Equal proficiency and load: the one idle longest wins.
    let mut w = world();
    let early = w.agent(1, &[(1, 5)], &[(CHAT, 3)]);
    w.wait(10);
    let late = w.agent(2, &[(1, 5)], &[(CHAT, 3)]);
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c), Some(early));
    let c2 = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c2), Some(late));
}

// ----- offers -----------------------------------------------------------------------------------

#[test]
fn accept_makes_the_agent_the_owner() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[]);
    w.wait(3);
    w.accept(c);
    assert_eq!(w.state(c), Some(ContactState::Assigned { agent: a }));
    let assigned = w.take().into_iter().find_map(|d| match d {
        Decision::Assigned {
            waited,
            within_target,
            ..
        } => Some((waited, within_target)),
        _ => None,
    });
    assert_eq!(assigned, Some((secs(3), true)));
    // A follow-up in the conversation finds its owner without routing.
    let conv = w.engine.contact(c).unwrap().conversation().to_owned();
    assert_eq!(
        w.engine.conversation(&conv).unwrap().state().agent(),
        Some(a)
    );
    // The same offer cannot be accepted twice, nor by another agent.
    let err = w.event(Event::Accept {
        offer: switchboard_core::OfferId(1),
        agent: a,
    });
    assert_eq!(
        err,
        Err(EngineError::OfferNotPending(switchboard_core::OfferId(1)))
    );
}

#[test]
fn only_the_offered_agent_may_answer_an_offer() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let b = w.agent(2, &[], &[(EMAIL, 1)]);
    let c = w.contact(CHAT, &[]);
    let (offer, to) = w.offer(c).unwrap();
    assert_eq!(to, a);
    assert_eq!(
        w.event(Event::Accept { offer, agent: b }),
        Err(EngineError::OfferNotForAgent {
            offer,
            to: a,
            agent: b
        })
    );
    assert_eq!(w.offered_to(c), Some(a));
}

#[test]
fn a_declined_contact_goes_to_the_next_agent_and_never_back() {
    let mut w = world();
    let a = w.agent(1, &[(1, 9)], &[(CHAT, 1)]);
    let b = w.agent(2, &[(1, 5)], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[1]);
    let deadline = w.engine.contact(c).unwrap().deadline();
    assert_eq!(w.decline(c), a);
    assert_eq!(w.offered_to(c), Some(b));
    assert_eq!(
        w.engine.contact(c).unwrap().deadline(),
        deadline,
        "arrival kept"
    );
    assert_eq!(w.decline(c), b);
    assert_eq!(w.offered_to(c), None);
    match w.engine.wait_reason(c).unwrap().kind {
        WaitKind::AllDeclined { free: 2 } => {}
        other => panic!("unexpected reason {other:?}"),
    }
    // A new agent can still take it.
    let d = w.agent(3, &[(1, 1)], &[(CHAT, 1)]);
    assert_eq!(w.offered_to(c), Some(d));
}

#[test]
fn an_expired_offer_goes_to_the_next_agent_and_repeated_misses_set_the_agent_away() {
    let policy = Policy {
        max_missed_offers: 2,
        ..Policy::default()
    };
    let mut w = World::new(policy);
    let a = w.agent(1, &[(1, 9)], &[(CHAT, 1)]);
    let c1 = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c1), Some(a));
    w.wait(30); // chat's offer timeout
    assert_eq!(w.state(c1), Some(ContactState::Waiting));
    assert!(w.take().iter().any(|d| matches!(
        d,
        Decision::OfferEnded { outcome: OfferOutcome::Expired, agent, .. } if *agent == a
    )));
    let c2 = w.contact(CHAT, &[1]);
    assert_eq!(w.offered_to(c2), Some(a));
    w.wait(30);
    assert_eq!(w.engine.agent(a).unwrap().presence(), Presence::Away);
    assert!(w.take().iter().any(|d| matches!(
        d,
        Decision::PresenceChanged {
            presence: Presence::Away,
            reason: PresenceReason::MissedOffers,
            ..
        }
    )));
    let b = w.agent(2, &[(1, 1)], &[(CHAT, 2)]);
    assert_eq!(w.offered_to(c1), Some(b));
    assert_eq!(w.offered_to(c2), Some(b));
}

#[test]
fn answering_resets_the_missed_offer_count() {
    let policy = Policy {
        max_missed_offers: 2,
        ..Policy::default()
    };
    let mut w = World::new(policy);
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[]);
    w.wait(30);
    assert_eq!(w.engine.agent(a).unwrap().missed(), 1);
    let c2 = w.contact(CHAT, &[]);
    w.accept(c2);
    assert_eq!(w.engine.agent(a).unwrap().missed(), 0);
    assert_eq!(w.state(c), Some(ContactState::Waiting));
}

// ----- sticky routing ----------------------------------------------------------------------------

fn sticky_policy() -> Policy {
    Policy {
        sticky: StickyPolicy {
            remember_for: secs(3600),
            wait: secs(60),
        },
        ..Policy::default()
    }
}

fn returning(w: &mut World, channel: Channel, customer: &str) -> switchboard_core::ContactId {
    let mut c = w.new_contact(channel, &[]);
    c.customer = customer.into();
    w.arrive(c)
}

#[test]
fn a_returning_customer_waits_for_their_previous_owner_within_the_window() {
    let mut w = World::new(sticky_policy());
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = returning(&mut w, CHAT, "ann");
    w.accept(first);
    w.close(first);
    // `a` is busy with someone else when Ann comes back; `b` is free and better.
    let other = w.contact(CHAT, &[]);
    w.accept(other);
    let b = w.agent(2, &[(1, 10)], &[(CHAT, 1)]);
    let again = returning(&mut w, CHAT, "ann");
    assert_eq!(w.offered_to(again), None);
    let reason = w.engine.wait_reason(again).unwrap();
    assert_eq!(
        reason.kind,
        WaitKind::ReservedFor {
            agent: a,
            until: Some(w.now() + secs(60))
        }
    );
    w.close(other);
    assert_eq!(w.offered_to(again), Some(a), "the previous owner takes it");
    let _ = b;
}

#[test]
fn the_sticky_window_ends_and_then_anyone_may_take_the_contact() {
    let mut w = World::new(sticky_policy());
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = returning(&mut w, CHAT, "ann");
    w.accept(first);
    w.close(first);
    let other = w.contact(CHAT, &[]);
    w.accept(other);
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    let again = returning(&mut w, CHAT, "ann");
    w.wait(59);
    assert_eq!(w.offered_to(again), None);
    w.wait(1);
    assert_eq!(w.offered_to(again), Some(b));
    let _ = a;
}

#[test]
fn an_unavailable_previous_owner_holds_nothing() {
    let mut w = World::new(sticky_policy());
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = returning(&mut w, CHAT, "ann");
    w.accept(first);
    w.close(first);
    w.presence(a, Presence::Away);
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    let again = returning(&mut w, CHAT, "ann");
    assert_eq!(w.offered_to(again), Some(b));
}

#[test]
fn the_previous_owner_going_away_releases_the_reservation() {
    let mut w = World::new(sticky_policy());
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = returning(&mut w, CHAT, "ann");
    w.accept(first);
    w.close(first);
    let other = w.contact(CHAT, &[]);
    w.accept(other);
    let again = returning(&mut w, CHAT, "ann");
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    assert_eq!(w.offered_to(again), None);
    w.presence(a, Presence::Away);
    assert_eq!(w.offered_to(again), Some(b));
}

#[test]
fn the_previous_owner_is_forgotten_after_the_memory_window() {
    let mut w = World::new(sticky_policy());
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = returning(&mut w, CHAT, "ann");
    w.accept(first);
    w.close(first);
    let other = w.contact(CHAT, &[]);
    w.accept(other);
    w.wait(3600);
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    let again = returning(&mut w, CHAT, "ann");
    assert_eq!(w.offered_to(again), Some(b));
    let _ = a;
}

// ----- relaxation ---------------------------------------------------------------------------------

fn bullseye_policy() -> Policy {
    let mut policy = Policy::default();
    let mut q = QueuePolicy::open("billing");
    q.teams = teams(&[1]);
    q.overflow_teams = teams(&[2]);
    q.preferred_for = secs(30);
    q.overflow_after = secs(120);
    policy.queues = vec![q];
    policy
}

#[test]
fn preferred_skills_count_only_for_a_while_then_the_overflow_team_joins() {
    let mut w = World::new(bullseye_policy());
    let mut plain = profile(&[(1, 5)], &[(CHAT, 1)]);
    plain.teams = teams(&[1]);
    let plain = w.agent_with(1, plain);
    let mut overflow = profile(&[(1, 5), (2, 5)], &[(CHAT, 1)]);
    overflow.teams = teams(&[2]);
    let overflow = w.agent_with(2, overflow);
    // Occupy the plain agent so only the overflow agent could ever be free.
    let busy = w.contact(CHAT, &[1]);
    assert_eq!(w.accept(busy), plain);
    let mut c = w.new_contact(CHAT, &[1]);
    c.preferred = skills(&[2]);
    let c = w.arrive(c);
    let reason = w.engine.wait_reason(c).unwrap();
    assert_eq!(reason.relaxes_at, Some(w.now() + secs(30)));
    w.wait(119);
    assert_eq!(w.offered_to(c), None, "overflow team not yet eligible");
    w.wait(1);
    assert_eq!(w.offered_to(c), Some(overflow));
}

#[test]
fn while_preferred_skills_count_an_agent_without_them_is_not_offered() {
    let mut w = World::new(bullseye_policy());
    let mut p = profile(&[(1, 5)], &[(CHAT, 1)]);
    p.teams = teams(&[1]);
    let a = w.agent_with(1, p);
    let mut c = w.new_contact(CHAT, &[1]);
    c.preferred = skills(&[2]);
    let c = w.arrive(c);
    assert_eq!(w.offered_to(c), None);
    match w.engine.wait_reason(c).unwrap().kind {
        WaitKind::NoAgentWithSkills { missing } => assert_eq!(missing, skills(&[2])),
        other => panic!("unexpected reason {other:?}"),
    }
    w.wait(30);
    assert_eq!(w.offered_to(c), Some(a));
}

// ----- transfer, wrap-up, close, abandon -------------------------------------------------------------

#[test]
fn transfer_to_an_agent_moves_ownership_and_keeps_the_arrival() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[]);
    let first = w.accept(c);
    let deadline = w.engine.contact(c).unwrap().deadline();
    let other = if first == a { b } else { a };
    w.event(Event::Transfer {
        contact: c,
        to: TransferTarget::Agent(other),
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(other));
    assert_eq!(w.engine.contact(c).unwrap().deadline(), deadline);
    assert_eq!(w.engine.agent(first).unwrap().total_load(), 0);
    w.accept(c);
    let conv = w.engine.contact(c).unwrap().conversation().to_owned();
    assert_eq!(
        w.engine.conversation(&conv).unwrap().state().agent(),
        Some(other)
    );
}

#[test]
fn transfer_to_a_team_or_skills_reroutes_and_never_back_to_the_giver() {
    let mut w = world();
    let giver = w.agent(1, &[(1, 9)], &[(CHAT, 2)]);
    let mut p = profile(&[], &[(CHAT, 1)]);
    p.teams = teams(&[5]);
    let billing = w.agent_with(2, p);
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.accept(c), giver);
    w.event(Event::Transfer {
        contact: c,
        to: TransferTarget::Team(TeamId(5)),
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(billing));
    w.accept(c);
    let expert = w.agent(3, &[(7, 3)], &[(CHAT, 1)]);
    w.event(Event::Transfer {
        contact: c,
        to: TransferTarget::Skills(skills(&[7])),
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(expert));
    assert!(matches!(
        w.take().iter().find(|d| matches!(d, Decision::Transferred { .. })),
        Some(Decision::Transferred { from, .. }) if *from == giver
    ));
}

#[test]
fn a_transfer_to_an_agent_overrides_their_earlier_decline() {
    let mut w = world();
    let a = w.agent(1, &[(1, 9)], &[(CHAT, 1)]);
    let b = w.agent(2, &[(1, 1)], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[1]);
    assert_eq!(w.decline(c), a);
    assert_eq!(w.accept(c), b);
    w.event(Event::Transfer {
        contact: c,
        to: TransferTarget::Agent(a),
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(a));
    assert!(!w.engine.contact(c).unwrap().declined().contains(&a));
}

#[test]
fn transfers_are_refused_when_they_cannot_work() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let email_only = w.agent(2, &[], &[(EMAIL, 1)]);
    let c = w.contact(CHAT, &[]);
    assert_eq!(
        w.event(Event::Transfer {
            contact: c,
            to: TransferTarget::Agent(email_only)
        }),
        Err(EngineError::InvalidState {
            contact: c,
            state: "offered",
            action: "transfer"
        })
    );
    w.accept(c);
    assert_eq!(
        w.event(Event::Transfer {
            contact: c,
            to: TransferTarget::Agent(email_only)
        }),
        Err(EngineError::AgentCannotServe {
            agent: email_only,
            channel: CHAT
        })
    );
    assert_eq!(
        w.event(Event::Transfer {
            contact: c,
            to: TransferTarget::Agent(a)
        }),
        Err(EngineError::TransferToOwner {
            contact: c,
            agent: a
        })
    );
    assert_eq!(w.state(c), Some(ContactState::Assigned { agent: a }));
}

#[test]
fn wrap_up_holds_the_slot_for_its_time_then_closes() {
    let mut policy = Policy::default();
    policy.channels[CHAT.index()].wrap_up = secs(20);
    let mut w = World::new(policy);
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[]);
    w.accept(c);
    let next = w.contact(CHAT, &[]);
    w.event(Event::WrapUp { contact: c }).unwrap();
    assert!(matches!(w.state(c), Some(ContactState::WrapUp { .. })));
    w.wait(19);
    assert_eq!(w.offered_to(next), None, "wrap-up still holds the slot");
    w.wait(1);
    assert_eq!(w.state(c), None);
    assert!(w.take().iter().any(|d| matches!(
        d,
        Decision::Closed { reason: CloseReason::WrapUpEnded, agent: Some(x), .. } if *x == a
    )));
    assert_eq!(w.offered_to(next), Some(a));
}

#[test]
fn closing_frees_capacity_for_the_next_contact() {
    let mut w = world();
    let a = w.agent(1, &[], &[(EMAIL, 1)]);
    let first = w.contact(EMAIL, &[]);
    let second = w.contact(EMAIL, &[]);
    w.accept(first);
    assert_eq!(w.offered_to(second), None);
    w.close(first);
    assert_eq!(w.offered_to(second), Some(a));
    assert!(
        w.engine.conversation("conv-1").is_none(),
        "the conversation is closed"
    );
}

#[test]
fn an_abandoned_contact_is_gone_and_its_offer_withdrawn() {
    let mut w = world();
    let a = w.agent(1, &[], &[(VOICE, 1)]);
    let call = w.contact(VOICE, &[]);
    let waiting = w.contact(VOICE, &[]);
    assert_eq!(w.offered_to(call), Some(a));
    w.wait(4);
    w.event(Event::Abandon { contact: call }).unwrap();
    w.event(Event::Abandon { contact: waiting }).unwrap();
    assert_eq!(w.state(call), None);
    assert_eq!(w.engine.agent(a).unwrap().total_load(), 0);
    let log = w.take();
    assert!(log.iter().any(|d| matches!(d, Decision::Abandoned { contact, waited } if *contact == call && *waited == secs(4))));
    assert!(log.iter().any(|d| matches!(
        d,
        Decision::OfferEnded {
            outcome: OfferOutcome::Withdrawn,
            ..
        }
    )));
    let c = w.contact(VOICE, &[]);
    w.accept(c);
    assert!(matches!(
        w.event(Event::Abandon { contact: c }),
        Err(EngineError::InvalidState {
            state: "assigned",
            ..
        })
    ));
}

// ----- presence and open work -------------------------------------------------------------------------

#[test]
fn going_offline_keeps_conversations_by_default() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 2)]);
    let c = w.contact(CHAT, &[]);
    let offered = w.contact(CHAT, &[]);
    w.accept(c);
    w.presence(a, Presence::Offline);
    assert_eq!(w.state(c), Some(ContactState::Assigned { agent: a }));
    assert_eq!(
        w.state(offered),
        Some(ContactState::Waiting),
        "pending offers are withdrawn"
    );
}

#[test]
fn going_offline_requeues_with_the_original_arrival_when_configured() {
    let mut policy = Policy {
        on_offline: OfflineBehaviour::Requeue,
        ..Policy::default()
    };
    policy.channels[CHAT.index()].wrap_up = secs(60);
    let mut w = World::new(policy);
    let a = w.agent(1, &[], &[(CHAT, 2)]);
    let c = w.contact(CHAT, &[]);
    let wrapping = w.contact(CHAT, &[]);
    w.accept(c);
    w.accept(wrapping);
    w.event(Event::WrapUp { contact: wrapping }).unwrap();
    let deadline = w.engine.contact(c).unwrap().deadline();
    w.presence(a, Presence::Offline);
    assert_eq!(w.state(c), Some(ContactState::Waiting));
    assert_eq!(w.state(wrapping), None);
    assert_eq!(w.engine.contact(c).unwrap().deadline(), deadline);
    let log = w.take();
    assert!(log.iter().any(|d| matches!(
        d,
        Decision::Requeued {
            reason: RequeueReason::AgentOffline,
            ..
        }
    )));
    assert!(log.iter().any(|d| matches!(
        d,
        Decision::Closed {
            reason: CloseReason::AgentOffline,
            ..
        }
    )));
    let b = w.agent(2, &[], &[(CHAT, 1)]);
    assert_eq!(w.offered_to(c), Some(b));
}

#[test]
fn a_profile_update_applies_at_once() {
    let mut w = world();
    let a = w.agent(1, &[(1, 5)], &[(CHAT, 1)]);
    let c = w.contact(CHAT, &[2]);
    assert_eq!(w.offered_to(c), None);
    w.event(Event::UpsertAgent {
        agent: a,
        profile: profile(&[(1, 5), (2, 5)], &[(CHAT, 1)]),
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(a));
    // Lowering caps below the current load revokes nothing and offers nothing more.
    let c2 = w.contact(CHAT, &[]);
    w.event(Event::UpsertAgent {
        agent: a,
        profile: switchboard_core::AgentProfile {
            caps: Caps::default(),
            ..profile(&[(2, 5)], &[])
        },
    })
    .unwrap();
    assert_eq!(w.offered_to(c), Some(a));
    assert_eq!(w.offered_to(c2), None);
}

#[test]
fn invalid_profiles_and_contacts_are_refused_with_the_reason() {
    let mut w = world();
    assert_eq!(
        w.event(Event::UpsertAgent {
            agent: AgentId(1),
            profile: profile(&[(1, 11)], &[])
        }),
        Err(EngineError::InvalidProficiency {
            skill: 1,
            proficiency: 11
        })
    );
    assert_eq!(
        w.event(Event::UpsertAgent {
            agent: AgentId(1),
            profile: profile(&[(200, 5)], &[])
        }),
        Err(EngineError::SkillOutOfRange(200))
    );
    let c = w.new_contact(CHAT, &[]);
    let mut dup = c.clone();
    w.arrive(c);
    assert_eq!(
        w.event(Event::Arrive(dup.clone())),
        Err(EngineError::DuplicateContact(dup.id))
    );
    dup.id = switchboard_core::ContactId(99);
    assert!(matches!(
        w.event(Event::Arrive(dup.clone())),
        Err(EngineError::ConversationOpen { .. })
    ));
    dup.conversation = "other".into();
    dup.queue = QueueId(7);
    assert_eq!(
        w.event(Event::Arrive(dup)),
        Err(EngineError::UnknownQueue(7))
    );
    assert_eq!(w.engine.open_len(), 1);
}

// ----- explanations -------------------------------------------------------------------------------------

#[test]
fn a_waiting_contact_says_why() {
    let mut w = world();
    let c = w.contact(CHAT, &[3]);
    let log = w.take();
    assert!(log.iter().any(|d| matches!(
        d,
        Decision::Waiting { reason, .. } if reason.kind == WaitKind::NoAgentWithSkills { missing: skills(&[3]) }
    )), "{log:?}");
    let a = w.agent(1, &[(3, 4)], &[(EMAIL, 1)]);
    assert_eq!(
        w.engine.wait_reason(c).unwrap().kind,
        WaitKind::NoAgentInTeams {
            teams: teams(&[]),
            channel: CHAT
        },
        "the only agent with the skill does not do chat"
    );
    let _ = a;
    assert_eq!(w.engine.position(c), Some(0));
    let c2 = w.contact(CHAT, &[3]);
    assert_eq!(w.engine.position(c2), Some(1));
}

#[test]
fn time_never_runs_backwards() {
    let mut w = world();
    w.wait(100);
    let mut log = Vec::new();
    w.engine.tick(Time::from_millis(5), &mut log);
    assert_eq!(w.now(), Time::from_millis(100_000));
}

// ----- expected wait ------------------------------------------------------------------------

#[test]
fn the_expected_wait_comes_from_position_slots_and_recent_handling() {
    let mut w = world();
    let a = w.agent(1, &[], &[(CHAT, 1)]);
    let first = w.contact(CHAT, &[]);
    w.wait(5);
    w.accept(first);
    w.wait(60);
    w.close(first); // a handling time of 60 s
    let second = w.contact(CHAT, &[]);
    assert_eq!(w.accept(second), a);
    let third = w.contact(CHAT, &[]);
    let fourth = w.contact(CHAT, &[]);
    let e3 = w.engine.expected_wait(third).unwrap();
    assert_eq!(e3.position, 0);
    assert_eq!(e3.slots, 1);
    assert_eq!(e3.handling, Some(secs(60)));
    assert_eq!(e3.estimate, Some(secs(60)));
    let e4 = w.engine.expected_wait(fourth).unwrap();
    assert_eq!((e4.position, e4.estimate), (1, Some(secs(120))));
    // A second agent doubles the slots and halves the wait.
    let mut p = profile(&[], &[(CHAT, 1)]);
    p.caps.total = Some(1);
    let b = w.agent_with(2, p);
    assert_eq!(w.offered_to(third), Some(b), "b takes the third at once");
    w.accept(third);
    let e4 = w.engine.expected_wait(fourth).unwrap();
    assert_eq!((e4.position, e4.slots, e4.estimate), (0, 2, Some(secs(30))));
    // Nobody available: no estimate.
    w.presence(a, Presence::Away);
    w.presence(b, Presence::Away);
    let e4 = w.engine.expected_wait(fourth).unwrap();
    assert_eq!((e4.slots, e4.estimate), (0, None));
    // Not waiting: no expected wait.
    assert_eq!(w.engine.expected_wait(second), None);
}

#[test]
fn without_handling_history_there_is_no_estimate() {
    let mut w = world();
    let a = w.agent(1, &[], &[(EMAIL, 1)]);
    let busy = w.contact(EMAIL, &[]);
    w.accept(busy);
    let c = w.contact(EMAIL, &[]);
    let e = w.engine.expected_wait(c).unwrap();
    assert_eq!(
        (e.position, e.slots, e.handling, e.estimate),
        (0, 1, None, None)
    );
    let _ = a;
}
