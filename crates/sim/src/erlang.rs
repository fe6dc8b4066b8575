//! Queueing theory for the M/M/c check: Erlang B through its recursion (stable for
//! thousands of agents, no factorials), Erlang C from it, and the average speed of answer
//! and service level that follow.
//!
//! With `a = λ/μ` erlangs of offered load and `c` agents (`a < c`):
//! - Erlang B: `B(0) = 1`, `B(k) = a·B(k−1) / (k + a·B(k−1))`;
//! - Erlang C (probability of waiting): `C = c·B / (c − a·(1 − B))`;
//! - average speed of answer: `ASA = C / (cμ − λ)`;
//! - service level at `t`: `P(W ≤ t) = 1 − C·exp(−(cμ − λ)·t)`.

/// Erlang B: the blocking probability with `agents` servers and `erlangs` of offered load.
pub fn erlang_b(agents: u32, erlangs: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=agents {
        let ab = erlangs * b;
        b = ab / (f64::from(k) + ab);
    }
    b
}

/// Erlang C: the probability that a contact waits; 1 when the load reaches the agents.
pub fn erlang_c(agents: u32, erlangs: f64) -> f64 {
    let c = f64::from(agents);
    if erlangs >= c {
        return 1.0;
    }
    let b = erlang_b(agents, erlangs);
    c * b / (c - erlangs * (1.0 - b))
}

/// The M/M/c figures for `rate` contacts a second, `aht` seconds mean handling, `agents`
/// agents and a service-level target of `target` seconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Mmc {
    /// Probability of waiting (Erlang C).
    pub p_wait: f64,
    /// Average speed of answer over all contacts, seconds.
    pub asa_seconds: f64,
    /// Share answered within the target.
    pub service_level: f64,
    /// Agent occupancy `λ/(cμ)`.
    pub occupancy: f64,
}

impl Mmc {
    /// The figures; `None` if the load reaches or exceeds the agents (no steady state).
    pub fn new(rate: f64, aht: f64, agents: u32, target: f64) -> Option<Mmc> {
        let a = rate * aht;
        let c = f64::from(agents);
        if agents == 0 || a >= c || rate <= 0.0 || aht <= 0.0 {
            return None;
        }
        let p_wait = erlang_c(agents, a);
        let drain = (c - a) / aht; // cμ − λ
        Some(Mmc {
            p_wait,
            asa_seconds: p_wait / drain,
            service_level: 1.0 - p_wait * (-drain * target).exp(),
            occupancy: a / c,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Erlang B from its closed form, for small cases.
    fn b_direct(n: u32, a: f64) -> f64 {
        let mut term = 1.0;
        let mut sum = 1.0;
        for k in 1..=n {
            term *= a / f64::from(k);
            sum += term;
        }
        term / sum
    }

    #[test]
    fn erlang_b_matches_published_tables() {
        // Published Erlang B table values (for example the ITU-T and Cisco traffic tables).
        let cases = [
            (1, 1.0, 0.5),
            (5, 5.0, 0.2849),
            (10, 10.0, 0.2146),
            (10, 5.0, 0.01838),
            (20, 15.0, 0.0456),
        ];
        for (n, a, want) in cases {
            let got = erlang_b(n, a);
            assert!(
                (got - want).abs() < 5e-4 * want.max(0.1),
                "B({n}, {a}) = {got}"
            );
            assert!((got - b_direct(n, a)).abs() < 1e-12);
        }
    }

    #[test]
    fn erlang_c_matches_published_values() {
        // The classic textbook call-centre example: 10 erlangs on 11 agents waits 68.2 %
        // of the time, and an M/M/1 queue waits with probability ρ.
        assert!(
            (erlang_c(11, 10.0) - 0.6821).abs() < 5e-4,
            "{}",
            erlang_c(11, 10.0)
        );
        for rho in [0.1, 0.5, 0.9] {
            assert!((erlang_c(1, rho) - rho).abs() < 1e-12);
        }
        // M/M/2 in closed form: C = 2ρ²/(1+ρ) with ρ = a/2.
        let a = 1.2;
        let rho = a / 2.0;
        assert!((erlang_c(2, a) - 2.0 * rho * rho / (1.0 + rho)).abs() < 1e-12);
    }

    #[test]
    fn the_recursion_is_stable_for_thousands_of_agents() {
        let c = erlang_c(5000, 4900.0);
        assert!(c.is_finite() && c > 0.0 && c < 1.0, "{c}");
        // More agents at the same occupancy wait less often.
        let p = |n: u32| erlang_c(n, 0.85 * f64::from(n));
        assert!(p(10) > p(50) && p(50) > p(200) && p(200) > p(2000));
    }

    #[test]
    fn asa_and_service_level_follow_from_erlang_c() {
        // 10 erlangs on 11 agents, 180 s handling: cμ − λ = 1/180 per second.
        let m = Mmc::new(10.0 / 180.0, 180.0, 11, 20.0).unwrap();
        assert!((m.asa_seconds - m.p_wait * 180.0).abs() < 1e-9);
        let sl = 1.0 - m.p_wait * (-20.0f64 / 180.0).exp();
        assert!((m.service_level - sl).abs() < 1e-12);
        assert!((m.occupancy - 10.0 / 11.0).abs() < 1e-12);
        assert!(Mmc::new(1.0, 10.0, 10, 20.0).is_none());
    }
}
