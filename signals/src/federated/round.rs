//! The chain prior's rounds as the boxes and the aggregator play them — the messages and the
//! two sides' state machines, without IO (a transport carries the messages; the MQTT wiring is
//! not built yet, see docs/data-team.md).
//!
//! A chain prior takes a sequence of rounds ([`Chain`]): the chain's average, the first
//! clustering, then k-means rounds. Each round:
//! 1. the aggregator **announces** it ([`Announce`]): its number, the stage (what a store
//!    computes), the boxes taking part (their indices; each pair's shared secret is agreed by
//!    the boxes themselves from their published keys) and the noise of [`super::dp`] (σ per
//!    sum, 0 for none);
//! 2. each box sends its update **masked** ([`BoxRound::mask`] → [`Masked`]): the stage's block
//!    update, its share of the noise, fixed point, every pairwise mask;
//! 3. after its deadline the aggregator lists who did **not** send ([`Aggregator::close`] →
//!    [`Missing`]);
//! 4. each box that sent **reveals** its secrets with the listed boxes only
//!    ([`BoxRound::reveal`] → [`Reveal`]); a box that sees itself listed although it sent
//!    voids the round (the aggregator would otherwise unmask its update);
//! 5. the aggregator removes the dropped boxes' masks and has the **sum** of the survivors
//!    ([`Aggregator::finish`]), never one box's update. A round with fewer than
//!    [`super::MIN_STORES`] survivors, or a survivor that did not reveal, fails (no secret
//!    sharing of keys here: see the module [`super`] for the guarantees).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{block_update, dp, first_cluster, nearest, priors_from_blocks, secagg, Prior};

/// What a store computes in a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stage {
    /// The chain's average: one block.
    Average,
    /// Four clusters by more or less weekend and evening than the chain's average.
    FirstClusters { chain: Prior },
    /// A k-means round: the nearest of the current centres.
    KMeans { centres: Vec<Prior> },
}

impl Stage {
    pub fn blocks(&self) -> usize {
        match self {
            Stage::Average => 1,
            Stage::FirstClusters { .. } => 4,
            Stage::KMeans { centres } => centres.len(),
        }
    }

    /// A store's update for this stage: its shape and weight in its cluster's block.
    pub fn update(&self, shape: &[f64], weight: f64) -> Vec<f64> {
        let c = match self {
            Stage::Average => 0,
            Stage::FirstClusters { chain } => first_cluster(shape, chain),
            Stage::KMeans { centres } => nearest(shape, centres).unwrap_or(0),
        };
        block_update(c, self.blocks(), shape, weight)
    }

    /// Values in a round's update.
    pub fn len(&self) -> usize {
        self.blocks() * super::BLOCK
    }

    pub fn is_empty(&self) -> bool {
        self.blocks() == 0
    }
}

/// A round, as the aggregator announces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announce {
    pub round: u64,
    pub stage: Stage,
    /// The boxes taking part (indices).
    pub boxes: BTreeSet<u32>,
    /// Gaussian noise per value of the sum ([`super::dp`]); 0 for none.
    pub sigma: f64,
}

/// A box's masked update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Masked {
    pub round: u64,
    pub from: u32,
    pub values: Vec<u64>,
}

/// The boxes the aggregator did not hear from by the deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    pub round: u64,
    pub missing: BTreeSet<u32>,
}

/// A surviving box's secrets with the missing boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reveal {
    pub round: u64,
    pub from: u32,
    pub secrets: Vec<(u32, [u8; 32])>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoundError {
    #[error("a message of round {got} in round {round}")]
    WrongRound { round: u64, got: u64 },
    #[error("box {0} does not take part in this round")]
    NotTakingPart(u32),
    #[error("box {0} sent twice")]
    Duplicate(u32),
    #[error("box {from} sent {got} values, the round has {want}")]
    WrongLength { from: u32, got: usize, want: usize },
    #[error("box {0} sent its update and was listed as missing: the round is void")]
    ListedButSent(u32),
    #[error("a reveal names box {0}, which was not listed as missing")]
    NotMissing(u32),
    #[error("boxes {0:?} sent but did not reveal: the sum cannot be unmasked")]
    NotRevealed(Vec<u32>),
    #[error("{got} boxes sent, a round needs {min}")]
    TooFew { got: usize, min: usize },
}

