//! Random durations: the distributions a scenario names, sampled with `rand_distr` from a
//! seeded generator, and the seeding scheme that keeps runs reproducible.

use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Uniform};
use serde::Deserialize;

/// The generator every random draw uses: fast, and the same stream for the same seed on
/// every platform and every release of `rand` 0.10.
pub type SimRng = Xoshiro256PlusPlus;

/// A generator for one purpose (`stream`) of one replication: streams are independent, so
/// changing one part of a scenario (say, the staffing) leaves the draws of the others (the
/// arrivals and their handling times) unchanged: common random numbers.
pub fn rng(seed: u64, replication: u64, stream: u64) -> SimRng {
    // SplitMix64 finaliser over the three inputs, so nearby seeds give unrelated streams.
    let mut z = seed
        ^ replication.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    SimRng::seed_from_u64(z ^ (z >> 31))
}

/// A duration distribution as written in a scenario file, for example
/// `{ dist = "lognormal", mean = "6m", sd = "4m" }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistConfig {
    /// Exponential with this mean (memoryless: the M in M/M/c).
    Exponential {
        #[serde(with = "humantime_serde")]
        mean: Duration,
    },
    /// Log-normal with this mean and standard deviation (handling times are usually so).
    Lognormal {
        #[serde(with = "humantime_serde")]
        mean: Duration,
        #[serde(with = "humantime_serde")]
        sd: Duration,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        #[serde(with = "humantime_serde")]
        min: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Always `value`.
    Constant {
        #[serde(with = "humantime_serde")]
        value: Duration,
    },
    /// One of `samples`, each equally likely: handling times measured from real data.
    Empirical {
        samples: Vec<humantime_serde::Serde<Duration>>,
    },
}

/// A distribution ready to sample, in milliseconds.
#[derive(Debug, Clone)]
pub struct Dist {
    kind: Kind,
    mean_ms: f64,
}

#[derive(Debug, Clone)]
enum Kind {
    Exponential(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Uniform(Uniform<f64>),
    Constant(f64),
    Empirical(Vec<u64>),
}

impl DistConfig {
    /// Checks the parameters and builds the sampler; the error says what is wrong.
    pub fn build(&self) -> Result<Dist, String> {
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let (kind, mean_ms) = match self {
            DistConfig::Exponential { mean } => {
                if mean.is_zero() {
                    return Err("mean must be above zero".into());
                }
                let d = Exp::new(1.0 / ms(mean)).map_err(|e| e.to_string())?;
                (Kind::Exponential(d), ms(mean))
            }
            DistConfig::Lognormal { mean, sd } => {
                if mean.is_zero() {
                    return Err("mean must be above zero".into());
                }
                let d = LogNormal::from_mean_cv(ms(mean), ms(sd) / ms(mean))
                    .map_err(|e| e.to_string())?;
                (Kind::LogNormal(d), ms(mean))
            }
            DistConfig::Uniform { min, max } => {
                if min > max {
                    return Err("min must not be above max".into());
                }
                let d = Uniform::new_inclusive(ms(min), ms(max)).map_err(|e| e.to_string())?;
                (Kind::Uniform(d), (ms(min) + ms(max)) / 2.0)
            }
            DistConfig::Constant { value } => (Kind::Constant(ms(value)), ms(value)),
            DistConfig::Empirical { samples } => {
                if samples.is_empty() {
                    return Err("samples must not be empty".into());
                }
                let v: Vec<u64> = samples.iter().map(|d| d.as_millis() as u64).collect();
                let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
                (Kind::Empirical(v), mean)
            }
        };
        Ok(Dist { kind, mean_ms })
    }
}

impl Dist {
    /// The constant distribution: always `ms` milliseconds.
    pub fn constant_ms(ms: u64) -> Dist {
        Dist {
            kind: Kind::Constant(ms as f64),
            mean_ms: ms as f64,
        }
    }

    /// An exponential distribution with mean `mean_ms` (which must be above zero).
    pub fn exponential_ms(mean_ms: f64) -> Dist {
        Dist {
            kind: Kind::Exponential(Exp::new(1.0 / mean_ms).expect("positive mean")),
            mean_ms,
        }
    }

    /// One draw, in whole milliseconds (rounded to nearest, so the mean is kept).
    pub fn sample_ms(&self, rng: &mut SimRng) -> u64 {
        self.sample_ms_f64(rng).round().max(0.0) as u64
    }

    /// One draw in milliseconds, unrounded.
    pub fn sample_ms_f64(&self, rng: &mut SimRng) -> f64 {
        match &self.kind {
            Kind::Exponential(d) => d.sample(rng),
            Kind::LogNormal(d) => d.sample(rng),
            Kind::Uniform(d) => d.sample(rng),
            Kind::Constant(v) => *v,
            Kind::Empirical(v) => v[rng.random_range(0..v.len())] as f64,
        }
    }

    /// The mean in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        self.mean_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(d: &Dist, n: usize) -> f64 {
        let mut r = rng(7, 0, 0);
        (0..n).map(|_| d.sample_ms(&mut r) as f64).sum::<f64>() / n as f64
    }

    #[test]
    fn sampled_means_match_the_configured_means() {
        let s = Duration::from_secs;
        for cfg in [
            DistConfig::Exponential { mean: s(180) },
            DistConfig::Lognormal {
                mean: s(300),
                sd: s(200),
            },
            DistConfig::Uniform {
                min: s(10),
                max: s(50),
            },
            DistConfig::Empirical {
                samples: vec![s(60).into(), s(120).into(), s(600).into()],
            },
        ] {
            let d = cfg.build().unwrap();
            let m = mean_of(&d, 200_000);
            let want = d.mean_ms();
            assert!((m - want).abs() / want < 0.02, "{cfg:?}: {m} vs {want}");
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let s = Duration::from_secs;
        assert!(DistConfig::Exponential { mean: s(0) }.build().is_err());
        assert!(
            DistConfig::Uniform {
                min: s(5),
                max: s(1)
            }
            .build()
            .is_err()
        );
        assert!(DistConfig::Empirical { samples: vec![] }.build().is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_draws_and_streams_differ() {
        let d = Dist::exponential_ms(1000.0);
        let draw = |stream| {
            let mut r = rng(1, 2, stream);
            (0..5).map(|_| d.sample_ms(&mut r)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