/// A box's side of one round.
#[derive(Debug, Clone)]
pub struct BoxRound {
    round: u64,
    me: u32,
    boxes: BTreeSet<u32>,
}

impl BoxRound {
    /// Mask this box's update (`shape`, `weight`) for the announced round. `secret_with(peer)`
    /// is the pair's shared secret; `normal` draws the noise share (standard normal values).
    pub fn mask(
        a: &Announce,
        me: u32,
        (shape, weight): (&[f64], f64),
        secret_with: &dyn Fn(u32) -> [u8; 32],
        normal: &mut dyn FnMut() -> f64,
    ) -> Result<(BoxRound, Masked), RoundError> {
        if !a.boxes.contains(&me) {
            return Err(RoundError::NotTakingPart(me));
        }
        let update = if a.sigma > 0.0 {
            let (shape, weight) = dp::bounded(shape, weight);
            let mut u = a.stage.update(&shape, weight);
            dp::share(&mut u, a.sigma, a.boxes.len(), normal);
            u
        } else {
            a.stage.update(shape, weight)
        };
        let mut values = secagg::to_fixed(&update);
        let peers: Vec<(u32, [u8; 32])> = a
            .boxes
            .iter()
            .filter(|&&p| p != me)
            .map(|&p| (p, secret_with(p)))
            .collect();
        secagg::mask(me, &mut values, &peers);
        let state = BoxRound {
            round: a.round,
            me,
            boxes: a.boxes.clone(),
        };
        let masked = Masked {
            round: a.round,
            from: me,
            values,
        };
        Ok((state, masked))
    }

    /// This box's index in the round.
    pub fn me(&self) -> u32 {
        self.me
    }

    /// The round this box masked its update for.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The secrets with the boxes listed as missing (only those, only boxes of the round);
    /// refused if this box, which sent, is listed.
    pub fn reveal(
        &self,
        m: &Missing,
        secret_with: &dyn Fn(u32) -> [u8; 32],
    ) -> Result<Reveal, RoundError> {
        if m.round != self.round {
            return Err(RoundError::WrongRound {
                round: self.round,
                got: m.round,
            });
        }
        if m.missing.contains(&self.me) {
            return Err(RoundError::ListedButSent(self.me));
        }
        let secrets = m
            .missing
            .iter()
            .filter(|p| self.boxes.contains(p))
            .map(|&p| (p, secret_with(p)))
            .collect();
        Ok(Reveal {
            round: self.round,
            from: self.me,
            secrets,
        })
    }
}

/// The aggregator's side of one round.
#[derive(Debug, Clone)]
pub struct Aggregator {
    announce: Announce,
    sum: Vec<u64>,
    sent: BTreeSet<u32>,
    missing: Option<BTreeSet<u32>>,
    revealed: BTreeMap<u32, Vec<(u32, [u8; 32])>>,
}

impl Aggregator {
    pub fn new(announce: Announce) -> Aggregator {
        let sum = vec![0; announce.stage.len()];
        Aggregator {
            announce,
            sum,
            sent: BTreeSet::new(),
            missing: None,
            revealed: BTreeMap::new(),
        }
    }

    pub fn announce(&self) -> &Announce {
        &self.announce
    }

    fn check_round(&self, got: u64) -> Result<(), RoundError> {
        if got == self.announce.round {
            Ok(())
        } else {
            Err(RoundError::WrongRound {
                round: self.announce.round,
                got,
            })
        }
    }

    /// A masked update arrived (before the deadline: afterwards it is too late).
    pub fn receive(&mut self, m: &Masked) -> Result<(), RoundError> {
        self.check_round(m.round)?;
        if !self.announce.boxes.contains(&m.from) || self.missing.is_some() {
            return Err(RoundError::NotTakingPart(m.from));
        }
        if m.values.len() != self.sum.len() {
            return Err(RoundError::WrongLength {
                from: m.from,
                got: m.values.len(),
                want: self.sum.len(),
            });
        }
        if !self.sent.insert(m.from) {
            return Err(RoundError::Duplicate(m.from));
        }
        secagg::add(&mut self.sum, &m.values);
        Ok(())
    }

    /// The deadline passed: who did not send.
    pub fn close(&mut self) -> Missing {
        let missing: BTreeSet<u32> = self
            .announce
            .boxes
            .difference(&self.sent)
            .copied()
            .collect();
        self.missing = Some(missing.clone());
        Missing {
            round: self.announce.round,
            missing,
        }
    }

    /// A survivor's secrets with the missing boxes.
    pub fn reveal(&mut self, r: &Reveal) -> Result<(), RoundError> {
        self.check_round(r.round)?;
        let missing = self.missing.clone().unwrap_or_default();
        if !self.sent.contains(&r.from) {
            return Err(RoundError::NotTakingPart(r.from));
        }
        if let Some((p, _)) = r.secrets.iter().find(|(p, _)| !missing.contains(p)) {
            return Err(RoundError::NotMissing(*p));
        }
        self.revealed.insert(r.from, r.secrets.clone());
        Ok(())
    }

    /// The survivors' sum in floating point (one value per value of the stage's update).
    pub fn finish(mut self) -> Result<Vec<f64>, RoundError> {
        let min = super::MIN_STORES as usize;
        if self.sent.len() < min {
            return Err(RoundError::TooFew {
                got: self.sent.len(),
                min,
            });
        }
        let missing = self.missing.clone().unwrap_or_default();
        if !missing.is_empty() {
            let silent: Vec<u32> = self
                .sent
                .iter()
                .filter(|b| !self.revealed.contains_key(b))
                .copied()
                .collect();
            if !silent.is_empty() {
                return Err(RoundError::NotRevealed(silent));
            }
            let revealed: Vec<(u32, u32, [u8; 32])> = self
                .revealed
                .iter()
                .flat_map(|(&from, s)| s.iter().map(move |&(d, secret)| (from, d, secret)))
                .collect();
            secagg::unmask_dropped(&mut self.sum, &revealed);
        }
        Ok(secagg::from_fixed(&self.sum))
    }
}

/// The sequence of rounds that makes a chain prior, on the aggregator: the average, the first
/// clustering, then `kmeans` k-means rounds (fewer if the clusters run out).
#[derive(Debug, Clone)]
pub struct Chain {
    kmeans: usize,
    done: usize,
    chain: Option<Prior>,
    clusters: Vec<Prior>,
}

impl Chain {
    pub fn new(kmeans: usize) -> Chain {
        Chain {
            kmeans,
            done: 0,
            chain: None,
            clusters: Vec::new(),
        }
    }

    /// A round's sum (negative values of a noisy sum set to zero): the next stage, or `None`
    /// when the priors are made.
    pub fn next(&mut self, stage: &Stage, sum: &[f64]) -> Option<Stage> {
        let clamped: Vec<f64> = sum.iter().map(|v| v.max(0.0)).collect();
        let priors = priors_from_blocks(&clamped);
        match stage {
            Stage::Average => {
                self.chain = priors.into_iter().next();
                self.chain
                    .clone()
                    .map(|chain| Stage::FirstClusters { chain })
            }
            Stage::FirstClusters { .. } | Stage::KMeans { .. } => {
                self.clusters = priors;
                if self.done < self.kmeans && !self.clusters.is_empty() {
                    self.done += 1;
                    Some(Stage::KMeans {
                        centres: self.clusters.clone(),
                    })
                } else {
                    None
                }
            }
        }
    }

    /// The priors made: the chain's average first (always, once known), then the clusters.
    pub fn priors(&self) -> Vec<Prior> {
        self.chain.iter().chain(&self.clusters).cloned().collect()
    }
}
